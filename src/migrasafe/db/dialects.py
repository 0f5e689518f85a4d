"""Connections, and what differs between database dialects.

Every dialect-specific behaviour migrasafe needs lives in one
:class:`DialectSupport` subclass per dialect, chosen by :func:`support_for`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from migrasafe.errors import DatabaseError, LockLost, LockTimeout

Waiting = Callable[[str], None]
_POLL_SECONDS = 0.2

# user:password@ in anything that looks like a URL; the password may hold ":" or "/".
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^\s]*(?P<tail>@)")
# password=... as a URL query parameter or a libpq keyword (a DSN echoed by a driver).
_SECRET_PARAMETER = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|sslpassword)\s*=\s*)(?P<value>'[^']*'|[^&\s'\"]+)",
    re.IGNORECASE,
)


def _secrets(url: str | URL) -> list[str]:
    """The URL's password and secret query values, however the URL is spelled."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (sa_exc.ArgumentError, ValueError):
        return [m.group("value") for m in _SECRET_PARAMETER.finditer(str(url))]
    found = [str(parsed.password)] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in ("password", "passwd", "pwd", "sslpassword"):
            found += [value] if isinstance(value, str) else list(value)
    return [secret for secret in found if secret]


def scrub(text: str, url: str | URL | None = None) -> str:
    """Remove every password from a message: the URL's, userinfo, ``password=`` parameters."""
    for secret in _secrets(url) if url is not None else []:
        text = text.replace(secret, "***")
    text = _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", text)
    return _SECRET_PARAMETER.sub(r"\g<key>***", text)


