"""Expand or contract: is a revision compatible with the application release before it?

An **expand** revision only adds (tables, nullable columns, indexes, data): the
release still running keeps working on the schema it leaves. A **contract**
revision removes or changes what that release reads or writes (drops,
renames, type changes, NOT NULL): it is deployed after the new release has
replaced the old one. A revision says which it is with a module attribute
(``phase = "expand"``) or by living on a branch labelled ``expand`` or
``contract`` (the convention of projects that deploy in two phases);
otherwise its phase is inferred from the operations lint records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from alembic.operations import ops

from migrasafe.checks.lint.operations import RevisionOperations
from migrasafe.errors import ProjectError

if TYPE_CHECKING:
    from migrasafe.checks.lint.base import RevisionLint

Phase = Literal["expand", "contract"]
PHASES: tuple[Phase, ...] = ("expand", "contract")
_LABEL_WORD = re.compile(r"[^a-z]+")


@dataclass(frozen=True)
class RevisionPhase:
    """A revision's phase, where it came from, and why (the operations behind an inference)."""

    revision: str
    phase: Phase | None  # None: unknown (SQL not understood, or not recorded)
    source: Literal["declared", "branch-label", "inferred"]
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"revision": self.revision, "phase": self.phase, "source": self.source,
                "reasons": list(self.reasons)}  # fmt: skip


def _label_phase(label: str) -> Phase | None:
    words = set(_LABEL_WORD.split(label.lower()))
    found = [phase for phase in PHASES if phase in words]
    return found[0] if len(found) == 1 else None


def branch_layout(script_directory: Any) -> bool:
    """Whether the project is laid out as an expand branch and a contract branch (heads
    labelled each way). Only then does a branch label say a revision's phase: Alembic
    copies a label to every revision of its branch, and in a linear history one label
    covers them all."""
    labelled = {
        _label_phase(label)
        for head in script_directory.get_revisions(script_directory.get_heads())
        for label in (head.branch_labels if head is not None else ())
    }
    return {"expand", "contract"} <= labelled


def declared_phase(script: Any, layout: bool = False) -> tuple[Phase | None, str | None]:
    """The phase a revision declares (``phase = "expand"``), or, in the two-branch layout
    (``layout``, see :func:`branch_layout`), its branch's label says."""
    value = getattr(getattr(script, "module", None), "phase", None)
    if value is not None:
        if value not in PHASES:
            raise ProjectError(
                f"{script.path}: phase = {value!r}; a revision's phase is 'expand' (adds only, "
                "the running release keeps working) or 'contract' (removes what it used)"
            )
        return value, "declared"
    if not layout:
        return None, None
    labelled = {_label_phase(label) for label in script.branch_labels} - {None}
    if len(labelled) == 1:
        return labelled.pop(), "branch-label"
    return None, None


def _column(op: Any) -> str:
    return f"{op.table_name}.{op.column_name}"


_WIDER_INTEGERS = {"SMALLINT": 0, "INTEGER": 1, "BIGINT": 2}


def _widens(lint: RevisionLint, op: ops.AlterColumnOp) -> bool:
    """A type change the old release cannot notice: the same type restated, or a wider one
    (varchar(n) -> varchar(m >= n) or text, smallint -> integer -> bigint)."""
    from migrasafe.checks.lint.base import type_name
    from migrasafe.checks.lint.rules.schema import _existing_type, _is_widening, _same_type

    old, new = _existing_type(lint, op), op.modify_type
    if old is None:
        return False
    if _same_type(old, new, lint.dialect) or _is_widening(old, new):
        return True
    if isinstance(old, sa.Text | sa.String) and isinstance(new, sa.Text):
        return True
    rank = _WIDER_INTEGERS.get(type_name(old, lint.dialect).upper())
    wider = _WIDER_INTEGERS.get(type_name(new, lint.dialect).upper())
    return rank is not None and wider is not None and wider >= rank


def _defaulted(lint: RevisionLint, table: str, column: str) -> bool:
    """Whether this revision gave the column a server default (at add, or by alter)."""
    for r in lint.operations:
        found = r.operation
        if (
            isinstance(found, ops.AddColumnOp)
            and found.table_name == table
            and (found.column.name == column and found.column.server_default is not None)
        ):
            return True
        if isinstance(found, ops.AlterColumnOp) and (found.table_name, found.column_name) == (
            table, column) and _sets_default(found):  # fmt: skip
            return True
    return False


