"""What every dialect does: the plain Alembic operation, and what the safe ones share.

:class:`SafeOperations` is the fallback for a dialect with nothing safer to
offer: each method is the Alembic operation it stands for. Each dialect's
module overrides the methods it has a safer sequence for (PostgreSQL:
CONCURRENTLY, NOT VALID + VALIDATE; MySQL and MariaDB: ALGORITHM/LOCK;
SQLite: batch mode where its ALTER TABLE cannot do it at all).

Everything goes through ``alembic.op``, so ``--sql`` renders it and lint
records it like any other operation. What an operation learns from the
database (a leftover index, a constraint added by an earlier attempt) is
read only online; offline, the whole sequence is rendered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.runtime.migration import MigrationContext

from migrasafe.backfill import backfill
from migrasafe.errors import MigrasafeError

# PostgreSQL's identifier limit (NAMEDATALEN - 1) is the strictest of the three dialects'.
_MAX_NAME = 63


def short_name(name: str) -> str:
    """``name``, cut to 63 characters with a hash of the whole kept at the end."""
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


def not_null_check_name(table: str, column: str) -> str:
    """The name of the CHECK (column IS NOT NULL) that set_not_null adds, then drops."""
    return short_name(f"{table}_{column}_not_null")


class SafeOperations:
    """The plain Alembic operations: what a dialect without a safer form gets."""

    # A backfill commits each batch (inside autocommit_block) where the application
    # keeps running on other connections meanwhile.
    commit_each_batch = False

    def __init__(self, context: MigrationContext) -> None:
        self.context = context

    @property
    def offline(self) -> bool:
        return bool(self.context.as_sql)

    def quote(self, name: str) -> str:
        return str(self.context.dialect.identifier_preparer.quote(name))

    def table_sql(self, table: str, schema: str | None) -> str:
        quoted = self.quote(table)
        return f"{self.quote(schema)}.{quoted}" if schema else quoted

    # -- indexes ---------------------------------------------------------------------

    def create_index(
        self,
        name: str,
        table: str,
        columns: Sequence[Any],
        *,
        schema: str | None,
        unique: bool,
        **kw: Any,
    ) -> None:
        op.create_index(name, table, list(columns), schema=schema, unique=unique, **kw)

    def drop_index(self, name: str, table: str | None, *, schema: str | None, **kw: Any) -> None:
        op.drop_index(name, table_name=table, schema=schema, **kw)

    # -- constraints -----------------------------------------------------------------

    def add_foreign_key(
        self,
        name: str,
        source: str,
        referent: str,
        local: list[str],
        remote: list[str],
        *,
        source_schema: str | None,
        referent_schema: str | None,
        **kw: Any,
    ) -> None:
        op.create_foreign_key(
            name,
            source,
            referent,
            local,
            remote,
            source_schema=source_schema,
            referent_schema=referent_schema,
            **kw,
        )

    def add_check(
        self, name: str, table: str, condition: Any, *, schema: str | None, **kw: Any
    ) -> None:
        op.create_check_constraint(name, table, condition, schema=schema, **kw)

    def add_unique(self, name: str, table: str, columns: list[str], *, schema: str | None) -> None:
        op.create_unique_constraint(name, table, columns, schema=schema)

    def drop_constraint(
        self, name: str, table: str, type_: str | None, *, schema: str | None
    ) -> None:
        op.drop_constraint(name, table, type_=type_, schema=schema)

    # -- columns ---------------------------------------------------------------------

    def set_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        op.alter_column(
            table,
            column,
            nullable=False,
            existing_type=existing_type,
            existing_server_default=existing_server_default,
            existing_nullable=True,
            schema=schema,
        )

    def drop_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        op.alter_column(
            table,
            column,
            nullable=True,
            existing_type=existing_type,
            existing_server_default=existing_server_default,
            existing_nullable=False,
            schema=schema,
        )

    def add_nullable_column(
        self, table: str, column: sa.Column[Any], *, schema: str | None
    ) -> None:
        op.add_column(table, column, schema=schema)

    def set_default(self, table: str, column: sa.Column[Any], *, schema: str | None) -> None:
        op.alter_column(
            table,
            column.name,
            server_default=default_argument(column),
            existing_type=column.type,
            existing_nullable=True,
            schema=schema,
        )

    def drop_column(self, table: str, column: str, *, schema: str | None) -> None:
        op.drop_column(table, column, schema=schema)

    def add_column(
        self,
        table: str,
        column: sa.Column[Any],
        *,
        schema: str | None,
        backfill_with: Any,
        key: str,
        batch_size: int,
    ) -> None:
        """Add nullable without a default, set the default, backfill in batches, NOT NULL."""
        default = column.server_default
        fill = backfill_with if backfill_with is not None else _default_expression(default)
        if fill is None:
            if not column.nullable:
                raise MigrasafeError(
                    f"safe_op.add_column: {table}.{column.name} is NOT NULL with neither a "
                    "server_default nor backfill_with, so its existing rows would have no "
                    "value: give one of them"
                )
            self.add_nullable_column(table, column, schema=schema)
            return
        if not self.column_exists(table, column.name, schema):  # a retry: added already
            bare = column._copy()
            bare.server_default = None
            bare.nullable = True
            self.add_nullable_column(table, bare, schema=schema)
        if default is not None:  # rows inserted from now on get it
            self.set_default(table, column, schema=schema)
        target = sa.table(table, sa.column(key), sa.column(column.name), schema=schema)
        self.backfill(target, {column.name: fill}, target.c[column.name].is_(None), key, batch_size)
        if not column.nullable:
            self.set_not_null(
                table,
                column.name,
                schema=schema,
                existing_type=column.type,
                existing_server_default=default_argument(column),
            )

    def backfill(
        self,
        target: sa.TableClause,
        values: dict[str, Any],
        where: sa.ColumnElement[bool],
        key: str,
        batch_size: int,
    ) -> None:
        backfill(
            target,
            values,
            where=where,
            key=key,
            batch_size=batch_size,
            commit_each_batch=self.commit_each_batch,
        )

    def column_exists(self, table: str, column: str, schema: str | None) -> bool:
        if self.offline:
            return False
        columns = sa.inspect(op.get_bind()).get_columns(table, schema=schema)
        return any(c["name"] == column for c in columns)


def default_argument(column: sa.Column[Any]) -> Any:
    """The column's server default as ``op.alter_column(server_default=)`` takes it."""
    default = column.server_default
    return getattr(default, "arg", default)


def _default_expression(default: Any) -> Any:
    """The SQL a server default computes, to backfill existing rows with (None: no default)."""
    if default is None:
        return None
    if not isinstance(default, sa.DefaultClause):
        raise MigrasafeError(
            f"safe_op.add_column: a {type(default).__name__} server default cannot be "
            "backfilled; add the column plainly with op.add_column"
        )
    arg = default.arg
    return sa.literal(arg) if isinstance(arg, str) else arg