def redact(url: str | URL) -> str:
    """The URL with its password masked (userinfo and query), even when it does not parse."""
    if isinstance(url, URL):
        return scrub(url.render_as_string(hide_password=True), url)
    try:
        return scrub(make_url(url).render_as_string(hide_password=True), url)
    except (sa_exc.ArgumentError, ValueError):
        return scrub(url, url)


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - "a:b@c" in an unescaped password fails here, not later
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"malformed database URL {redact(url)!r}: expected "
            "dialect[+driver]://user:password@host/dbname or sqlite:///path "
            "(escape @, : and / in a password as %40, %3A and %2F)"
        ) from exc
    return parsed


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

    # Whether a failed migration's DDL rolls back with its transaction.
    ddl_is_transactional: ClassVar[bool] = True
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
    def scratch_connect_args(cls, driver: str, url: URL, cparams: dict[str, Any]) -> None:
        """Driver arguments for a connection to a scratch database (``url``), before it is
        made: what spares work a session there cannot use."""

    @classmethod
    def session_facts(cls, connection: Connection) -> dict[str, str]:
        """Session settings that decide what an unqualified table name means."""
        return {}

    @classmethod
    def fingerprints(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], str] | None:
        """A digest per table of everything reflection reads of it (columns, keys, indexes,
        constraints), in one query; equal digests mean equal schemas. None: not offered here,
        reflect every time."""
        return None

    @classmethod
    def all_tables(cls, connection: Connection) -> tuple[str, list[tuple[str, str]]] | None:
        """(the default schema, (schema, table) of every table of every user schema) in one
        query; None: not offered here, ask the inspector schema by schema."""
        return None

    @classmethod
    def tables_named(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> set[tuple[str | None, str]] | None:
        """Which of the tables named exist, in one query that does not list them all.
        None: not offered here (then list them, or describe them)."""
        return None

    @classmethod
    def describe(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], Described] | None:
        """The tables named, from the catalog in one query, instead of reflecting them one
        by one (several queries each). None: not offered here, reflect."""
        return None

    @classmethod
    def sync_url(cls, url: URL) -> URL:
        """The URL with a synchronous driver, for migrasafe's own connections."""
        # From the name as written: asking the URL would load the dialect, which may be missing.
        backend, _, written = url.drivername.partition("+")
        driver = cls.sync_drivers.get(written)
        return url if driver is None else url.set(drivername=f"{backend}+{driver}")

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
    def migration_lock(
        self, timeout: float, waiting: Waiting | None = None
    ) -> Iterator[Callable[[], None]]:
        """Held while migrating, so that concurrent runs take turns.

        Polls without blocking so that a waiting run can say so, and gives up
        after ``timeout`` seconds. The lock belongs to the process (a file
        lock, a database session), so a holder that dies releases it. Yields a
        check that raises :class:`LockLost` if the lock is no longer held
        (its database session ended): call it before committing each revision.
        A failure to release (the session is already gone) never replaces the
        error that is on its way out.
        """
        lock = self._lock()
        if lock is None:
            yield lambda: None
            return
        deadline = time.monotonic() + timeout
        said = False
        while not lock.try_acquire():
            if not said and waiting is not None:
                waiting(
                    f"waiting for the migration lock on {redact(self.url)}, held by {lock.holder()}"
                )
                said = True
            if time.monotonic() > deadline:
                who = lock.holder()
                lock.release(False)
                raise LockTimeout(
                    f"gave up after {timeout:g} s waiting for the migration lock on "
                    f"{redact(self.url)}, held by {who}; if that run is stuck, stop it, "
                    "or wait longer with --lock-timeout"
                )
            time.sleep(_POLL_SECONDS)

        def check() -> None:
            if not lock.alive():
                raise LockLost(
                    f"lost the migration lock on {redact(self.url)} (its database session "
                    "ended): stopped before committing, so no other run can migrate alongside"
                )

        try:
            yield check
        finally:
            try:
                lock.release(True)
            except Exception:
                # The session is gone, and the server released the lock with it.
                logging.getLogger(__name__).debug("releasing the lock failed", exc_info=True)

    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        """Limit how long each statement of this session waits for a lock, and runs."""
        if lock_timeout is not None or statement_timeout is not None:
            raise DatabaseError(
                "--db-lock-timeout and --statement-timeout are not supported on "
                f"{self.url.get_backend_name()}"
            )

    def is_lock_conflict(self, exc: BaseException) -> bool:
        """A lock wait that timed out, or a deadlock: worth trying the revision again."""
        return False

    @contextmanager
    def blocker_watch(self, connection: Connection) -> Iterator[Callable[[], str | None]]:
        """While inside, who blocks ``connection`` (the last seen), described in a phrase."""
        yield lambda: None

    def _lock(self) -> _Lock | None:
        """The lock for this database; None: no lock here."""
        return None


@dataclass
class _Lock:
    try_acquire: Callable[[], bool]
    holder: Callable[[], str]
    release: Callable[[bool], None]
    alive: Callable[[], bool]


def _digest(parts: list[str]) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


# One query for everything verify compares of the tables named: columns (type, nullability,
# default, identity, generated), constraints as pg_get_constraintdef renders them, indexes
# key by key (expressions included) with their predicate.
_PG_DESCRIBE = """
SELECT n.nspname, c.relname, current_schema(),
  (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                   NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                   a.attgenerated) ORDER BY a.attnum)
     FROM pg_catalog.pg_attribute a
     LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT json_agg(json_build_array(k.conname, k.contype,
            (SELECT json_agg(a.attname ORDER BY u.ord)
               FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num),
            fn.nspname, fc.relname,
            (SELECT json_agg(a.attname ORDER BY u.ord)
               FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num),
            k.confdeltype, pg_get_constraintdef(k.oid, true)) ORDER BY k.conname)
     FROM pg_catalog.pg_constraint k
     LEFT JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid
     LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
    WHERE k.conrelid = c.oid),
  (SELECT json_agg(json_build_array(ic.relname, i.indisunique, i.indisprimary,
            (SELECT json_agg(pg_get_indexdef(i.indexrelid, s, true) ORDER BY s)
               FROM generate_series(1, i.indnkeyatts) s),
            pg_get_expr(i.indpred, i.indrelid, true), am.amname) ORDER BY ic.relname)
     FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
     JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    WHERE i.indrelid = c.oid)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = ANY(%s) AND c.relkind IN ('r', 'p')
"""

