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

from alembic.operations import ops

from migrasafe.checks.lint.sql.base import Named, Statement

__all__ = ["Named", "Statement", "operations_in"]


def operations_in(sql: str, dialect: str) -> list[ops.MigrateOperation] | None:
    """The operations ``sql`` performs on ``dialect``; None when it cannot be parsed."""
    if dialect == "postgresql":
        from migrasafe.checks.lint.sql.postgresql import read as read_postgresql

        return read_postgresql(sql)
    from migrasafe.checks.lint.sql.generic import read

    return read(sql, dialect)
