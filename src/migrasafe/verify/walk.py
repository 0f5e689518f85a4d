"""The walk: every revision, base to heads, up, down and up again on the scratch database.

For each revision R: every table holds generated rows, R is applied,
reverted and applied again, and after each step the schema and rows are read
back and compared. Each revision costs three migration steps, and a step
re-reads only what its SQL touched (:mod:`.sqlwatch`), so the work grows
linearly with the history. Up to WINDOW revisions share one run of
``env.py`` (its connection, its transaction), read back on its connection
between steps; a failure there sends the walk back to take the failing
revision on its own.

A failing upgrade does not end the walk. When it failed on the generated
rows, R is retried on empty tables; if that passes, the rows are generated
again shaped by the schema R leaves (the enum a column is cast to, the NOT
NULL it gains) and the round trip runs with data; if even those are refused,
R is checked on empty tables and reported (``data-not-checked``). Only a
revision that fails on empty tables stops its descendants, and the report's
coverage says which revisions were checked with data, which without, and
which not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any, Literal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ..config import CHECKSUM_TABLE, Project
from ..database import describe_error, redact, support_class
from ..errors import MigrasafeError
from ..findings import Finding
from ..graph import apply_order
from ..lint import lint
from ..locktrace import LockTracer, compare_with_lint
from ..runtime import run_env
from .compare import data_differences
from .declarations import Declarations
from .drift import describe_diff
from .report import Coverage, Progress, VerifyReport
from .seed import Seeder, reflect
from .snapshot import (
    Namespaces,
    Rows,
    Schema,
    TableSchema,
    read_rows,
    read_schema,
    table_names,
)
from .sqlwatch import SqlWatch

Severity = Literal["error", "warning", "info"]
# Revisions that share one run of env.py (one transaction); a failure walks them again.
WINDOW = 50


class _StepFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Verifier:
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
        self.declared = declarations or Declarations()
        self.findings: list[Finding] = []
        self.steps = 0
        self.refused: dict[str, int] = {}
        self.refused_at: dict[str, Script] = {}  # the first revision before which rows were refused
        self.refused_why: dict[str, str] = {}
        self.models_note: str | None = None
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
        self.leftovers = False  # a step failed or left the schema changed: drift needs a clean run
        self.transactional = True
        self.batch = False
        self.per_migration = False
        self.seeder = Seeder(rows, seed)

    # -- running one migration step --------------------------------------------
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
        self.transactional = support_class(connection.dialect.name).ddl_is_transactional
        # One env.py run per revision (its three steps) where DDL is transactional: a failure
        # undoes the failed step (all three, without transaction_per_migration).
        # Each step commits on its own with transaction_per_migration, and wherever Alembic
        # assumes DDL is not transactional (SQLite): then only the failed step is undone.
        self.per_migration = bool(context.opts.get("transaction_per_migration")) or not (
            context.impl.transactional_ddl
        )
        self.batch = self.transactional and not self.trace_locks
        if connection.dialect.name == "postgresql":  # SQLite and MySQL: one schema, one database
            # Every schema of the scratch database: the migrations made each of them.
            self.where = Namespaces(_schemas(context), every=True)
        schema = context.version_table_schema
        if schema and connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            connection.commit()

    def _step(
        self, connection: Connection, revision: Script, up: bool, trace: bool = False
    ) -> set[str] | None:
        """Run one step; returns the tables its SQL named (None: unknown, assume all)."""
        self.steps += 1
        make = MigrationStep.upgrade_from_script if up else MigrationStep.downgrade_from_script
        step = make(self.script.revision_map, revision)
        self.watch.start()
        tracer = self.tracer if trace else None
        if tracer is not None:
            self.rows_before[revision.revision] = {t: len(r) for t, r in self.data.items()}
            tracer.start(revision.revision)
        try:
            try:
                self._run_env(connection, lambda _rev, _ctx: [step])
            finally:
                if tracer is not None:
                    tracer.stop()
        except MigrasafeError:
            raise  # env.py's setup, not the migration: an error, not a finding
        except (Exception, SystemExit) as exc:  # the migration's own failure is a finding
            self.watch.active = False
            if connection.in_transaction():
                connection.rollback()
            self._refresh(connection, None)
            raise _StepFailed(exc) from exc
        return self._after_step(connection)

    def _after_step(self, connection: Connection, commit: bool = True) -> set[str] | None:
        """Read back what the step just run may have changed; the tables its SQL named.

        ``commit=False`` on env.py's own connection, inside its transaction.
        """
        if self.watch.ddl or not self.watch.statements:
            if self.watch.table_set or not self.watch.statements:
                now = table_names(connection, self.exclude, self.where)
            else:  # an index, a column, a constraint: the same tables are there
                now = set(self.schema.tables)
            touched = self.watch.tables(self.schema, now)
            self._refresh(connection, touched, now, commit=commit)
        else:  # data only: the schema is as it was, only rows are read again
            touched = self.watch.tables(self.schema, set(self.schema.tables))
            self.data.update(read_rows(connection, self.schema, only=touched, where=self.where))
            if commit:
                connection.commit()
        return touched

    def _refresh(
        self,
        connection: Connection,
        touched: set[str] | None,
        now: set[str] | None = None,
        commit: bool = True,
    ) -> None:
        """Re-read the schema and rows of the tables that may have changed (``now``: all)."""
        if now is None:
            now = table_names(connection, self.exclude, self.where)
        gone = self.schema.tables.keys() - now
        if touched is None:
            reread = now
        else:
            reread = (self.schema.with_children(touched) | (now - self.schema.tables.keys())) & now
        fresh = read_schema(connection, self.exclude, only=reread, present=now, where=self.where,
                            known=self.known)  # fmt: skip
        self.schema = self.schema.replace(fresh, gone)
        if gone:
            self.data = {k: v for k, v in self.data.items() if k not in gone}
        self.data.update(read_rows(connection, self.schema, only=reread, where=self.where))
        if commit:
            connection.commit()

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

        ``commit=False`` on env.py's own connection, inside its transaction.
        """
        tables = None
        if dirty is not None:
            tables = self.schema.with_children(dirty) & self.schema.tables.keys()
            if not tables:
                return
        report = self.seeder.fill(connection, self.exclude, only=tables, hints=hints, rows=rows,
                                  where=self.where, schema=self.schema)  # fmt: skip
        if commit:
            connection.commit()
        if rows is None:
            for table, count in report.refused.items():
                self.refused[table] = self.refused.get(table, 0) + count
                self.refused_at.setdefault(table, revision)
                self.refused_why.setdefault(table, report.why.get(table, "?"))
        self._insert_declared(connection, revision, rows)
        self.data.update(read_rows(connection, self.schema, only=tables, where=self.where))
        if commit:
            connection.commit()

    def _insert_declared(self, connection: Connection, revision: Script, rows: int | None) -> None:
        """The rows the project declared for this revision (before_revision_data)."""
        declared = self.declared.before_revision_data.get(revision.revision)
        if not declared or rows == 0:
            return
        for table, values in declared.items():
            schema, name = table.rpartition(".")[0] or None, table.rpartition(".")[2]
            reflected = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=connection)
            connection.execute(reflected.insert(), values)
        connection.commit()

    def _finding(self, rule: str, revision: Script, message: str, table: str | None = None,
                 column: str | None = None, severity: Severity = "error") -> None:  # fmt: skip
        self.findings.append(
            Finding(rule=rule, severity=severity, revision=revision.revision,
                    path=str(revision.path), message=message, table=table, column=column)
        )  # fmt: skip

    # -- the walk --------------------------------------------------------------------
    def run(self) -> VerifyReport:
        order = apply_order(self.script)
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection, self.watch.watching(), ExitStack() as stack:
                if self.trace_locks:
                    self.tracer = LockTracer(ours=connection)
                    stack.enter_context(self.tracer.tracing())
                self._learn_env(connection)
                self._refresh(connection, None)
                self._walk(connection, order)
                if not self.not_checked and not self.stuck and not self.leftovers:
                    self._model_drift(connection, order)
        finally:
            engine.dispose()
        self._report_gaps()
        trace = self._lock_findings() if self.tracer is not None else None
        return VerifyReport(
            findings=tuple(self.findings), revisions=len(order), steps=self.steps,
            database=redact(self.url), rows=self.rows, seed=self.seed,
            coverage=Coverage(tuple(self.with_data), self.schema_only, self.not_checked,
                              self.upgrade_only),
            refused_rows=self.refused, models_not_compared=self.models_note, lock_trace=trace,
        )  # fmt: skip

    def _walk(self, connection: Connection, order: list[Script]) -> None:
        """Every revision in order: as many as can share one run of env.py together
        (:meth:`_window`); the others, and one that failed there, step by step."""
        dirty: set[str] | None = None
        index = 0
        while index < len(order):
            end = index
            while end < len(order) and end - index < WINDOW and self._windowable(order[end]):
                if self._blocked(order[end]):
                    break
                end += 1
            if end > index:
                done, reached, kept = self._window(connection, order[index:end], dirty, index,
                                                   len(order))  # fmt: skip
                if not kept and done > 1:  # undone: those before the failing one, again
                    done, reached, kept = self._window(connection, order[index:index + done],
                                                       dirty, index, len(order))  # fmt: skip
                if kept and done:
                    index, dirty = index + done, reached
                    continue
            revision = order[index]
            index += 1
            if self.progress:
                self.progress(index, len(order), revision.revision)
            blocked = self._blocked(revision)
            if blocked:
                self.not_checked[revision.revision] = f"its parent {blocked} could not be applied"
                continue
            self._reseed(connection, dirty, revision)
            dirty = self._round_trip(connection, revision)

    def _blocked(self, revision: Script) -> str | None:
        """A parent of ``revision`` left unapplied: it cannot be reached."""
        for parent in revision._all_down_revisions:
            if parent in self.not_checked or parent in self.stuck:
                return parent
        return None

    def _report_gaps(self) -> None:
        heads = self.script.get_heads()
        if len(heads) > 1:
            for head in heads:
                self._finding(
                    "multiple-heads", self.script.get_revision(head),
                    f"{len(heads)} heads ({', '.join(heads)}): deployments running "
                    "`upgrade head` fail; merge them with `alembic merge`",
                )  # fmt: skip
        for table, revision in self.refused_at.items():
            self._finding(
                "data-not-checked", revision,
                f"the database refused {self.refused[table]} generated row(s) for {table} "
                f"({self.refused_why.get(table, '?')}): its data was not fully checked from this "
                "revision on, only its schema; declare rows for it (before_revision_data) if "
                "the constraint is yours", table=table, severity="warning",
            )  # fmt: skip

    def _lock_findings(self) -> tuple[dict[str, object], ...]:
        """Findings from what the server reported, held against lint's guesses for the same."""
        assert self.tracer is not None
        entries = [
            e for e in self.tracer.entries
            if self.rows_before.get(e.revision, {}).get(e.table, 0) > 0  # new or empty: harmless
        ]  # fmt: skip
        for e in entries:
            revision = self.script.get_revision(e.revision)
            rows = self.rows_before[e.revision][e.table]
            lock = e.to_dict()["lock"]
            if e.rewritten:
                self._finding(
                    "table-rewrite", revision,
                    f"{e.statement!r} rewrote table {e.table} ({rows} rows) under {lock}: the "
                    "table is locked for as long as copying it takes; on a large table add a new "
                    "column and backfill it instead", table=e.table, severity="warning",
                )  # fmt: skip
            if e.blocking and e.lock_timeout in ("0", "unknown"):
                self._finding(
                    "lock-without-timeout", revision,
                    f"{e.statement!r} took {lock} on {e.table} ({rows} rows) with no "
                    f"lock_timeout: behind any open transaction on {e.table} it waits, and every "
                    f"query on {e.table} queues behind it; deploy with --db-lock-timeout and "
                    "--retries", table=e.table, severity="warning",
                )  # fmt: skip
        lint_tables: dict[tuple[str, str], list[str]] = {}
        for f in lint(self.project, dialect="postgresql").findings:
            if f.revision and f.table:
                lint_tables.setdefault((f.revision, f.table.split(".")[0]), []).append(f.rule)
        out: list[dict[str, object]] = []
        for entry, revision_id, table, verdict in compare_with_lint(entries, lint_tables):
            rules = lint_tables.get((revision_id, table), [])
            row: dict[str, object] = {
                "revision": revision_id, "table": table, "lint": verdict, "lint_rules": rules,
            }  # fmt: skip
            if entry is not None:
                row.update(entry.to_dict())
                row["rows"] = self.rows_before[revision_id][table]
            out.append(row)
        return tuple(out)

    # -- one revision --------------------------------------------------------------
    def _attempt(
        self, connection: Connection, revision: Script, up: bool, trace: bool = False
    ) -> tuple[set[str] | None, BaseException | None]:
        """One step: (the tables it may have changed, None) or (None, why it failed)."""
        try:
            return self._step(connection, revision, up=up, trace=trace), None
        except _StepFailed as exc:
            self.leftovers = True
            return None, exc.cause

    def _failed(self, revision: Script, up: bool, cause: BaseException, when: str = "") -> None:
        rule = "upgrade-failed" if up else "downgrade-failed"
        verb = "upgrade to" if up else "downgrade from"
        self._finding(rule, revision, f"{verb} {revision.revision} failed{when}: "
                      f"{describe_error(cause, self.url)}")  # fmt: skip

    def _round_trip(self, connection: Connection, revision: Script) -> set[str] | None:
        """Up, down, up again, step by step (a run of env.py each); returns the tables whose
        rows may have changed (None: all)."""
        schema_before, data_before = self.schema, dict(self.data)
        touched, failure = self._attempt(connection, revision, True, trace=True)
        if failure is not None:
            return self._without_data(connection, revision, failure)
        coverage = "data" if self.rows else "--rows 0: no generated rows"
        return self._reverse(connection, revision, schema_before, data_before, touched, coverage)

    def _part_committed(
        self,
        connection: Connection,
        revision: Script,
        failure: BaseException,
        states: list[tuple[Schema, dict[str, Rows]]],
        touched: list[set[str] | None],
        coverage: str,
    ) -> None:
        """A round trip whose later step failed after the earlier ones committed."""
        self._refresh(connection, None)  # each step committed: read where it stands
        if len(touched) == 1:  # applied, and its downgrade failed
            self._down_failed(revision, failure, coverage)
            return
        (before, data_before), _, (back, data_back) = states[:3]
        self._compare_round_trip(revision, before, data_before, back, data_back)
        self._failed(revision, True, failure, " the second time")
        self._covered(revision.revision, coverage)
        self.stuck.add(revision.revision)

    def _three_steps(
        self,
        connection: Connection,
        revision: Script,
        states: list[tuple[Schema, dict[str, Rows]]],
        touched: list[set[str] | None],
    ) -> Iterator[MigrationStep]:
        """Up, down, up as Alembic steps, each read back on env.py's ``connection``."""
        for up in (True, False, True):
            make = MigrationStep.upgrade_from_script if up else MigrationStep.downgrade_from_script
            self.steps += 1
            self.watch.start()
            yield make(self.script.revision_map, revision)
            touched.append(self._after_step(connection, commit=False))
            states.append((self.schema, dict(self.data)))

    def _judge(
        self,
        revision: Script,
        states: list[tuple[Schema, dict[str, Rows]]],
        touched: list[set[str] | None],
        coverage: str,
    ) -> set[str] | None:
        """The findings of a round trip whose three steps passed; the tables they touched."""
        (before, data_before), (after, _), (back, data_back), _ = states
        self._compare_round_trip(revision, before, data_before, back, data_back)
        when = "after upgrade, downgrade, upgrade, compared with the first upgrade"
        self._compare_schema(revision, after, self.schema, "reapply-differs", when)
        self._covered(revision.revision, coverage)
        result: set[str] | None = set()
        for each in touched:
            result = _union(result, each)
        return result

    # -- several revisions in one run of env.py ----------------------------------------
    def _windowable(self, revision: Script) -> bool:
        """Whether ``revision`` can share a run of env.py with others (see :meth:`_window`).

        Only where a failed step is undone (transactional DDL); declared
        revisions take their own path.
        """
        rev = revision.revision
        return (self.batch and rev not in self.declared.irreversible
                and rev not in self.declared.before_revision_data)  # fmt: skip

    def _window(
        self, connection: Connection, window: list[Script], dirty: set[str] | None, offset: int,
        total: int,
    ) -> tuple[int, set[str] | None, bool]:  # fmt: skip
        """Reseed and round-trip each revision of ``window`` in one run of env.py.

        Returns how many revisions were done, the tables to reseed next, and
        whether they stay done. One run instead of one per revision saves a
        connection, the version table's checks and, on SQLite, a read of the
        whole schema. When a step fails:

        - in one transaction, everything is undone and the verifier is as it
          was: the caller runs the revisions that passed again as a window,
          then the failing one on its own, which reports its failure;
        - with a transaction per step, the revisions that passed stay; a
          failing revision whose first step failed is left to the caller,
          one whose later step failed is judged here, as it stands.
        """
        saved = self._checkpoint()
        passed: list[set[str] | None] = []
        current: list[Any] = []  # the revision under way: its checkpoint, states, touched
        coverage = "data" if self.rows else "--rows 0: no generated rows"

        def steps(_heads: object, context: MigrationContext) -> Iterator[MigrationStep]:
            assert context.connection is not None
            nonlocal dirty
            for index, revision in enumerate(window):
                if self.progress:
                    self.progress(offset + index + 1, total, revision.revision)
                states: list[tuple[Schema, dict[str, Rows]]] = []
                touched: list[set[str] | None] = []
                current[:] = [self._checkpoint(), states, touched]
                self._reseed(context.connection, dirty, revision, commit=False)
                states.append((self.schema, dict(self.data)))
                yield from self._three_steps(context.connection, revision, states, touched)
                dirty = self._judge(revision, states, touched, coverage)
                passed.append(dirty)

        try:
            self._run_env(connection, steps)
        except MigrasafeError:
            self._restore(saved)
            raise
        except (Exception, SystemExit) as failure:
            self.watch.active = False
            if connection.in_transaction():
                connection.rollback()
            if not self.per_migration:
                self._restore(saved)
                return min(len(passed), len(window) - 1), None, False
            checkpoint, states, touched = current
            self.leftovers = True
            if not touched:  # its first step failed: the caller walks it on its own
                self._restore(checkpoint)
                self._refresh(connection, None)
                return len(passed), None, True
            self._part_committed(connection, window[len(passed)], failure, states, touched,
                                 coverage)  # fmt: skip
            return len(passed) + 1, None, True
        return len(window), dirty, True

    def _checkpoint(self) -> tuple[Any, ...]:
        """What a window changes in the verifier, to go back to when its run is undone."""
        return (self.schema, dict(self.data), self.steps, len(self.findings),
                list(self.with_data), dict(self.schema_only), dict(self.refused),
                dict(self.refused_at), dict(self.refused_why), self.leftovers,
                self.seeder.rng.getstate(), self.seeder.serial)  # fmt: skip

    def _restore(self, saved: tuple[Any, ...]) -> None:
        (self.schema, self.data, self.steps, findings, self.with_data, self.schema_only,
         self.refused, self.refused_at, self.refused_why, self.leftovers, rng,
         self.seeder.serial) = saved  # fmt: skip
        del self.findings[findings:]
        self.seeder.rng.setstate(rng)

    def _reverse(
        self,
        connection: Connection,
        revision: Script,
        schema_before: Schema,
        data_before: dict[str, Rows],
        touched: set[str] | None,
        coverage: str,
    ) -> set[str] | None:
        """From R applied: down, compare with before, up again, compare with the first up."""
        rev = revision.revision
        schema_after = self.schema
        if rev in self.declared.irreversible:
            self._irreversible(revision, "declared irreversible ([tool.migrasafe.verify])",
                               "declared irreversible: only its upgrade ran")  # fmt: skip
            return touched
        touched_down, failure = self._attempt(connection, revision, False)
        if failure is not None:
            self._down_failed(revision, failure, coverage)
            return None  # the database is still at R: its descendants can be checked
        self._compare_round_trip(revision, schema_before, data_before, self.schema, self.data)
        touched_again, failure = self._attempt(connection, revision, True)
        if failure is not None:
            self._failed(revision, True, failure, " the second time")
            self._covered(rev, coverage)
            self.stuck.add(rev)  # back at its parent: the descendants cannot be reached
            return None
        when = "after upgrade, downgrade, upgrade, compared with the first upgrade"
        self._compare_schema(revision, schema_after, self.schema, "reapply-differs", when)
        self._covered(rev, coverage)
        return _union(touched, _union(touched_down, touched_again))

    def _down_failed(self, revision: Script, failure: BaseException, coverage: str) -> None:
        if isinstance(failure, NotImplementedError):
            self._irreversible(revision, "its downgrade raises NotImplementedError",
                               "its downgrade raises NotImplementedError")  # fmt: skip
        else:
            self._failed(revision, False, failure)
            self._covered(revision.revision, coverage)

    def _compare_round_trip(
        self, revision: Script, before: Schema, data_before: dict[str, Rows],
        back: Schema, data_back: dict[str, Rows],
    ) -> None:  # fmt: skip
        """After the downgrade against before the upgrade: the schema, then the rows."""
        self._compare_schema(revision, before, back, "schema-not-restored",
                             "after the downgrade, compared with before the upgrade")  # fmt: skip
        for rule, table, column, message in data_differences(before, data_before, data_back, back):
            self._finding(rule, revision, message, table=table, column=column)

    def _irreversible(self, revision: Script, why: str, coverage: str) -> None:
        self._finding("irreversible", revision,
                      f"{revision.revision}: {why}, so its round trip was not checked; verify "
                      "goes on from it", severity="info")  # fmt: skip
        self.upgrade_only[revision.revision] = coverage

    def _covered(self, rev: str, coverage: str) -> None:
        if coverage == "data":
            self.with_data.append(rev)
        else:
            self.schema_only[rev] = coverage

    def _without_data(
        self, connection: Connection, revision: Script, failure: BaseException
    ) -> set[str] | None:
        """The upgrade failed with generated rows: is it the rows, or the revision?"""
        rev = revision.revision
        if not self.transactional or not any(self.data.values()):
            self._failed(revision, True, failure)
            self.not_checked[rev] = "its upgrade failed" + (
                "" if self.transactional else " (DDL is not transactional here: no retry)"
            )
            return None
        self._reseed(connection, None, revision, rows=0)
        schema_before = self.schema
        touched, again = self._attempt(connection, revision, True)
        if again is not None:
            self._failed(revision, True, failure, " (and on empty tables too)")
            self.not_checked[rev] = "its upgrade failed, even on empty tables"
            return None
        # R passes on empty tables: learn the schema it leaves, shape the rows to it, retry.
        hints = self._reflect(connection)
        _, down_failure = self._attempt(connection, revision, False)
        if down_failure is not None:
            return self._reverse(connection, revision, schema_before, dict(self.data), touched,
                                 "its upgrade refused the generated rows")  # fmt: skip
        self._reseed(connection, None, revision, hints=hints)
        schema_before, data_before = self.schema, dict(self.data)
        touched, refused = self._attempt(connection, revision, True, trace=True)
        if refused is None:
            return self._reverse(connection, revision, schema_before, data_before, touched, "data")
        self._finding(
            "data-not-checked", revision,
            f"the upgrade of {rev} fails on generated rows ({describe_error(refused, self.url)}), "
            "even on rows shaped by the schema it leaves, and passes on empty tables: only its "
            "schema was checked. Make sure the rows production holds can take it, or declare "
            "rows for it (before_revision_data)", severity="warning",
        )  # fmt: skip
        self._reseed(connection, None, revision, rows=0)
        schema_before = self.schema
        touched, _ = self._attempt(connection, revision, True)
        return self._reverse(connection, revision, schema_before, dict(self.data), touched,
                             "its upgrade refused the generated rows")  # fmt: skip

    def _reflect(self, connection: Connection) -> dict[str, sa.Table]:
        """Every table as it stands now, by key: the schema a revision leaves (for hints)."""
        metadata = reflect(connection, self.exclude, set(self.schema.tables), self.where)
        connection.commit()
        return {self.where.key(t.schema, t.name): t for t in metadata.tables.values()}

    def _compare_schema(
        self, revision: Script, expected: Schema, found: Schema, rule: str, when: str
    ) -> None:
        for table, differences in expected.differences(found).items():
            self.leftovers = True
            self._finding(rule, revision, f"table {table} {when}: " + "; ".join(differences),
                          table=table)  # fmt: skip

    def _model_drift(self, connection: Connection, order: list[Script]) -> None:
        """At head: do the models (``target_metadata``) match what the migrations built?"""
        if not order:
            self.models_note = "the project has no revision"
            return
        self.drift_findings(model_diffs(lambda fn: self._run_env(connection, fn), self), order)

    def drift_findings(self, diffs: list[Any], order: list[Script]) -> list[Finding]:
        """A model-drift finding per difference, on the last revision."""
        added = []
        for diff in diffs:
            table, message = describe_diff(diff)
            self._finding("model-drift", order[-1], f"models and migrations disagree: {message}; "
                          "write a revision for it (migrasafe revision --autogenerate)",
                          table=table)  # fmt: skip
            added.append(self.findings[-1])
        return added


def model_diffs(run: Callable[[Callable[..., list[Any]]], object], verifier: Verifier) -> list[Any]:
    """Autogenerate's comparison of ``target_metadata`` with the database env.py connects to."""
    diffs: list[Any] = []

    def compare(_rev: object, context: MigrationContext) -> list[Any]:
        metadata = context.opts.get("target_metadata")
        if metadata is None:
            verifier.models_note = "env.py passes no target_metadata to context.configure()"
        else:
            diffs.extend(compare_metadata(context, metadata))
        return []

    run(compare)
    return diffs


def _schemas(context: MigrationContext) -> set[str]:
    """The schemas env.py's project uses: its version table's, and its models' tables'."""
    found = {context.version_table_schema} if context.version_table_schema else set()
    metadata = context.opts.get("target_metadata")
    for each in metadata if isinstance(metadata, list | tuple) else [metadata]:
        if each is not None:
            found |= {t.schema for t in each.tables.values() if t.schema}
    return found


def _union(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    return None if a is None or b is None else a | b
