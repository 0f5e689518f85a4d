"""Connections, and what differs between database dialects.

Every dialect-specific behaviour migrasafe needs lives in one
:class:`DialectSupport` subclass per dialect, chosen by :func:`support_for`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sqlite3
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from .errors import DatabaseError, LockTimeout

Waiting = Callable[[str], None]
_POLL_SECONDS = 0.2

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^@\s]*(?P<tail>@)")


def redact(url: str | URL) -> str:
    """The URL with its password masked, even when the URL does not parse."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", url)


def scrub(text: str, url: str | URL) -> str:
    """Remove the URL's password from a message (drivers sometimes echo the DSN)."""
    try:
        password = make_url(url).password if isinstance(url, str) else url.password
    except sa_exc.ArgumentError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", text)


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except sa_exc.ArgumentError as exc:
        raise DatabaseError(
            f"malformed database URL {redact(url)!r}: expected "
            "dialect[+driver]://user:password@host/dbname or sqlite:///path"
        ) from exc


def describe_error(exc: BaseException, url: str | URL) -> str:
    """A one-line description of a database error, without the password."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        text = f"{type(exc.orig).__name__}: {exc.orig}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return scrub(" ".join(text.split()), url)


class DialectSupport:
    """Behaviour shared by every dialect; subclasses override what differs."""

    name: ClassVar[str] = "default"

    def __init__(self, url: URL) -> None:
        self.url = url
        self.engine_url = self.sync_url(url)

    # Async drivers and the sync driver migrasafe uses beside them (for its lock).
    sync_drivers: ClassVar[dict[str, str]] = {}

    def exists(self) -> bool:
        """Whether the database exists, answered without creating it."""
        return True

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        """Change a driver's connect arguments so its session cannot write.

        Returns the path of a database that does not exist (SQLite), which
        must not be created by connecting: the connection goes to an empty
        in-memory database instead. None otherwise.
        """
        return None

    @classmethod
    def tune_scratch_session(cls, dbapi_connection: Any) -> None:
        """Settings for a scratch database that is thrown away afterwards."""

    @classmethod
    def sync_url(cls, url: URL) -> URL:
        """The URL with a synchronous driver, for migrasafe's own connections."""
        driver = cls.sync_drivers.get(url.get_driver_name())
        return url if driver is None else url.set(drivername=f"{url.get_backend_name()}+{driver}")

    def identity(self) -> tuple[object, ...]:
        """What names one database: the same on two URLs means the same database."""
        return (self.url.get_backend_name(), self.url.host or "localhost", self.url.port,
                self.url.database)  # fmt: skip

    def engine(self) -> Engine:
        return sa.create_engine(self.engine_url, poolclass=NullPool)

    def readonly_engine(self) -> Engine:
        """An engine whose connections cannot change the database."""
        return self.engine()

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """A new empty database next to this one, removed afterwards; yields its URL."""
        raise DatabaseError(
            f"cannot create a scratch database on {self.url.get_backend_name()}: "
            "use a sqlite or postgresql URL"
        )
        yield ""  # pragma: no cover

    @classmethod
    @contextmanager
    def transactional_ddl(cls) -> Iterator[None]:
        """While inside, DDL on this dialect rolls back with its transaction."""
        yield

    @contextmanager
    def migration_lock(self, timeout: float, waiting: Waiting | None = None) -> Iterator[None]:
        """Held while migrating, so that concurrent runs take turns.

        Polls without blocking so that a waiting run can say so, and gives up
        after ``timeout`` seconds. The lock belongs to the process (a file
        lock, a database session), so a holder that dies releases it.
        """
        lock = self._lock()
        if lock is None:
            yield
            return
        try_acquire, holder, release = lock
        deadline = time.monotonic() + timeout
        said = False
        while not try_acquire():
            if not said and waiting is not None:
                waiting(f"waiting for the migration lock on {redact(self.url)}, held by {holder()}")
                said = True
            if time.monotonic() > deadline:
                who = holder()
                release(False)
                raise LockTimeout(
                    f"gave up after {timeout:g} s waiting for the migration lock on "
                    f"{redact(self.url)}, held by {who}; if that run is stuck, stop it, "
                    "or wait longer with --lock-timeout"
                )
            time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            release(True)

    def _lock(
        self,
    ) -> tuple[Callable[[], bool], Callable[[], str], Callable[[bool], None]] | None:
        """(try_acquire, describe the holder, release(acquired)); None: no lock here."""
        return None


