"""Which class holds what differs on a dialect, concern by concern.

Each concern has a base class with the defaults and one subclass per dialect
(:mod:`.sqlite`, :mod:`.postgresql`, :mod:`.mysql`):

- :class:`~.sessions.Sessions`: engines, read-only sessions, sync drivers,
  transactional DDL;
- :class:`~.catalog.Catalog`: what verify reads of tables in one query;
- :class:`~.scratch.Scratch`: verify's scratch databases;
- :class:`~.locks.Locks`: the migration lock, timeouts, lock conflicts, blockers.

:func:`dialect_named` gives a dialect's classes, :func:`database_for` one
database's instances.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection

from migrasafe.db import mysql, postgresql, sqlite
from migrasafe.db.catalog import Catalog
from migrasafe.db.locks import Locks
from migrasafe.db.scratch import Scratch
from migrasafe.db.sessions import Sessions
from migrasafe.db.urls import describe_error, parse_url, redact
from migrasafe.errors import DatabaseError


class Dialect(NamedTuple):
    """One dialect's class for each concern."""

    sessions: type[Sessions]
    catalog: type[Catalog]
    scratch: type[Scratch]
    locks: type[Locks]


DEFAULT = Dialect(Sessions, Catalog, Scratch, Locks)
_DIALECTS = {
    "sqlite": Dialect(sqlite.SQLiteSessions, sqlite.SQLiteCatalog, sqlite.SQLiteScratch,
                      sqlite.SQLiteLocks),
    "postgresql": Dialect(postgresql.PostgreSQLSessions, postgresql.PostgreSQLCatalog,
                          postgresql.PostgreSQLScratch, postgresql.PostgreSQLLocks),
    "mysql": Dialect(mysql.MySQLSessions, Catalog, mysql.MySQLScratch, mysql.MySQLLocks),
}  # fmt: skip
_DIALECTS["mariadb"] = _DIALECTS["mysql"]


def dialect_named(backend: str) -> Dialect:
    """The classes holding what differs on this dialect (by backend name, e.g. "sqlite")."""
    return _DIALECTS.get(backend, DEFAULT)


@dataclass
class Database:
    """One database (a URL) and what its dialect does there, by concern."""

    url: URL
    dialect: Dialect
    sessions: Sessions = field(init=False)
    scratch: Scratch = field(init=False)
    locks: Locks = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = self.dialect.sessions(self.url)
        self.scratch = self.dialect.scratch(self.sessions)
        self.locks = self.dialect.locks(self.sessions)

    @property
    def catalog(self) -> type[Catalog]:
        return self.dialect.catalog


def database_for(url: str | URL) -> Database:
    parsed = parse_url(url) if isinstance(url, str) else url
    return Database(parsed, dialect_named(parsed.get_backend_name()))


def driver_hint(url: str | URL) -> str:
    """What to install for the database ``url`` names (the extra that brings its driver)."""
    try:
        parsed = parse_url(url) if isinstance(url, str) else url
    except DatabaseError:
        return "install the driver the URL names (dialect+driver://)"
    sessions = dialect_named(parsed.get_backend_name()).sessions
    if not sessions.install:
        return "install the driver the URL names (dialect+driver://)"
    backend, _, written = parsed.drivername.partition("+")
    extra = f"pip install 'migrasafe[{sessions.install}]'"
    ours = f"{backend}+{sessions.driver}://"
    if not written:  # SQLAlchemy's default driver (MySQLdb, psycopg2), not the extra's
        return f"{extra}, and name its driver in the URL: {ours}"
    if written in sessions.self_sufficient:
        return f"install {written} (the URL's driver)"
    if written in sessions.sync_drivers:  # an async env.py's driver, and migrasafe's beside it
        return f"install {written} (the URL's driver) and {extra} (migrasafe's own sessions)"
    if written != sessions.driver:
        return f"install the {written} driver the URL names, or {extra} for {ours}"
    return extra


def same_database(a: str | URL, b: str | URL) -> bool:
    """Whether two URLs name the same database (driver and credentials aside)."""
    return database_for(a).sessions.identity() == database_for(b).sessions.identity()


@contextmanager
def connect(url: str, *, readonly: bool = False) -> Iterator[Connection]:
    """A connection, with every failure to connect turned into a DatabaseError."""
    sessions = database_for(url).sessions
    try:
        engine = sessions.readonly_engine() if readonly else sessions.engine()
    except (sa_exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DatabaseError(f"no driver for {redact(url)}: {exc}. {driver_hint(url)}") from exc
    try:
        connection = engine.connect()
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(f"cannot connect to {redact(url)}: {describe_error(exc, url)}") from exc
    try:
        yield connection
    finally:
        connection.close()
        engine.dispose()