# Every table of every user schema (as the inspector lists them: plain and partitioned).
_PG_ALL_TABLES = """
SELECT current_schema(), n.nspname, c.relname
  FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class c
       ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
 WHERE n.nspname <> 'information_schema' AND left(n.nspname, 3) <> 'pg_'
"""

# describe's query as a function of the scratch session (pg_temp: it ends with the session),
# where PL/pgSQL keeps its plan. Planning the query took 0.5-1 ms of its 0.7-1.2 ms, each
# time: psycopg's own prepared statements are deallocated after every DROP and ROLLBACK,
# which downgrades send. A function, not PREPARE, as psycopg's DEALLOCATE ALL spares it.
_PG_DESCRIBE_FUNCTION = (
    "CREATE FUNCTION pg_temp.migrasafe_describe(names text[]) RETURNS TABLE(o_schema name, "
    "o_table name, o_default name, o_columns json, o_constraints json, o_indexes json) "
    "LANGUAGE plpgsql STABLE AS $f$ BEGIN RETURN QUERY"
    + _PG_DESCRIBE.replace("%s", "names")
    + "; END $f$"
)
# The scratch sessions (psycopg's connections) that hold that function.
_DESCRIBE_FUNCTION_ON: weakref.WeakSet[Any] = weakref.WeakSet()

