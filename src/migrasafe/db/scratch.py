"""Scratch databases: created for verify beside the user's, never the user's, removed after.

:class:`Scratch` refuses (a dialect with no scratch databases); :class:`ServerScratch`
creates one on a PostgreSQL or MySQL server through its admin database, so that not
one session is opened on the database the URL names. :class:`ScratchOnly` keeps every
connection made while verify runs on the scratch database, however it is made.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import types
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from migrasafe.db.sessions import Sessions
from migrasafe.db.urls import describe_error, redact
from migrasafe.errors import DatabaseError

# Where a URL's query string may name the database, overriding its path.
DATABASE_KEYS = ("database", "db", "dbname")

# The query naming the database a session is on, by backend (SQLite: its main file).
_CURRENT_DATABASE = {
    "postgresql": "SELECT current_database()",
    "mysql": "SELECT DATABASE()",
    "mariadb": "SELECT DATABASE()",
    "sqlite": "SELECT file FROM pragma_database_list WHERE name = 'main'",
}


class Scratch:
    """Scratch databases next to the database of ``sessions``."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.url = sessions.url

    @contextmanager
    def create(self) -> Iterator[str]:
        """A new empty database next to this one, removed afterwards; yields its URL."""
        raise DatabaseError(
            f"cannot create a scratch database on {self.url.get_backend_name()}: "
            "use a sqlite, postgresql or mysql URL"
        )
        yield ""  # pragma: no cover

    @classmethod
    def tune_session(cls, dbapi_connection: Any) -> None:
        """Settings for a session on a scratch database that is thrown away afterwards."""

    @classmethod
    def empty(cls, connection: Connection, keep: set[str]) -> None:
        """Drop everything the migrations made in the scratch database ``connection`` is on,
        so that it can be upgraded again from base; the schemas ``keep`` stay, empty."""
        raise NotImplementedError(f"emptying a {connection.dialect.name} scratch database")

    @classmethod
    def connect_args(cls, driver: str, url: URL, cparams: dict[str, Any]) -> None:
        """Driver arguments for a connection to a scratch database (``url``), before it is
        made: what spares work a session there cannot use."""


class ServerScratch(Scratch):
    """A scratch database on the same server, created and dropped from its admin database."""

    # Where to connect to create and drop a scratch database (None: no database).
    admin_database: ClassVar[str | None] = None

    def quote(self, name: str) -> str:
        raise NotImplementedError

    def drop(self, name: str) -> str:
        return f"DROP DATABASE IF EXISTS {self.quote(name)}"

    def settings(self, name: str, version: tuple[int, ...]) -> list[str]:
        """Statements run on a new scratch database's behalf, for every session on it."""
        return []

    def learn_server(self, admin: Connection) -> None:
        """What the admin session shows of the server that scratch sessions can use."""

    def server_url(self) -> URL:
        """The project's URL without any database: a database named in its query string
        (``?dbname=``, ``?database=``, ``?db=``) would win over the one set as its path."""
        return self.sessions.engine_url.difference_update_query(DATABASE_KEYS)

    def _on_admin_database(self, conn: Connection) -> None:
        """The admin session is on the admin database (or none), never on the project's."""
        found = conn.exec_driver_sql(_CURRENT_DATABASE[conn.dialect.name]).scalar()
        if found not in (self.admin_database, None):
            raise DatabaseError(
                f"the session to create a scratch database on {redact(self.url)} is on the "
                f"database {found!r}, not on {self.admin_database or 'none'}: a driver default "
                "(an option file, a service) chooses it; verify creates nothing there"
            )

    @contextmanager
    def create(self) -> Iterator[str]:
        name = f"migrasafe_scratch_{uuid.uuid4().hex[:12]}"
        admin_url = self.server_url().set(database=self.admin_database)
        try:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            with admin.connect() as conn:
                self._on_admin_database(conn)
                conn.exec_driver_sql(f"CREATE DATABASE {self.quote(name)}")
                version = tuple(
                    v for v in conn.dialect.server_version_info or (0,) if isinstance(v, int)
                )
                for statement in self.settings(name, version):
                    conn.exec_driver_sql(statement)
                self.learn_server(conn)
        except (sa_exc.NoSuchModuleError, ImportError) as exc:
            raise DatabaseError(
                f"no driver for {redact(self.url)}: {describe_error(exc, self.url)}. "
                f"pip install 'migrasafe[{self.sessions.install}]'"
            ) from exc
        except sa_exc.DBAPIError as exc:
            raise DatabaseError(
                f"cannot create a scratch database on {redact(self.url)}: "
                f"{describe_error(exc, self.url)}"
            ) from exc
        try:
            yield self.server_url().set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(self.drop(name))
            admin.dispose()


