"""What the walk knows and how it learns it: the scratch database read back after each step.

The schema and rows of every table, kept current by re-reading only what a
step's SQL touched (:mod:`.sqlwatch`); the seeding of the tables a step may
have changed; the findings and the coverage so far; and how to run one step
through the project's own ``env.py``.
"""

from __future__ import annotations

import gc
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Literal

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import Script, ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from migrasafe.checks.findings import Finding
from migrasafe.checks.verify.declarations import Declarations
from migrasafe.checks.verify.locktrace import LockTracer
from migrasafe.checks.verify.report import Progress
from migrasafe.checks.verify.rows import Seeder, reflect
from migrasafe.checks.verify.snapshot import (
    Namespaces,
    Rows,
    Schema,
    TableSchema,
    read_rows,
    read_schema,
    table_names,
)
from migrasafe.checks.verify.sqlwatch import SqlWatch
from migrasafe.db.dialects import dialect_named
from migrasafe.db.urls import describe_error
from migrasafe.errors import ConfigError, MigrasafeError, reraise_interrupts
from migrasafe.project.config import CHECKSUM_TABLE, Project
from migrasafe.project.env import run_env

Severity = Literal["error", "warning", "info"]


class StepFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Step(RevisionStep):
    """Alembic's step for one revision, without its walk of the whole history on the way down.

    To move the version table down from a revision with no other head,
    Alembic gathers every ancestor of the revision it goes to, then removes
    them from a set of that one revision, which is never its own ancestor: the
    answer is that revision. verify downgrades every revision, and that walk
    made each step slower as the history grew (1 ms per step at 1,000).
    """

    def _unmerge_to_revisions(self, heads: set[str]) -> tuple[str, ...]:
        to = self.to_revisions
        if len(to) == 1 and set(heads) <= {self.revision.revision}:
            return to
        return super()._unmerge_to_revisions(heads)


