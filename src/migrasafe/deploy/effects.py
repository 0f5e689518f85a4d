"""Is an operation's effect already in the database? Asked of a revision that stopped midway.

Where DDL commits at once (MySQL, MariaDB; an ``autocommit_block`` anywhere), a
revision killed or failing midway leaves its first statements applied while
the version table still names its parent. ``status`` lists which of its
operations are present, and ``upgrade --resume`` skips those. The answer is
read from the live schema (SQLAlchemy's inspector), one operation at a time:
``True`` present, ``False`` absent, ``None`` cannot tell (raw SQL, data, a
type change the reflected type cannot confirm).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.engine import Connection, Inspector


def describe(operation: Any) -> str:
    """One line naming the operation as a revision writes it: ``add_column authors.country``."""
    table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    if isinstance(operation, ops.AddColumnOp):
        return f"add_column {table}.{operation.column.name}"
    if isinstance(operation, ops.DropColumnOp):
        return f"drop_column {table}.{operation.column_name}"
    if isinstance(operation, ops.AlterColumnOp):
        return f"alter_column {table}.{operation.column_name}"
    if isinstance(operation, ops.CreateIndexOp | ops.DropIndexOp):
        verb = "create_index" if isinstance(operation, ops.CreateIndexOp) else "drop_index"
        return f"{verb} {operation.index_name} on {table}"
    if isinstance(operation, ops.RenameTableOp):
        return f"rename_table {table} to {operation.new_table_name}"
    if isinstance(operation, ops.ExecuteSQLOp):
        text = operation.sqltext if isinstance(operation.sqltext, str) else str(operation.sqltext)
        flat = " ".join(text.split())
        return f"execute {flat[:60]}{'...' if len(flat) > 60 else ''}"
    name = getattr(operation, "constraint_name", None)
    verb = _verb(operation)
    return " ".join(str(part) for part in (verb, name, "on" if name and table else None, table)
                    if part)  # fmt: skip


def _verb(operation: Any) -> str:
    """``CreateForeignKeyOp`` -> ``create_foreign_key``: the op.* name of the operation."""
    name = type(operation).__name__.removesuffix("Op")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def present(operation: Any, connection: Connection) -> bool | None:
    """Whether ``operation``'s effect is in the database ``connection`` is on (None: unknown)."""
    inspector = sa.inspect(connection)
    judge = _JUDGES.get(type(operation))
    if judge is None:
        for kind, found in _JUDGES.items():
            if isinstance(operation, kind):
                judge = found
                break
    if judge is None:
        return None
    try:
        return judge(operation, inspector)
    except sa.exc.NoSuchTableError:
        return _without_table(operation)


def _without_table(operation: Any) -> bool:
    """The table is gone: a drop's effect is there, anything else's is not."""
    drops = ops.DropTableOp | ops.DropColumnOp | ops.DropIndexOp | ops.DropConstraintOp
    return isinstance(operation, drops)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()


def _has_table(inspector: Inspector, name: str, schema: str | None) -> bool:
    return any(_same(t, name) for t in inspector.get_table_names(schema=schema))


def _columns(inspector: Inspector, table: str, schema: str | None) -> dict[str, Any]:
    return {c["name"].casefold(): c for c in inspector.get_columns(table, schema=schema)}


def _constraints(inspector: Inspector, table: str, schema: str | None) -> set[str]:
    """Every named index and constraint of ``table`` (MySQL names a unique one as an index)."""
    names: set[str | None] = {i["name"] for i in inspector.get_indexes(table, schema=schema)}
    names |= {u["name"] for u in inspector.get_unique_constraints(table, schema=schema)}
    names |= {f["name"] for f in inspector.get_foreign_keys(table, schema=schema)}
    names.add(inspector.get_pk_constraint(table, schema=schema).get("name"))
    with suppress(NotImplementedError):
        names |= {c["name"] for c in inspector.get_check_constraints(table, schema=schema)}
    return {n.casefold() for n in names if n}


