"""What every lint rule sees: one revision's operations for a dialect, and the registry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from migrasafe.checks.findings import Registry
from migrasafe.checks.lint.operations import Recorded, RevisionOperations
from migrasafe.checks.lint.replay import Tables

DIALECTS = ("postgresql", "sqlite", "mysql")
DIALECT_ALIASES = {"mariadb": "mysql", "postgres": "postgresql"}
IGNORE_COMMENT = re.compile(r"#\s*migrasafe:\s*ignore\[([^\]]*)\]")


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
    # Why every statement of the project runs with a lock_timeout (None: not known to)
    lock_timeout: str | None = None
    sql_file: bool = False  # a .sql migration file, not an Alembic revision
    # The phase the revision declares (phase = "expand", or an expand/contract branch label)
    declared_phase: str | None = None

    def safer(self, revision: str, sql: str) -> str:
        """The advice for an Alembic revision, or for a SQL file."""
        return sql if self.sql_file else revision

    @property
    def outside_transaction(self) -> str:
        return self.safer("inside `with op.get_context().autocommit_block():`",
                          "outside BEGIN ... COMMIT")  # fmt: skip

    @property
    def operations(self) -> list[Recorded]:
        return self.recorded.operations

    @cached_property
    def created(self) -> set[str]:
        """Tables this revision creates (op.create_table or CREATE TABLE): empty, so nothing
        done to them can lock or fail."""
        return {r.operation.table_name for r in self.operations
                if isinstance(r.operation, ops.CreateTableOp)}  # fmt: skip

    @cached_property
    def dropped(self) -> set[str]:
        """Tables this revision drops (op.drop_table or DROP TABLE)."""
        return {r.operation.table_name for r in self.operations
                if isinstance(r.operation, ops.DropTableOp)}  # fmt: skip

    def existing(self, table: str | None) -> bool:
        return table is not None and table not in self.created

    def of(self, kind: type[Any] | tuple[type[Any], ...]) -> Iterator[tuple[Recorded, Any]]:
        for r in self.operations:
            if isinstance(r.operation, kind):
                yield r, r.operation


RULES: Registry[RevisionLint, Hit] = Registry("lint")


def why_on(dialect: str, reasons: dict[str, str]) -> str:
    return reasons.get(dialect, reasons.get("*", ""))


def kw(op: Any, name: str) -> Any:
    return (getattr(op, "kw", None) or {}).get(name)


def type_name(kind: Any, dialect: str) -> str:
    """A type as the dialect writes it (``sa.JSON`` passed as a class included)."""
    instance = kind() if isinstance(kind, type) else kind
    try:
        return str(instance.compile(dialect=sa_dialect(dialect)))
    except Exception:  # a type the dialect cannot render: its Python name
        return type(instance).__name__.upper()


def sa_dialect(name: str) -> Any:
    return sa.make_url(f"{name}://").get_dialect()()


def sql_text(op: ops.ExecuteSQLOp, dialect: str) -> str:
    """The SQL an execute sends, as text: a construct compiled for the dialect ('' if it
    cannot be rendered)."""
    sql = op.sqltext
    if isinstance(sql, str):
        return sql
    try:
        return str(sql.compile(dialect=sa_dialect(dialect)))  # type: ignore[attr-defined]
    except Exception:
        return ""
