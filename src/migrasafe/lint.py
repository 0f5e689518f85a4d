"""``lint``: dangerous operations, found before they reach a database.

The operations of each revision's ``upgrade()`` are recorded offline for a
dialect (:mod:`migrasafe.operations`); each rule is a plain function over one
revision's operations, registered under a stable id. What is dangerous, and
why, depends on the dialect: that knowledge lives in the rules below.

Suppress a finding with ``# migrasafe: ignore[rule-id]`` on the statement that
performs the operation, or for a whole project in pyproject.toml::

    [tool.migrasafe.lint]
    ignore = ["mixed-schema-and-data"]
    per-revision-ignore = { "0007" = ["drop-column"] }
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from alembic.runtime.environment import EnvironmentContext

from .config import Project, alembic_errors
from .database import parse_url
from .errors import ConfigError, MigrasafeError, RevisionError
from .findings import Finding, Registry
from .graph import apply_order
from .operations import Recorded, RevisionOperations, record_upgrade
from .replay import Tables
from .runtime import discover_url
from .settings import tool_section
from .sqlops import Statement

DIALECTS = ("postgresql", "sqlite", "mysql")
_DIALECT_ALIASES = {"mariadb": "mysql", "postgres": "postgresql"}
_IGNORE = re.compile(r"#\s*migrasafe:\s*ignore\[([^\]]*)\]")


@dataclass(frozen=True)
class Hit:
    """One dangerous operation, as a rule sees it."""

    at: Recorded
    message: str
    table: str | None = None
    column: str | None = None


@dataclass
class RevisionLint:
    """What a rule looks at: one revision's operations, for one dialect."""

    dialect: str
    recorded: RevisionOperations
    before: Tables = field(default_factory=Tables)  # the schema before it, replayed from base
    pg_version: int = 15  # PostgreSQL major version linted for (--pg-version)

    @property
    def operations(self) -> list[Recorded]:
        return self.recorded.operations

    @cached_property
    def created(self) -> set[str]:
        """Tables this revision creates (op.create_table or CREATE TABLE): empty, so nothing
        done to them can lock or fail."""
        return {r.operation.table_name for r in self.operations
                if isinstance(r.operation, ops.CreateTableOp)}  # fmt: skip

    def existing(self, table: str | None) -> bool:
        return table is not None and table not in self.created

    def of(self, kind: type[Any] | tuple[type[Any], ...]) -> Iterator[tuple[Recorded, Any]]:
        for r in self.operations:
            if isinstance(r.operation, kind):
                yield r, r.operation


RULES: Registry[RevisionLint, Hit] = Registry("lint")


def _why(dialect: str, reasons: dict[str, str]) -> str:
    return reasons.get(dialect, reasons.get("*", ""))


# -- rules that apply to every dialect -----------------------------------------------


@RULES.register(
    "add-not-null-column-without-default",
    "error",
    "adding a NOT NULL column without a server default to an existing table",
)
def _add_not_null(lint: RevisionLint) -> Iterator[Hit]:
    why = _why(lint.dialect, {
        "postgresql": "fails as soon as the table has a row (existing rows would be NULL)",
        "sqlite": "SQLite refuses it outright: Cannot add a NOT NULL column with default NULL",
        "mysql": "MySQL silently fills existing rows with 0 or '' (or fails in strict mode)",
    })  # fmt: skip
    for r, op in lint.of(ops.AddColumnOp):
        column = op.column
        if (not column.nullable and column.server_default is None and not column.primary_key
                and lint.existing(op.table_name)):  # fmt: skip
            yield Hit(r, f"adds NOT NULL column {op.table_name}.{column.name} without a server "
                      f"default: {why}. Safer: add it nullable (or with server_default=...), "
                      "backfill, then set NOT NULL in a later revision",
                      op.table_name, column.name)  # fmt: skip


@RULES.register("drop-column", "error", "dropping a column")
def _drop_column(lint: RevisionLint) -> Iterator[Hit]:
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