def _create_table(op: ops.CreateTableOp, inspector: Inspector) -> bool:
    return _has_table(inspector, op.table_name, op.schema)


def _drop_table(op: ops.DropTableOp, inspector: Inspector) -> bool:
    return not _has_table(inspector, op.table_name, op.schema)


def _rename_table(op: ops.RenameTableOp, inspector: Inspector) -> bool | None:
    old = _has_table(inspector, op.table_name, op.schema)
    new = _has_table(inspector, op.new_table_name, op.schema)
    return None if old == new else new


def _add_column(op: ops.AddColumnOp, inspector: Inspector) -> bool:
    return op.column.name.casefold() in _columns(inspector, op.table_name, op.schema)


def _drop_column(op: ops.DropColumnOp, inspector: Inspector) -> bool:
    return op.column_name.casefold() not in _columns(inspector, op.table_name, op.schema)


def _alter_column(op: ops.AlterColumnOp, inspector: Inspector) -> bool | None:
    columns = _columns(inspector, op.table_name, op.schema)
    name = op.column_name
    if op.modify_name is not None:
        old, new = name.casefold() in columns, op.modify_name.casefold() in columns
        if old == new:
            return None
        if old:
            return False
        name = op.modify_name
    column = columns.get(name.casefold())
    if column is None:
        return None
    verdicts: list[bool | None] = []
    if op.modify_nullable is not None:
        verdicts.append(bool(column["nullable"]) == bool(op.modify_nullable))
    if op.modify_type is not None:
        verdicts.append(_same_type(column["type"], op.modify_type, op.existing_type, inspector))
    if any(v is False for v in verdicts):
        return False
    if (getattr(op, "modify_server_default", False) is not False
            or getattr(op, "modify_comment", False) is not False):  # fmt: skip
        return None  # a default or comment: not compared
    return None if None in verdicts else True


def _same_type(found: Any, wanted: Any, before: Any, inspector: Inspector) -> bool | None:
    dialect = inspector.dialect

    def spelled(type_: Any) -> str:
        return str(sa.types.to_instance(type_).compile(dialect=dialect)).casefold()

    try:
        if spelled(found) == spelled(wanted):
            return True
        if before is not None and spelled(found) == spelled(before):
            return False
    except Exception:  # a type this dialect cannot spell
        return None
    return None


def _create_index(op: ops.CreateIndexOp, inspector: Inspector) -> bool | None:
    if op.index_name is None:
        return None
    return op.index_name.casefold() in _constraints(inspector, op.table_name, op.schema)


def _drop_index(op: ops.DropIndexOp, inspector: Inspector) -> bool | None:
    if op.table_name is None:
        return None
    return op.index_name.casefold() not in _constraints(inspector, op.table_name, op.schema)


def _create_constraint(op: Any, inspector: Inspector) -> bool | None:
    name = op.constraint_name
    table = getattr(op, "table_name", None) or getattr(op, "source_table", None)
    schema = getattr(op, "schema", None) or getattr(op, "source_schema", None)
    if not name or not table:
        return None
    return str(name).casefold() in _constraints(inspector, table, schema)


def _drop_constraint(op: ops.DropConstraintOp, inspector: Inspector) -> bool | None:
    found = _create_constraint(op, inspector)
    return None if found is None else not found


_JUDGES: dict[type, Callable[[Any, Inspector], bool | None]] = {
    ops.CreateTableOp: _create_table,
    ops.DropTableOp: _drop_table,
    ops.RenameTableOp: _rename_table,
    ops.AddColumnOp: _add_column,
    ops.DropColumnOp: _drop_column,
    ops.AlterColumnOp: _alter_column,
    ops.CreateIndexOp: _create_index,
    ops.DropIndexOp: _drop_index,
    ops.CreateForeignKeyOp: _create_constraint,
    ops.CreateUniqueConstraintOp: _create_constraint,
    ops.CreateCheckConstraintOp: _create_constraint,
    ops.CreatePrimaryKeyOp: _create_constraint,
    ops.DropConstraintOp: _drop_constraint,
}
