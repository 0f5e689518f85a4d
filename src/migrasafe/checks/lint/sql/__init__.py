"""Raw SQL read as the Alembic operations it performs, so that lint judges both forms alike.

``op.execute("ALTER TABLE books ALTER COLUMN pages TYPE bigint")`` does what
``op.alter_column("books", "pages", type_=sa.BigInteger())`` does; lint's
rules are written against Alembic's operation objects, so each statement of
a raw SQL string is parsed and turned into the operation it amounts to: the
rules then give the same finding, on the line of the ``op.execute`` call.

PostgreSQL's SQL is read by pglast, PostgreSQL's own parser (libpg_query),
which reads every statement the server does; SQLite's and MySQL's by sqlglot.
A statement that does not parse yields None; data changes, grants and
functions yield no operation.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.operations import ops

from migrasafe.checks.lint.sql.base import Named, Statement

__all__ = ["Named", "Piece", "Statement", "operations_in", "split"]


def operations_in(sql: str, dialect: str) -> list[ops.MigrateOperation] | None:
    """The operations ``sql`` performs on ``dialect``; None when it cannot be parsed."""
    if dialect == "postgresql":
        from migrasafe.checks.lint.sql.postgresql import read as read_postgresql

        return read_postgresql(sql)
    from migrasafe.checks.lint.sql.generic import read

    return read(sql, dialect)


@dataclass(frozen=True)
class Piece:
    """One statement of a SQL file: its text and the lines it spans (1-based)."""

    text: str
    line: int
    end_line: int


def split(sql: str, dialect: str) -> list[Piece]:
    """The statements of ``sql`` (a migration file), each with its lines.

    Statements are split where the dialect's own tokenizer sees a semicolon,
    so one inside a string, a comment or a ``$$`` body does not split; a
    statement's line is that of its first word, not of a comment above it.
    SQL that cannot be tokenized is one statement (which then does not parse).
    """
    if dialect == "postgresql":
        from migrasafe.checks.lint.sql.postgresql import tokens as postgresql_tokens

        found = postgresql_tokens(sql)
    else:
        from migrasafe.checks.lint.sql.generic import tokens

        found = tokens(sql, dialect)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for offset, semicolon in found if found is not None else [(0, False)]:
        if semicolon:
            if start is not None:
                spans.append((start, offset))
            start = None
        elif start is None:
            start = offset
    if start is not None:
        spans.append((start, len(sql)))
    pieces = []
    for start, end in spans:
        text = sql[start:end].strip()
        if text:
            line = sql.count("\n", 0, start) + 1
            pieces.append(Piece(text, line, line + text.count("\n")))
    return pieces
