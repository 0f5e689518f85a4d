"""The schema as it stands before each revision, replayed offline from base.

lint sees one revision's operations; whether ``alter_column(..., nullable=False)``
changes anything depends on what the column was. Replaying every recorded
operation from base (``op.*`` and raw SQL read by :mod:`migrasafe.checks.lint.sql`)
gives each column's type and nullability before the revision, so a rule can
tell a restated type or nullability from a real change, and a widening from
a narrowing, without a database. What the replay does not know (a column
made by SQL it could not read) is None: the rule then judges as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops


@dataclass
class Column:
    type: Any | None
    nullable: bool | None


@dataclass
class Tables:
    """Table name -> column name -> what is known of it."""

    tables: dict[str, dict[str, Column]] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)  # index name -> its table

    def index_table(self, index: str | None) -> str | None:
        return self.indexes.get(index) if index is not None else None

    def column(self, table: str | None, name: str | None) -> Column | None:
        if table is None or name is None:
            return None
        return self.tables.get(table, {}).get(name)

    def apply(self, operation: Any) -> None:
        if isinstance(operation, ops.CreateTableOp):
            self.tables[operation.table_name] = {
                c.name: Column(c.type, bool(c.nullable) and not c.primary_key)
                for c in operation.columns if isinstance(c, sa.Column)
            }  # fmt: skip
            self.indexes.update({index: operation.table_name for index in _indexes(operation)})
        elif isinstance(operation, ops.DropTableOp):
            self.tables.pop(operation.table_name, None)
            self._retarget(operation.table_name, None)
        elif isinstance(operation, ops.RenameTableOp):
            if operation.table_name in self.tables:
                self.tables[operation.new_table_name] = self.tables.pop(operation.table_name)
            self._retarget(operation.table_name, operation.new_table_name)
        elif isinstance(operation, ops.CreateIndexOp) and operation.index_name:
            self.indexes[operation.index_name] = operation.table_name
        elif isinstance(operation, ops.DropIndexOp):
            self.indexes.pop(operation.index_name, None)
        elif isinstance(operation, ops.AddColumnOp):
            column = operation.column
            self.tables.setdefault(operation.table_name, {})[column.name] = Column(
                column.type, bool(column.nullable) and not column.primary_key
            )
        elif isinstance(operation, ops.DropColumnOp):
            self.tables.get(operation.table_name, {}).pop(operation.column_name, None)
        elif isinstance(operation, ops.AlterColumnOp):
            self._alter(operation)

    def _alter(self, operation: ops.AlterColumnOp) -> None:
        columns = self.tables.setdefault(operation.table_name, {})
        known = columns.get(operation.column_name) or Column(
            operation.existing_type, operation.existing_nullable
        )
        if operation.modify_type is not None:
            known = Column(operation.modify_type, known.nullable)
        if operation.modify_nullable is not None:
            known = Column(known.type, operation.modify_nullable)
        if operation.modify_name:
            columns.pop(operation.column_name, None)
            columns[operation.modify_name] = known
        else:
            columns[operation.column_name] = known

    def _retarget(self, table: str, new: str | None) -> None:
        for index, owner in list(self.indexes.items()):
            if owner == table:
                if new is None:
                    del self.indexes[index]
                else:
                    self.indexes[index] = new

    def copy(self) -> Tables:
        return Tables({name: dict(columns) for name, columns in self.tables.items()},
                      dict(self.indexes))  # fmt: skip


def _indexes(operation: ops.CreateTableOp) -> list[str]:
    """The names of the indexes create_table builds (sa.Index items, Column(index=True))."""
    try:
        table = operation.to_table()
    except Exception:  # a table SQLAlchemy cannot build offline: its indexes stay unknown
        return []
    return [str(index.name) for index in table.indexes if index.name]
