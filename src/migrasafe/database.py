"""Connections, and what differs between database dialects.

Every dialect-specific behaviour migrasafe needs lives in one
:class:`DialectSupport` subclass per dialect, chosen by :func:`support_for`.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from .errors import DatabaseError

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

    def exists(self) -> bool:
        """Whether the database exists, answered without creating it."""
        return True

    def engine(self) -> Engine:
        return sa.create_engine(self.url, poolclass=NullPool)

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


class SQLiteSupport(DialectSupport):
    name = "sqlite"

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


def _sqlite_readonly_creator(uri: str) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True)

    return connect


class PostgreSQLSupport(DialectSupport):
    name = "postgresql"

    @contextmanager
    def scratch(self) -> Iterator[str]:
        name = f"migrasafe_scratch_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {redact(self.url)}: "
                f"{describe_error(exc, self.url)}"
            ) from exc
        try:
            yield self.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()

    def readonly_engine(self) -> Engine:
        engine = self.engine()

        @sa.event.listens_for(engine, "begin")
        def _read_only(connection: Connection) -> None:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

        return engine


_SUPPORT: dict[str, type[DialectSupport]] = {
    cls.name: cls for cls in (SQLiteSupport, PostgreSQLSupport)
}


def support_for(url: str | URL) -> DialectSupport:
    parsed = parse_url(url) if isinstance(url, str) else url
    return _SUPPORT.get(parsed.get_backend_name(), DialectSupport)(parsed)


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
