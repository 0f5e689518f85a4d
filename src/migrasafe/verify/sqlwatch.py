"""Which tables a migration step touched, from the SQL it sent.

Reading every table after every step would make ``verify`` grow with the
square of the history: only the tables a step's statements name (and their
foreign-key children) are re-read and reseeded; when no statement changed
the schema (a data migration), the catalog is not read at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .snapshot import Schema, name_key

IDENTIFIER = re.compile(r"[A-Za-z_][\w$]*")
_DDL = re.compile(r"\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|COMMENT|PRAGMA)\b", re.I)
# What can add, drop or rename a table (or run code that might): then the tables are listed.
_TABLE_SET = re.compile(
    r"\b(CREATE|DROP)\s+(\w+\s+)*?TABLE\b|\bRENAME\s+(TO|TABLE)\b|^\s*(DO|CALL|EXECUTE|SELECT\b.*\bINTO)\b",
    re.I | re.S,
)  # fmt: skip


class SqlWatch:
    """Collects the words of every statement sent while a step runs."""

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.statements = 0
        self.ddl = False
        self.table_set = False  # a statement may have added, dropped or renamed a table
        self.active = False
        self._indexed: set[str] = set()  # the tables in _by_key, patched as they come and go
        self._by_key: dict[str, set[str]] = {}

    def __call__(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if self.active:
            self.statements += 1
            self.ddl = self.ddl or bool(_DDL.match(statement))
            self.table_set = self.table_set or bool(_TABLE_SET.search(statement))
            self.words.update(word.lower() for word in IDENTIFIER.findall(statement))

    @contextmanager
    def watching(self) -> Iterator[None]:
        event.listen(Engine, "before_cursor_execute", self)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self)

    def start(self) -> None:
        self.words, self.statements, self.ddl, self.active = set(), 0, False, True
        self.table_set = False

    def tables(self, schema: Schema, now: set[str]) -> set[str] | None:
        """The tables the statements named, directly or by one of their indexes or constraints.

        None when nothing was seen (then every table is re-read). ``DROP INDEX
        ix`` names no table, hence the index and constraint names.
        """
        self.active = False
        if not self.statements:
            return None
        by_key = self._index(now)
        owners = schema.owners
        found = set(by_key.get("*", ())) | owners.get("*", set())  # quoted names: always
        for word in self.words:  # a few words per statement: look them up, scan nothing
            found |= by_key.get(word, set())
            found |= owners.get(word, set())
        return found

    def _index(self, now: set[str]) -> dict[str, set[str]]:
        """The tables by :func:`name_key`, patched for the tables added and gone since the
        last step (a set difference), not rebuilt: a step adds a table or two of thousands."""
        for name in self._indexed - now:
            self._by_key[name_key(name)].discard(name)
        for name in now - self._indexed:
            self._by_key.setdefault(name_key(name), set()).add(name)
        self._indexed = set(now)
        return self._by_key