# pg_constraint.confdeltype -> the ON DELETE rule; "a" (NO ACTION) is the default, as None.
_PG_ON_DELETE = {"r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


class Described(NamedTuple):
    """One table as the catalog describes it, in the parts verify compares."""

    columns: dict[str, tuple[str, bool, str | None]]  # name -> (type, nullable, default)
    primary_key: tuple[str, ...]
    indexes: frozenset[tuple[str | None, tuple[str, ...], bool]]
    uniques: frozenset[tuple[str | None, tuple[str, ...]]]
    # (name, columns, (referred schema, referred table), referred columns, on delete)
    foreign_keys: frozenset[
        tuple[str | None, tuple[str, ...], tuple[str | None, str], tuple[str, ...], str | None]
    ]
    checks: frozenset[tuple[str | None, str | None]]  # (name, text as the database renders it)


def _pg_described(row: Any) -> Described:
    _schema, _name, default_schema, columns, constraints, indexes = row
    described_columns = {}
    for name, kind, nullable, default, identity, generated in columns or ():
        if identity:
            default = f"identity {'always' if identity == 'a' else 'by default'}"
        elif generated:
            default = f"generated always as {default} stored"
        described_columns[name] = (kind, nullable, default)
    primary: tuple[str, ...] = ()
    uniques, foreign_keys, checks = set(), set(), set()
    for name, kind, keys, fschema, ftable, fkeys, on_delete, text in constraints or ():
        if kind == "p":
            primary = tuple(keys)
        elif kind == "u":
            uniques.add((name, tuple(keys)))
        elif kind == "f":
            where = None if fschema == default_schema else fschema
            rule = _PG_ON_DELETE.get(on_delete)
            foreign_keys.add((name, tuple(keys), (where, ftable), tuple(fkeys), rule))
        elif kind == "c":
            checks.add((name, text.removeprefix("CHECK ")))
        else:  # exclusion and trigger constraints: compared as the database renders them
            checks.add((name, text))
    described_indexes = set()
    for name, unique, is_primary, keys, predicate, method in indexes or ():
        if is_primary:
            continue
        parts = tuple(keys) + ((f"USING {method}",) if method != "btree" else ())
        parts += (f"WHERE {predicate}",) if predicate else ()
        described_indexes.add((name, parts, bool(unique)))
    return Described(described_columns, primary, frozenset(described_indexes),
                     frozenset(uniques), frozenset(foreign_keys), frozenset(checks))  # fmt: skip


class SQLiteSupport(DialectSupport):
    name = "sqlite"
    sync_drivers: ClassVar[dict[str, str]] = {"aiosqlite": "pysqlite"}

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
        return {(None, t): _digest(parts) for t, parts in found.items()}

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

    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        if statement_timeout is not None:
            raise DatabaseError("--statement-timeout is not supported on SQLite")
        if lock_timeout is not None:  # how long a write waits for another connection's lock
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        return "database is locked" in str(getattr(exc, "orig", exc))

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

    def _lock(self) -> _Lock | None:
        """An exclusive file lock (flock) next to the database file.

        A lock inside the database (BEGIN EXCLUSIVE) would also block the
        migration's own connection; the kernel drops a flock when its process
        dies, however it dies. The lock file is named after the database
        file's real path (one lock however the path is spelled), opened
        without following a symlink, with the database file's permissions.
        """
        if self.path is None:
            return None
        real = Path(os.path.realpath(self.path))
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

        return _Lock(try_acquire, holder, release, lambda: True)


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


class _ServerSupport(DialectSupport):
    """What PostgreSQL and MySQL/MariaDB share: a server to create scratch databases on,
    and sessions to watch while a migration waits for a lock."""

    install: ClassVar[str] = ""  # the extra that brings the driver
    # Where to connect to create and drop a scratch database (None: no database).
    admin_database: ClassVar[str | None] = None

    def _quote(self, name: str) -> str:
        raise NotImplementedError

    def _drop(self, name: str) -> str:
        return f"DROP DATABASE IF EXISTS {self._quote(name)}"

    def _scratch_settings(self, name: str, version: tuple[int, ...]) -> list[str]:
        """Statements run on a new scratch database's behalf, for every session on it."""
        return []

    def _learn_server(self, admin: Connection) -> None:
        """What the admin session shows of the server that scratch sessions can use."""

    @contextmanager
    def scratch(self) -> Iterator[str]:
        """A new database on the same server, created and dropped through the admin database,
        so that not one session is opened on the database the URL names."""
        name = f"migrasafe_scratch_{uuid.uuid4().hex[:12]}"
        try:
            admin = sa.create_engine(self.engine_url.set(database=self.admin_database),
                                     isolation_level="AUTOCOMMIT", poolclass=NullPool)  # fmt: skip
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {self._quote(name)}")
                version = tuple(
                    v for v in conn.dialect.server_version_info or (0,) if isinstance(v, int)
                )
                for statement in self._scratch_settings(name, version):
                    conn.exec_driver_sql(statement)
                self._learn_server(conn)
        except (sa_exc.NoSuchModuleError, ImportError) as exc:
            raise DatabaseError(
                f"no driver for {redact(self.url)}: {describe_error(exc, self.url)}. "
                f"pip install 'migrasafe[{self.install}]'"
            ) from exc
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {redact(self.url)}: "
                f"{describe_error(exc, self.url)}"
            ) from exc
        try:
            yield self.engine_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(self._drop(name))
            admin.dispose()

    def _own_session(self, **engine_options: Any) -> tuple[Engine, Connection]:
        """A session of migrasafe's own (for its lock), with a failure to connect in one line."""
        engine = sa.create_engine(self.engine_url, poolclass=NullPool, **engine_options)
        try:
            return engine, engine.connect()
        except sa_exc.DBAPIError as exc:
            engine.dispose()
            raise DatabaseError(
                f"cannot connect to {redact(self.url)}: {describe_error(exc, self.url)}"
            ) from exc

    def _session_id(self, connection: Connection) -> object:
        raise NotImplementedError

    def _blockers(self, watcher: Connection, session: object) -> list[str]:
        """Who blocks ``session`` now, each in a phrase (empty: nobody, or not waiting)."""
        raise NotImplementedError

    @contextmanager
    def blocker_watch(self, connection: Connection) -> Iterator[Callable[[], str | None]]:
        """Samples who blocks the migration's session, on a connection of its own."""
        session = self._session_id(connection)
        seen: list[str] = []
        stop = threading.Event()
        engine = sa.create_engine(self.engine_url, poolclass=NullPool,
                                  isolation_level="AUTOCOMMIT")  # fmt: skip

        def sample() -> None:
            try:
                with engine.connect() as watcher:
                    while not stop.wait(0.1):
                        found = self._blockers(watcher, session)
                        if found:
                            seen[:] = found
            except sa_exc.DBAPIError:
                pass  # the watch only explains; it never fails the run

        thread = threading.Thread(target=sample, name="migrasafe-blockers", daemon=True)
        thread.start()
        try:
            yield lambda: "; ".join(seen) or None
        finally:
            stop.set()
            thread.join(timeout=5)
            engine.dispose()