class SQLiteSupport(DialectSupport):
    name = "sqlite"
    sync_drivers: ClassVar[dict[str, str]] = {"aiosqlite": "pysqlite"}

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
    def tune_scratch_session(cls, dbapi_connection: Any) -> None:
        # A scratch file is deleted afterwards: waiting for the disk on each commit buys nothing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    def identity(self) -> tuple[object, ...]:
        path = self.path
        return ("sqlite", str(path.resolve()) if path is not None else self.url.database)

    @property
    def path(self) -> Path | None:
        database = self.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def exists(self) -> bool:
        # Connecting to a missing SQLite file creates it: look before connecting.
        return self.path is None or self.path.is_file()

    @contextmanager
    def scratch(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory(prefix="migrasafe-scratch-") as directory:
            yield f"sqlite:///{Path(directory) / 'scratch.db'}"

    def readonly_engine(self) -> Engine:
        if self.path is None:
            return self.engine()
        uri = f"file:{quote(self.path.resolve().as_posix())}?mode=ro"
        return sa.create_engine(
            "sqlite://", creator=_sqlite_readonly_creator(uri), poolclass=NullPool
        )

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

    def _lock(
        self,
    ) -> tuple[Callable[[], bool], Callable[[], str], Callable[[bool], None]] | None:
        """An exclusive file lock (flock) next to the database file.

        A lock inside the database (BEGIN EXCLUSIVE) would also block the
        migration's own connection; the kernel drops a flock when its process
        dies, however it dies.
        """
        if self.path is None:
            return None
        path = self.path.with_name(self.path.name + ".migrasafe-lock")
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

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
            if acquired:
                os.ftruncate(handle, 0)
                fcntl.flock(handle, fcntl.LOCK_UN)
            os.close(handle)

        return try_acquire, holder, release


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


class PostgreSQLSupport(DialectSupport):
    name = "postgresql"
    sync_drivers: ClassVar[dict[str, str]] = {"asyncpg": "psycopg", "psycopg_async": "psycopg"}

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        if driver == "asyncpg":
            settings = dict(cparams.get("server_settings") or {})
            settings["default_transaction_read_only"] = "on"
            cparams["server_settings"] = settings
        else:  # libpq drivers: psycopg, psycopg2, pg8000 ignores it
            option = "-c default_transaction_read_only=on"
            cparams["options"] = f"{cparams.get('options', '')} {option}".strip()
        return None

    @contextmanager
    def scratch(self) -> Iterator[str]:
        name = f"migrasafe_scratch_{uuid.uuid4().hex[:12]}"
        # Through the maintenance database, as createdb does: not one session is
        # opened on the database the URL names.
        admin = sa.create_engine(self.engine_url.set(database="postgres"),
                                 isolation_level="AUTOCOMMIT", poolclass=NullPool)  # fmt: skip
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {redact(self.url)}: "
                f"{describe_error(exc, self.url)}"
            ) from exc
        try:
            yield self.engine_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

    def _lock(
        self,
    ) -> tuple[Callable[[], bool], Callable[[], str], Callable[[bool], None]] | None:
        """A session-level advisory lock, as Flyway takes one.

        It lives on its own connection: the server drops it when that session
        ends, including when the process holding it is killed.
        """
        key = _LOCK_KEY
        engine = sa.create_engine(self.engine_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            connection = engine.connect()
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot connect to {redact(self.url)}: {describe_error(exc, self.url)}"
            ) from exc

        def try_acquire() -> bool:
            return bool(connection.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))

        def holder() -> str:
            row = connection.execute(
                sa.text(
                    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :hi AND l.objid = :lo"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            ).first()
            if row is None:
                return "another session"
            return (
                f"server process {row.pid} (client {row.client_addr or 'local'}, "
                f"connected {row.backend_start:%Y-%m-%d %H:%M:%S})"
            )

        def release(acquired: bool) -> None:
            try:
                if acquired:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                connection.close()
                engine.dispose()

        return try_acquire, holder, release

    def readonly_engine(self) -> Engine:
        engine = self.engine()

        @sa.event.listens_for(engine, "begin")
        def _read_only(connection: Connection) -> None:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

        return engine


# One key for "migrating", the same for every migrasafe and every database name
# (advisory locks are per database): crc32 of a fixed string.
_LOCK_KEY = zlib.crc32(b"migrasafe migration lock")

_SUPPORT: dict[str, type[DialectSupport]] = {
    cls.name: cls for cls in (SQLiteSupport, PostgreSQLSupport)
}


def support_class(backend: str) -> type[DialectSupport]:
    """The class holding what differs on this dialect (by backend name, e.g. "sqlite")."""
    return _SUPPORT.get(backend, DialectSupport)


def support_for(url: str | URL) -> DialectSupport:
    parsed = parse_url(url) if isinstance(url, str) else url
    return support_class(parsed.get_backend_name())(parsed)


def same_database(a: str | URL, b: str | URL) -> bool:
    """Whether two URLs name the same database (driver and credentials aside)."""
    return support_for(a).identity() == support_for(b).identity()


@contextmanager
def connect(url: str, *, readonly: bool = False) -> Iterator[Connection]:
    """A connection, with every failure to connect turned into a DatabaseError."""
    support = support_for(url)
    try:
        engine = support.readonly_engine() if readonly else support.engine()
    except (sa_exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DatabaseError(
            f"no driver for {redact(url)}: {exc}. For PostgreSQL: pip install 'migrasafe[postgres]'"
        ) from exc
    try:
        connection = engine.connect()
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(f"cannot connect to {redact(url)}: {describe_error(exc, url)}") from exc
    try:
        yield connection
    finally:
        connection.close()
        engine.dispose()


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger's INFO lines (Alembic's "Context impl ..." on every read)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def read_current_heads(
    url: str, version_table: str = "alembic_version", version_table_schema: str | None = None
) -> tuple[str, ...]:
    """The revisions recorded in the database, read without writing anything.

    A database that does not exist yet (a missing SQLite file) has none.
    """
    if not support_for(url).exists():
        return ()
    with connect(url, readonly=True) as connection, _quiet("alembic.runtime.migration"):
        context = MigrationContext.configure(
            connection,
            opts={"version_table": version_table, "version_table_schema": version_table_schema},
        )
        try:
            return tuple(context.get_current_heads())
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot read {version_table} in {redact(url)}: {describe_error(exc, url)}"
            ) from exc
