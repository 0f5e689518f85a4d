"""SQLite: what its ALTER TABLE cannot do outside batch mode."""

from __future__ import annotations

from collections.abc import Iterator

from alembic.operations import ops

from migrasafe.checks.lint.base import (
    RULES,
    Hit,
    RevisionLint,
)

_SQLITE_NEEDS_BATCH = (
    ops.AlterColumnOp, ops.CreateForeignKeyOp, ops.CreateUniqueConstraintOp,
    ops.CreateCheckConstraintOp, ops.DropConstraintOp, ops.CreatePrimaryKeyOp,
)  # fmt: skip


@RULES.register(
    "sqlite-alter-outside-batch",
    "error",
    "SQLite: an ALTER that SQLite cannot do, outside batch_alter_table",
)
def _sqlite_batch(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "sqlite":
        return
    for r, op in lint.of(_SQLITE_NEEDS_BATCH):
        table = getattr(op, "table_name", None) or getattr(op, "source_table", None)
        if isinstance(op, ops.AlterColumnOp) and _only_renames(op):
            continue  # ALTER TABLE ... RENAME COLUMN: SQLite 3.25+ does it in place
        if not r.batch and lint.existing(table):
            yield Hit(r, f"{type(op).__name__.removesuffix('Op')} on {table} outside batch mode: "
                      "SQLite's ALTER TABLE cannot do it, so the migration fails there. Safer: "
                      + lint.safer(f'`with op.batch_alter_table("{table}") as batch_op:` '
                                   "(Alembic recreates the table)",
                                   "recreate the table: CREATE TABLE a new one, INSERT ... "
                                   "SELECT the rows, DROP the old, RENAME the new"),
                      table)  # fmt: skip


def _only_renames(op: ops.AlterColumnOp) -> bool:
    return (
        bool(op.modify_name)
        and op.modify_type is None
        and op.modify_nullable is None
        and (op.modify_server_default is False)
    )
