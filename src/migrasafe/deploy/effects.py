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
    """Whether ``operation``'s effect is in the database ``connection`` is on (None: unknown).

    Only a sure "present" lets ``--resume`` skip an operation, so every doubt is None: a
    column of the same name but another type, an object reflection cannot see by name.
    """
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


def _key(inspector: Inspector, name: str) -> str:
    """A name as the database compares it: MySQL's columns and SQLite's names ignore case;
    PostgreSQL's reflected names are already as stored, a quoted "Name" differs from name."""
    return name if inspector.dialect.name == "postgresql" else name.casefold()


def _has_table(inspector: Inspector, name: str, schema: str | None) -> bool:
    return any(_key(inspector, t) == _key(inspector, name)
               for t in inspector.get_table_names(schema=schema))  # fmt: skip


def _columns(inspector: Inspector, table: str, schema: str | None) -> dict[str, Any]:
    return {_key(inspector, c["name"]): c for c in inspector.get_columns(table, schema=schema)}


def _indexes(inspector: Inspector, table: str, schema: str | None) -> dict[str, bool]:
    """Index name -> whether it is usable (PostgreSQL keeps a failed concurrent build INVALID)."""
    return {_key(inspector, str(i["name"])): not i.get("dialect_options", {}).get(
        "postgresql_invalid", False) for i in inspector.get_indexes(table, schema=schema)
        if i["name"]}  # fmt: skip


def _constraints(
    inspector: Inspector, table: str, schema: str | None, kind: str | None = None
) -> set[str]:
    """The names of ``table``'s usable objects of one ``kind``: ``index`` (indexes and unique
    constraints: either makes an index of that name), ``foreignkey``, ``unique`` (MySQL keeps
    a unique key as an index), ``check``, ``primary``; None, any constraint. Each kind is
    looked up apart: MySQL keeps the index of a dropped foreign key under the key's name."""
    names: set[str | None] = set()
    if kind in ("index", "unique", None):
        names |= {u["name"] for u in inspector.get_unique_constraints(table, schema=schema)}
        usable = _indexes(inspector, table, schema)
        names |= {i["name"] for i in inspector.get_indexes(table, schema=schema)
                  if (kind == "index" or i.get("unique"))
                  and usable.get(_key(inspector, str(i["name"])))}  # fmt: skip
    if kind in ("foreignkey", None):
        names |= {f["name"] for f in inspector.get_foreign_keys(table, schema=schema)}
    if kind in ("primary", None):
        names.add(inspector.get_pk_constraint(table, schema=schema).get("name"))
    if kind in ("check", None):
        with suppress(NotImplementedError):
            names |= {c["name"] for c in inspector.get_check_constraints(table, schema=schema)}
    return {_key(inspector, n) for n in names if n}


def _create_table(op: ops.CreateTableOp, inspector: Inspector) -> bool:
    return _has_table(inspector, op.table_name, op.schema)


def _drop_table(op: ops.DropTableOp, inspector: Inspector) -> bool:
    return not _has_table(inspector, op.table_name, op.schema)


def _rename_table(op: ops.RenameTableOp, inspector: Inspector) -> bool | None:
    old = _has_table(inspector, op.table_name, op.schema)
    new = _has_table(inspector, op.new_table_name, op.schema)
    return None if old == new else new


def _add_column(op: ops.AddColumnOp, inspector: Inspector) -> bool | None:
    column = _columns(inspector, op.table_name, op.schema).get(_key(inspector, op.column.name))
    if column is None:
        return False
    return _alike(column["type"], op.column.type, inspector)  # another type: unsure


def _drop_column(op: ops.DropColumnOp, inspector: Inspector) -> bool:
    return _key(inspector, op.column_name) not in _columns(inspector, op.table_name, op.schema)


def _alter_column(op: ops.AlterColumnOp, inspector: Inspector) -> bool | None:
    columns = _columns(inspector, op.table_name, op.schema)
    name = op.column_name
    if op.modify_name is not None:
        old = _key(inspector, name) in columns
        new = _key(inspector, op.modify_name) in columns
        if old == new:
            return None
        if old:
            return False
        # Only the new name is there: renamed, or another column of that name (one the
        # revision drops first): sure only if it is of the renamed column's type.
        renamed = columns[_key(inspector, op.modify_name)]
        if op.existing_type is None or not _alike(renamed["type"], op.existing_type, inspector):
            return None
        name = op.modify_name
    column = columns.get(_key(inspector, name))
    if column is None:  # not there (yet): nothing of this alter can have happened
        return False
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


def _alike(found: Any, wanted: Any, inspector: Inspector) -> bool | None:
    """Whether a reflected type is the one a column was declared with, as far as reflection
    can tell: the same spelling, or the same kind (FLOAT reflected as DOUBLE PRECISION; a
    MySQL BOOLEAN reflected as TINYINT). Another kind is None, never a sure "no"."""
    if _same_type(found, wanted, None, inspector):
        return True
    found, wanted = sa.types.to_instance(found), sa.types.to_instance(wanted)
    kinds = {found._type_affinity, wanted._type_affinity}
    if len(kinds) == 1 or (kinds == {sa.Integer, sa.Boolean} and inspector.dialect.name == "mysql"):
        return True
    return None