class WalkState:
    """The walk's state, and the reads and writes every way of walking shares."""

    def __init__(
        self,
        project: Project,
        script: ScriptDirectory,
        url: str,
        rows: int,
        seed: int,
        progress: Progress | None,
        declarations: Declarations | None = None,
    ) -> None:
        self.project = project
        self.script = script
        self.url = url
        self.rows = rows
        self.seed = seed
        self.progress = progress
        self.shown = 0  # the last revision whose progress was reported
        self.declared = declarations or Declarations()
        self.findings: list[Finding] = []
        self.steps = 0
        self.refused: dict[str, int] = {}
        self.refused_at: dict[str, Script] = {}  # the first revision before which rows were refused
        self.refused_why: dict[str, str] = {}
        self.refused_cause: dict[str, str] = {}  # whose the refusal is (SeedReport.cause)
        self.models_note: str | None = None
        self.models_compared = False  # on the walk's database, at head
        self.trace_locks = False
        self.tracer: LockTracer | None = None
        self.rows_before: dict[str, dict[str, int]] = {}  # revision -> table -> rows
        self.exclude = {CHECKSUM_TABLE, "alembic_version"}
        self.watch = SqlWatch()
        self.where = Namespaces()
        self.known: dict[tuple[str, str], TableSchema] = {}  # (table, fingerprint) -> as read
        self.schema = Schema()
        self.data: dict[str, Rows] = {}
        self.with_data: list[str] = []
        self.schema_only: dict[str, str] = {}
        self.upgrade_only: dict[str, str] = {}
        self.not_checked: dict[str, str] = {}
        self.stuck: set[str] = set()  # checked, but left unapplied: their descendants cannot run
        self.rebuilds: set[str] = set()  # stuck revisions the database was rebuilt up to
        self.abandoned: str | None = None  # why no later revision can be checked
        self.notes: list[str] = []  # for the report: how the walk went where it was not asked
        self.schemas_kept: set[str] = set()  # schemas there before any revision (see _rebuild)
        self.leftovers = False  # a step failed or left the schema changed: drift needs a clean run
        self.transactional = True
        self.batch = False
        self.per_migration = False
        self.describes = False  # the dialect reads tables from its catalog in one query
        self.names_tables = False  # it says which of some tables exist without listing all
        self.seeder = Seeder(rows, seed)
        # table -> (what its rows obey, its rows) when it was last seeded (see _reseed)
        self.seeded: dict[str, tuple[tuple[Any, ...], Rows | None]] = {}

    def _progress(self, number: int, total: int, revision: str) -> None:
        """Report revision ``number`` once: a window that is undone walks some again."""
        if self.progress is not None and number > self.shown:
            self.shown = number
            self.progress(number, total, revision)

    def _run_env(
        self, connection: Connection, fn: Callable[..., Iterable[Any]], **opts: Any
    ) -> MigrationContext:
        """Run ``env.py`` as it is, on its own connection (redirected to the scratch database).

        migrasafe's own connection holds no transaction meanwhile, so that
        SQLite lets ``env.py``'s write.
        """
        if connection.in_transaction():
            connection.commit()
        run = run_env(self.project, fn, **opts)
        assert run.context is not None
        return run.context

    def _learn_env(self, connection: Connection) -> None:
        """One run of ``env.py`` before any revision: its version table; setup errors stop here."""
        context = self._run_env(connection, lambda _rev, _ctx: [], dont_mutate=True)
        self.exclude = {CHECKSUM_TABLE, context.version_table}
        dialect = dialect_named(connection.dialect.name)
        self.transactional = dialect.sessions.ddl_is_transactional
        self.describes = dialect.catalog.describe(connection, []) is not None
        self.names_tables = dialect.catalog.tables_named(connection, []) is not None
        connection.commit()
        # Revisions share a run of env.py (see Windows). Where DDL is transactional, a failure
        # undoes the failed step (all three, without transaction_per_migration). Each step
        # commits on its own with transaction_per_migration, and wherever Alembic assumes DDL
        # is not transactional (SQLite, MySQL): then only the failed step is undone, and on
        # MySQL, whose DDL commits at once, not even that: it is judged as it stands.
        # An env.py whose connection is already in a transaction when it configures the
        # context (a SET it sent first began one) gets no transaction per migration from
        # Alembic: every step then commits, or rolls back, with env.py's own transaction.
        external = bool(getattr(context, "_in_external_transaction", False))
        self.per_migration = not external and (
            bool(context.opts.get("transaction_per_migration"))
            or not context.impl.transactional_ddl
        )
        # Windows, except where a failure would undo what MySQL's DDL already committed: an
        # env.py whose connection is in a transaction before configure() (one transaction
        # for every step) on a database whose DDL is not transactional
        self.batch = not self.trace_locks and not (external and not self.transactional)
        if connection.dialect.name == "postgresql":  # SQLite and MySQL: one schema, one database
            # Every schema of the scratch database: the migrations made each of them.
            self.where = Namespaces(_schemas(context), every=True)
        schema = context.version_table_schema
        if schema and connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.commit()
        self.schemas_kept = {schema} if schema else set()

    def _step(
        self, connection: Connection, revision: Script, up: bool, trace: bool = False
    ) -> set[str] | None:
        """Run one step; returns the tables its SQL named (None: unknown, assume all)."""
        self.steps += 1
        self.watch.start()
        tracer = self.tracer if trace else None
        if tracer is not None:
            self.rows_before[revision.revision] = {t: len(r) for t, r in self.data.items()}
            tracer.start(revision.revision)
        try:
            try:  # the step too: a revision with no downgrade() fails building it
                self._run_env(
                    connection, lambda _rev, _ctx: [Step(self.script.revision_map, revision, up)]
                )
            finally:
                if tracer is not None:
                    tracer.stop()
        except MigrasafeError:
            raise  # env.py's setup, not the migration: an error, not a finding
        except BaseException as exc:  # the migration's own failure is a finding
            reraise_interrupts(exc)
            self.watch.active = False
            release(exc, collect=connection.dialect.name == "sqlite")
            if connection.in_transaction():
                connection.rollback()
            self._refresh(connection, None)
            raise StepFailed(exc) from exc
        return self._after_step(connection)

    def _after_step(self, connection: Connection, commit: bool = True) -> set[str] | None:
        """Read back what the step just run may have changed; the tables its SQL named.

        ``commit=False`` on env.py's own connection, inside its transaction.
        """
        if self.watch.ddl or not self.watch.statements:
            dropped: set[str] | None = None
            if self.watch.table_set or not self.watch.statements:
                inferred = self._created_and_dropped() if self.watch.statements else None
                if inferred is None:
                    now = table_names(connection, self.exclude, self.where)
                else:  # confirmed by _refresh's reading of the catalog
                    now, dropped = inferred
            else:  # an index, a column, a constraint: the same tables are there
                now = set(self.schema.tables)
            touched, changed = self.watch.tables(self.schema, now) or (None, None)
            self._refresh(connection, touched, now, commit=commit, rows=changed, dropped=dropped)
            if dropped is not None and self.schema.tables.keys() != now:
                # not as inferred ("Shelves" kept as written, named shelves): the names the
                # statements used, looked up again among the tables really there
                touched, _ = self.watch.tables(self.schema, set(self.schema.tables)) or (None, None)
        else:  # data only: the schema is as it was, only rows are read again
            now = set(self.schema.tables)
            touched, changed = self.watch.tables(self.schema, now) or (None, None)
            self.data.update(read_rows(connection, self.schema, only=changed, where=self.where))
            if commit:
                connection.commit()
        return touched

    def _refresh(
        self,
        connection: Connection,
        touched: set[str] | None,
        now: set[str] | None = None,
        commit: bool = True,
        rows: set[str] | None = None,
        dropped: set[str] | None = None,
    ) -> None:
        """Re-read the schema and rows of the tables that may have changed (``now``: all).

        ``rows``: the tables whose rows may have changed, when fewer than
        ``touched`` (an index was made); None: those ``touched``. ``dropped`` (not
        None): ``now`` was inferred from the step's statements (``CREATE TABLE a``,
        ``DROP TABLE b``): the catalog must show ``a`` (and not ``b``, where that
        costs no query of its own), else the tables are listed after all.
        """
        if now is None:
            now = table_names(connection, self.exclude, self.where)
        gone = self.schema.tables.keys() - now
        new = now - self.schema.tables.keys()
        reread = now if touched is None else (self.schema.with_children(touched) | new) & now
        # A table dropped by name is gone once its statement ran; one created is confirmed,
        # and so are those dropped when it costs no query of their own.
        confirm = dropped if dropped is not None and self.describes and reread else set()
        if dropped is not None and not self.describes and new:  # a query on names: no listing
            named = dialect_named(connection.dialect.name).catalog.tables_named(
                connection, [self.where.split(k) for k in new | dropped]
            )
            found = {self.where.key(*each) for each in named or ()}
            if named is None or found != new:
                self._refresh(connection, touched, None, commit, rows)  # not as inferred: list
                return
        fresh = read_schema(connection, self.exclude, only=reread | confirm, present=now | confirm,
                            where=self.where, known=self.known)  # fmt: skip
        inferred = dropped is not None and self.describes
        if inferred and (confirm & fresh.tables.keys() or new - fresh.tables.keys()):
            self._refresh(connection, touched, None, commit, rows)  # not as inferred: list
            return
        self.schema = self.schema.replace(fresh, gone)
        for table in gone:
            self.data.pop(table, None)
        if touched is not None and rows is not None:  # children: ON DELETE CASCADE, SET NULL
            reread = (self.schema.with_children(rows) | new | (reread - self.data.keys())) & now
        self.data.update(read_rows(connection, self.schema, only=reread, where=self.where))
        if commit:
            connection.commit()

    def _created_and_dropped(self) -> tuple[set[str], set[str]] | None:
        """The tables there after a step whose statements created and dropped tables by
        name only, and those it dropped; None: they must be listed.

        Only where the catalog confirms it (:meth:`_refresh`): in the query that
        describes them (PostgreSQL), or in one that looks the names up (SQLite);
        and for names in the default schema.
        """
        named = self.watch.created_dropped
        if named is None or not (self.describes or self.names_tables):
            return None
        created, dropped = ({name for owner, name in each if name not in self.exclude}
                            for each in named)  # fmt: skip
        if any(owner is not None for each in named for owner, _ in each):
            return None
        known = self.schema.tables.keys()
        if created & known or not dropped <= known:
            return None
        return (known - dropped) | created, dropped

    def _reseed(
        self,
        connection: Connection,
        dirty: set[str] | None,
        revision: Script,
        hints: dict[str, sa.Table] | None = None,
        rows: int | None = None,
        commit: bool = True,
    ) -> None:
        """Fresh rows in the tables a step may have changed (all of them the first time).

        A table is left as it is when its rows and what they must obey (columns,
        keys, constraints, unique indexes) are as they were when it was seeded:
        those rows are still rows the application could hold, and a revision
        that only adds an index costs no reseeding. ``commit=False`` on
        env.py's own connection, inside its transaction.
        """
        tables = None
        if dirty is not None:
            present = self.schema.tables.keys()
            stale = {t for t in dirty & present if rows is not None or hints or self._stale(t)}
            tables = self.schema.with_children(stale) & present
        declared = set(self.declared.before_revision_data.get(revision.revision, {}))
        if tables is not None and not tables and not declared:
            return
        if tables is None or tables:
            empty = {t for t in tables or () if self.data.get(t) == {}}  # read after the step
            report = self.seeder.fill(connection, self.exclude, only=tables, hints=hints,
                                      rows=rows, where=self.where, schema=self.schema,
                                      empty=empty)  # fmt: skip
            if commit:
                connection.commit()
            if rows is None:
                for table, count in report.refused.items():
                    # the most refused in one seeding: it is reseeded revision after revision
                    self.refused[table] = max(self.refused.get(table, 0), count)
                    self.refused_cause.setdefault(table, report.cause.get(table, "check"))
                    self.refused_at.setdefault(table, revision)
                    self.refused_why.setdefault(table, report.why.get(table, "?"))
        self._insert_declared(connection, revision, rows)
        # a declared row replaces a generated one: ON DELETE CASCADE / SET NULL reach its children
        known = self.schema.tables.keys()
        reread = None if tables is None else tables | (self.schema.with_children(declared) & known)
        self.data.update(read_rows(connection, self.schema, only=reread, where=self.where))
        if commit:
            connection.commit()
        seeded = self.schema.tables.keys() if reread is None else reread
        for table in seeded:  # as seeded: a later reseed of it can be skipped while it stays so
            if rows == 0:  # emptied, not seeded
                self.seeded.pop(table, None)
            else:
                self.seeded[table] = (_seed_shape(self.schema.tables[table]), self.data.get(table))

    def _heads(self, connection: Connection) -> set[str]:
        """The revisions the scratch database is at, read by env.py's context."""
        heads: set[str] = set()

        def current(rev: tuple[str, ...], _ctx: object) -> list[object]:
            heads.update(rev)
            return []

        self._run_env(connection, current)
        return heads

    def _rebuilt_at(self, connection: Connection, target: set[str]) -> str | None:
        """Empty the scratch database and upgrade it, with Alembic's plain upgrade and no
        generated rows, to the revisions ``target``; None, or why that failed."""
        dialect = dialect_named(connection.dialect.name)
        try:
            dialect.scratch.empty(connection, self.schemas_kept)
            connection.commit()
            for head in sorted(target):
                self._run_env(connection, self._upgrade_to(head))
        except BaseException as exc:
            reraise_interrupts(exc)
            release(exc, collect=connection.dialect.name == "sqlite")
            if connection.in_transaction():
                connection.rollback()
            self._refresh(connection, None)
            return describe_error(exc, self.url)
        self.seeded.clear()
        self._refresh(connection, None)
        return None

    def _upgrade_to(self, head: str) -> Callable[..., Any]:
        """Alembic's upgrade to ``head``, as a work function for env.py."""
        return lambda rev, _ctx: self.script._upgrade_revs(head, rev)

    def _stale(self, table: str) -> bool:
        """Whether ``table`` changed since it was seeded (its shape, or its rows)."""
        seeded = self.seeded.get(table)
        return seeded is None or seeded != (
            _seed_shape(self.schema.tables[table]),
            self.data.get(table),
        )

    def _insert_declared(self, connection: Connection, revision: Script, rows: int | None) -> None:
        """The rows the project declared for this revision (before_revision_data)."""
        declared = self.declared.before_revision_data.get(revision.revision)
        if not declared or rows == 0:
            return
        for table, values in declared.items():
            schema, name = table.rpartition(".")[0] or None, table.rpartition(".")[2]
            try:
                reflected = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=connection)
            except sa_exc.NoSuchTableError as exc:
                raise ConfigError(
                    f"rows are declared for table {table} before revision {revision.revision} "
                    "(before_revision_data), but there is no such table at that point: "
                    "declare them for a revision after the one that creates it"
                ) from exc
            key = [c.name for c in reflected.primary_key.columns]
            try:
                with connection.begin_nested():
                    for row in values:  # a declared row takes the place of a generated one
                        if key and all(c in row for c in key):
                            connection.execute(reflected.delete().where(
                                sa.and_(*(reflected.c[c] == row[c] for c in key))))  # fmt: skip
                    connection.execute(reflected.insert(), values)
            except sa_exc.DBAPIError as exc:
                raise ConfigError(
                    f"the rows declared for {table} before {revision.revision} "
                    f"(before_revision_data) cannot be inserted: {describe_error(exc, self.url)}; "
                    "give them values the schema accepts at that revision"
                ) from exc
        connection.commit()

    def _reflect(self, connection: Connection) -> dict[str, sa.Table]:
        """Every table as it stands now, by key: the schema a revision leaves (for hints)."""
        metadata = reflect(connection, self.exclude, set(self.schema.tables), self.where)
        connection.commit()
        return {self.where.key(t.schema, t.name): t for t in metadata.tables.values()}

    def _finding(self, rule: str, revision: Script, message: str, table: str | None = None,
                 column: str | None = None, severity: Severity = "error") -> None:  # fmt: skip
        self.findings.append(
            Finding(rule=rule, severity=severity, revision=revision.revision,
                    path=str(revision.path), message=message, table=table, column=column)
        )  # fmt: skip

    def _failed(self, revision: Script, up: bool, cause: BaseException, when: str = "",
                again: bool = False) -> None:  # fmt: skip
        """A step that raised: ``again``, the upgrade after the downgrade (``reupgrade-failed``)."""
        rule = ("reupgrade-failed" if again else "upgrade-failed") if up else "downgrade-failed"
        verb = "upgrade to" if up else "downgrade from"
        self._finding(rule, revision, f"{verb} {revision.revision} failed{when}: "
                      f"{describe_error(cause, self.url)}")  # fmt: skip

    def _covered(
        self, rev: str, coverage: str, before: dict[str, Rows], touched: set[str] | None
    ) -> None:
        """Checked "with data" only if every table the revision touched (all, when unknown)
        that was there before it held rows: a table whose generated rows were all refused
        was checked for its schema only."""
        if coverage == "data":
            tables = before.keys() if touched is None else touched & before.keys()
            empty = sorted(t for t in tables if not before[t])
            if not empty:
                self.with_data.append(rev)
                return
            shown = ", ".join(empty[:3]) + (" ..." if len(empty) > 3 else "")
            coverage = f"{shown}: no rows (the generated rows were refused)"
        self.schema_only[rev] = coverage

    def _compare_schema(
        self, revision: Script, expected: Schema, found: Schema, rule: str, when: str
    ) -> None:
        for table, differences in expected.differences(found).items():
            self.leftovers = True
            self._finding(rule, revision, f"table {table} {when}: " + "; ".join(differences),
                          table=table)  # fmt: skip

    def _checkpoint(self) -> tuple[Any, ...]:
        """What a window changes in the verifier, to go back to when its run is undone."""
        return (self.schema, dict(self.data), self.steps, len(self.findings),
                list(self.with_data), dict(self.schema_only), dict(self.refused),
                dict(self.refused_at), dict(self.refused_why), dict(self.refused_cause),
                self.leftovers,
                self.seeder.rng.getstate(), self.seeder.serial, dict(self.seeded))  # fmt: skip

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (self.schema, self.data, self.steps, findings, self.with_data, self.schema_only,
         self.refused, self.refused_at, self.refused_why, self.refused_cause, self.leftovers, rng,
         self.seeder.serial, self.seeded) = saved  # fmt: skip
        del self.findings[findings:]
        self.seeder.rng.setstate(rng)


