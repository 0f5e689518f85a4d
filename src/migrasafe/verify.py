"""``verify``: prove that every migration reverses without losing schema or data.

On a scratch database (never the user's), the revision graph is walked once,
base to heads, in apply order. For each revision R: every table holds
generated rows, R is applied, reverted and applied again, and after each step
the schema and rows are read back by reflection and compared. Each revision
costs three migration steps, so the work grows linearly with the history.

Reading every table after every step would make the work grow with the
square of the history, so the SQL each step sends is watched and only the
tables it names (and their foreign-key children) are re-read and reseeded;
the others are known not to have changed. When nothing can be watched (an
``env.py`` that bypasses SQLAlchemy), every table is re-read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import Script, ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from .config import CHECKSUM_TABLE, Project
from .database import describe_error, parse_url, redact, support_class, support_for
from .errors import ConfigError, MigrasafeError
from .findings import Finding
from .graph import apply_order
from .lint import lint
from .locktrace import LockTracer, compare_with_lint
from .runtime import discover_url, redirected_connections, run_env
from .seed import Seeder
from .snapshot import Rows, Schema, read_rows, read_schema, table_names

Progress = Callable[[int, int, str], None]
_EXAMPLES = 3


@dataclass(frozen=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    revisions: int
    checked: int
    steps: int
    database: str
    rows: int
    seed: int
    refused_rows: dict[str, int] = field(default_factory=dict)
    models_not_compared: str | None = None  # why the models were not compared, if they were not
    lock_trace: tuple[dict[str, object], ...] | None = None  # with --trace-locks (PostgreSQL)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def complete(self) -> bool:
        """Every revision was round-tripped (none was skipped behind a failing one)."""
        return self.checked == self.revisions

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "revisions": self.revisions,
            "checked": self.checked,
            "steps": self.steps,
            "database": self.database,
            "rows": self.rows,
            "seed": self.seed,
            "refused_rows": self.refused_rows,
            "complete": self.complete,
            "models_not_compared": self.models_not_compared,
            "lock_trace": list(self.lock_trace) if self.lock_trace is not None else None,
        }


def verify(
    project: Project,
    *,
    url: str | None = None,
    rows: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
    trace_locks: bool = False,
) -> VerifyReport:
    """Round-trip every revision on a scratch database created next to the project's.

    The scratch database is created on the server ``url`` names, else the
    project's (``--url``/``$MIGRASAFE_URL``, else the URL ``env.py`` would
    connect to, learned without connecting); a SQLite project gets a
    temporary file. The database a URL names is never written to: while
    ``verify`` runs, every connection is redirected to the scratch database,
    whatever ``env.py`` connects to.
    """
    script = project.script
    given = url or project.url
    server = parse_url(given) if given else discover_url(project)
    if trace_locks and server.get_backend_name() != "postgresql":
        raise ConfigError(
            f"--trace-locks reads PostgreSQL's pg_locks; the scratch database would be "
            f"{server.get_backend_name()}: pass a PostgreSQL server with --url"
        )
    with support_for(server).scratch() as scratch_url:
        scratch = sa.make_url(scratch_url)
        with _pointed_at(project, server, scratch), redirected_connections(scratch), \
                support_class("sqlite").transactional_ddl():  # fmt: skip
            verifier = _Verifier(project, script, scratch_url, rows, seed, progress)
            verifier.trace_locks = trace_locks
            return verifier.run()


@contextmanager
def _pointed_at(project: Project, server: URL, scratch: URL) -> Iterator[None]:
    """``sqlalchemy.url`` names the scratch database, with the driver ``env.py`` expects.

    An ``env.py`` that reads the config then connects there directly; one that
    does not is redirected anyway (:func:`redirected_connections`).
    """
    config = project.config
    configured = project.configured_url
    driver = scratch.drivername
    if configured:
        mine = sa.make_url(configured)
        if mine.get_backend_name() == scratch.get_backend_name():
            driver = mine.drivername
    elif server.get_backend_name() == scratch.get_backend_name():
        driver = server.drivername
    saved = dict(config.attributes)
    old = config.get_main_option("sqlalchemy.url")
    url = scratch.set(drivername=driver).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False  # migrasafe's template: no logging setup per step
    try:
        yield
    finally:
        config.attributes.clear()
        config.attributes.update(saved)
        if old is None:
            config.remove_main_option("sqlalchemy.url")
        else:
            config.set_main_option("sqlalchemy.url", old.replace("%", "%%"))


_IDENTIFIER = re.compile(r"[A-Za-z_][\w$]*")


class _SqlWatch:
    """Collects the words of every statement sent while a step runs."""

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.statements = 0
        self.active = False

    def __call__(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if self.active:
            self.statements += 1
            self.words.update(word.lower() for word in _IDENTIFIER.findall(statement))

    @contextmanager
    def watching(self) -> Iterator[None]:
        event.listen(Engine, "before_cursor_execute", self)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self)

    def start(self) -> None:
        self.words, self.statements, self.active = set(), 0, True

    def tables(self, schema: Schema, now: set[str]) -> set[str] | None:
        """The tables the statements named, directly or by one of their indexes or constraints.

        None when nothing was seen (then every table is re-read). ``DROP INDEX
        ix`` names no table, hence the index and constraint names.
        """
        self.active = False
        if not self.statements:
            return None
        owners = {name: {name} for name in now}
        for table, name in schema.named_objects():
            owners.setdefault(name, set()).add(table)
        found: set[str] = set()
        for name, tables in owners.items():
            if name.lower() in self.words or not _IDENTIFIER.fullmatch(name):
                found |= tables
        return found


class _StepFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Verifier:
    def __init__(
        self,
        project: Project,
        script: ScriptDirectory,
        url: str,
        rows: int,
        seed: int,
        progress: Progress | None,
    ) -> None:
        self.project = project
        self.script = script
        self.url = url
        self.rows = rows
        self.seed = seed
        self.progress = progress
        self.findings: list[Finding] = []
        self.steps = 0
        self.refused: dict[str, int] = {}
        self.refused_at: dict[str, Script] = {}  # the first revision before which rows were refused
        self.models_note: str | None = None
        self.trace_locks = False
        self.tracer: LockTracer | None = None
        self.rows_before: dict[str, dict[str, int]] = {}  # revision -> table -> rows
        self.exclude = {CHECKSUM_TABLE, "alembic_version"}
        self.watch = _SqlWatch()
        self.schema = Schema()
        self.data: dict[str, Rows] = {}

    # -- running one migration step --------------------------------------------
    def _run_env(
        self, connection: Connection, fn: Callable[..., list[Any]], **opts: Any
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
        now = table_names(connection, self.exclude)
        touched = self.watch.tables(self.schema, now)
        self._refresh(connection, touched, now)
        return touched

    def _refresh(
        self, connection: Connection, touched: set[str] | None, now: set[str] | None = None
    ) -> None:
        """Re-read the schema and rows of the tables that may have changed (``now``: all)."""
        if now is None:
            now = table_names(connection, self.exclude)
        gone = self.schema.tables.keys() - now
        if touched is None:
            reread = now
        else:
            reread = (self.schema.with_children(touched) | (now - self.schema.tables.keys())) & now
        fresh = read_schema(connection, self.exclude, only=reread)
        self.schema = self.schema.replace(fresh, gone)
        self.data = {k: v for k, v in self.data.items() if k not in gone}
        self.data.update(read_rows(connection, self.schema, only=reread))
        connection.commit()

    def _reseed(
        self, connection: Connection, seeder: Seeder, dirty: set[str] | None, revision: Script
    ) -> None:
        """Fresh rows in the tables a step may have changed (all of them the first time)."""
        tables = None
        if dirty is not None:
            tables = self.schema.with_children(dirty) & self.schema.tables.keys()
            if not tables:
                return
        report = seeder.fill(connection, self.exclude, only=tables)
        connection.commit()
        for table, count in report.refused.items():
            self.refused[table] = self.refused.get(table, 0) + count
            self.refused_at.setdefault(table, revision)
        self.data.update(read_rows(connection, self.schema, only=tables))
        connection.commit()

    def _finding(self, rule: str, revision: Script, message: str, table: str | None = None,
                 column: str | None = None,
                 severity: Literal["error", "warning"] = "error") -> None:  # fmt: skip
        self.findings.append(
            Finding(rule=rule, severity=severity, revision=revision.revision,
                    path=str(revision.path), message=message, table=table, column=column)
        )  # fmt: skip

    # -- the walk --------------------------------------------------------------------
    def run(self) -> VerifyReport:
        order = apply_order(self.script)
        seeder = Seeder(self.rows, self.seed)
        broken: set[str] = set()
        checked = 0
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection, self.watch.watching(), ExitStack() as stack:
                if self.trace_locks:
                    self.tracer = LockTracer(ours=connection)
                    stack.enter_context(self.tracer.tracing())
                self._learn_env(connection)
                self._refresh(connection, None)
                dirty: set[str] | None = None
                for index, revision in enumerate(order, 1):
                    if self.progress:
                        self.progress(index, len(order), revision.revision)
                    parents = set(revision._all_down_revisions)
                    if parents & broken:
                        broken.add(revision.revision)  # cannot be reached; the cause is reported
                        continue
                    self._reseed(connection, seeder, dirty, revision)
                    ok, dirty = self._round_trip(connection, revision)
                    if not ok:
                        broken.add(revision.revision)
                    checked += 1
                if broken:
                    self.models_note = "some revisions could not be applied"
                else:
                    self._model_drift(connection, order)
        finally:
            engine.dispose()
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
                "(a constraint verify does not understand): its data was not checked from this "
                "revision on, only its schema", table=table, severity="warning",
            )  # fmt: skip
        trace = self._lock_findings() if self.tracer is not None else None
        return VerifyReport(
            findings=tuple(self.findings), revisions=len(order), checked=checked,
            steps=self.steps, database=redact(self.url), rows=self.rows, seed=self.seed,
            refused_rows=self.refused, models_not_compared=self.models_note, lock_trace=trace,
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

    def _try_step(
        self, connection: Connection, revision: Script, up: bool, when: str, trace: bool = False
    ) -> tuple[bool, set[str] | None]:
        """Run one step; a failure becomes an upgrade-failed/downgrade-failed finding.

        Returns whether it ran and the tables it may have changed (None: all).
        """
        try:
            return True, self._step(connection, revision, up=up, trace=trace)
        except _StepFailed as exc:
            if not up and isinstance(exc.cause, NotImplementedError):
                self._finding(
                    "irreversible", revision,
                    f"downgrade of {revision.revision} raises NotImplementedError: declared "
                    "irreversible, so its round trip was not checked; verify goes on from it",
                    severity="warning",
                )  # fmt: skip
                return False, None
            rule = "upgrade-failed" if up else "downgrade-failed"
            verb = "upgrade to" if up else "downgrade from"
            self._finding(rule, revision, f"{verb} {revision.revision} failed{when}: "
                          f"{describe_error(exc.cause, self.url)}")  # fmt: skip
            return False, None

    def _round_trip(self, connection: Connection, revision: Script) -> tuple[bool, set[str] | None]:
        """Up, down, up again.

        Returns False when R could not be applied (its descendants are skipped),
        and the tables whose rows the steps may have changed (None: all).
        """
        schema_before, data_before = self.schema, dict(self.data)
        ok, touched = self._try_step(connection, revision, True, "", trace=True)
        if not ok:
            return False, None
        schema_after = self.schema
        ok, touched_down = self._try_step(connection, revision, False, "")
        touched = _union(touched, touched_down)
        if not ok:
            return True, None  # the database is still at R: its descendants can be checked
        self._compare_schema(revision, schema_before, self.schema, "schema-not-restored",
                             "after the downgrade, compared with before the upgrade")  # fmt: skip
        self._compare_data(revision, schema_before, data_before, self.data)
        ok, touched_again = self._try_step(connection, revision, True, " the second time")
        if not ok:
            return False, None
        when = "after upgrade, downgrade, upgrade, compared with the first upgrade"
        self._compare_schema(revision, schema_after, self.schema, "reapply-differs", when)
        return True, _union(touched, touched_again)

    def _compare_schema(
        self, revision: Script, expected: Schema, found: Schema, rule: str, when: str
    ) -> None:
        for table, differences in expected.differences(found).items():
            self._finding(rule, revision, f"table {table} {when}: " + "; ".join(differences),
                          table=table)  # fmt: skip

    def _compare_data(
        self, revision: Script, schema: Schema, before: dict[str, Rows], after: dict[str, Rows]
    ) -> None:
        for table, rows in before.items():
            if table not in after or not rows or after[table] is rows:
                continue  # a missing table is a schema finding
            now = after[table]
            lost = [key for key in rows if key not in now]
            if lost:
                self._finding(
                    "data-lost", revision,
                    f"{len(lost)} of {len(rows)} rows of {table} present before the upgrade are "
                    f"gone after the downgrade (keys {', '.join(map(str, lost[:_EXAMPLES]))}...)",
                    table=table,
                )  # fmt: skip
            for column in sorted(schema.tables[table].columns):
                changed = [
                    (key, row[column], now[key].get(column))
                    for key, row in rows.items()
                    if key in now and column in now[key] and now[key][column] != row[column]
                ]
                if changed:
                    key, was, became = changed[0]
                    self._finding(
                        "data-changed", revision,
                        f"{table}.{column} differs on {len(changed)} of {len(rows)} rows after "
                        f"the round trip: e.g. key {key} was {was!r} before the upgrade, "
                        f"is {became!r} after the downgrade",
                        table=table, column=column,
                    )  # fmt: skip

    def _model_drift(self, connection: Connection, order: list[Script]) -> None:
        """At head: do the models (``target_metadata``) match what the migrations built?"""
        if not order:
            self.models_note = "the project has no revision"
            return
        diffs: list[Any] = []

        def compare(_rev: object, context: MigrationContext) -> list[Any]:
            metadata = context.opts.get("target_metadata")
            if metadata is None:
                self.models_note = "env.py passes no target_metadata to context.configure()"
            else:
                diffs.extend(compare_metadata(context, metadata))
            return []

        self._run_env(connection, compare)
        head = order[-1]
        for diff in diffs:
            table, message = _describe_diff(diff)
            self._finding("model-drift", head, f"models and migrations disagree: {message}; "
                          "write a revision for it (migrasafe revision --autogenerate)",
                          table=table)  # fmt: skip


def _union(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    return None if a is None or b is None else a | b


def _describe_diff(diff: Any) -> tuple[str | None, str]:
    """Alembic's autogenerate diff tuples, as a table name and a phrase."""
    if isinstance(diff, list):  # modify_* come grouped per column
        first = diff[0]
        return first[2], f"{first[0]} on {first[2]}.{first[3]}: {first[-2]!r} -> {first[-1]!r}"
    kind, obj = diff[0], diff[-1]
    table = getattr(obj, "name", None) if kind.endswith("_table") else None
    if table is None:
        owner = getattr(obj, "table", None)
        table = (
            getattr(owner, "name", None)
            if owner is not None
            else (diff[2] if len(diff) > 2 and isinstance(diff[2], str) else None)
        )
    name = getattr(obj, "name", obj)
    return table, f"{kind} {name}"
