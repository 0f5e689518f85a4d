"""PostgreSQL: the locks each operation takes, and what they block."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from alembic.ddl.postgresql import CreateExcludeConstraintOp
from alembic.operations import ops

from migrasafe.checks.lint.base import (
    RULES,
    Hit,
    RevisionLint,
    kw,
    sql_text,
)
from migrasafe.checks.lint.sql import Statement
from migrasafe.checks.lint.timeouts import lock_timeout_set


@RULES.register(
    "create-index-without-concurrently",
    "error",
    "PostgreSQL: CREATE INDEX on an existing table without CONCURRENTLY",
)
def _create_index(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreateIndexOp):
        if lint.existing(op.table_name) and not kw(op, "postgresql_concurrently"):
            yield Hit(r, f"creates index {op.index_name} on {op.table_name} without CONCURRENTLY: "
                      "PostgreSQL blocks every write to the table for the whole build. Safer: "
                      + lint.safer("op.create_index(..., postgresql_concurrently=True)",
                                   "CREATE INDEX CONCURRENTLY")
                      + f" {lint.outside_transaction}", op.table_name)  # fmt: skip
    for r, op in lint.of(ops.ExecuteSQLOp):  # SQL that could not be read: the words tell
        if r.read_sql:
            continue
        sql = sql_text(op, lint.dialect)
        if re.search(r"\bCREATE\s+(UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)", sql, re.I):
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
    why = lint.safer("cannot run inside a transaction block, and Alembic runs each revision in "
                     "one: the migration fails on PostgreSQL. Wrap it: "
                     "`with op.get_context().autocommit_block():`",
                     "cannot run inside a transaction block, and the file opened one (BEGIN): "
                     "the migration fails on PostgreSQL. Run it outside BEGIN ... COMMIT",
                     )  # fmt: skip
    for r, op in lint.of((ops.CreateIndexOp, ops.DropIndexOp)):
        if kw(op, "postgresql_concurrently") and not r.autocommit:
            verb = "creates" if isinstance(op, ops.CreateIndexOp) else "drops"
            yield Hit(r, f"{verb} index {op.index_name} CONCURRENTLY, which {why}",
                      op.table_name)  # fmt: skip
    for r, op in lint.of(ops.ExecuteSQLOp):
        sql = sql_text(op, lint.dialect)
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
            safer = (f"REINDEX ... CONCURRENTLY {lint.outside_transaction}"
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
                      f"Safer: CREATE UNIQUE INDEX CONCURRENTLY ({lint.outside_transaction}), then "
                      "ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
                      op.table_name)  # fmt: skip


@RULES.register(
    "drop-index-without-concurrently", "warning", "PostgreSQL: DROP INDEX without CONCURRENTLY"
)
def _drop_index(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.DropIndexOp):
        table = op.table_name or lint.before.index_table(op.index_name)
        if table is not None and (not lint.existing(table) or table in lint.dropped):
            continue  # the revision creates the table (empty), or drops it anyway
        if not kw(op, "postgresql_concurrently"):
            yield Hit(r, f"drops index {op.index_name} without CONCURRENTLY: PostgreSQL takes an "
                      "ACCESS EXCLUSIVE lock on the table, queued behind every running query and "
                      "blocking all that come after. Safer: "
                      + lint.safer("postgresql_concurrently=True", "DROP INDEX CONCURRENTLY")
                      + f" {lint.outside_transaction}", table)  # fmt: skip


@RULES.register(
    "add-foreign-key-without-not-valid",
    "error",
    "PostgreSQL: a foreign key on an existing table without NOT VALID",
)
def _add_fk(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreateForeignKeyOp):
        if lint.existing(op.source_table) and not kw(op, "postgresql_not_valid"):
            yield Hit(r, f"adds foreign key {op.constraint_name or '(unnamed)'} from "
                      f"{op.source_table} to {op.referent_table} and validates every row at once, "
                      "blocking writes to both tables meanwhile. Safer: "
                      + lint.safer("create_foreign_key(..., postgresql_not_valid=True)",
                                   "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID")
                      + ", then VALIDATE CONSTRAINT in a later revision",
                      op.source_table)  # fmt: skip


@RULES.register(
    "add-check-constraint-without-not-valid",
    "error",
    "PostgreSQL: a CHECK constraint on an existing table without NOT VALID",
)
def _add_check(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(ops.CreateCheckConstraintOp):
        if lint.existing(op.table_name) and not kw(op, "postgresql_not_valid"):
            yield Hit(r, f"adds CHECK constraint {op.constraint_name or '(unnamed)'} on "
                      f"{op.table_name} and scans every row under an ACCESS EXCLUSIVE lock. "
                      "Safer: "
                      + lint.safer("create_check_constraint(..., postgresql_not_valid=True)",
                                   "ADD CONSTRAINT ... CHECK (...) NOT VALID")
                      + ", then VALIDATE CONSTRAINT in a later revision",
                      op.table_name)  # fmt: skip


@RULES.register(
    "add-exclusion-constraint",
    "error",
    "PostgreSQL: adding an exclusion constraint to an existing table",
)
def _add_exclusion(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(CreateExcludeConstraintOp):
        if lint.existing(op.table_name):
            yield Hit(r, f"adds exclusion constraint {op.constraint_name} to {op.table_name}: "
                      "PostgreSQL builds its index and checks every row under an ACCESS "
                      "EXCLUSIVE lock, so reads and writes wait for all of it, and there is no "
                      "NOT VALID for exclusion constraints. Safer: declare it when the table is "
                      "created, or build a new table with it and swap it in",
                      op.table_name)  # fmt: skip


# Operations that take a lock other sessions' queries conflict with (ACCESS EXCLUSIVE, or
# SHARE for an index build): behind a long transaction they wait, and every query on the
# table queues behind them.
_LOCKING = (
    ops.AddColumnOp, ops.DropColumnOp, ops.AlterColumnOp, ops.DropTableOp, ops.RenameTableOp,
    ops.CreateIndexOp, ops.DropIndexOp, ops.CreateForeignKeyOp, ops.CreateUniqueConstraintOp,
    ops.CreateCheckConstraintOp, ops.CreatePrimaryKeyOp, ops.DropConstraintOp,
    CreateExcludeConstraintOp, Statement,
)  # fmt: skip


# Raw statements that lock a table: TRUNCATE, REINDEX, LOCK TABLE, and the rewrites.
_LOCKING_STATEMENTS = ("truncate", "reindex", "lock", "vacuum-full", "cluster", "set-tablespace")


@RULES.register(
    "missing-lock-timeout",
    "warning",
    "PostgreSQL: a lock on an existing table taken with no lock_timeout",
)
def _missing_lock_timeout(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql" or lint.lock_timeout is not None:
        return
    limited = False
    for r in lint.operations:
        op = r.operation
        limit = lock_timeout_set(op)
        if limit is not None:
            limited = limit
            continue
        if limited or not isinstance(op, _LOCKING):
            continue  # outside the transaction too (autocommit_block(), a .sql file) it waits
        if isinstance(op, Statement) and op.kind not in _LOCKING_STATEMENTS:
            continue
        if kw(op, "postgresql_concurrently") or getattr(op, "concurrently", False):
            continue
        table = getattr(op, "table_name", None) or getattr(op, "source_table", None)
        if not lint.existing(table):
            continue
        yield Hit(r, f"locks {table} with no lock_timeout: behind any open transaction on "
                  f"{table} the migration waits, and every query on {table} queues behind it "
                  "meanwhile (an outage, not a slow deploy). Safer: "
                  + lint.safer("op.execute(\"SET lock_timeout = '2s'\") first in upgrade(), or "
                               "deploy with `migrasafe upgrade --db-lock-timeout 2s --retries 3` "
                               "and set db-lock-timeout in [tool.migrasafe]",
                               "SET lock_timeout = '2s' first in the file, or run it with one "
                               "(PGOPTIONS='-c lock_timeout=2s') and tell lint with "
                               "--db-lock-timeout 2s or db-lock-timeout in [tool.migrasafe]"),
                  table)  # fmt: skip
        return  # once per revision: the first statement that waits is the one to fix


_REWRITES = {
    "vacuum-full": "VACUUM FULL",
    "cluster": "CLUSTER",
    "set-tablespace": "ALTER TABLE ... SET TABLESPACE",
}


@RULES.register(
    "full-table-rewrite",
    "error",
    "PostgreSQL: VACUUM FULL, CLUSTER or SET TABLESPACE on an existing table",
)
def _full_rewrite(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql":
        return
    for r, op in lint.of(Statement):
        if op.kind in _REWRITES and (op.table_name is None or lint.existing(op.table_name)):
            target = op.table_name or "every table of the database"
            yield Hit(r, f"runs {_REWRITES[op.kind]} on {target}: PostgreSQL copies the whole "
                      "table under an ACCESS EXCLUSIVE lock, so no read or write gets through "
                      "until it is done. Safer: keep it out of migrations; pg_repack rewrites a "
                      "table online, in a maintenance window if at all", op.table_name)  # fmt: skip


@RULES.register(
    "enum-value-in-transaction",
    "error",
    "PostgreSQL before 12: ALTER TYPE ... ADD VALUE inside the revision's transaction",
)
def _enum_value(lint: RevisionLint) -> Iterator[Hit]:
    if lint.dialect != "postgresql" or lint.pg_version >= 12:
        return
    for r, op in lint.of(Statement):
        if op.kind == "enum-add-value" and not r.autocommit:
            yield Hit(r, f"adds a value to enum type {op.table_name} inside a transaction: "
                      f"before PostgreSQL 12 (linting for {lint.pg_version}) ALTER TYPE ... ADD "
                      "VALUE cannot run in a transaction block, so the migration fails. Safer: "
                      + lint.safer("`with op.get_context().autocommit_block():`",
                                   "run it outside BEGIN ... COMMIT"))  # fmt: skip
