"""Checksums of applied scripts: was a migration edited after it ran?

Alembic records only a version number, so an applied script that is edited
later (a typo fixed, a column renamed "while we are at it") silently differs
from what the database went through. Like Flyway's and Liquibase's, migrasafe
records each applied script's checksum, when and by whom, in a table of its
own next to the version table, and ``status`` compares them with the files.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection

from migrasafe.db.dialects import connect, database_for
from migrasafe.db.urls import describe_error
from migrasafe.deploy.records import Modified, Recorded, aware, checksum
from migrasafe.errors import DatabaseError, MigrationFailed, RevisionError
from migrasafe.project.config import CHECKSUM_TABLE, Project
from migrasafe.project.env import EnvContext, probe
from migrasafe.project.graph import applied, is_defined

TABLE = CHECKSUM_TABLE


@functools.cache
def _table(schema: str | None) -> sa.Table:
    """One table per schema; ``version_table`` keeps apart projects that share a database.

    Built once per schema, so that SQLAlchemy compiles each statement on it once.
    """
    return sa.Table(
        TABLE,
        sa.MetaData(schema=schema),
        sa.Column("version_table", sa.String(128), primary_key=True),
        sa.Column("revision", sa.String(64), primary_key=True),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("script", sa.String(255), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(255), nullable=False),
        # "applied"; "started": a write-ahead mark (see mark_started), committed with the
        # first statement of a revision that cannot roll back; "failed": the same, as
        # versions before the marks wrote it when a revision failed midway.
        sa.Column("state", sa.String(16), nullable=False, server_default="applied"),
    )


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def record(
    connection: Connection,
    version_table: str,
    schema: str | None,
    done: Iterable[Script],
    undone: Iterable[str],
    *,
    create: bool = True,
    who: str | None = None,
) -> None:
    """Record the scripts just applied (``done``) and forget the ones reverted."""
    table = _table(schema)
    if create:
        table.create(connection, checkfirst=True)
    done = list(done)
    forget = [*undone, *(s.revision for s in done)]
    if forget:
        connection.execute(table.delete().where(
            table.c.version_table == version_table, table.c.revision.in_(forget)
        ))  # fmt: skip
    now, who = dt.datetime.now(dt.UTC), who or _who()
    rows = [
        {"version_table": version_table, "revision": s.revision, "checksum": checksum(s.path),
         "script": Path(s.path).name, "applied_at": now, "applied_by": who}
        for s in done
    ]  # fmt: skip
    if rows:
        connection.execute(table.insert(), rows)


def reconcile(
    connection: Connection,
    graph: ScriptDirectory,
    *,
    version_table: str = "alembic_version",
    schema: str | None = None,
    heads: Iterable[str] | None = None,
    rows: Iterable[tuple[str, str]] | None = None,
) -> tuple[str, ...]:
    """Forget the checksums of revisions the version table no longer has applied.

    A plain ``alembic downgrade`` or ``alembic stamp`` moves the version table
    and leaves migrasafe's rows behind; if plain Alembic then applied those
    revisions again, the old rows would vouch for scripts nobody checked.
    Rows of revisions that are not at ``heads`` or below (``heads``: read
    from the version table on ``connection`` when None) are deleted, in the
    caller's transaction; notes of revisions that failed midway (MySQL) are
    kept. Returns the revisions forgotten, sorted. Runs on a database without
    the checksum table too (nothing to forget). ``rows``: this version table's
    (revision, state) rows, when the caller has read them already.
    """
    if rows is None and not sa.inspect(connection).has_table(TABLE, schema=schema):
        return ()
    if heads is None:
        version = sa.table(version_table, sa.column("version_num"), schema=schema)
        heads = connection.execute(sa.select(version.c.version_num)).scalars().all()
    heads = tuple(heads)
    keep = applied(graph, heads) | set(heads)
    table = _table(schema)
    mine = sa.and_(table.c.version_table == version_table, table.c.state == "applied")
    if rows is None:
        rows = connection.execute(sa.select(table.c.revision, table.c.state).where(mine)).all()
    stale = sorted(rev for rev, state in rows if state == "applied" and rev not in keep)
    if stale:
        connection.execute(table.delete().where(mine, table.c.revision.in_(stale)))
    return tuple(stale)


@functools.cache
def _inline_template(
    dialect: sa.Dialect, schema: str | None, upgrade: bool
) -> tuple[str, Callable[[str], str]]:
    """PostgreSQL's upsert (or delete) of one checksum row, ``%(name)s`` for each value.

    Compiled once per run; each value is then inlined with the dialect's own
    string quoting (which knows ``standard_conforming_strings``).
    """
    from sqlalchemy.dialects.postgresql import insert

    table = _table(schema)
    mine = (table.c.version_table == sa.bindparam("vt")) & (table.c.revision == sa.bindparam("rev"))
    construct: Any
    if not upgrade:
        construct = table.delete().where(mine)
    else:
        inserted = insert(table).values(
            version_table=sa.bindparam("vt"), revision=sa.bindparam("rev"),
            checksum=sa.bindparam("sum"), script=sa.bindparam("script"),
            applied_at=sa.func.clock_timestamp(), applied_by=sa.bindparam("who"),
            state=sa.literal_column("'applied'"),
        )  # fmt: skip
        construct = inserted.on_conflict_do_update(
            index_elements=[table.c.version_table, table.c.revision],
            set_={name: inserted.excluded[name]
                  for name in ("checksum", "script", "applied_at", "applied_by", "state")},
        )  # fmt: skip
    template = str(construct.compile(dialect=dialect))
    quote = sa.String().literal_processor(dialect)  # type: ignore[no-untyped-call]
    assert quote is not None and dialect.paramstyle == "pyformat"
    return template, quote


class Recorder:
    """Each revision's checksum, written in the revision's own transaction.

    :meth:`follow` wraps the steps Alembic runs: before the first, it makes
    the table and forgets stale rows (:func:`reconcile`). On psycopg the
    checksum row is sent in the same query as Alembic's own version-table
    statement (one round trip, as plain Alembic's), so the two cannot
    disagree: they succeed or fail together. Elsewhere (SQLite, where a
    statement costs no round trip; other drivers; a row psycopg cannot be sent
    that way), Alembic's ``on_version_apply`` hook writes it right after the
    version change, on the same connection and inside the same transaction.
    The same row is first a write-ahead mark where the revision cannot roll
    back (:func:`mark_started`), which the version change replaces.
    """

    def __init__(
        self,
        graph: ScriptDirectory | None = None,
        *,
        mark_each: bool = False,
        check_marks: Callable[[dict[str, str], list[Any]], None] | None = None,
    ) -> None:
        self._graph = graph
        # Where DDL commits at once (MySQL): every step is marked before it runs. Elsewhere
        # a step is marked when something of it commits before its version change (an
        # autocommit_block, a commit of its own: see before_commit).
        self.mark_each, self._check_marks = mark_each, check_marks
        self.marks: set[str] = set()  # the revisions marked, standing or written by this run
        self.standing: dict[str, str] = {}  # the marks standing when the attempt began
        self.written: set[str] = set()  # the marks this attempt wrote
        self._versioned: set[str] = set()  # steps whose version change was made
        self._self_committed: set[str] = set()  # steps that committed mid-way, not Alembic
        self._in_block = 0  # inside autocommit_block: its commits are Alembic's
        self._ctx: MigrationContext | None = None  # the context of the steps being followed
        self._ensured: set[int] = set()
        self._who = _who()  # once per run: getpass and gethostname are not free
        self._running: Any = None
        self._written: set[tuple[str, bool]] = set()
        self._version: Any = None

    def follow(self, context: MigrationContext, heads: tuple[str, ...],
               planned: list[Any]) -> Iterator[Any]:  # fmt: skip
        """Alembic's steps, as they run; the table made and reconciled before the first, and
        the marks standing read (``check_marks`` sees them with the plan, before any runs)."""
        connection = context.connection
        self._written, self._ensured = set(), set()  # a retry starts over: its run rolled back
        self.marks, self.standing, self.written, self._versioned = set(), {}, set(), set()
        self._self_committed = set()
        self._ctx = context
        online = connection is not None and not context.as_sql
        if planned and connection is not None and online:
            schema = context.version_table_schema
            _table(schema).create(connection, checkfirst=True)
            self._ensured.add(id(connection))
            table = _table(schema)
            rows = connection.execute(sa.select(table.c.revision, table.c.state).where(
                table.c.version_table == context.version_table
            )).all()  # fmt: skip
            if self._graph is not None:
                reconcile(connection, self._graph, version_table=context.version_table,
                          schema=schema, heads=heads, rows=rows)  # fmt: skip
            self.standing = {rev: state for rev, state in rows if state != "applied"}
            self.marks = set(self.standing)
            if self._check_marks is not None:
                self._check_marks(self.standing, planned)
            if connection.dialect.driver == "psycopg":
                self._version = context._version
                sa.event.listen(connection, "before_cursor_execute", self._with_version,
                                retval=True)  # fmt: skip
            context.autocommit_block = self._marked_block(context, context.autocommit_block)  # type: ignore[method-assign]
        try:
            for step in planned:
                self._running = step
                if self.mark_each and online:
                    self._mark_first(context, step)
                yield step
                self._running = None
            if planned and online:
                self._finish(context)
        finally:
            self._running = None
            vars(context).pop("autocommit_block", None)
            if self._version is not None and connection is not None:
                sa.event.remove(connection, "before_cursor_execute", self._with_version)
                self._version = None

    def _mark(self, context: MigrationContext, step: Any) -> None:
        """The write-ahead mark of ``step`` on the migration's connection (see mark_started)."""
        script = getattr(step, "revision", None)
        if (not isinstance(script, Script) or script.revision in self.marks
                or context.connection is None):  # fmt: skip
            return
        if id(context.connection) not in self._ensured:
            _table(context.version_table_schema).create(context.connection, checkfirst=True)
            self._ensured.add(id(context.connection))
        mark = mark_started if step.is_upgrade else mark_reverting
        mark(context.connection, context.version_table, context.version_table_schema, script,
             self._who)  # fmt: skip
        self.marks.add(script.revision)
        self.written.add(script.revision)

    def _finish(self, context: MigrationContext) -> None:
        """After the last step: a version change no one will commit is said, not lost; the
        marks of earlier runs that this one settled are dropped (on the migration's own
        connection: ``env.py``'s engine may be one migrasafe cannot open a session on)."""
        connection = context.connection
        assert connection is not None
        owner: Any = context._transaction  # Alembic's own, which it commits next (or None)
        unowned = connection.in_transaction() and not context._in_external_transaction and (
            owner is None or not owner.is_active)  # fmt: skip
        if self._self_committed and unowned:
            revision = sorted(self._self_committed)[-1]
            raise MigrationFailed(
                f"revision {revision} ran to its end but its version change would not be "
                "kept: it ended the migration's transaction itself (op.get_bind().commit(), "
                "COMMIT), so what it committed stayed and nothing commits the rest. Its mark "
                "stands: `migrasafe status` lists what is present; `migrasafe upgrade "
                "--resume` (or downgrade) finishes it. Use an autocommit_block for work that "
                "must commit on its own", revision=revision,
            )  # fmt: skip
        if self.standing and self._graph is not None:
            settle_marks(connection, self._graph, context.version_table,
                         context.version_table_schema)  # fmt: skip
            if owner is None and connection.in_transaction():
                connection.commit()

    def before_commit(self) -> None:
        """A commit while a revision runs, before its version change (an autocommit_block,
        ``op.get_bind().commit()``): its work so far stays whatever follows, so it is marked
        first, in the transaction being committed."""
        step, context = self._running, self._ctx
        if step is None or context is None or context.as_sql:
            return
        revision = getattr(getattr(step, "revision", None), "revision", None)
        if revision is not None and revision not in self._versioned:
            if not self._in_block:
                self._self_committed.add(revision)  # the revision's own commit, not Alembic's
            self._mark(context, step)

    def _mark_first(self, context: MigrationContext, step: Any) -> None:
        """Where DDL commits at once: the mark goes in first thing in the revision's
        transaction, so its first DDL statement commits it."""
        run = step.migration_fn

        def marked(**kw: Any) -> Any:
            self._mark(context, step)
            return run(**kw)

        step.migration_fn = marked

    def _marked_block(self, context: MigrationContext, block: Callable[[], Any]) -> Any:
        """``autocommit_block`` commits the revision's transaction before it: with the mark in."""

        @contextmanager
        def marked() -> Iterator[None]:
            # Alembic commits its own transaction first (the commit event marks the step:
            # see before_commit). With none open, the block's statements commit one by one:
            # the mark goes first, on its own. In a transaction Alembic does not own,
            # Alembic refuses the block, as it always has: nothing is committed for it.
            step, connection = self._running, context.connection
            self._in_block += 1  # this commit, and the block's own, are not the revision's
            try:
                if (step is not None and connection is not None
                        and context._transaction is None
                        and not connection.in_transaction()):  # fmt: skip
                    self._mark(context, step)
                    connection.commit()
                with block():
                    yield
            finally:
                self._in_block -= 1

        return marked

    def _with_version(self, _conn: Connection, _cursor: Any, statement: str, parameters: Any,
                      execution: Any, executemany: bool) -> tuple[str, Any]:  # fmt: skip
        """psycopg: Alembic's version statement for the step under way, with its checksum row."""
        step = self._running
        construct = getattr(getattr(execution, "compiled", None), "statement", None)
        if (
            step is None
            or not hasattr(step, "revision")  # a StampStep: no script ran (see forget_stamped)
            or executemany
            or parameters
            or "%" in statement
            or not isinstance(construct, sa.sql.dml.UpdateBase)
            or construct.table is not self._version
        ):
            return statement, parameters
        script = step.revision
        key = (script.revision, bool(step.is_upgrade))
        if key in self._written:
            return statement, parameters
        extra = self._literal(script, bool(step.is_upgrade))
        if extra is None:
            return statement, parameters
        self._written.add(key)
        # One simple-protocol query: the version statement first, so that the rowcount
        # Alembic checks is its own.
        return f"{statement};\n{extra}", None

    def _literal(self, script: Script, upgrade: bool) -> str | None:
        """The checksum row's statement with its values inlined; None if one holds a ``%``."""
        context = self._ctx
        assert context is not None and context.connection is not None
        values = {"vt": context.version_table, "rev": script.revision}
        if upgrade:
            values.update(sum=checksum(script.path), script=Path(script.path).name,
                          who=self._who)  # fmt: skip
        if any("%" in value for value in values.values()):
            return None  # the dialect doubles it for a query with parameters: not for this one
        dialect = context.connection.dialect
        template, quote = _inline_template(dialect, context.version_table_schema, upgrade)
        return template % {name: quote(value) for name, value in values.items()}

    def __call__(self, *, ctx: MigrationContext, step: Any, heads: set[str], run_args: Any) -> None:
        if ctx.as_sql or getattr(step, "is_stamp", False) or ctx.connection is None:
            return
        running = getattr(getattr(self._running, "revision", None), "revision", None)
        if running is not None:
            self._versioned.add(running)
        script = step.revision_map.get_revision(step.up_revision_id)
        if not isinstance(script, Script):
            return
        if self._written and (script.revision, bool(step.is_upgrade)) in self._written:
            return  # sent with the version statement
        connection = ctx.connection
        first = id(connection) not in self._ensured
        self._ensured.add(id(connection))
        done, undone = ([script], []) if step.is_upgrade else ([], [script.revision])
        record(connection, ctx.version_table, ctx.version_table_schema, done, undone,
               create=first, who=self._who)  # fmt: skip


def read_recorded(context: MigrationContext) -> dict[str, Recorded]:
    """What the database recorded for this version table; {} before migrasafe applied anything.

    Read on the connection ``env.py`` configured (see :func:`migrasafe.project.env.probe`).
    """
    connection = context.connection
    assert connection is not None
    schema = context.version_table_schema
    if not sa.inspect(connection).has_table(TABLE, schema=schema):
        return {}
    table = _table(schema)
    try:
        rows = connection.execute(
            table.select().where(table.c.version_table == context.version_table)
        ).all()
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(
            f"cannot read {TABLE}: {describe_error(exc, connection.engine.url)}"
        ) from exc
    return {
        row.revision: Recorded(
            row.revision,
            row.checksum,
            row.script,
            aware(row.applied_at),
            row.applied_by,
            row.state,
        )
        for row in rows
    }


def modified(
    graph: ScriptDirectory, current: tuple[str, ...], recorded: dict[str, Recorded]
) -> list[Modified]:
    """Applied revisions whose script changed since migrasafe applied (or accepted) it."""
    done = applied(graph, current)
    found = []
    for script in graph.walk_revisions():
        if script.revision not in done:
            continue
        seen = recorded.get(script.revision)
        if seen is None:
            continue  # applied by plain Alembic: nothing to compare with
        now = checksum(script.path)
        if now != seen.checksum:
            found.append(Modified(script.revision, str(script.path), seen.checksum, now,
                                  seen.applied_at.isoformat(), seen.applied_by))  # fmt: skip
    return sorted(found, key=lambda m: m.revision)


def read_state(
    project: Project,
) -> tuple[EnvContext, dict[str, Recorded], list[Recorded]]:
    """The database's current revisions and records, read-only through env.py.

    The records of applied revisions, and the marks of revisions that stopped
    midway after committing part of their work (:func:`mark_started`).
    """
    context, found = probe(project, read_recorded)
    recorded = found or {}
    applied_ = {r: v for r, v in recorded.items() if v.state == "applied"}
    failed = sorted((v for v in recorded.values() if v.state != "applied"),
                    key=lambda v: v.revision)  # fmt: skip
    return context, applied_, failed


STARTED, REVERTING = "started", "reverting"


def mark_started(connection: Connection, version_table: str, schema: str | None,
                 script: Script, who: str | None = None) -> None:  # fmt: skip
    """The write-ahead mark of a revision about to send what cannot be rolled back.

    Written on the migration's own connection, inside the revision's
    transaction: the statement that commits at once (MySQL's DDL commits the
    transaction before it runs; an ``autocommit_block`` commits it first)
    commits the mark with it, and a revision that never got that far leaves
    no mark. The version change replaces it (:func:`record`, in the same
    transaction), so a mark that stands names a revision that stopped midway.
    """
    connection.execute(_table(schema).insert().values(
        version_table=version_table, revision=script.revision, checksum=checksum(script.path),
        script=Path(script.path).name, applied_at=dt.datetime.now(dt.UTC),
        applied_by=who or _who(), state=STARTED,
    ))  # fmt: skip


def mark_reverting(connection: Connection, version_table: str, schema: str | None,
                   script: Script, who: str | None = None) -> None:  # fmt: skip
    """The mark of a downgrade about to send what cannot be rolled back, as
    :func:`mark_started`: the applied row (or a new one) says ``reverting`` until the
    version change deletes it."""
    table = _table(schema)
    mine = (table.c.version_table == version_table) & (table.c.revision == script.revision)
    updated = connection.execute(table.update().where(mine).values(state=REVERTING))
    if not updated.rowcount:
        connection.execute(table.insert().values(
            version_table=version_table, revision=script.revision,
            checksum=checksum(script.path), script=Path(script.path).name,
            applied_at=dt.datetime.now(dt.UTC), applied_by=who or _who(), state=REVERTING,
        ))  # fmt: skip


def read_marks(connection: Connection, version_table: str, schema: str | None) -> dict[str, str]:
    """The revisions with a mark standing, and its state (started, reverting; failed as
    older versions noted)."""
    table = _table(schema)
    return dict(connection.execute(sa.select(table.c.revision, table.c.state).where(
        table.c.version_table == version_table, table.c.state != "applied"
    )).all())  # fmt: skip


def settle_marks(
    connection: Connection, graph: ScriptDirectory, version_table: str, schema: str | None
) -> dict[str, str]:
    """Drop the marks the version table shows settled; returns those still standing.

    Read with the version table, on ``connection``, in its transaction. A mark
    is settled when its revision is applied (``started``) or no longer applied
    (``reverting``), or when no script defines its revision any more.
    """
    table = _table(schema)
    version = sa.table(version_table, sa.column("version_num"), schema=schema)
    marks = read_marks(connection, version_table, schema)
    done = applied(graph, connection.execute(sa.select(version.c.version_num)).scalars())
    gone = [rev for rev, state in marks.items()
            if not is_defined(graph, rev) or (rev in done) != (state == REVERTING)]  # fmt: skip
    if gone:
        connection.execute(table.delete().where(
            table.c.version_table == version_table, table.c.state != "applied",
            table.c.revision.in_(gone),
        ))  # fmt: skip
    return {rev: state for rev, state in marks.items() if rev not in gone}


def forget_failures(
    url: str | URL, version_table: str, schema: str | None, settled: Callable[[str], bool]
) -> tuple[str, ...]:
    """Drop the marks (:func:`mark_started`) of the revisions ``settled`` says are settled.

    Returns their revisions. Nothing is read or written where there is no note.
    """
    table = _table(schema)
    engine_url = database_for(url).sessions.engine_url.render_as_string(hide_password=False)
    with connect(engine_url) as connection, connection.begin():
        if not sa.inspect(connection).has_table(TABLE, schema=schema):
            return ()
        marked = read_marks(connection, version_table, schema)
        gone = tuple(sorted(rev for rev in marked if settled(rev)))
        if gone:
            connection.execute(table.delete().where(
                table.c.version_table == version_table, table.c.state != "applied",
                table.c.revision.in_(gone),
            ))  # fmt: skip
    return gone


@dataclass(frozen=True)
class AcceptResult:
    url: str
    accepted: tuple[str, ...]
    cleared: tuple[str, ...] = ()  # half-applied marks (mark_started) accepted as repaired

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "accepted": list(self.accepted), "cleared": list(self.cleared)}


