"""Opening sessions on one database: engines, read-only sessions, synchronous drivers,
and whether DDL rolls back with its transaction.

:class:`Sessions` holds the defaults; each dialect module overrides what differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from migrasafe.db.urls import describe_error, redact
from migrasafe.errors import DatabaseError


class Sessions:
    """How migrasafe connects to one database (``url``)."""

    name: ClassVar[str] = "default"
    # Whether a failed migration's DDL rolls back with its transaction.
    ddl_is_transactional: ClassVar[bool] = True
    # Async drivers and the sync driver migrasafe uses beside them (for its lock).
    sync_drivers: ClassVar[dict[str, str]] = {}
    # Async drivers that need nothing more installed beside them (their own package, or .bridge).
    self_sufficient: ClassVar[frozenset[str]] = frozenset()
    install: ClassVar[str] = ""  # the extra that brings the driver
    driver: ClassVar[str] = ""  # the driver that extra brings

    def __init__(self, url: URL) -> None:
        self.url = url
        self.engine_url = self.sync_url(url)

    @classmethod
    def sync_url(cls, url: URL) -> URL:
        """The URL with a synchronous driver, for migrasafe's own connections."""
        # From the name as written: asking the URL would load the dialect, which may be missing.
        backend, _, written = url.drivername.partition("+")
        driver = cls.sync_drivers.get(written)
        return url if driver is None else url.set(drivername=f"{backend}+{driver}")

    def exists(self) -> bool:
        """Whether the database exists, answered without creating it."""
        return True

    def identity(self) -> tuple[object, ...]:
        """What names one database: the same on two URLs means the same database."""
        return (self.url.get_backend_name(), self.url.host or "localhost", self.url.port,
                self.url.database)  # fmt: skip

    def engine(self) -> Engine:
        return sa.create_engine(self.engine_url, poolclass=NullPool)

    def readonly_engine(self) -> Engine:
        """An engine whose connections cannot change the database."""
        return self.engine()

    def own_session(self, **engine_options: Any) -> tuple[Engine, Connection]:
        """A session of migrasafe's own (its lock, the admin session), with a failure to
        connect in one line."""
        engine = sa.create_engine(self.engine_url, poolclass=NullPool, **engine_options)
        try:
            return engine, engine.connect()
        except sa_exc.DBAPIError as exc:
            engine.dispose()
            raise DatabaseError(
                f"cannot connect to {redact(self.url)}: {describe_error(exc, self.url)}"
            ) from exc

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
    @contextmanager
    def transactional_ddl(cls) -> Iterator[None]:
        """While inside, DDL on this dialect rolls back with its transaction."""
        yield
