"""SQLite: the plain operations, in batch mode where its ALTER TABLE cannot do them.

SQLite has no concurrent builds and one writer at a time, so there is nothing
safer to do than the operation itself. Its ALTER TABLE cannot add or drop a
constraint or change a column's nullability or default: Alembic's
``batch_alter_table`` recreates the table with the change, as a revision
written for SQLite would.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from migrasafe.safe_op.base import SafeOperations, default_argument


class SQLiteSafeOperations(SafeOperations):
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
        with op.batch_alter_table(source, schema=source_schema) as batch:
            batch.create_foreign_key(
                name, referent, local, remote, referent_schema=referent_schema, **kw
            )

    def add_check(
        self, name: str, table: str, condition: Any, *, schema: str | None, **kw: Any
    ) -> None:
        with op.batch_alter_table(table, schema=schema) as batch:
            batch.create_check_constraint(name, condition, **kw)

    def add_unique(self, name: str, table: str, columns: list[str], *, schema: str | None) -> None:
        with op.batch_alter_table(table, schema=schema) as batch:
            batch.create_unique_constraint(name, columns)

    def drop_constraint(
        self, name: str, table: str, type_: str | None, *, schema: str | None
    ) -> None:
        with op.batch_alter_table(table, schema=schema) as batch:
            batch.drop_constraint(name, type_=type_)

    def _alter(self, table: str, column: str, schema: str | None, **kw: Any) -> None:
        with op.batch_alter_table(table, schema=schema) as batch:
            batch.alter_column(column, **kw)

    def set_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        self._alter(table, column, schema, nullable=False, existing_type=existing_type)

    def drop_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        self._alter(table, column, schema, nullable=True, existing_type=existing_type)

    def set_default(self, table: str, column: sa.Column[Any], *, schema: str | None) -> None:
        self._alter(
            table,
            column.name,
            schema,
            server_default=default_argument(column),
            existing_type=column.type,
        )
