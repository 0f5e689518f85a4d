"""migrasafe's own sessions on the project's async PostgreSQL driver, when it is the only one.

An async ``env.py`` with only asyncpg installed is migrated by Alembic alone;
migrasafe's own sessions (its lock, scratch databases, verify's reads,
checksums) are synchronous SQLAlchemy code. Where psycopg is not installed,
they run on SQLAlchemy's own asyncpg dialect, registered as
``postgresql+migrasafe_asyncpg``: every call of the driver's adapted
connection and cursor runs inside SQLAlchemy's ``greenlet_spawn`` on an event
loop of migrasafe's own, in a thread of its own, so the asyncpg connections
stay bound to that one loop while the caller blocks, whether or not
``env.py``'s own loop is running at that moment.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.util.concurrency import greenlet_spawn

T = TypeVar("T")
DRIVER = "migrasafe_asyncpg"

_loop: asyncio.AbstractEventLoop | None = None
_started = threading.Lock()


def _the_loop() -> asyncio.AbstractEventLoop:
    """The event loop of migrasafe's own asyncpg connections, running in a daemon thread."""
    global _loop
    with _started:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="migrasafe-asyncpg", daemon=True).start()
            _loop = loop
    return _loop


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, run where SQLAlchemy's asyncpg adapter can await: on the loop."""
    future = asyncio.run_coroutine_threadsafe(greenlet_spawn(fn, *args, **kwargs), _the_loop())
    return future.result()


class _Bridged:
    """A driver object (connection, cursor) whose every method runs through :func:`call`."""

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if not callable(found):
            return found

        def bridged(*args: Any, **kwargs: Any) -> Any:
            result = call(found, *args, **kwargs)
            return _Bridged(result) if _is_adapter(result) else result

        return bridged

    def __setattr__(self, name: str, value: Any) -> None:
        call(setattr, self._target, name, value)

    def __iter__(self) -> Any:  # a cursor's rows
        return iter(call(list, self._target))


def _is_adapter(value: Any) -> bool:
    return type(value).__module__.startswith(("sqlalchemy.dialects.", "sqlalchemy.connectors."))


class BridgedAsyncpg(PGDialect_asyncpg):
    """SQLAlchemy's asyncpg dialect, for synchronous engines (see the module docstring)."""

    is_async = False
    supports_statement_cache = True  # the statements are PGDialect_asyncpg's own
    driver = "asyncpg"  # what it speaks to the server, for driver-specific settings

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        return _Bridged(call(super().connect, *cargs, **cparams))

    def on_connect(self) -> Any:
        inner = super().on_connect()  # type: ignore[no-untyped-call]
        if inner is None:
            return None

        def on_connect(connection: Any) -> None:
            call(inner, connection._target if isinstance(connection, _Bridged) else connection)

        return on_connect


registry.register(f"postgresql.{DRIVER}", __name__, "BridgedAsyncpg")
