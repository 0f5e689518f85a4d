"""PostgreSQL style, opt-in (``--rule NAME``): types that age badly, as notes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from migrasafe.checks.lint.base import (
    RULES,
    Hit,
    RevisionLint,
    type_name,
)
from migrasafe.checks.lint.operations import Recorded


def _new_pg_columns(lint: RevisionLint) -> Iterator[tuple[Recorded, str, Any, str]]:
    """(where, table, column, its type as PostgreSQL writes it) of every column a revision
    creates, by op.* or raw SQL; nothing on other dialects (the style rules are PostgreSQL's)."""
    if lint.dialect != "postgresql":
        return
    found = [(r, op.table_name, c) for r, op in lint.of(ops.CreateTableOp)
             for c in op.columns if isinstance(c, sa.Column)]  # fmt: skip
    found += [(r, op.table_name, op.column) for r, op in lint.of(ops.AddColumnOp)]
    for r, table, column in found:
        yield r, table, column, type_name(column.type, lint.dialect).upper()


_SMALL_INTEGERS = ("INTEGER", "INT", "INT4", "SMALLINT", "INT2", "SERIAL", "SMALLSERIAL")


@RULES.register("prefer-bigint", "info", "PostgreSQL, opt-in: a 4-byte integer key",
                optional=True)  # fmt: skip
def _prefer_bigint(lint: RevisionLint) -> Iterator[Hit]:
    for r, table, column, name in _new_pg_columns(lint):
        if column.primary_key and name in _SMALL_INTEGERS:
            yield Hit(r, f"{table}.{column.name} is a 4-byte integer key: it runs out at "
                      "2,147,483,647, and widening it later rewrites the table and every "
                      "referencing one. Prefer sa.BigInteger()", table, column.name)  # fmt: skip


@RULES.register("prefer-timestamptz", "info",
                "PostgreSQL, opt-in: a timestamp without time zone", optional=True)  # fmt: skip
def _prefer_timestamptz(lint: RevisionLint) -> Iterator[Hit]:
    for r, table, column, name in _new_pg_columns(lint):
        if name.startswith("TIMESTAMP") and "WITH TIME ZONE" not in name and "TZ" not in name:
            yield Hit(r, f"{table}.{column.name} is a timestamp without time zone: the same "
                      "instant reads differently from sessions in different zones. Prefer "
                      "sa.DateTime(timezone=True) (timestamptz)", table, column.name)  # fmt: skip


@RULES.register("prefer-text", "info", "PostgreSQL, opt-in: varchar(n) rather than text",
                optional=True)  # fmt: skip
def _prefer_text(lint: RevisionLint) -> Iterator[Hit]:
    for r, table, column, name in _new_pg_columns(lint):
        if name.startswith(("VARCHAR(", "CHARACTER VARYING(")):
            yield Hit(r, f"{table}.{column.name} is {name}: text with a length limit that "
                      "takes an ACCESS EXCLUSIVE lock to change. Prefer sa.Text() and, if the "
                      "limit matters, a CHECK (length(...) <= n) added NOT VALID",
                      table, column.name)  # fmt: skip


@RULES.register("prefer-identity", "info", "PostgreSQL, opt-in: serial rather than identity",
                optional=True)  # fmt: skip
def _prefer_identity(lint: RevisionLint) -> Iterator[Hit]:
    for r, table, column, name in _new_pg_columns(lint):
        implicit = (
            column.primary_key and column.identity is None and column.server_default is None
            and column.autoincrement is not False and isinstance(column.type, sa.Integer)
        )  # fmt: skip
        if "SERIAL" in name or implicit:
            yield Hit(r, f"{table}.{column.name} is a serial: its sequence is a separate "
                      "object (own permissions, owner, dumps). Prefer sa.Identity() (GENERATED "
                      "... AS IDENTITY)", table, column.name)  # fmt: skip
