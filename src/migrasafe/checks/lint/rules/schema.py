"""Rules for every dialect: operations that break the running application or take long locks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from migrasafe.checks.lint.base import (
    RULES,
    Hit,
    RevisionLint,
    sql_text,
    type_name,
    why_on,
)
from migrasafe.checks.lint.operations import Recorded
from migrasafe.checks.lint.sql import Statement


@RULES.register(
    "add-not-null-column-without-default",
    "error",
    "adding a NOT NULL column without a server default to an existing table",
)
def _add_not_null(lint: RevisionLint) -> Iterator[Hit]:
    why = why_on(lint.dialect, {
        "postgresql": "fails as soon as the table has a row (existing rows would be NULL)",
        "sqlite": "SQLite refuses it outright: Cannot add a NOT NULL column with default NULL",
        "mysql": "MySQL silently fills existing rows with 0 or '' (or fails in strict mode)",
    })  # fmt: skip
    for r, op in lint.of(ops.AddColumnOp):
        column = op.column
        if (not column.nullable and column.server_default is None and not column.primary_key
                and lint.existing(op.table_name)):  # fmt: skip
            yield Hit(r, f"adds NOT NULL column {op.table_name}.{column.name} without a server "
                      f"default: {why}. Safer: add it nullable (or with "
                      f"{lint.safer('server_default=...', 'a DEFAULT')}), "
                      "backfill, then set NOT NULL in a later revision",
                      op.table_name, column.name)  # fmt: skip


@RULES.register("drop-column", "error", "dropping a column")
def _drop_column(lint: RevisionLint) -> Iterator[Hit]:
    if lint.declared_phase == "contract":  # deployed after the release that stopped using it
        return
    for r, op in lint.of(ops.DropColumnOp):
        yield Hit(
            r,
            f"drops column {op.table_name}.{op.column_name}: its data is gone for good, "
            "and the application still deployed breaks when it reads or writes it. "
            "Safer: release code that no longer uses it first, drop it in a later revision "
            "(and keep a backup)",
            op.table_name,
            op.column_name,
        )


@RULES.register("drop-table", "error", "dropping a table")
def _drop_table(lint: RevisionLint) -> Iterator[Hit]:
    if lint.declared_phase == "contract":  # deployed after the release that stopped using it
        return
    for r, op in lint.of(ops.DropTableOp):
        yield Hit(
            r,
            f"drops table {op.table_name}: its rows are gone for good, and the "
            "application still deployed breaks on it. Safer: release code that no longer "
            "uses it first, drop it in a later revision (and keep a backup)",
            op.table_name,
        )


@RULES.register("rename-column", "error", "renaming a column")
def _rename_column(lint: RevisionLint) -> Iterator[Hit]:
    for r, op in lint.of(ops.AlterColumnOp):
        if op.modify_name:
            yield Hit(
                r,
                f"renames {op.table_name}.{op.column_name} to {op.modify_name}: the "
                "application still deployed uses the old name and fails until the new "
                "code is out. Safer: add the new column, write both, backfill, switch "
                "reads, then drop the old one",
                op.table_name,
                op.column_name,
            )


@RULES.register("rename-table", "error", "renaming a table")
def _rename_table(lint: RevisionLint) -> Iterator[Hit]:
    for r, op in lint.of(ops.RenameTableOp):
        yield Hit(
            r,
            f"renames table {op.table_name} to {op.new_table_name}: the application "
            "still deployed uses the old name and fails until the new code is out. Safer: "
            "create the new table (or a view under the old name) and move over in steps",
            op.table_name,
        )


# PostgreSQL changes only the catalog; SQLite does not enforce lengths at all.
_WIDENING_IS_FREE = ("postgresql", "sqlite")


def _is_widening(old: Any, new: Any) -> bool:
    """varchar(n) -> varchar(m > n) or text: metadata only on PostgreSQL."""
    if not isinstance(old, sa.String) or not isinstance(new, sa.String):
        return False
    return new.length is None or (old.length is not None and new.length >= old.length)


def _existing_type(lint: RevisionLint, op: ops.AlterColumnOp) -> Any:
    """The type before: as the history built it, else as the call restates it.

    A restated ``existing_type`` is often stale (copied from an older model),
    the replayed history is what the database has.
    """
    known = lint.before.column(op.table_name, op.column_name)
    if known is not None and not isinstance(known.type, sa.types.NullType | None):
        return known.type
    return op.existing_type


# PostgreSQL's other names for the same type, as raw SQL may spell them.
_SAME_TYPE = {
    "INT": "INTEGER", "INT4": "INTEGER", "SERIAL": "INTEGER", "SERIAL4": "INTEGER",
    "INT8": "BIGINT", "BIGSERIAL": "BIGINT", "SERIAL8": "BIGINT", "INT2": "SMALLINT",
    "SMALLSERIAL": "SMALLINT", "BOOL": "BOOLEAN", "FLOAT8": "DOUBLE PRECISION",
    "FLOAT": "DOUBLE PRECISION", "FLOAT4": "REAL", "DECIMAL": "NUMERIC",
    "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE", "TIMETZ": "TIME WITH TIME ZONE",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "TIME WITHOUT TIME ZONE": "TIME",
    "CHARACTER VARYING": "VARCHAR", "CHARACTER": "CHAR", "BPCHAR": "CHAR",
}  # fmt: skip


def _same_type(old: Any, new: Any, dialect: str) -> bool:
    aliases = _SAME_TYPE if dialect == "postgresql" else {}

    def name(kind: Any) -> str:
        text = " ".join(type_name(kind, dialect).upper().split())
        base, paren, rest = text.partition("(")
        return aliases.get(base.strip(), base.strip()) + (f"({rest}" if paren else "")

    return name(old) == name(new)


@RULES.register("change-column-type", "error", "changing a column's type")
def _change_type(lint: RevisionLint) -> Iterator[Hit]:
    why = why_on(
        lint.dialect,
        {
            "postgresql": "PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock "
            "(no reads, no writes) while it converts every row",
            "sqlite": "SQLite recreates and copies the whole table (batch mode), and values "
            "that do not convert are kept as they were or fail",
            "mysql": "MySQL copies the whole table (ALGORITHM=COPY), blocking writes meanwhile",
        },
    )
    for r, op in lint.of(ops.AlterColumnOp):
        if op.modify_type is None or not lint.existing(op.table_name):
            continue
        existing = _existing_type(lint, op)
        new = type_name(op.modify_type, lint.dialect)
        if existing is not None and _same_type(existing, op.modify_type, lint.dialect):
            continue  # the type restated, as autogenerate and careful authors do: no change
        if lint.dialect in _WIDENING_IS_FREE and _is_widening(existing, op.modify_type):
            continue
        was = f" (from {type_name(existing, lint.dialect)})" if existing is not None else ""
        yield Hit(r, f"changes the type of {op.table_name}.{op.column_name} to {new}{was}: "
                  f"{why}. Safer: add a new column of the new type, backfill it in batches, "
                  "switch the code, then drop the old column",
                  op.table_name, op.column_name)  # fmt: skip


@RULES.register("set-not-null", "error", "making an existing column NOT NULL")
def _set_not_null(lint: RevisionLint) -> Iterator[Hit]:
    why = why_on(
        lint.dialect,
        {
            "postgresql": "PostgreSQL scans the whole table under an ACCESS EXCLUSIVE lock, "
            "and the migration fails on the first NULL",
            "mysql": "MySQL rebuilds the table, and fails (or writes 0/'') on existing NULLs",
            "sqlite": "SQLite recreates the table, and fails on the first NULL",
        },
    )
    for r, op in lint.of(ops.AlterColumnOp):
        known = lint.before.column(op.table_name, op.column_name)
        if op.existing_nullable is False or (known is not None and known.nullable is False):
            continue  # already NOT NULL: restated, no change
        if op.modify_nullable is False and _proved_not_null(lint, r, op):
            continue  # PostgreSQL 12+ uses the validated CHECK: no scan, a brief lock
        if op.modify_nullable is False and lint.existing(op.table_name):
            safer = ("add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it, then SET NOT "
                     "NULL (PostgreSQL 12+ uses the check and skips the scan)"
                     if lint.dialect == "postgresql"
                     else "backfill the NULLs first, in their own revision")  # fmt: skip
            yield Hit(r, f"sets {op.table_name}.{op.column_name} NOT NULL: {why}. Safer: {safer}",
                      op.table_name, op.column_name)  # fmt: skip


_IS_NOT_NULL = re.compile(r'^\(*\s*"?(?P<column>\w+)"?\s+IS\s+NOT\s+NULL\s*\)*$', re.I)


def _proved_not_null(lint: RevisionLint, at: Recorded, op: ops.AlterColumnOp) -> bool:
    """Whether, before ``at``, the revision added ``CHECK (column IS NOT NULL)`` on the table
    and it is valid (added valid, or NOT VALID then validated): PostgreSQL 12+ then sets NOT
    NULL from the check, without scanning the table (what safe_op.set_not_null does)."""
    if lint.dialect != "postgresql" or lint.pg_version < 12:
        return False
    checks: dict[str, bool] = {}  # name -> valid
    for r in lint.operations:
        if r is at:
            break
        found = r.operation
        if isinstance(found, ops.CreateCheckConstraintOp) and found.table_name == op.table_name:
            match = _IS_NOT_NULL.match(str(found.condition).strip())
            if match and match["column"] == op.column_name:
                not_valid = bool(found.kw.get("postgresql_not_valid"))
                checks[str(found.constraint_name)] = not not_valid
        elif isinstance(found, Statement) and found.kind == "validate-constraint":
            table, _, name = str(found.table_name).partition(".")
            if table == op.table_name and name in checks:
                checks[name] = True
    return any(checks.values())


@RULES.register("drop-not-null", "warning", "making a NOT NULL column nullable")
def _drop_not_null(lint: RevisionLint) -> Iterator[Hit]:
    """Only where it matters: the column was NOT NULL (as the call or the history says)."""
    for r, op in lint.of(ops.AlterColumnOp):
        if op.modify_nullable is not True or not lint.existing(op.table_name):
            continue
        known = lint.before.column(op.table_name, op.column_name)
        if not (op.existing_nullable is False or (known is not None and known.nullable is False)):
            continue  # nullable already, or unknown: restated, no change
        yield Hit(r, f"makes {op.table_name}.{op.column_name} nullable: the application still "
                  "deployed, and models that declare it non-optional, may now read a NULL they "
                  "do not handle; and setting NOT NULL back later scans the table and fails on "
                  "the NULLs written meanwhile. Safer: release code that handles NULL there "
                  "first, then drop NOT NULL", op.table_name, op.column_name)  # fmt: skip


@RULES.register("add-unique-constraint", "error", "adding a unique constraint to an existing table")
def _add_unique(lint: RevisionLint) -> Iterator[Hit]:
    why = why_on(lint.dialect, {
        "postgresql": "PostgreSQL builds its index under a lock that blocks writes for the whole "
                      "build, and fails on the first duplicate",
        "*": "the migration fails on the first duplicate already in the table",
    })  # fmt: skip
    safer = ("CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX"
             if lint.dialect == "postgresql"
             else "find and resolve duplicates first")  # fmt: skip
    for r, op in lint.of(ops.CreateUniqueConstraintOp):
        if lint.existing(op.table_name):
            yield Hit(r, f"adds unique constraint {op.constraint_name or '(unnamed)'} on "
                      f"{op.table_name}({', '.join(op.columns)}): {why}. Safer: {safer}",
                      op.table_name)  # fmt: skip


_SESSION_SQL = re.compile(r"^\s*(SET|RESET|BEGIN|START|COMMIT|ROLLBACK|END)\b", re.I)
_DATA_SQL = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|COPY|WITH|SELECT)\b", re.I)


def _is_data(op: Any, dialect: str) -> bool:
    if isinstance(op, ops.BulkInsertOp):
        return True
    if isinstance(op, ops.ExecuteSQLOp):
        sql = op.sqltext
        if isinstance(sql, sa.sql.dml.UpdateBase | sa.sql.Select):
            return True
        return bool(_DATA_SQL.match(sql_text(op, dialect)))
    return False


def _changes_existing_schema(lint: RevisionLint, r: Recorded) -> bool:
    op = r.operation
    if _is_data(op, lint.dialect) or isinstance(op, ops.CreateTableOp):
        return False
    if isinstance(op, ops.ExecuteSQLOp):  # DDL lint may not read (CREATE TRIGGER): assumed to
        return not _SESSION_SQL.match(sql_text(op, lint.dialect))  # change it, SET does not
    if isinstance(op, Statement) and op.kind in ("set", "transaction"):
        return False  # SET statement_timeout, COMMIT: no schema changed
    return lint.existing(getattr(op, "table_name", None) or getattr(op, "source_table", None))


@RULES.register(
    "mixed-schema-and-data",
    "warning",
    "a revision that changes existing tables' schema and also their data",
)
def _mixed(lint: RevisionLint) -> Iterator[Hit]:
    # data sent inside autocommit_block() commits batch by batch, outside the DDL's transaction
    data = [r for r in lint.operations if _is_data(r.operation, lint.dialect) and not r.autocommit]
    schema = [r for r in lint.operations if _changes_existing_schema(lint, r)]
    if data and schema:
        why = why_on(lint.dialect, {
            "postgresql": "in one transaction, the schema change's locks are held for the whole "
                          "data migration",
            "mysql": "MySQL commits each DDL statement, so a failure in the data part leaves "
                     "the schema half changed",
            "sqlite": "the data part runs while the table rebuild holds the database's write lock",
        })  # fmt: skip
        yield Hit(data[0], f"changes the schema of existing tables (line {schema[0].line}) and "
                  f"their data (line {data[0].line}) in one revision: {why}. Safer: one revision "
                  "for the schema, another for the data")  # fmt: skip


@RULES.register(
    "transaction-nesting",
    "error",
    "BEGIN, COMMIT or ROLLBACK sent inside the transaction Alembic runs a revision in",
)
def _transaction_nesting(lint: RevisionLint) -> Iterator[Hit]:
    for r, op in lint.of(Statement):
        if op.kind == "transaction" and not r.autocommit:
            yield Hit(r, f"sends {op.table_name} inside the transaction Alembic runs the "
                      "revision in: a COMMIT or ROLLBACK ends it early, so what follows runs "
                      "outside it and a failure leaves the revision half applied and not "
                      "recorded (a BEGIN is ignored with a warning, or fails on MySQL). Safer: "
                      "leave transactions to Alembic; for statements that cannot run in one, "
                      "`with op.get_context().autocommit_block():`")  # fmt: skip


@RULES.register(
    "sql-not-linted",
    "info",
    "raw SQL lint could not read (it does not parse, or a DO block): not checked",
)
def _not_linted(lint: RevisionLint) -> Iterator[Hit]:
    for r, op in lint.of((ops.ExecuteSQLOp, Statement)):
        if isinstance(op, Statement):
            if op.kind == "unread":
                yield Hit(r, f"{op.table_name}: lint did not check it. Check it by hand, or write "
                          "what it does with op.* where Alembic has the operation")  # fmt: skip
            continue
        if r.read_sql or not isinstance(_text(op), str):
            continue
        sql = " ".join(str(_text(op)).split())
        yield Hit(r, f"{sql[:60]!r} does not parse as {lint.dialect} SQL, so lint did not "
                  "check it (the rules that look for words in it still ran). Check it by "
                  "hand")  # fmt: skip


def _text(op: ops.ExecuteSQLOp) -> object:
    sql = op.sqltext
    return sql if isinstance(sql, str) else getattr(sql, "text", None)
