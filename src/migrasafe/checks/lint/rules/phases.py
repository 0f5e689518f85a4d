"""Expand/contract: a revision's operations held against the phase it declares."""

from __future__ import annotations

from collections.abc import Iterator

from alembic.operations import ops

from migrasafe.checks.lint.base import RULES, Hit, RevisionLint
from migrasafe.checks.lint.phases import breaking


@RULES.register("expand-breaks-old-release", "error",
                "an expand revision that drops, renames, retypes or tightens what the "
                "running release uses")  # fmt: skip
def _expand_breaks(lint: RevisionLint) -> Iterator[Hit]:
    if lint.declared_phase != "expand":
        return
    for r in lint.operations:
        why = breaking(r.operation, lint)
        if why is not None and getattr(r.operation, "table_name", None) not in lint.created:
            table = getattr(r.operation, "table_name", None)
            yield Hit(r, f"an expand revision must keep the release before it working, but it "
                      f"{why}; move this to a contract revision deployed after the new "
                      "release is out (or declare this revision phase = 'contract')", table,
                      getattr(r.operation, "column_name", None))  # fmt: skip


@RULES.register("contract-adds", "warning",
                "a contract revision that adds tables or columns new code depends on")  # fmt: skip
def _contract_adds(lint: RevisionLint) -> Iterator[Hit]:
    if lint.declared_phase != "contract":
        return
    for r in lint.operations:
        operation = r.operation
        if isinstance(operation, ops.CreateTableOp | ops.AddColumnOp):
            what = (f"table {operation.table_name}" if isinstance(operation, ops.CreateTableOp)
                    else f"column {operation.table_name}.{operation.column.name}")  # fmt: skip
            yield Hit(r, f"a contract revision runs after the new release is deployed, so the "
                      f"new release cannot rely on the {what} it adds: add it in an expand "
                      "revision", operation.table_name)  # fmt: skip
