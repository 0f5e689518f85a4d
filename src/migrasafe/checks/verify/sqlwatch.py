"""Which tables a migration step touched, from the SQL it sent.

Reading every table after every step would make ``verify`` grow with the
square of the history: only the tables a step's statements name (and their
foreign-key children) are re-read and reseeded; when no statement changed
the schema (a data migration), the catalog is not read at all. A table whose
only statements were index DDL keeps its rows: they are not read again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

from migrasafe.checks.verify.snapshot import Schema, name_key

IDENTIFIER = re.compile(r"[A-Za-z_][\w$]*")
_DDL = re.compile(r"\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|COMMENT|PRAGMA)\b", re.I)
# What can add, drop or rename a table (or run code that might): then the tables are listed.
_TABLE_SET = re.compile(
    r"\b(CREATE|DROP)\s+(\w+\s+)*?TABLE\b|\bRENAME\s+(TO|TABLE)\b|^\s*(DO|CALL|EXECUTE|SELECT\b.*\bINTO)\b",
    re.I | re.S,
)  # fmt: skip
# A table created or dropped by name: the tables there afterwards follow from the statement.
_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_CREATE = re.compile(rf"\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_QUALIFIED})\s*\(", re.I)
_DROP = re.compile(
    rf"\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?({_QUALIFIED}(?:\s*,\s*{_QUALIFIED})*)"
    r"\s*(?:CASCADE|RESTRICT)?\s*;?\s*\Z",
    re.I,
)
_RENAME = re.compile(
    rf"\s*ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({_QUALIFIED})\s+RENAME\s+TO\s+({_NAME})"
    r"\s*;?\s*\Z",
    re.I,
)
_PART = re.compile(rf"({_NAME})(?:\s*\.\s*({_NAME}))?")
# Statements that change no row: an index made, dropped or renamed, a comment. One statement
# each (a ";" inside may hide another).
_ROWS_KEPT = re.compile(
    r"\s*(CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX|ALTER\s+INDEX|COMMENT\s+ON)\b[^;]*;?\s*\Z",
    re.I | re.S,
)


class SqlWatch:
    """Collects the words of every statement sent while a step runs."""

    def __init__(self) -> None:
        self.words: set[str] = set()
        self.row_words: set[str] = set()  # the words of statements that may change rows
        self.statements = 0
        self.ddl = False
        self.table_set = False  # a statement may have added, dropped or renamed a table
        # The tables created and dropped, as (schema, name) with PostgreSQL's case folding;
        # None when a statement may have changed the set of tables in another way.
        self.created_dropped: tuple[set[Named], set[Named]] | None = (set(), set())
        self.active = False
        self._indexed: set[str] = set()  # the tables in _by_key, patched as they come and go
        self._by_key: dict[str, set[str]] = {}

    def __call__(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if self.active:
            self.statements += 1
            self.ddl = self.ddl or bool(_DDL.match(statement))
            if _TABLE_SET.search(statement):
                self.table_set = True
                self._created_or_dropped(statement)
            words = {name_key(word) for word in IDENTIFIER.findall(statement)}
            self.words |= words
            if not _ROWS_KEPT.match(statement):
                self.row_words |= words

    @contextmanager
    def watching(self) -> Iterator[None]:
        event.listen(Engine, "before_cursor_execute", self)
        try:
            yield
        finally:
            event.remove(Engine, "before_cursor_execute", self)

    def start(self) -> None:
        self.words, self.statements, self.ddl, self.active = set(), 0, False, True
        self.row_words = set()
        self.created_dropped = (set(), set())
        self.table_set = False

    def _created_or_dropped(self, statement: str) -> None:
        if self.created_dropped is None:
            return
        created, dropped = self.created_dropped
        if match := _CREATE.match(statement):
            made, gone = _names(match.group(1)), set()
        elif match := _DROP.match(statement):
            made, gone = set(), _names(match.group(1))
        elif match := _RENAME.match(statement):  # the new name stays in the old one's schema
            gone = _names(match.group(1))
            made = {(owner, _unquote(match.group(2))) for owner, _ in gone}
        else:
            self.created_dropped = None
            return
        for name in gone:  # in order: a batch copies to a new table, drops, then renames
            if name in created:
                created.discard(name)
            else:
                dropped.add(name)
        for name in made:
            if name in dropped:
                dropped.discard(name)  # made again: there, and read again as a table named
            else:
                created.add(name)

    def tables(self, schema: Schema, now: set[str]) -> tuple[set[str], set[str]] | None:
        """The tables the statements named, directly or by one of their indexes or
        constraints; and those of them named by statements that may have changed rows.

        None when nothing was seen (then every table is re-read). ``DROP INDEX
        ix`` names no table, hence the index and constraint names.
        """
        self.active = False
        if not self.statements:
            return None
        by_key, owners = self._index(now), schema.owners
        always = set(by_key.get("*", ())) | owners.get("*", set())  # quoted names: always

        def named(words: set[str]) -> set[str]:
            found = set(always)
            for word in words:  # a few words per statement: look them up, scan nothing
                found |= by_key.get(word, set())
                found |= owners.get(word, set())
            return found

        return named(self.words), named(self.row_words)

    def _index(self, now: set[str]) -> dict[str, set[str]]:
        """The tables by :func:`name_key`, patched for the tables added and gone since the
        last step (a set difference), not rebuilt: a step adds a table or two of thousands."""
        for name in self._indexed - now:
            self._by_key[name_key(name)].discard(name)
        for name in now - self._indexed:
            self._by_key.setdefault(name_key(name), set()).add(name)
        self._indexed = set(now)
        return self._by_key


Named = tuple[str | None, str]


def _names(text: str) -> set[Named]:
    """``a, "B".c`` -> {(None, "a"), ("B", "c")}: unquoted names fold to lower case."""
    found: set[Named] = set()
    for match in _PART.finditer(text):
        parts = [_unquote(p) for p in match.groups() if p is not None]
        found.add((parts[0], parts[1]) if len(parts) == 2 else (None, parts[0]))
    return found


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name.lower()
