"""What verify reads of a database's tables, in as few round trips as each dialect allows.

:class:`Catalog` offers nothing (verify then lists and reflects through SQLAlchemy's
inspector); each dialect module overrides what its catalog answers in one query.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from sqlalchemy.engine import Connection


class Described(NamedTuple):
    """One table as the catalog describes it, in the parts verify compares."""

    columns: dict[str, tuple[str, bool, str | None]]  # name -> (type, nullable, default)
    primary_key: tuple[str, ...]
    indexes: frozenset[tuple[str | None, tuple[str, ...], bool]]
    uniques: frozenset[tuple[str | None, tuple[str, ...]]]
    # (name, columns, (referred schema, referred table), referred columns, on delete)
    foreign_keys: frozenset[
        tuple[str | None, tuple[str, ...], tuple[str | None, str], tuple[str, ...], str | None]
    ]
    checks: frozenset[tuple[str | None, str | None]]  # (name, text as the database renders it)


class Catalog:
    """Questions about tables, answered on a connection (no state: classmethods)."""

    @classmethod
    def session_facts(cls, connection: Connection) -> dict[str, str]:
        """Session settings that decide what an unqualified table name means."""
        return {}

    @classmethod
    def fingerprints(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], str] | None:
        """A digest per table of everything reflection reads of it (columns, keys, indexes,
        constraints), in one query; equal digests mean equal schemas. None: not offered here,
        reflect every time."""
        return None

    @classmethod
    def all_tables(cls, connection: Connection) -> tuple[str, list[tuple[str, str]]] | None:
        """(the default schema, (schema, table) of every table of every user schema) in one
        query; None: not offered here, ask the inspector schema by schema."""
        return None

    @classmethod
    def tables_named(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> set[tuple[str | None, str]] | None:
        """Which of the tables named exist, in one query that does not list them all.
        None: not offered here (then list them, or describe them)."""
        return None

    @classmethod
    def describe(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], Described] | None:
        """The tables named, from the catalog in one query, instead of reflecting them one
        by one (several queries each). None: not offered here, reflect."""
        return None


def digest(parts: list[str]) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()