class PostgreSQLSupport(_ServerSupport):
    name = "postgresql"
    sync_drivers: ClassVar[dict[str, str]] = {"asyncpg": "psycopg", "psycopg_async": "psycopg"}
    install = "postgres"
    admin_database = "postgres"  # the maintenance database, as createdb uses

    def _quote(self, name: str) -> str:
        return f'"{name}"'

    def _drop(self, name: str) -> str:
        return f"{super()._drop(name)} WITH (FORCE)"

    def _scratch_settings(self, name: str, version: tuple[int, ...]) -> list[str]:
        # The database is dropped afterwards: a commit need not wait for its WAL to reach disk.
        settings = [f"ALTER DATABASE {self._quote(name)} SET synchronous_commit = off"]
        if version >= (12,):
            # Only what asks for it is prepared on a scratch session (tune_scratch_session):
            # describe's catalog query, whose custom plan took 0.5 ms of its 0.7 ms per run, as
            # PostgreSQL's cost estimate keeps re-planning it (the generic plan runs in 0.2 ms).
            settings.append(
                f"ALTER DATABASE {self._quote(name)} SET plan_cache_mode = force_generic_plan"
            )
        return settings

    def _session_id(self, connection: Connection) -> object:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    def _blockers(self, watcher: Connection, session: object) -> list[str]:
        return [_describe_blocker(row) for row in watcher.execute(_BLOCKERS, {"pid": session})]

    @classmethod
    def tune_scratch_session(cls, dbapi_connection: Any) -> None:
        # psycopg prepares a statement run five times, and every executemany; verify reads the
        # same table before and after a migration changes a column's type ("cached plan must
        # not change result type"), and psycopg deallocates what it prepared after every DROP,
        # ALTER and ROLLBACK (one more round trip). So nothing is prepared on a scratch.
        if hasattr(dbapi_connection, "prepare_threshold"):
            dbapi_connection.prepare_threshold = None
            if dbapi_connection.info.server_version >= 120000:  # describe's query: see there
                try:
                    dbapi_connection.execute(_PG_DESCRIBE_FUNCTION)
                    dbapi_connection.commit()
                    _DESCRIBE_FUNCTION_ON.add(dbapi_connection)
                except Exception:  # no TEMP privilege, say: describe runs the query as it is
                    dbapi_connection.rollback()

    @classmethod
    def all_tables(cls, connection: Connection) -> tuple[str, list[tuple[str, str]]] | None:
        rows = connection.exec_driver_sql(_PG_ALL_TABLES).all()  # every schema, tables or not
        default = (rows[0][0] if rows else None) or ""  # no schema on the search_path: ""
        return str(default), [(schema, name) for _, schema, name in rows if name is not None]

    @classmethod
    def describe(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], Described] | None:
        if (connection.dialect.server_version_info or (0,)) < (12,):
            return None  # pg_attribute.attgenerated is 12's: reflect there
        if not tables:
            return {}
        names = ([n for _, n in tables],)
        raw = getattr(connection.connection, "dbapi_connection", None)
        if raw is not None and raw in _DESCRIBE_FUNCTION_ON:  # a scratch session's function
            rows = raw.execute("SELECT * FROM pg_temp.migrasafe_describe(%s)", names).fetchall()
        else:
            rows = connection.exec_driver_sql(_PG_DESCRIBE, names).all()
        wanted = set(tables)
        found = {}
        for row in rows:
            key = (None if row[0] == row[2] else row[0], row[1])
            if key in wanted:
                found[key] = _pg_described(row)
        return found

    @classmethod
    def session_facts(cls, connection: Connection) -> dict[str, str]:
        return {"search_path": str(connection.exec_driver_sql("SHOW search_path").scalar())}

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

    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        for setting, seconds in (("lock_timeout", lock_timeout),
                                 ("statement_timeout", statement_timeout)):  # fmt: skip
            if seconds is not None:
                connection.exec_driver_sql(f"SET {setting} = '{int(seconds * 1000)}ms'")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        # 55P03 lock_not_available (lock_timeout), 40P01 deadlock_detected
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) in {"55P03", "40P01"}

    def _lock(self) -> _Lock | None:
        """A session-level advisory lock, as Flyway takes one.

        It lives on its own connection: the server drops it when that session
        ends, including when the process holding it is killed.
        """
        key = _LOCK_KEY
        engine, connection = self._own_session(isolation_level="AUTOCOMMIT")

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

        def alive() -> bool:
            try:
                return bool(connection.scalar(sa.text("SELECT pg_backend_pid() > 0")))
            except sa_exc.DBAPIError:
                return False

        return _Lock(try_acquire, holder, release, alive)

    def readonly_engine(self) -> Engine:
        engine = self.engine()

        @sa.event.listens_for(engine, "begin")
        def _read_only(connection: Connection) -> None:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

        return engine


