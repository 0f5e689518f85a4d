"""Reading the version table and migrasafe's records with the driver alone.

The same two queries :func:`migrasafe.project.env.probe` and
:func:`migrasafe.deploy.checksums.read_recorded` send through SQLAlchemy, on a
read-only session: stdlib ``sqlite3`` (``mode=ro``, a missing file is not
created) or psycopg (``default_transaction_read_only``, with the
``search_path`` env.py's session had, so an unqualified version table is the
same table).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from migrasafe.deploy.records import Recorded, aware

CHECKSUM_TABLE = "migrasafe_checksums"
_COLUMNS = "revision, checksum, script, applied_at, applied_by, state"


class Unreadable(Exception):
    """The lean path cannot read this database: the cold path will (and explain)."""


def read(database: dict[str, Any]) -> tuple[tuple[str, ...], list[Recorded]]:
    """(current heads, records of this version table), as a cold ``status`` reads them."""
    dialect = database.get("dialect")
    if dialect == "sqlite":
        return _sqlite(database)
    if dialect == "postgresql":
        return _postgresql(database)
    raise Unreadable(database.get("unreachable", f"no lean reader for {dialect}"))


def _records(rows: list[tuple[Any, ...]], utc: bool = False) -> list[Recorded]:
    found = []
    for revision, digest, script, applied_at, applied_by, state in rows:
        if isinstance(applied_at, str):  # SQLite: what SQLAlchemy's DateTime wrote, in UTC
            applied_at = dt.datetime.fromisoformat(applied_at)
        moment = aware(applied_at)
        found.append(Recorded(revision, digest, script,
                              moment.astimezone(dt.UTC) if utc else moment,
                              applied_by, state))  # fmt: skip
    return found


def _sqlite(database: dict[str, Any]) -> tuple[tuple[str, ...], list[Recorded]]:
    import sqlite3

    path = database["path"]
    if not os.path.isfile(path):
        return (), []  # as the cold path: a missing file is a database at base
    connection = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True)
    try:
        tables = {
            name.lower()
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        version_table = database["version_table"]
        heads: tuple[str, ...] = ()
        if version_table.lower() in tables:
            query = f"SELECT version_num FROM {_quote(version_table)}"
            heads = tuple(row[0] for row in connection.execute(query))
        records: list[Recorded] = []
        if CHECKSUM_TABLE in tables:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM {CHECKSUM_TABLE} WHERE version_table = ?",
                (version_table,),
            ).fetchall()
            records = _records(rows)
        return heads, records
    finally:
        connection.close()


def _postgresql(database: dict[str, Any]) -> tuple[tuple[str, ...], list[Recorded]]:
    try:
        import psycopg
    except ImportError as exc:
        raise Unreadable("psycopg is not installed") from exc
    connect = dict(database["connect"])
    connect["options"] = "-c default_transaction_read_only=on"
    with psycopg.connect(**connect, connect_timeout=10) as connection:
        if database.get("search_path") is not None:
            connection.execute("SELECT set_config('search_path', %s, true)",
                               (database["search_path"],))  # fmt: skip
        schema = database.get("schema")
        prefix = f"{_quote(schema)}." if schema else ""

        def exists(table: str) -> bool:
            row = connection.execute("SELECT to_regclass(%s)", (prefix + _quote(table),))
            return row.fetchone() not in (None, (None,))

        version_table = database["version_table"]
        heads: tuple[str, ...] = ()
        if exists(version_table):
            query = f"SELECT version_num FROM {prefix}{_quote(version_table)}"
            heads = tuple(row[0] for row in connection.execute(query))
        records: list[Recorded] = []
        if exists(CHECKSUM_TABLE):
            found = connection.execute(
                f"SELECT {_COLUMNS} FROM {prefix}{CHECKSUM_TABLE} WHERE version_table = %s",
                (version_table,),
            ).fetchall()
            records = _records(found, utc=database.get("driver") == "asyncpg")
        connection.rollback()
    return heads, records


def _uri_path(path: str) -> str:
    """A path inside a SQLite ``file:`` URI: what would end or escape it, percent-encoded."""
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
