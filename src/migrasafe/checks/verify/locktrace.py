"""What a migration really locks and rewrites on PostgreSQL, read from the server.

Lint can only guess from the operation which lock a statement takes and
whether it rewrites a table. While ``verify --trace-locks`` applies each
revision on its scratch database (with generated rows in every table), this
module asks the server after every statement the revision sends: which
relation locks the migration's session now holds (``pg_locks``), whether a
table's storage changed (its ``relfilenode``: a rewrite), and what
``lock_timeout`` was in force. The queries run on the migration's own
connection, since a rewrite is visible only inside its transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

# PostgreSQL's table lock modes, weakest first.
_MODES = (
    "AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
    "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock",
)  # fmt: skip
# From SHARE up, the lock blocks the application's writes (ACCESS EXCLUSIVE: its reads too).
BLOCKING = frozenset(_MODES[4:])

_STATE = """
SELECT c.relname, c.relfilenode,
       array(SELECT l.mode FROM pg_locks l
             WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.relation = c.oid
               AND l.granted) AS modes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
"""


@dataclass
class Traced:
    """The strongest lock a revision took on one table, and whether it rewrote it."""

    revision: str
    table: str
    mode: str
    statement: str
    rewritten: bool
    lock_timeout: str
    acquired: float
    held: float = 0.0

    @property
    def blocking(self) -> bool:
        return self.mode in BLOCKING

    def to_dict(self) -> dict[str, object]:
        return {
            "revision": self.revision, "table": self.table, "lock": _name(self.mode),
            "statement": self.statement, "rewritten": self.rewritten,
            "lock_timeout": self.lock_timeout, "held_seconds": round(self.held, 4),
        }  # fmt: skip


def _name(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE``, as PostgreSQL's documentation says it."""
    words = "".join(f" {ch}" if ch.isupper() else ch for ch in mode.removesuffix("Lock")).strip()
    return words.upper()


def _strength(mode: str) -> int:
    return _MODES.index(mode) if mode in _MODES else -1


@dataclass
class LockTracer:
    """Traces the statements of one revision's upgrade; ``ours`` is verify's own connection."""

    ours: Connection
    entries: list[Traced] = field(default_factory=list)
    _revision: str | None = None
    _before: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    _current: dict[str, Traced] = field(default_factory=dict)

    def start(self, revision: str) -> None:
        self._revision, self._before, self._current = revision, {}, {}

    def stop(self) -> None:
        """The revision committed (or failed): its locks were held until now."""
        now = time.monotonic()
        for traced in self._current.values():
            traced.held = now - traced.acquired
            self.entries.append(traced)
        self._revision = None

    def _state(self, connection: Connection) -> tuple[dict[str, tuple[int, str | None]], str]:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_STATE)
            state = {}
            for name, filenode, modes in cursor.fetchall():
                strongest = max(modes or [], key=_strength, default=None)
                state[name] = (filenode, strongest)
            cursor.execute("SHOW lock_timeout")
            row = cursor.fetchone()
            timeout = str(row[0]) if row else "unknown"
        finally:
            cursor.close()
        return state, timeout

    def before(self, conn: Connection, _cursor: Any, _statement: str, *_args: Any) -> None:
        if self._revision is None or conn is self.ours or self._before:
            return
        self._before = self._safe_state(conn)[0]  # storage as the revision found it

    def after(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if self._revision is None or conn is self.ours:
            return
        state, timeout = self._safe_state(conn)
        text = " ".join(statement.split())[:80]
        for table, (filenode, mode) in state.items():
            if mode is None:
                continue
            was = self._before.get(table)
            rewritten = was is not None and was[0] != filenode
            known = self._current.get(table)
            if known is None:
                self._current[table] = Traced(self._revision, table, mode, text, rewritten,
                                              timeout, time.monotonic())  # fmt: skip
                continue
            if _strength(mode) > _strength(known.mode):
                known.mode, known.statement, known.lock_timeout = mode, text, timeout
            if rewritten and not known.rewritten:
                known.rewritten, known.statement = True, text

    def _safe_state(self, conn: Connection) -> tuple[dict[str, tuple[int, str | None]], str]:
        try:
            return self._state(conn)
        except Exception:  # a failed statement aborted the transaction: nothing to read
            return {}, "unknown"

    @contextmanager
    def tracing(self) -> Iterator[None]:
        event.listen(Engine, "before_cursor_execute", self.before)
        event.listen(Engine, "after_cursor_execute", self.after)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self.before)
            event.remove(Engine, "after_cursor_execute", self.after)


def compare_with_lint(
    traced: list[Traced], lint_tables: dict[tuple[str, str], list[str]]
) -> list[tuple[Traced | None, str, str, str]]:
    """(trace, revision, table, verdict) for each disagreement or agreement worth telling.

    ``lint_tables`` maps (revision, table) to the lint rules that fired there.
    Verdicts: ``confirmed`` (lint flagged the table the trace saw blocked or
    rewritten), ``lint missed`` (the trace saw it, lint did not), ``lint
    over-reported`` (lint flagged a table the trace saw neither blocked nor
    rewritten).
    """
    verdicts: list[tuple[Traced | None, str, str, str]] = []
    seen = set()
    for entry in traced:
        key = (entry.revision, entry.table)
        if entry.blocking or entry.rewritten:
            seen.add(key)
            verdicts.append((entry, *key, "confirmed" if key in lint_tables else "lint missed"))
    for key in sorted(lint_tables):
        if key not in seen:
            verdicts.append((None, *key, "lint over-reported"))
    return verdicts