# (host, port) of the MySQL servers where a scratch database's admin session had no TLS.
_NO_TLS: set[tuple[str | None, int | None]] = set()


class MySQLSupport(_ServerSupport):
    """MySQL and MariaDB. Their DDL commits at once: a revision that fails midway
    keeps the DDL that ran before the failure (Alembic cannot roll it back)."""

    name = "mysql"
    ddl_is_transactional = False
    sync_drivers: ClassVar[dict[str, str]] = {"aiomysql": "pymysql", "asyncmy": "pymysql"}
    install = "mysql"

    def _quote(self, name: str) -> str:
        return f"`{name}`"

    def _learn_server(self, admin: Connection) -> None:
        cipher = admin.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").first()
        if admin.dialect.driver == "pymysql" and not (cipher and cipher[1]):
            _NO_TLS.add((self.engine_url.host, self.engine_url.port))

    @classmethod
    def scratch_connect_args(cls, driver: str, url: URL, cparams: dict[str, Any]) -> None:
        # PyMySQL tries TLS unless told otherwise, and first builds a TLS context with the
        # system's certificates: 18 ms a connection, and verify connects once a step on
        # MySQL. On a server where migrasafe's own session found no TLS, it cannot be used.
        if (driver == "pymysql" and (url.host, url.port) in _NO_TLS
                and not any(key.startswith("ssl") for key in cparams)):  # fmt: skip
            cparams["ssl_disabled"] = True

    def _session_id(self, connection: Connection) -> object:
        return connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()

    def _blockers(self, watcher: Connection, session: object) -> list[str]:
        """While the migration waits for a lock, the sessions with a transaction open.

        MySQL and MariaDB do not say who holds a metadata lock (what DDL waits
        for) without extra instrumentation; those sessions are the candidates,
        oldest first.
        """
        if not watcher.execute(_MYSQL_WAITING, {"pid": session}).scalar():
            return []
        return [
            f"connection {r.id} ({r.user}@{r.host}, transaction open {r.open_for} s, "
            f"query: {r.query!r})"
            for r in watcher.execute(_MYSQL_OPEN, {"pid": session})
        ]

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        cparams["init_command"] = "SET SESSION TRANSACTION READ ONLY"
        return None

    def _lock(self) -> _Lock | None:
        """``GET_LOCK`` on a connection of its own: the server releases it when that session ends.

        Lock names are server-wide, so the name carries the database's.
        """
        key = f"migrasafe:{self.url.database or ''}"[:64]
        engine, connection = self._own_session()

        def scalar(sql: str) -> Any:
            value = connection.scalar(sa.text(sql), {"k": key})
            connection.commit()
            return value

        def holder() -> str:
            row = connection.execute(
                sa.text("SELECT ID, USER, HOST, TIME FROM information_schema.PROCESSLIST "
                        "WHERE ID = IS_USED_LOCK(:k)"), {"k": key},
            ).first()  # fmt: skip
            connection.commit()
            if row is None:
                return "another session"
            return f"connection {row.ID} ({row.USER}@{row.HOST}, for {row.TIME} s)"

        def release(acquired: bool) -> None:
            try:
                if acquired:
                    scalar("SELECT RELEASE_LOCK(:k)")
            finally:
                connection.close()
                engine.dispose()

        def alive() -> bool:
            try:
                return bool(scalar("SELECT IS_USED_LOCK(:k) = CONNECTION_ID()"))
            except sa_exc.DBAPIError:
                return False

        return _Lock(lambda: scalar("SELECT GET_LOCK(:k, 0)") == 1, holder, release, alive)

    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        if lock_timeout is not None:  # metadata locks (DDL) and row locks (InnoDB)
            seconds = max(1, math.ceil(lock_timeout))
            connection.exec_driver_sql(
                f"SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"
            )
        if statement_timeout is not None:
            if getattr(connection.dialect, "is_mariadb", False):
                connection.exec_driver_sql(f"SET SESSION max_statement_time = {statement_timeout}")
            else:
                milliseconds = int(statement_timeout * 1000)
                connection.exec_driver_sql(f"SET SESSION max_execution_time = {milliseconds}")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        # 1205 lock wait timeout exceeded, 1213 deadlock found
        args: tuple[Any, ...] = tuple(getattr(getattr(exc, "orig", exc), "args", ()))
        return bool(args) and args[0] in (1205, 1213)


