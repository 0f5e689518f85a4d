"""SQLite: a file (where it is: :mod:`.sqlite_files`), a lock file for the migration
lock (:mod:`.lockfile`), and DDL that the driver must be told to keep inside its
transaction."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from migrasafe.db.catalog import Catalog, digest
from migrasafe.db.lockfile import LockFile, private_lock_directory
from migrasafe.db.locks import Lock, Locks
from migrasafe.db.scratch import Scratch
from migrasafe.db.sessions import Sessions
from migrasafe.db.sqlite_files import (
    MEMORY,
    database_path,
    driver_filename,
    file_of,
    readonly_uri,
)
from migrasafe.errors import DatabaseError


class SQLiteSessions(Sessions):
    name = "sqlite"
    sync_drivers: ClassVar[dict[str, str]] = {"aiosqlite": "pysqlite"}

    @property
    def path(self) -> Path | None:
        return database_path(self.url)

    def identity(self) -> tuple[object, ...]:
        # The file itself (a hard link, a symlink, a file: URI: one database); by its real
        # path while it does not exist yet.
        path = self.path
        if path is None:
            return ("sqlite", self.url.database)
        try:
            found = os.stat(path)
        except OSError:
            return ("sqlite", os.path.realpath(path))
        return ("sqlite", found.st_dev, found.st_ino)

    def exists(self) -> bool:
        # Connecting to a missing SQLite file creates it: look before connecting.
        return self.path is None or self.path.is_file()

    def readonly_engine(self) -> Engine:
        path = self.path
        if path is None:
            return self.engine()
        params = file_of(driver_filename(self.url))[1]
        return sa.create_engine(
            "sqlite://", creator=_sqlite_readonly_creator(path, params), poolclass=NullPool
        )

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        if not cargs or not isinstance(cargs[0], str):
            return None
        path, params = file_of(cargs[0])
        if path is None:  # in memory: nothing to protect
            return None
        if not path.is_file():
            cargs[0] = MEMORY
            return str(path)
        cargs[0] = readonly_uri(path, params)
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
            # autocommit asked for (Alembic's autocommit_block): no transaction
            if not _is_sqlite(raw) or (
                connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            ):
                return
            # The block's end sets the isolation level back, and SQLAlchemy gives the driver
            # its own transaction handling again (isolation_level ""): taken back here, or
            # every later revision of the run would commit its DDL at once.
            raw.isolation_level = None
            if not _sqlite_in_transaction(raw):
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
        """Exclusive file locks (flock) for the database file, however it is named.

        A lock inside the database (BEGIN EXCLUSIVE) would also block the
        migration's own connection; the kernel drops a flock when its process
        dies, however it dies. The database file itself is never opened for
        it: closing any descriptor of that file drops the POSIX locks SQLite
        holds on it in this process. Two lock files, taken in this order:

        - beside the database, named after its real path (a symlink, a
          ``file:`` URI and any spelling of the path share it, and so do
          containers sharing the volume);
        - in a private directory of the user's under /tmp, named after the
          file's device and inode: a hard link, under any name in any
          directory, shares it (skipped while the file does not exist: no
          hard link to it can exist either, and the first lock serialises
          the runs that create it).
        """
        path = database_path(self.url)
        if path is None:
            return None
        real = Path(os.path.realpath(path))
        try:
            found: os.stat_result | None = os.stat(real)
        except FileNotFoundError:
            found = None
        mode, owner = (found.st_mode & 0o666, found.st_uid) if found else (0o644, os.geteuid())
        files = [LockFile(real.with_name(real.name + ".migrasafe-lock"), mode,
                           {os.geteuid(), owner})]  # fmt: skip
        directory = private_lock_directory() if found is not None else None
        if found is not None and directory is not None:
            name = f"sqlite-{found.st_dev}-{found.st_ino}.lock"
            files.append(LockFile(directory / name, 0o600, {os.geteuid()}, transient=True))
        blocked: list[LockFile] = []

        def try_acquire() -> bool:
            taken: list[LockFile] = []
            try:
                for file in files:
                    if not file.acquire():
                        blocked[:] = [file]
                        return False
                    taken.append(file)
                taken.clear()  # all held: kept
                return True
            finally:  # all or none: a refused lock file lets go of the one before it too
                for done in reversed(taken):
                    done.release()

        def holder() -> str:
            pid = blocked[0].seen if blocked else ""
            return f"process {pid}" if pid else "another process"

        def release(acquired: bool) -> None:
            for file in reversed(files):
                if acquired:
                    file.release()
                else:
                    file.close()

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


def _sqlite_readonly_creator(
    path: Path, params: dict[str, str]
) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(readonly_uri(path, params), uri=True)

    return connect