def accept(project: Project, revisions: Iterable[str] = ()) -> AcceptResult:
    """Record the current files of applied revisions as reviewed (all when none are named).

    Only revisions whose recorded checksum differs (or is missing) are written;
    the rows of revisions no longer applied are forgotten (:func:`reconcile`).
    """
    script = project.graph
    context, recorded, failed = read_state(project)
    if not context.exists:
        raise DatabaseError(f"{context.display_url} does not exist: nothing is applied to accept")
    done = applied(script, context.heads)
    wanted = list(revisions)
    half_applied = {f.revision for f in failed}
    for rev in wanted:
        if rev not in done and rev not in half_applied:
            raise RevisionError(
                f"revision {rev} is not applied to {context.display_url}: only applied "
                "revisions have a checksum to accept "
                f"(applied: {', '.join(sorted(done)) or 'none'})"
            )
    chosen = set(wanted) or done
    repaired = half_applied & (set(wanted) or half_applied)  # the user says the schema is
    cleared: tuple[str, ...] = ()
    if repaired:
        cleared = forget_failures(context.url, context.version_table,
                                  context.version_table_schema, repaired.__contains__)  # fmt: skip
    scripts = [
        s for s in script.walk_revisions()
        if s.revision in chosen and s.revision in done  # a half-applied one is not applied
        and (s.revision in repaired or s.revision not in recorded
             or recorded[s.revision].checksum != checksum(s.path))
    ]  # fmt: skip
    url = database_for(context.url).sessions.engine_url.render_as_string(hide_password=False)
    with connect(url) as connection, connection.begin():
        schema = context.version_table_schema
        reconcile(connection, script, version_table=context.version_table, schema=schema)
        if scripts:
            record(connection, context.version_table, schema, scripts, ())
    return AcceptResult(context.display_url, tuple(sorted(s.revision for s in scripts)), cleared)


def forget_stamped(*, ctx: MigrationContext, step: Any, heads: set[str], run_args: Any) -> None:
    """Alembic's ``on_version_apply`` hook for ``stamp``: no checksum survives a stamp.

    A stamp moves the version table without running a script, so the
    revisions it adds were not applied by migrasafe (they are unverified
    until ``accept``), and those it removes are no longer applied. Both lose
    any checksum row, in the stamp's own transaction.
    """
    if ctx.as_sql or not getattr(step, "is_stamp", False) or ctx.connection is None:
        return
    revision_map = step.revision_map

    def ancestry(revisions: Iterable[str]) -> set[str]:
        wanted = tuple(rev for rev in revisions if rev)
        if not wanted:
            return set()
        return {s.revision for s in revision_map.iterate_revisions(wanted, "base")}

    changed = ancestry(step.source_revision_ids) ^ ancestry(step.destination_revision_ids)
    connection = ctx.connection
    schema = ctx.version_table_schema
    if not changed or not sa.inspect(connection).has_table(TABLE, schema=schema):
        return
    table = _table(schema)
    connection.execute(table.delete().where(
        table.c.version_table == ctx.version_table, table.c.revision.in_(sorted(changed))
    ))  # fmt: skip
