"""Scratch databases: created for verify beside the user's, never the user's, removed after.

:class:`Scratch` refuses (a dialect with no scratch databases); :class:`ServerScratch`
creates one on a PostgreSQL or MySQL server through its admin database, so that not
one session is opened on the database the URL names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from migrasafe.db.sessions import Sessions
from migrasafe.db.urls import describe_error, redact
from migrasafe.errors import DatabaseError


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

    @contextmanager
    def create(self) -> Iterator[str]:
        name = f"migrasafe_scratch_{uuid.uuid4().hex[:12]}"
        admin_url = self.sessions.engine_url.set(database=self.admin_database)
        try:
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            with admin.connect() as conn:
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
            yield self.sessions.engine_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(self.drop(name))
            admin.dispose()
