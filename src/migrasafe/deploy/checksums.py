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
from collections.abc import Callable, Iterable
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
from migrasafe.errors import DatabaseError, RevisionError
from migrasafe.project.config import CHECKSUM_TABLE, Project
from migrasafe.project.env import EnvContext, probe
from migrasafe.project.graph import applied

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
        # "applied"; "failed": a revision that failed midway on a database whose DDL
        # commits at once (MySQL), so that status can name it (see record_failure).
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


class Recorder:
    """Alembic's ``on_version_apply`` hook: each revision's checksum, in its own transaction.

    Alembic calls it right after it updates the version table, on the same
    connection and inside the same transaction as the revision, so a
    revision is never applied without its checksum, nor the reverse.
    """

    def __init__(self) -> None:
        self._ensured: set[int] = set()
        self._who = _who()  # once per run: getpass and gethostname are not free

    def __call__(self, *, ctx: MigrationContext, step: Any, heads: set[str], run_args: Any) -> None:
        if ctx.as_sql or getattr(step, "is_stamp", False) or ctx.connection is None:
            return
        script = step.revision_map.get_revision(step.up_revision_id)
        if not isinstance(script, Script):
            return
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

    The records of applied revisions, and those of revisions that failed
    midway where DDL commits at once (part of their DDL is applied).
    """
    context, found = probe(project, read_recorded)
    recorded = found or {}
    applied_ = {r: v for r, v in recorded.items() if v.state == "applied"}
    failed = sorted((v for v in recorded.values() if v.state == "failed"),
                    key=lambda v: v.revision)  # fmt: skip
    return context, applied_, failed


def record_failure(url: URL, version_table: str, schema: str | None, script: Script) -> None:
    """Note a revision that failed midway on a database without transactional DDL.

    Its version is not recorded, but the DDL that ran before the failure
    stayed: nothing else would tell. A later successful run of the revision
    replaces the note.
    """
    table = _table(schema)
    engine_url = database_for(url).sessions.engine_url.render_as_string(hide_password=False)
    with connect(engine_url) as connection, connection.begin():
        table.create(connection, checkfirst=True)
        connection.execute(table.delete().where(
            table.c.version_table == version_table, table.c.revision == script.revision
        ))  # fmt: skip
        connection.execute(table.insert().values(
            version_table=version_table, revision=script.revision, checksum=checksum(script.path),
            script=Path(script.path).name, applied_at=dt.datetime.now(dt.UTC),
            applied_by=_who(), state="failed",
        ))  # fmt: skip


def forget_failures(
    url: str | URL, version_table: str, schema: str | None, settled: Callable[[str], bool]
) -> tuple[str, ...]:
    """Drop the notes of :func:`record_failure` for the revisions ``settled`` says are settled.

    Returns their revisions. Nothing is read or written where there is no note.
    """
    table = _table(schema)
    engine_url = database_for(url).sessions.engine_url.render_as_string(hide_password=False)
    with connect(engine_url) as connection, connection.begin():
        if not sa.inspect(connection).has_table(TABLE, schema=schema):
            return ()
        failed = connection.execute(sa.select(table.c.revision).where(
            table.c.version_table == version_table, table.c.state == "failed"
        )).scalars().all()  # fmt: skip
        gone = tuple(sorted(rev for rev in failed if settled(rev)))
        if gone:
            connection.execute(table.delete().where(
                table.c.version_table == version_table, table.c.state == "failed",
                table.c.revision.in_(gone),
            ))  # fmt: skip
    return gone


@dataclass(frozen=True)
class AcceptResult:
    url: str
    accepted: tuple[str, ...]
    cleared: tuple[str, ...] = ()  # half-applied notes (record_failure) accepted as repaired

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "accepted": list(self.accepted), "cleared": list(self.cleared)}


def accept(project: Project, revisions: Iterable[str] = ()) -> AcceptResult:
    """Record the current files of applied revisions as reviewed (all when none are named).

    Only revisions whose recorded checksum differs (or is missing) are written.
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
    scripts = [
        s for s in script.walk_revisions()
        if s.revision in chosen
        and (s.revision not in recorded or recorded[s.revision].checksum != checksum(s.path))
    ]  # fmt: skip
    if scripts:
        url = database_for(context.url).sessions.engine_url.render_as_string(hide_password=False)
        with connect(url) as connection, connection.begin():
            record(connection, context.version_table, context.version_table_schema, scripts, ())
    cleared: tuple[str, ...] = ()
    if half_applied & (set(wanted) or half_applied):  # the user says the schema is repaired
        cleared = forget_failures(context.url, context.version_table,
                                  context.version_table_schema,
                                  lambda rev: not wanted or rev in wanted)  # fmt: skip
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
