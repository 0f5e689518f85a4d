"""Checksums of applied scripts: was a migration edited after it ran?

Alembic records only a version number, so an applied script that is edited
later (a typo fixed, a column renamed "while we are at it") silently differs
from what the database went through. Like Flyway's and Liquibase's, migrasafe
records each applied script's checksum, when and by whom, in a table of its
own next to the version table, and ``status`` compares them with the files.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import Script
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from .config import CHECKSUM_TABLE, Project
from .database import connect, describe_error, redact, support_for
from .errors import DatabaseError, RevisionError
from .graph import applied

TABLE = CHECKSUM_TABLE


def checksum(path: str | Path) -> str:
    """sha256 of the file, with line endings normalised (a CRLF checkout is no edit)."""
    data = Path(path).read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def _table(schema: str | None) -> sa.Table:
    return sa.Table(
        TABLE,
        sa.MetaData(schema=schema),
        sa.Column("revision", sa.String(64), primary_key=True),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("script", sa.String(255), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(255), nullable=False),
    )


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Recorded:
    revision: str
    checksum: str
    script: str
    applied_at: dt.datetime
    applied_by: str


@dataclass(frozen=True)
class Modified:
    """An applied revision whose script no longer matches what was applied."""

    revision: str
    path: str
    recorded: str
    current: str
    applied_at: str
    applied_by: str

    def to_dict(self) -> dict[str, str]:
        return {
            "revision": self.revision,
            "path": self.path,
            "recorded": self.recorded,
            "current": self.current,
            "applied_at": self.applied_at,
            "applied_by": self.applied_by,
        }


def record(
    connection: Connection, project: Project, done: Iterable[Script], undone: Iterable[str]
) -> None:
    """Record the scripts just applied (``done``) and forget the ones reverted."""
    table = _table(project.version_table_schema)
    table.create(connection, checkfirst=True)
    done = list(done)
    forget = [*undone, *(s.revision for s in done)]
    if forget:
        connection.execute(table.delete().where(table.c.revision.in_(forget)))
    now, who = dt.datetime.now(dt.UTC), _who()
    rows = [
        {"revision": s.revision, "checksum": checksum(s.path), "script": Path(s.path).name,
         "applied_at": now, "applied_by": who}
        for s in done
    ]  # fmt: skip
    if rows:
        connection.execute(table.insert(), rows)


def read_recorded(project: Project) -> dict[str, Recorded]:
    """What the database recorded, read-only; {} before migrasafe first applied anything."""
    url = project.url
    if not support_for(url).exists():
        return {}
    table = _table(project.version_table_schema)
    with connect(url, readonly=True) as connection:
        if not sa.inspect(connection).has_table(TABLE, schema=project.version_table_schema):
            return {}
        try:
            rows = connection.execute(table.select()).all()
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot read {TABLE} in {redact(url)}: {describe_error(exc, url)}"
            ) from exc
    return {
        row.revision: Recorded(
            row.revision, row.checksum, row.script, _aware(row.applied_at), row.applied_by
        )
        for row in rows
    }


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def modified(project: Project, current: tuple[str, ...]) -> list[Modified]:
    """Applied revisions whose script changed since migrasafe applied (or accepted) it."""
    recorded = read_recorded(project)
    done = applied(project.graph, current)
    found = []
    for script in project.graph.walk_revisions():
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


@dataclass(frozen=True)
class AcceptResult:
    url: str
    accepted: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "accepted": list(self.accepted)}


def accept(project: Project, revisions: Iterable[str] = ()) -> AcceptResult:
    """Record the current files of applied revisions as reviewed (all when none are named).

    Only revisions whose recorded checksum differs (or is missing) are written.
    """
    script = project.graph
    current = project.current_heads()
    done = applied(script, current)
    wanted = list(revisions)
    for rev in wanted:
        if rev not in done:
            raise RevisionError(
                f"revision {rev} is not applied to {redact(project.url)}: only applied "
                "revisions have a checksum to accept "
                f"(applied: {', '.join(sorted(done)) or 'none'})"
            )
    recorded = read_recorded(project)
    chosen = set(wanted) or done
    scripts = [
        s for s in script.walk_revisions()
        if s.revision in chosen
        and (s.revision not in recorded or recorded[s.revision].checksum != checksum(s.path))
    ]  # fmt: skip
    if scripts:
        with connect(project.url) as connection, connection.begin():
            record(connection, project, scripts, ())
    return AcceptResult(redact(project.url), tuple(sorted(s.revision for s in scripts)))