def _sets_default(op: ops.AlterColumnOp) -> bool:
    """Whether the alter gives the column a server default (False: unchanged; None: dropped).
    Compared by identity: a SQL expression has no truth value."""
    value = op.modify_server_default
    return value is not None and value is not False


def _added_here(lint: RevisionLint, table: str, column: str) -> bool:
    return any(isinstance(r.operation, ops.AddColumnOp) and r.operation.table_name == table
               and r.operation.column.name == column for r in lint.operations)  # fmt: skip


def breaking(operation: Any, lint: RevisionLint | None = None) -> str | None:
    """Why this operation breaks the release that ran before it, or None if it does not.

    With ``lint`` (the revision, and the schema before it), what only this revision
    created is not the old release's, and a wider type or a restated one breaks nothing.
    """
    kind = getattr(operation, "kind", None)  # a raw statement lint read (checks/lint/sql)
    if kind in ("truncate", "drop-database"):
        return f"{'truncates' if kind == 'truncate' else 'drops database'} {operation.table_name}"
    if kind in ("drop-object", "rename-object"):
        return f"{'drops' if kind == 'drop-object' else 'renames'} {operation.table_name}"
    table = getattr(operation, "table_name", None)
    if lint is not None and table in lint.created:
        return None  # a table this revision creates: no release uses it yet
    if isinstance(operation, ops.DropTableOp):
        return f"drops table {operation.table_name}"
    if isinstance(operation, ops.DropColumnOp):
        if lint is not None and _added_here(lint, operation.table_name, operation.column_name):
            return None
        return f"drops column {_column(operation)}"
    if isinstance(operation, ops.RenameTableOp):
        return f"renames table {operation.table_name} to {operation.new_table_name}"
    if isinstance(operation, ops.AlterColumnOp):
        new_here = lint is not None and _added_here(lint, operation.table_name,
                                                     operation.column_name)  # fmt: skip
        if operation.modify_name is not None:
            return f"renames column {_column(operation)} to {operation.modify_name}"
        if (
            operation.modify_type is not None
            and not new_here
            and not (lint is not None and _widens(lint, operation))
        ):
            return f"changes the type of {_column(operation)} to {operation.modify_type!r}"
        defaulted = _sets_default(operation) or (
            new_here
            and lint is not None
            and _defaulted(lint, operation.table_name, operation.column_name)
        )  # the old release's inserts, which leave it out, get the default
        if operation.modify_nullable is False and not defaulted:
            return f"makes {_column(operation)} NOT NULL"
    if isinstance(operation, ops.AddColumnOp):
        column = operation.column
        if not column.nullable and column.server_default is None and not column.primary_key:
            return (f"adds {operation.table_name}.{column.name} NOT NULL without a default, "
                    "which the old release's inserts do not set")  # fmt: skip
    return None


def infer(recorded: RevisionOperations,
          lint: RevisionLint | None = None) -> tuple[Phase | None, tuple[str, ...]]:  # fmt: skip
    """The phase a revision's operations imply: contract if any breaks the old release,
    unknown if any could not be read (raw SQL not understood, or the recording stopped)."""
    if recorded.error:
        return None, (f"its upgrade could not be read without a database: {recorded.error}",)
    reasons = []
    unread = []
    for r in recorded.operations:
        unread_sql = isinstance(r.operation, ops.ExecuteSQLOp) and not r.read_sql
        if unread_sql or getattr(r.operation, "kind", None) == "unread":
            unread.append(f"line {r.line}: SQL migrasafe does not read" if r.line else "SQL")
            continue
        why = breaking(r.operation, lint)
        if why is not None:
            reasons.append(f"line {r.line}: {why}" if r.line else why)
    if reasons:
        return "contract", tuple(reasons)
    if unread:
        return None, tuple(unread)
    return "expand", ()


def revision_phase(
    script: Any, recorded: RevisionOperations, lint: RevisionLint | None = None,
    layout: bool = False,
) -> RevisionPhase:  # fmt: skip
    """A revision's phase: as declared, else as inferred from ``recorded``."""
    declared, source = declared_phase(script, layout)
    if declared is not None and source is not None:
        return RevisionPhase(script.revision, declared, source)  # type: ignore[arg-type]
    phase, reasons = infer(recorded, lint)
    return RevisionPhase(script.revision, phase, "inferred", reasons)
