"""Locks: migrasafe's own migration lock, and the table locks a migration waits for
(lock and statement timeouts, lock conflicts worth a retry, who blocks the migration).

:class:`Locks` has no lock and no timeouts; each dialect module gives its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from migrasafe.db.sessions import Sessions
from migrasafe.db.urls import redact
from migrasafe.errors import DatabaseError, LockLost, LockTimeout

Waiting = Callable[[str], None]
_POLL_SECONDS = 0.2


@dataclass
class Lock:
    """One dialect's migration lock, as four operations."""

    try_acquire: Callable[[], bool]
    holder: Callable[[], str]
    release: Callable[[bool], None]
    alive: Callable[[], bool]


class Locks:
    """The locks of the database of ``sessions``."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.url = sessions.url
        # The version table's schema, where one database holds many (a schema per
        # tenant): on PostgreSQL each schema then has its own lock (see ``lock``).
        self.scope: str | None = None

    def lock(self) -> Lock | None:
        """The lock for this database; None: no lock here."""
        return None

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
        lock = self.lock()
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

    def held(self, connection: Connection) -> bool | None:
        """Whether some session holds the migration lock now, asked read-only on
        ``connection`` (None: cannot tell here)."""
        return None

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


class ServerLocks(Locks):
    """What PostgreSQL and MySQL share: sessions to watch while a migration waits."""

    def session_id(self, connection: Connection) -> object:
        raise NotImplementedError

    def blockers(self, watcher: Connection, session: object) -> list[str]:
        """Who blocks ``session`` now, each in a phrase (empty: nobody, or not waiting)."""
        raise NotImplementedError

    @contextmanager
    def blocker_watch(self, connection: Connection) -> Iterator[Callable[[], str | None]]:
        """Samples who blocks the migration's session, on a connection of its own."""
        session = self.session_id(connection)
        seen: list[str] = []
        stop = threading.Event()
        engine = sa.create_engine(self.sessions.engine_url, poolclass=NullPool,
                                  isolation_level="AUTOCOMMIT")  # fmt: skip

        def sample() -> None:
            try:
                with engine.connect() as watcher:
                    while not stop.wait(0.1):
                        found = self.blockers(watcher, session)
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
