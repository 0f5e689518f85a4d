"""MySQL and MariaDB: ALTERs that copy the table."""

from __future__ import annotations

from collections.abc import Iterator

from alembic.operations import ops

from migrasafe.checks.lint.base import (
    RULES,
    Hit,
    RevisionLint,
    kw,
)


@RULES.register(
    "mysql-table-rebuild",
    "error",
    "MySQL: an ALTER that copies the table or blocks writes (ALGORITHM=COPY)",
)
def _mysql_rebuild(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "mysql":
        return
    for r, op in lint.of((ops.CreateForeignKeyOp, ops.CreatePrimaryKeyOp)):
        table = getattr(op, "table_name", None) or getattr(op, "source_table", None)
        if lint.existing(table):
            what = "a foreign key" if isinstance(op, ops.CreateForeignKeyOp) else "a primary key"
            yield Hit(r, f"adds {what} to {table}: with foreign_key_checks on, MySQL copies the "
                      "table (ALGORITHM=COPY) and blocks writes meanwhile. Safer: an online "
                      "schema change tool (gh-ost, pt-online-schema-change) for big tables",
                      table)  # fmt: skip
    for r, op in lint.of(ops.AddColumnOp):
        if lint.existing(op.table_name) and (kw(op, "mysql_after") or kw(op, "mysql_first")):
            yield Hit(r, f"adds {op.table_name}.{op.column.name} at a given position: MySQL "
                      "cannot do that instantly before 8.0.29 and rebuilds the table. Safer: add "
                      "it last", op.table_name, op.column.name)  # fmt: skip