_MYSQL_WAITING = sa.text(
    "SELECT STATE LIKE 'Waiting for%lock%' FROM information_schema.PROCESSLIST WHERE ID = :pid"
)
_MYSQL_OPEN = sa.text(
    "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, "
    "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS open_for, "
    "LEFT(COALESCE(t.trx_query, p.INFO, ''), 60) AS query "
    "FROM information_schema.INNODB_TRX t "
    "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
    "WHERE p.ID <> :pid ORDER BY t.trx_started"
)
_BLOCKERS = sa.text(
    "SELECT pid, application_name, state, now() - xact_start AS open_for, "
    "left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS query "
    "FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(:pid))"
)


def _describe_blocker(row: Any) -> str:
    opened = f", transaction open {row.open_for.total_seconds():.1f} s" if row.open_for else ""
    return (f"server process {row.pid} ({row.application_name or 'no application name'}"
            f"{opened}, {row.state}, query: {row.query!r})")  # fmt: skip


# One key for "migrating", the same for every migrasafe and every database name
# (advisory locks are per database): crc32 of a fixed string.
_LOCK_KEY = zlib.crc32(b"migrasafe migration lock")

_SUPPORT: dict[str, type[DialectSupport]] = {
    cls.name: cls for cls in (SQLiteSupport, PostgreSQLSupport, MySQLSupport)
}
_SUPPORT["mariadb"] = MySQLSupport


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