def _create_index(op: ops.CreateIndexOp, inspector: Inspector) -> bool | None:
    if op.index_name is None:
        return None
    found = _constraints(inspector, op.table_name, op.schema, "index")
    return _key(inspector, op.index_name) in found


def _drop_index(op: ops.DropIndexOp, inspector: Inspector) -> bool | None:
    tables = ([op.table_name] if op.table_name is not None
              else inspector.get_table_names(schema=op.schema))  # fmt: skip
    name = _key(inspector, op.index_name)
    return not any(name in _indexes(inspector, table, op.schema) for table in tables)


def _create_constraint(op: Any, inspector: Inspector) -> bool | None:
    name = op.constraint_name
    table = getattr(op, "table_name", None) or getattr(op, "source_table", None)
    schema = getattr(op, "schema", None) or getattr(op, "source_schema", None)
    if not table:
        return None
    if isinstance(op, ops.CreatePrimaryKeyOp):  # MySQL names no primary key: its columns tell
        found = inspector.get_pk_constraint(table, schema=schema)["constrained_columns"]
        return [_key(inspector, c) for c in found] == [_key(inspector, str(c)) for c in op.columns]
    if not name:
        return _unnamed(op, inspector, table, schema)
    return _key(inspector, str(name)) in _constraints(inspector, table, schema, _kind(op))


def _unnamed(op: Any, inspector: Inspector, table: str, schema: str | None) -> bool | None:
    """An unnamed foreign key or unique constraint, found by its columns (the database
    named it)."""

    def keys(columns: Any) -> list[str]:
        return [_key(inspector, str(c)) for c in columns or ()]

    if isinstance(op, ops.CreateForeignKeyOp):
        # Its options too: a key on the same columns with another ON DELETE is not this one
        # (a revision that changes ON DELETE drops the old key first; if that drop did not
        # happen, a plain run makes a second key, and so must --resume).
        def rule(value: Any) -> str:
            return str(value or "NO ACTION").upper()

        wanted = (keys(op.local_cols), _key(inspector, op.referent_table), keys(op.remote_cols),
                  rule(op.kw.get("ondelete")), rule(op.kw.get("onupdate")),
                  bool(op.kw.get("deferrable")))  # fmt: skip
        return any(
            (keys(f["constrained_columns"]), _key(inspector, f["referred_table"]),
             keys(f["referred_columns"]), rule(f.get("options", {}).get("ondelete")),
             rule(f.get("options", {}).get("onupdate")),
             bool(f.get("options", {}).get("deferrable"))) == wanted
            for f in inspector.get_foreign_keys(table, schema=schema)
        )  # fmt: skip
    if isinstance(op, ops.CreateUniqueConstraintOp):
        found: list[Any] = [
            u["column_names"] for u in inspector.get_unique_constraints(table, schema=schema)
        ]
        found += [i["column_names"] for i in inspector.get_indexes(table, schema=schema)
                  if i.get("unique")]  # fmt: skip
        return any(keys(columns) == keys(op.columns) for columns in found)
    return None


def _kind(op: Any) -> str | None:
    """Which kind of constraint an operation names (see ``_constraints``)."""
    if isinstance(op, ops.DropConstraintOp):
        return op.constraint_type if op.constraint_type in _KINDS else None
    return {ops.CreateForeignKeyOp: "foreignkey", ops.CreateUniqueConstraintOp: "unique",
            ops.CreateCheckConstraintOp: "check"}.get(type(op))  # fmt: skip


_KINDS = ("foreignkey", "unique", "check", "primary")


def _drop_constraint(op: ops.DropConstraintOp, inspector: Inspector) -> bool | None:
    if op.constraint_type == "primary":
        return not inspector.get_pk_constraint(op.table_name, schema=op.schema)[
            "constrained_columns"]  # fmt: skip
    found = _create_constraint(op, inspector)
    return None if found is None else not found


def clear_leftover(operation: Any, operations: Any) -> None:
    """Before an index is built again: an INVALID one of the same name, which PostgreSQL
    leaves when a concurrent build stops midway, is dropped (as ``safe_op.create_index``
    does on retry)."""
    connection = operations.migration_context.connection
    if (not isinstance(operation, ops.CreateIndexOp) or operation.index_name is None
            or connection is None or connection.dialect.name != "postgresql"):  # fmt: skip
        return
    inspector = sa.inspect(connection)
    try:
        usable = _indexes(inspector, operation.table_name, operation.schema)
    except sa.exc.NoSuchTableError:
        return
    if usable.get(operation.index_name) is False:
        concurrently = bool(operation.kw.get("postgresql_concurrently"))
        operations.drop_index(operation.index_name, table_name=operation.table_name,
                              schema=operation.schema,
                              postgresql_concurrently=concurrently)  # fmt: skip


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
