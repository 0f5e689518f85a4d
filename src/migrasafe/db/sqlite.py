"""SQLite: a file, flock for the migration lock, and DDL that the driver must be told
to keep inside its transaction."""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from migrasafe.db.catalog import Catalog, digest
from migrasafe.db.locks import Lock, Locks
from migrasafe.db.scratch import Scratch
from migrasafe.db.sessions import Sessions
from migrasafe.errors import DatabaseError


def database_path(url: URL) -> Path | None:
    """The file a SQLite URL names; None: in memory, or a ``file:`` URI."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class SQLiteSessions(Sessions):
    name = "sqlite"
    sync_drivers: ClassVar[dict[str, str]] = {"aiosqlite": "pysqlite"}

    @property
    def path(self) -> Path | None:
        return database_path(self.url)

    def identity(self) -> tuple[object, ...]:
        path = self.path
        return ("sqlite", str(path.resolve()) if path is not None else self.url.database)

    def exists(self) -> bool:
        # Connecting to a missing SQLite file creates it: look before connecting.
        return self.path is None or self.path.is_file()

    def readonly_engine(self) -> Engine:
        if self.path is None:
            return self.engine()
        uri = f"file:{quote(self.path.resolve().as_posix())}?mode=ro"
        return sa.create_engine(
            "sqlite://", creator=_sqlite_readonly_creator(uri), poolclass=NullPool
        )

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        if not cargs or not isinstance(cargs[0], str):
            return None
        database = cargs[0]
        if database in ("", ":memory:") or cparams.get("uri") or database.startswith("file:"):
            return None
        if not Path(database).is_file():
            cargs[0] = ":memory:"
            return database
        cargs[0] = f"file:{quote(Path(database).resolve().as_posix())}?mode=ro"
        cparams["uri"] = True
        return None

    @classmethod
    @contextmanager
    def transactional_ddl(cls) -> Iterator[None]:
        """Make Python's sqlite3 driver put DDL inside the transaction.

        SQLite's DDL is transactional, but the driver only opens a transaction
        before INSERT/UPDATE/DELETE, so a CREATE TABLE is committed at once
        and a failed migration leaves it behind. SQLAlchemy's recipe: turn off
        the driver's own handling and emit BEGIN. Installed on every SQLite
        connection opened meanwhile, so it also covers an env.py that builds
        its own engine.
        """

        def on_connect(dbapi_connection: Any, _record: object) -> None:
            if _is_sqlite(dbapi_connection):
                dbapi_connection.isolation_level = None

        def on_begin(connection: Connection) -> None:
            raw: Any = connection.connection.dbapi_connection
            if (
                _is_sqlite(raw)
                and raw.isolation_level is None
                and not _sqlite_in_transaction(raw)
                # autocommit asked for (Alembic's autocommit_block): no transaction
                and connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
            ):
                connection.exec_driver_sql("BEGIN")

        sa.event.listen(sa.pool.Pool, "connect", on_connect)
        sa.event.listen(Engine, "begin", on_begin)
        try:
            yield
        finally:
            sa.event.remove(sa.pool.Pool, "connect", on_connect)
            sa.event.remove(Engine, "begin", on_begin)


class SQLiteCatalog(Catalog):
    @classmethod
    def fingerprints(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], str] | None:
        names = [name for schema, name in tables if schema is None]
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = connection.exec_driver_sql(
            f"SELECT tbl_name, type, name, coalesce(sql, '') FROM sqlite_master "
            f"WHERE tbl_name IN ({marks}) ORDER BY tbl_name, type, name", tuple(names),
        ).all()  # fmt: skip
        found: dict[str, list[str]] = {}
        for table, kind, name, sql in rows:  # the DDL as SQLite keeps it, tables and indexes
            found.setdefault(table, []).append(f"{kind}:{name}:{sql}")
        return {(None, t): digest(parts) for t, parts in found.items()}

    @classmethod
    def tables_named(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> set[tuple[str | None, str]] | None:
        names = [name for schema, name in tables if schema is None]
        if not names:
            return set()
        marks = ", ".join("?" for _ in names)
        rows = connection.exec_driver_sql(
            f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
            tuple(names),
        ).scalars()
        return {(None, name) for name in rows}

    @classmethod
    def all_tables(cls, connection: Connection) -> tuple[str, list[tuple[str, str]]] | None:
        rows = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'"
        ).scalars()
        return "main", [("main", name) for name in rows]


class SQLiteScratch(Scratch):
    @contextmanager
    def create(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory(prefix="migrasafe-scratch-") as directory:
            yield f"sqlite:///{Path(directory) / 'scratch.db'}"

    @classmethod
    def tune_session(cls, dbapi_connection: Any) -> None:
        # A scratch file is deleted afterwards: waiting for the disk on each commit buys nothing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    @classmethod
    def empty(cls, connection: Connection, keep: set[str]) -> None:
        # foreign_keys cannot be switched off inside a transaction (migrasafe's BEGIN comes
        # first): deferred, they are checked at the commit, when every table is gone
        connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        rows = connection.exec_driver_sql(
            "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'table') "
            "AND substr(name, 1, 7) <> 'sqlite_' ORDER BY type DESC"
        ).all()  # views first
        for kind, name in rows:
            quoted = name.replace('"', '""')
            connection.exec_driver_sql(f'DROP {kind.upper()} IF EXISTS "{quoted}"')
        connection.commit()


class SQLiteLocks(Locks):
    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        if statement_timeout is not None:
            raise DatabaseError("--statement-timeout is not supported on SQLite")
        if lock_timeout is not None:  # how long a write waits for another connection's lock
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        return "database is locked" in str(getattr(exc, "orig", exc))

    def lock(self) -> Lock | None:
        """An exclusive file lock (flock) next to the database file.

        A lock inside the database (BEGIN EXCLUSIVE) would also block the
        migration's own connection; the kernel drops a flock when its process
        dies, however it dies. The lock file is named after the database
        file's real path (one lock however the path is spelled), opened
        without following a symlink, with the database file's permissions.
        """
        path = database_path(self.url)
        if path is None:
            return None
        real = Path(os.path.realpath(path))
        path = real.with_name(real.name + ".migrasafe-lock")
        try:
            mode = real.stat().st_mode & 0o666
        except OSError:
            mode = 0o644
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        except OSError as exc:
            reason = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise DatabaseError(f"cannot open the migration lock file {path}: {reason}") from exc

        def try_acquire() -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            os.ftruncate(handle, 0)
            os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
            return True

        def holder() -> str:
            pid = os.pread(handle, 32, 0).decode(errors="replace").strip()
            return f"process {pid}" if pid else "another process"

        def release(acquired: bool) -> None:
            try:
                if acquired:
                    os.ftruncate(handle, 0)
                    fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                os.close(handle)

        return Lock(try_acquire, holder, release, lambda: True)


def _is_sqlite(dbapi_connection: Any) -> bool:
    """sqlite3's connection, or SQLAlchemy's adapter of aiosqlite's (an async env.py)."""
    return isinstance(dbapi_connection, sqlite3.Connection) or (
        type(dbapi_connection).__name__ == "AsyncAdapt_aiosqlite_connection"
    )


def _sqlite_in_transaction(dbapi_connection: Any) -> bool:
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.in_transaction
    return bool(getattr(dbapi_connection._connection, "in_transaction", False))


def _sqlite_readonly_creator(uri: str) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True)

    return connect