def type_name(kind: Any, dialect: str) -> str:
    """A type as the dialect writes it (``sa.JSON`` passed as a class included)."""
    instance = kind() if isinstance(kind, type) else kind
    try:
        return str(instance.compile(dialect=_dialect(dialect)))
    except Exception:  # a type the dialect cannot render: its Python name
        return type(instance).__name__.upper()


def _dialect(name: str) -> Any:
    return sa.make_url(f"{name}://").get_dialect()()


def _existing_type(lint: RevisionLint, op: ops.AlterColumnOp) -> Any:
    """The type before: as the call restates it, else as the history built it."""
    if op.existing_type is not None:
        return op.existing_type
    known = lint.before.column(op.table_name, op.column_name)
    return known.type if known is not None else None


@RULES.register("change-column-type", "error", "changing a column's type")
def _change_type(lint: RevisionLint) -> Iterator[Hit]:
    why = _why(
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
        if existing is not None and type_name(existing, lint.dialect) == new:
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
    why = _why(
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
        if op.modify_nullable is False and lint.existing(op.table_name):
            safer = ("add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it, then SET NOT "
                     "NULL (PostgreSQL 12+ uses the check and skips the scan)"
                     if lint.dialect == "postgresql"
                     else "backfill the NULLs first, in their own revision")  # fmt: skip
            yield Hit(r, f"sets {op.table_name}.{op.column_name} NOT NULL: {why}. Safer: {safer}",
                      op.table_name, op.column_name)  # fmt: skip


@RULES.register("add-unique-constraint", "error", "adding a unique constraint to an existing table")
def _add_unique(lint: RevisionLint) -> Iterator[Hit]:
    why = _why(lint.dialect, {
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


_DATA_SQL = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|COPY|WITH|SELECT)\b", re.I)


def _is_data(op: Any) -> bool:
    if isinstance(op, ops.BulkInsertOp):
        return True
    if isinstance(op, ops.ExecuteSQLOp):
        sql = op.sqltext
        if isinstance(sql, sa.sql.dml.UpdateBase | sa.sql.Select):
            return True
        return bool(_DATA_SQL.match(str(sql)))
    return False


def _changes_existing_schema(lint: RevisionLint, op: Any) -> bool:
    if _is_data(op) or isinstance(op, ops.CreateTableOp):
        return False
    return lint.existing(getattr(op, "table_name", None) or getattr(op, "source_table", None)) or (
        isinstance(op, ops.ExecuteSQLOp)
    )


@RULES.register(
    "mixed-schema-and-data",
    "warning",
    "a revision that changes existing tables' schema and also their data",
)
def _mixed(lint: RevisionLint) -> Iterator[Hit]:
    data = [r for r in lint.operations if _is_data(r.operation)]
    schema = [r for r in lint.operations if _changes_existing_schema(lint, r.operation)]
    if data and schema:
        why = _why(lint.dialect, {
            "postgresql": "in one transaction, the schema change's locks are held for the whole "
                          "data migration",
            "mysql": "MySQL commits each DDL statement, so a failure in the data part leaves "
                     "the schema half changed",
            "sqlite": "the data part runs while the table rebuild holds the database's write lock",
        })  # fmt: skip
        yield Hit(data[0], f"changes the schema of existing tables (line {schema[0].line}) and "
                  f"their data (line {data[0].line}) in one revision: {why}. Safer: one revision "
                  "for the schema, another for the data")  # fmt: skip


# -- PostgreSQL --------------------------------------------------------------------


def _kw(op: Any, name: str) -> Any:
    return (getattr(op, "kw", None) or {}).get(name)


@RULES.register(
    "create-index-without-concurrently",
    "error",
    "PostgreSQL: CREATE INDEX on an existing table without CONCURRENTLY",
)
def _create_index(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreateIndexOp):
        if lint.existing(op.table_name) and not _kw(op, "postgresql_concurrently"):
            yield Hit(r, f"creates index {op.index_name} on {op.table_name} without CONCURRENTLY: "
                      "PostgreSQL blocks every write to the table for the whole build. Safer: "
                      "op.create_index(..., postgresql_concurrently=True) inside "
                      "`with op.get_context().autocommit_block():`", op.table_name)  # fmt: skip
    for r, op in lint.of(ops.ExecuteSQLOp):  # SQL that could not be read: the words tell
        if r.read_sql:
            continue
        if re.search(r"\bCREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", str(op.sqltext), re.I):
            yield Hit(r, "runs CREATE INDEX without CONCURRENTLY: PostgreSQL blocks every write "
                      "to the table for the whole build. Safer: CREATE INDEX CONCURRENTLY inside "
                      "`with op.get_context().autocommit_block():`")  # fmt: skip


@RULES.register(
    "concurrently-inside-transaction",
    "error",
    "PostgreSQL: CREATE/DROP INDEX CONCURRENTLY outside autocommit_block()",
)
def _concurrently_in_transaction(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    why = ("cannot run inside a transaction block, and Alembic runs each revision in one: "
           "the migration fails on PostgreSQL. Wrap it: "
           "`with op.get_context().autocommit_block():`")  # fmt: skip
    for r, op in lint.of((ops.CreateIndexOp, ops.DropIndexOp)):
        if _kw(op, "postgresql_concurrently") and not r.autocommit:
            verb = "creates" if isinstance(op, ops.CreateIndexOp) else "drops"
            yield Hit(r, f"{verb} index {op.index_name} CONCURRENTLY, which {why}",
                      op.table_name)  # fmt: skip
    for r, op in lint.of(ops.ExecuteSQLOp):
        sql = str(op.sqltext)
        words = r"\bREINDEX\b" if r.read_sql else r"\b(CREATE|DROP|REINDEX)\b"  # read: as ops
        if re.search(words + r"[^;]*\bCONCURRENTLY\b", sql, re.I | re.S) and (not r.autocommit):
            yield Hit(r, f"runs {' '.join(sql.split())[:60]!r} CONCURRENTLY, which {why}")


# Functions PostgreSQL evaluates per row: a default calling one is written into every row.
_VOLATILE = re.compile(
    r"\b(random|gen_random_uuid|uuid_generate_v[14]|clock_timestamp|timeofday|nextval|"
    r"txid_current|statement_timestamp)\s*\(", re.I,
)  # fmt: skip


def _default_sql(column: Any) -> str | None:
    default = column.server_default
    if default is None:
        return None
    arg = getattr(default, "arg", default)
    return str(getattr(arg, "text", arg))


@RULES.register(
    "add-column-volatile-default",
    "error",
    "PostgreSQL: adding a column whose default is volatile (or any default before 11)",
)
def _volatile_default(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.AddColumnOp):
        column = op.column
        filled = _filled_per_row(column)
        if filled is not None and lint.existing(op.table_name):
            yield Hit(r, f"adds {op.table_name}.{column.name} as {filled}: PostgreSQL computes "
                      "it for every row and rewrites the whole table under an ACCESS EXCLUSIVE "
                      "lock. Safer: add a plain nullable column, backfill it in batches, then add "
                      "the identity or the expression in a later step",
                      op.table_name, column.name)  # fmt: skip
            continue
        default = _default_sql(column)
        if default is None or not lint.existing(op.table_name):
            continue
        volatile = _VOLATILE.search(default)
        if volatile or lint.pg_version < 11:
            old = f"before PostgreSQL 11 (linting for {lint.pg_version}) any default"
            why = f"{volatile.group(1)}() is evaluated for each row" if volatile else old
            yield Hit(r, f"adds {op.table_name}.{op.column.name} DEFAULT {default}: {why}, so "
                      "PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock. Safer: "
                      "add the column without a default (or with a constant one), set the default "
                      "afterwards, backfill in batches", op.table_name, op.column.name)  # fmt: skip


def _filled_per_row(column: Any) -> str | None:
    """An identity or a stored generated column: a value written into every existing row."""
    if getattr(column, "identity", None) is not None:
        return "an identity column"
    computed = getattr(column, "computed", None)
    if computed is not None and computed.persisted is not False:
        return f"a stored generated column ({computed.sqltext})"
    return None


@RULES.register("truncate-table", "error", "TRUNCATE in a migration (and CASCADE to others)")
def _truncate(lint: RevisionLint) -> Iterator[Hit]:
    for r, op in lint.of(Statement):
        if op.kind == "truncate" and lint.existing(op.table_name):
            also = (" and, by CASCADE, every row of every table that references it"
                    if op.cascade else "")  # fmt: skip
            yield Hit(r, f"truncates {op.table_name}: every row is gone for good{also}, under an "
                      "ACCESS EXCLUSIVE lock. Safer: delete what must go in a reviewed data "
                      "migration (in batches), keep a backup", op.table_name)  # fmt: skip


@RULES.register("drop-database", "error", "DROP DATABASE in a migration")
def _drop_database(lint: RevisionLint) -> Iterator[Hit]:
    for r, op in lint.of(Statement):
        if op.kind == "drop-database":
            yield Hit(r, f"drops database {op.table_name}: everything in it is gone for good. A "
                      "migration manages one database's schema; drop databases by hand, "
                      "after a backup")  # fmt: skip


@RULES.register("reindex-without-concurrently", "error", "PostgreSQL: REINDEX without CONCURRENTLY")
def _reindex(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(Statement):
        if op.kind == "reindex" and not op.concurrently:
            safer = ("REINDEX ... CONCURRENTLY inside `with op.get_context().autocommit_block():`"
                     if lint.pg_version >= 12
                     else "CREATE INDEX CONCURRENTLY a copy, then drop the old one")  # fmt: skip
            yield Hit(r, f"runs REINDEX {op.table_name or ''} without CONCURRENTLY: PostgreSQL "
                      "blocks writes to the table (and reads through the index) for the whole "
                      f"rebuild. Safer: {safer}", op.table_name)  # fmt: skip


@RULES.register(
    "add-primary-key",
    "error",
    "PostgreSQL: adding a primary key to an existing table without an index built beforehand",
)
def _add_primary_key(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreatePrimaryKeyOp):
        if lint.existing(op.table_name):
            yield Hit(r, f"adds primary key {op.constraint_name or '(unnamed)'} to "
                      f"{op.table_name}: PostgreSQL builds its unique index, and checks every "
                      "column for NULLs, under an ACCESS EXCLUSIVE lock (no reads, no writes). "
                      "Safer: CREATE UNIQUE INDEX CONCURRENTLY (in autocommit_block()), then "
                      "ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
                      op.table_name)  # fmt: skip


@RULES.register(
    "drop-index-without-concurrently", "warning", "PostgreSQL: DROP INDEX without CONCURRENTLY"
)
def _drop_index(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.DropIndexOp):
        if not _kw(op, "postgresql_concurrently"):
            yield Hit(r, f"drops index {op.index_name} without CONCURRENTLY: PostgreSQL takes an "
                      "ACCESS EXCLUSIVE lock on the table, queued behind every running query and "
                      "blocking all that come after. Safer: postgresql_concurrently=True inside "
                      "`with op.get_context().autocommit_block():`", op.table_name)  # fmt: skip


@RULES.register(
    "add-foreign-key-without-not-valid",
    "error",
    "PostgreSQL: a foreign key on an existing table without NOT VALID",
)
def _add_fk(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreateForeignKeyOp):
        if lint.existing(op.source_table) and not _kw(op, "postgresql_not_valid"):
            yield Hit(r, f"adds foreign key {op.constraint_name or '(unnamed)'} from "
                      f"{op.source_table} to {op.referent_table} and validates every row at once, "
                      "blocking writes to both tables meanwhile. Safer: "
                      "create_foreign_key(..., postgresql_not_valid=True), then VALIDATE "
                      "CONSTRAINT in a later revision", op.source_table)  # fmt: skip


@RULES.register(
    "add-check-constraint-without-not-valid",
    "error",
    "PostgreSQL: a CHECK constraint on an existing table without NOT VALID",
)
def _add_check(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreateCheckConstraintOp):
        if lint.existing(op.table_name) and not _kw(op, "postgresql_not_valid"):
            yield Hit(r, f"adds CHECK constraint {op.constraint_name or '(unnamed)'} on "
                      f"{op.table_name} and scans every row under an ACCESS EXCLUSIVE lock. "
                      "Safer: create_check_constraint(..., postgresql_not_valid=True), then "
                      "VALIDATE CONSTRAINT in a later revision", op.table_name)  # fmt: skip


# -- PostgreSQL style, opt-in (--rule NAME) ------------------------------------------


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


# -- SQLite ------------------------------------------------------------------------

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
                      f'`with op.batch_alter_table("{table}") as batch_op:` (Alembic recreates '
                      "the table)", table)  # fmt: skip


def _only_renames(op: ops.AlterColumnOp) -> bool:
    return (
        bool(op.modify_name)
        and op.modify_type is None
        and op.modify_nullable is None
        and (op.modify_server_default is False)
    )


# -- MySQL -------------------------------------------------------------------------


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
        if lint.existing(op.table_name) and (_kw(op, "mysql_after") or _kw(op, "mysql_first")):
            yield Hit(r, f"adds {op.table_name}.{op.column.name} at a given position: MySQL "
                      "cannot do that instantly before 8.0.29 and rebuilds the table. Safer: add "
                      "it last", op.table_name, op.column.name)  # fmt: skip


@RULES.register(
    "unused-suppression", "error",
    "with --strict: an ignore comment or pyproject entry that silences nothing",
)  # fmt: skip
def _unused_suppression(_lint: RevisionLint) -> Iterator[Hit]:
    return iter(())  # found by lint() itself, from what the other rules' findings used


# -- running the rules ---------------------------------------------------------------


@dataclass(frozen=True)
class LintSettings:
    """Suppressions from pyproject.toml's [tool.migrasafe.lint]."""

    ignore: frozenset[str] = frozenset()
    per_revision: dict[str, frozenset[str]] = field(default_factory=dict)
    source: str | None = None


def load_settings(start: Path) -> LintSettings:
    """[tool.migrasafe.lint] of the nearest pyproject.toml at or above ``start``."""
    tool, path = tool_section(start)
    if path is None:
        return LintSettings()
    section = tool.get("lint", {})
    ignore = section.get("ignore", [])
    per_revision = section.get("per-revision-ignore", {})
    if not isinstance(ignore, list) or not isinstance(per_revision, dict):
        raise ConfigError(f"{path}: [tool.migrasafe.lint] expects ignore = [rule ids] and "
                          'per-revision-ignore = {"<revision>" = [rule ids]}')  # fmt: skip
    settings = LintSettings(
        frozenset(ignore), {str(k): frozenset(v) for k, v in per_revision.items()}, str(path)
    )
    named = set(settings.ignore).union(*settings.per_revision.values())
    _check_known(named, f"{path} [tool.migrasafe.lint]")
    return settings


def _check_known(rules: Iterable[str], where: str) -> None:
    unknown = sorted(set(rules) - set(RULES.checks))
    if unknown:
        raise ConfigError(f"{where} names unknown lint rule(s) {', '.join(unknown)}; known rules: "
                          f"{', '.join(sorted(RULES.checks))}")  # fmt: skip


class _Suppressions:
    """``# migrasafe: ignore[rule, ...]`` comments of one file, by the statement they annotate."""

    def __init__(self, path: Path) -> None:
        source = path.read_text()
        self.path = path
        self.comments: dict[int, set[str]] = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and (match := _IGNORE.search(token.string)):
                rules = {r.strip() for r in match.group(1).split(",") if r.strip()}
                _check_known(rules, f"{path}:{token.start[0]}: # migrasafe: ignore[...]")
                self.comments[token.start[0]] = rules
        self.statements = [
            (node.lineno, node.end_lineno or node.lineno)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef | ast.With)
        ]

        self.used: set[tuple[int, str]] = set()

    def covers(self, line: int | None, rule: str) -> bool:
        if line is None or not self.comments:
            return False
        spans = [(a, b) for a, b in self.statements if a <= line <= b] or [(line, line)]
        first, last = min(spans, key=lambda s: s[1] - s[0])
        for n in range(first, last + 1):
            if rule in self.comments.get(n, ()):
                self.used.add((n, rule))
                return True
        return False

    def unused(self) -> Iterator[tuple[int, str]]:
        """(line, rule) of each ignore comment that silenced nothing."""
        for line, rules in sorted(self.comments.items()):
            for rule in sorted(rules):
                if (line, rule) not in self.used:
                    yield line, rule


def _unused_settings(
    settings: LintSettings, used: set[tuple[str, str]], selected: set[str]
) -> list[Finding]:
    """pyproject.toml ignores that silenced nothing (``--strict``)."""
    found = []
    for rule in sorted(settings.ignore & selected):
        if not any(r == rule for _, r in used):
            found.append(Finding("unused-suppression", "error", None, settings.source,
                                 f'ignore = ["{rule}"] in [tool.migrasafe.lint] silences '
                                 "nothing: remove it"))  # fmt: skip
    for revision, rules in sorted(settings.per_revision.items()):
        for rule in sorted(rules & selected - settings.ignore):
            if (revision, rule) not in used:
                found.append(Finding("unused-suppression", "error", revision, settings.source,
                                     f"per-revision-ignore {revision} = [{rule!r}] silences "
                                     "nothing: remove it"))  # fmt: skip
    return found


@dataclass(frozen=True)
class LintReport:
    dialect: str
    findings: tuple[Finding, ...]
    revisions: int
    suppressed: int

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "dialect": self.dialect,
            "findings": [f.to_dict() for f in self.findings],
            "revisions": self.revisions,
            "suppressed": self.suppressed,
            "ok": self.ok,
        }


def resolve_dialect(project: Project, dialect: str | None) -> str:
    """The dialect to lint for: the one asked for, else that of the URL env.py connects to.

    That URL is learned by running ``env.py`` with every connection refused
    (:func:`migrasafe.runtime.discover_url`): lint never touches a database.
    """
    if dialect is None:
        url = project.configured_url
        if url is None:
            try:
                url = discover_url(project).render_as_string(hide_password=False)
            except MigrasafeError as exc:
                raise ConfigError(
                    f"lint needs a dialect: pass --dialect ({', '.join(DIALECTS)}); "
                    f"the project's URL is unknown ({exc})"
                ) from exc
        dialect = parse_url(url).get_backend_name()
    dialect = _DIALECT_ALIASES.get(dialect, dialect)
    if dialect not in DIALECTS:
        raise ConfigError(f"lint knows the dialects {', '.join(DIALECTS)}, not {dialect!r}")
    return dialect


def select_revisions(
    project: Project, since: str | None = None, git_base: str | None = None
) -> set[str] | None:
    """The revisions to lint: after ``since``, and/or whose files changed since ``git_base``.

    None: all of them. For adopting lint on a long history without its old
    findings, and for a pull request's own revisions.
    """
    script = project.script
    chosen: set[str] | None = None
    if since is not None:
        with alembic_errors():
            start = script.get_revision(since)
        if start is None:
            raise RevisionError(f"--since {since!r} names no revision")
        children: dict[str, set[str]] = {}
        for revision in script.walk_revisions():
            for parent in revision._all_down_revisions:
                children.setdefault(parent, set()).add(revision.revision)
        chosen, todo = set(), [start.revision]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in chosen:
                    chosen.add(child)
                    todo.append(child)
    if git_base is not None:
        changed = _changed_files(Path(script.versions), git_base)
        by_git = {s.revision for s in script.walk_revisions() if Path(s.path).resolve() in changed}
        chosen = by_git if chosen is None else chosen & by_git
    return chosen


_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree, in every repository


def _changed_files(directory: Path, base: str) -> set[Path]:
    """Files under ``directory`` added or changed since git ``base``, committed or not.

    ``HEAD`` in a repository without a commit yet (a pre-commit hook on the
    first commit) is the empty tree: every file is new.
    """
    if base == "HEAD":
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=directory,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if head.returncode != 0 and not head.stderr.strip():
            base = _EMPTY_TREE
    commands = (
        ["git", "diff", "--name-only", "-z", "--relative", "--diff-filter=ACMR", base, "--", "."],
        ["git", "ls-files", "--others", "--exclude-standard", "-z", "."],
    )
    found: set[Path] = set()
    for command in commands:
        try:
            done = subprocess.run(command, cwd=directory, capture_output=True, text=True,
                                  check=False, timeout=60)  # fmt: skip
        except OSError as exc:
            raise ConfigError(f"--git-base needs git: {exc}") from exc
        if done.returncode != 0:
            message = " ".join(done.stderr.split()) or f"exit {done.returncode}"
            raise ConfigError(f"--git-base {base}: git says: {message}")
        found |= {(directory / name).resolve() for name in done.stdout.split("\0") if name}
    return found


def lint(
    project: Project,
    *,
    dialect: str | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    revisions: set[str] | None = None,
    strict: bool = False,
    pg_version: int = 15,
) -> LintReport:
    """Record each revision's upgrade operations offline and run the selected rules.

    ``revisions``: only these (see :func:`select_revisions`); default all.
    ``strict``: a suppression that silenced nothing is an ``unused-suppression``
    error (a rule fixed long ago, or a comment on the wrong line).
    """
    name = resolve_dialect(project, dialect)
    rules = RULES.select(only, skip)
    settings = load_settings(project.config_path.parent.resolve())
    findings: list[Finding] = []
    suppressed = 0
    every = apply_order(project.script)
    order = [s for s in every if revisions is None or s.revision in revisions]
    environment = EnvironmentContext(project.config, project.script)
    schema = Tables()  # replayed from base, through the revisions not linted too
    used_settings: set[tuple[str, str]] = set()  # (revision, rule) silenced by pyproject.toml
    for script in every:
        recorded = record_upgrade(script, name, environment)
        before = schema.copy() if revisions is None or script.revision in revisions else None
        for r in recorded.operations:
            schema.apply(r.operation)
        if before is None:
            continue
        path = Path(script.path)
        comments = _Suppressions(path)
        off = settings.ignore | settings.per_revision.get(script.revision, frozenset())
        if recorded.error:
            findings.append(Finding(
                "lint-incomplete", "warning", script.revision, str(path),
                f"upgrade() could not run without a database ({recorded.error}); the operations "
                "after that point were not checked",
            ))  # fmt: skip
        view = RevisionLint(name, recorded, before, pg_version)
        for rule in rules:
            for hit in rule.run(view):
                if rule.rule in off:
                    suppressed += 1
                    used_settings.add((script.revision, rule.rule))
                    continue
                if comments.covers(hit.at.line, rule.rule):
                    suppressed += 1
                    continue
                findings.append(
                    Finding(rule.rule, rule.severity, script.revision, str(path), hit.message,
                            hit.at.line, hit.table, hit.column)
                )  # fmt: skip
        selected = {r.rule for r in rules}
        if strict and "unused-suppression" in selected:
            findings += [
                Finding("unused-suppression", "error", script.revision, str(path),
                        f"`# migrasafe: ignore[{rule}]` silences nothing here: remove it (the "
                        "operation is gone or safe now), or move it to the statement it is for",
                        line)
                for line, rule in comments.unused() if rule in selected
            ]  # fmt: skip
    if strict and any(r.rule == "unused-suppression" for r in rules):
        findings += _unused_settings(settings, used_settings, {r.rule for r in rules})
    revision_index = {s.revision: n for n, s in enumerate(order)}
    findings.sort(key=lambda f: (revision_index.get(f.revision or "", 0), f.line or 0))
    return LintReport(name, tuple(findings), len(order), suppressed)