# -- only the scratch database, however a connection is made ------------------------

Reached = Callable[[tuple[Any, ...], dict[str, Any]], "str | None"]


def _sqlite_file(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The file sqlite3.connect would open, as a real path; "" for a private database."""
    database = args[0] if args else kwargs.get("database", "")
    uri = args[7] if len(args) > 7 else kwargs.get("uri", False)
    name = os.fsdecode(database) if isinstance(database, str | bytes | os.PathLike) else ""
    if uri and name.startswith("file:"):
        rest, _, query = name[5:].partition("#")[0].partition("?")
        options = urllib.parse.parse_qs(query)
        if options.get("mode") == ["memory"] or options.get("vfs") == ["memdb"]:
            return ""
        if rest.startswith("//"):  # file://host/path
            rest = "/" + rest[2:].partition("/")[2]
        name = urllib.parse.unquote(rest)
    return "" if name in ("", ":memory:") else os.path.realpath(name)


def _libpq_dbname(params: dict[str, Any]) -> str | None:
    # libpq: explicit > service file > $PGDATABASE; a service without a dbname is unknown here
    if params.get("dbname"):
        return str(params["dbname"])
    return None if params.get("service") else os.environ.get("PGDATABASE")


def _psycopg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    own = {"conninfo", "autocommit", "prepare_threshold", "context", "row_factory",
           "cursor_factory"}  # fmt: skip
    conninfo = args[0] if args else kwargs.get("conninfo", "")
    params = {k: v for k, v in kwargs.items() if k not in own}
    return _libpq_dbname(conninfo_to_dict(conninfo, **params))


def _psycopg2(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    from psycopg2.extensions import make_dsn, parse_dsn  # type: ignore[import-untyped,import-not-found,unused-ignore]

    own = {"dsn", "connection_factory", "cursor_factory", "async", "async_"}
    dsn = args[0] if args else kwargs.get("dsn")
    params = {k: v for k, v in kwargs.items() if k not in own}
    return _libpq_dbname(parse_dsn(make_dsn(dsn, **params)))


def _asyncpg(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("database"):
        return str(kwargs["database"])
    dsn = args[0] if args else kwargs.get("dsn")
    if dsn:
        parts = urllib.parse.urlsplit(str(dsn))
        if parts.path.strip("/"):
            return urllib.parse.unquote(parts.path.strip("/"))
        named = urllib.parse.parse_qs(parts.query).get("database")
        if named:
            return named[-1]
    return None if kwargs.get("service") else os.environ.get("PGDATABASE")


def _named(position: int | None) -> Reached:
    """A driver naming the database in a keyword (``database``, ``db``) or at ``position``."""

    def reached(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        name = kwargs.get("database") or kwargs.get("db") or kwargs.get("dbname")
        if not name and position is not None and len(args) > position:
            name = args[position]
        return str(name) if name else None  # none named (or a default file's): not the scratch

    return reached


# Where each driver opens a connection (module, attribute, class or not) and how to read
# the database the call names. The class attributes catch a ``connect`` bound early.
_DRIVER_ENTRIES: tuple[tuple[str, str, str | None, Reached], ...] = (
    ("sqlite3", "connect", None, _sqlite_file),  # aiosqlite connects through it too
    ("sqlite3.dbapi2", "connect", None, _sqlite_file),
    ("psycopg", "connect", None, _psycopg),
    ("psycopg", "connect", "Connection", _psycopg),
    ("psycopg", "connect", "AsyncConnection", _psycopg),
    ("psycopg2", "connect", None, _psycopg2),
    ("asyncpg", "connect", None, _asyncpg),
    ("pymysql.connections", "__init__", "Connection", _named(None)),
    ("MySQLdb", "connect", None, _named(3)),
    ("aiomysql", "connect", None, _named(3)),
    ("asyncmy", "connect", None, _named(None)),
    ("pg8000", "connect", None, _named(2)),
    ("pg8000.dbapi", "connect", None, _named(2)),
)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Calls ``patch(name)`` once a module in ``names`` is imported: importing every driver
    up front (to wrap it) took a third of a second, for a SQLite project's verify too."""

    def __init__(self, names: set[str], patch: Callable[[str], None]) -> None:
        self.names = names
        self.patch = patch

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return None
        run = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            self.patch(fullname)

        loader.exec_module = exec_module
        return spec


class ScratchOnly:
    """While :meth:`enforced`, no DBAPI connection reaches a database but the scratch one.

    SQLAlchemy's ``do_connect`` event (what redirects a URL) never fires for an
    engine built with ``creator=``, nor for a connection a revision opens with
    the driver itself; so the drivers' ``connect`` functions are wrapped
    (refusing, before connecting, any database but the scratch one), and
    :meth:`check` asks every connection a pool made which database it is on.
    A refusal that the project's code caught is raised again on the way out.
    """

    def __init__(self, url: URL) -> None:
        self.url = url
        self.backend = url.get_backend_name()
        database = url.database or ""
        if self.backend == "sqlite":
            database = os.path.realpath(database) if database not in ("", ":memory:") else ""
        self.database = database
        self.refused: list[DatabaseError] = []

    def allows(self, sqlite: bool, reached: str | None) -> bool:
        if sqlite:  # a private in-memory database reaches nothing
            return reached == "" or (self.backend == "sqlite" and reached == self.database)
        return self.backend != "sqlite" and reached == self.database

    def refuse(self, driver: str, sqlite: bool, reached: str | None) -> DatabaseError:
        if reached is None:
            shown = "a database it does not name (the driver's default)"
        else:
            shown = f"the SQLite file {reached}" if sqlite else f"the database {reached!r}"
        error = DatabaseError(
            f"verify refused a {driver} connection to {shown}: only its scratch database may be "
            "reached while it runs, and this connection did not come from a URL it can point "
            "there (an engine built with creator=, or a connection a revision opens itself). "
            "Connect to the database sqlalchemy.url names (verify sets it to the scratch "
            "database), e.g. creator=lambda: connect(<that URL>), or use op.get_bind() in "
            "a revision"
        )
        self.refused.append(error)
        return error

    def check(self, dbapi_connection: Any) -> None:
        """A connection a pool just made: on the scratch database, or closed and refused."""
        reached: str | None = None
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(_CURRENT_DATABASE.get(self.backend, "SELECT NULL"))
                row = cursor.fetchone()
            finally:
                cursor.close()
            dbapi_connection.rollback()
            found = row[0] if row else None
            if self.backend == "sqlite":
                reached = os.path.realpath(found) if found else ""
            else:
                reached = str(found) if found is not None else None
        except Exception:  # not a session of the scratch's kind
            reached = None
        if not self.allows(self.backend == "sqlite", reached):
            error = self.refuse(type(dbapi_connection).__module__.partition(".")[0],
                                self.backend == "sqlite", reached)  # fmt: skip
            try:
                dbapi_connection.close()
            except Exception:  # closing never hides the refusal
                logging.getLogger(__name__).debug("closing a refused connection", exc_info=True)
            raise error

    @contextmanager
    def enforced(self) -> Iterator[None]:
        restore: list[tuple[Any, str, Any]] = []

        def patch(name: str) -> None:
            for module_name, attribute, owner_name, reached in _DRIVER_ENTRIES:
                module = sys.modules.get(module_name) if module_name == name else None
                owner = getattr(module, owner_name, None) if owner_name else module
                if owner is None or attribute not in vars(owner):
                    continue
                original = vars(owner)[attribute]
                setattr(owner, attribute, self._wrap(original, module_name, reached))
                restore.append((owner, attribute, original))

        names = {entry[0] for entry in _DRIVER_ENTRIES}
        for name in sorted(names & set(sys.modules)):
            patch(name)
        finder = _PatchOnImport(names - set(sys.modules), patch)
        sys.meta_path.insert(0, finder)
        try:
            yield
        finally:
            sys.meta_path.remove(finder)
            for owner, attribute, original in reversed(restore):
                setattr(owner, attribute, original)
        if self.refused:  # caught by the project's code, but verify stopped that connection
            raise self.refused[0]

    def _wrap(self, original: Any, driver: str, reached: Reached) -> Any:
        sqlite = driver.startswith("sqlite3")
        driver = driver.partition(".")[0]

        def guard(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            try:
                where = reached(args, kwargs)
            except Exception:  # arguments the driver will refuse too
                where = None
            if not self.allows(sqlite, where):
                raise self.refuse(driver, sqlite, where)

        if isinstance(original, classmethod):
            function = original.__func__

            def bound(cls: Any, *args: Any, **kwargs: Any) -> Any:
                guard(args, kwargs)
                return function(cls, *args, **kwargs)

            return classmethod(functools.wraps(function)(bound))
        if isinstance(original, types.FunctionType) and original.__name__ == "__init__":

            def init(self_: Any, *args: Any, **kwargs: Any) -> Any:
                guard(args, kwargs)
                return original(self_, *args, **kwargs)

            return functools.wraps(original)(init)

        def call(*args: Any, **kwargs: Any) -> Any:
            guard(args, kwargs)
            return original(*args, **kwargs)

        return functools.wraps(original)(call)