def _schemas(context: MigrationContext) -> set[str]:
    """The schemas env.py's project uses: its version table's, and its models' tables'."""
    found = {context.version_table_schema} if context.version_table_schema else set()
    metadata = context.opts.get("target_metadata")
    for each in metadata if isinstance(metadata, list | tuple) else [metadata]:
        if each is not None:
            found |= {t.schema for t in each.tables.values() if t.schema}
    return found


def _seed_shape(table: TableSchema) -> tuple[Any, ...]:
    """What generated rows must obey in a table: all of it but its plain indexes."""
    unique = frozenset(index for index in table.indexes if index[2])
    return (table.columns, table.primary_key, table.uniques, table.foreign_keys, table.checks,
            unique)  # fmt: skip


def release(failure: BaseException, collect: bool = True) -> None:
    """Let go of what a failed step's frames hold. A cursor the step left open keeps its
    SQLite connection alive after env.py closed it (a "zombie" holding its lock), and the
    walk's next write would then find the database locked. The frames stay, for where the
    error was raised; their local variables go."""
    seen: set[int] = set()
    while failure is not None and id(failure) not in seen:
        seen.add(id(failure))
        traceback.clear_frames(failure.__traceback__)
        failure = failure.__cause__ or failure.__context__  # type: ignore[assignment]
    if collect:
        gc.collect()


def either_touched(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    """The tables two steps touched together (None, "all of them", wins)."""
    return None if a is None or b is None else a | b
