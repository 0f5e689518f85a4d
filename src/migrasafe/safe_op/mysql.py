"""MySQL and MariaDB: the operations with ``ALGORITHM`` and ``LOCK`` that say they stay online.

MySQL and MariaDB already pick the least blocking algorithm they can; naming
it (``ALGORITHM=INPLACE, LOCK=NONE`` for index builds and NOT NULL,
``ALGORITHM=INSTANT`` for a new column) turns a silent fallback to a table
copy that blocks writes into an error before anything is locked. Foreign keys
and CHECK constraints have no online form that still checks the existing rows
(adding a foreign key in place needs ``foreign_key_checks=0``, which checks
nothing), so they stay the plain operations, as lint's ``mysql-table-rebuild``
says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from alembic.ddl.mysql import MySQLModifyColumn
from alembic.operations import ops

from migrasafe.errors import MigrasafeError
from migrasafe.safe_op.base import SafeOperations

ONLINE = "ALGORITHM=INPLACE, LOCK=NONE"


class MySQLSafeOperations(SafeOperations):
    commit_each_batch = True

    def _compile(self, element: Any) -> str:
        return str(element.compile(dialect=self.context.dialect))

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
        index = ops.CreateIndexOp(
            name, table, list(columns), schema=schema, unique=unique, **kw
        ).to_index(self.context)
        op.execute(f"{self._compile(sa.schema.CreateIndex(index))} {ONLINE.replace(',', '')}")

    def drop_index(self, name: str, table: str | None, *, schema: str | None, **kw: Any) -> None:
        if table is None:
            raise MigrasafeError(f"safe_op.drop_index: MySQL needs the table of index {name}")
        op.execute(
            f"ALTER TABLE {self.table_sql(table, schema)} DROP INDEX {self.quote(name)}, {ONLINE}"
        )

    def drop_constraint(
        self, name: str, table: str, type_: str | None, *, schema: str | None
    ) -> None:
        """A foreign key's index too, when MySQL made it for the constraint (named after it)."""
        implicit = (
            type_ == "foreignkey"
            and not self.offline
            and any(
                i["name"] == name
                for i in sa.inspect(op.get_bind()).get_indexes(table, schema=schema)
            )
        )
        op.drop_constraint(name, table, type_=type_, schema=schema)
        if implicit:
            self.drop_index(name, table, schema=schema)

    def add_unique(self, name: str, table: str, columns: list[str], *, schema: str | None) -> None:
        self.create_index(name, table, columns, schema=schema, unique=True)

    def add_nullable_column(
        self, table: str, column: sa.Column[Any], *, schema: str | None
    ) -> None:
        definition = self._compile(sa.schema.CreateColumn(column))
        op.execute(
            f"ALTER TABLE {self.table_sql(table, schema)} ADD COLUMN {definition}, "
            "ALGORITHM=INSTANT"
        )

    def _modify(
        self,
        table: str,
        column: str,
        schema: str | None,
        nullable: bool,
        existing_type: Any,
        existing_server_default: Any,
    ) -> None:
        """MODIFY restates the whole column: its type, default and comment are read back."""
        known: Any = {}
        if not self.offline:
            found = sa.inspect(op.get_bind()).get_columns(table, schema=schema)
            known = next((c for c in found if c["name"] == column), {})
        kind = existing_type if existing_type is not None else known.get("type")
        if kind is None:
            raise MigrasafeError(
                f"safe_op on MySQL: give existing_type= for {table}.{column} "
                "(MODIFY restates the column's type, and offline it is not "
                "known)"
            )
        default = existing_server_default
        if default is None and known.get("default") is not None:
            default = sa.text(known["default"])
        modify = MySQLModifyColumn(
            table,
            column,
            schema=schema,
            newname=column,
            type_=kind,
            nullable=nullable,
            default=default if default is not None else False,
            autoincrement=known.get("autoincrement") is True,
            comment=known.get("comment"),
        )
        op.execute(f"{self._compile(modify)}, {ONLINE}")

    def set_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        self._modify(table, column, schema, False, existing_type, existing_server_default)

    def drop_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        self._modify(table, column, schema, True, existing_type, existing_server_default)
