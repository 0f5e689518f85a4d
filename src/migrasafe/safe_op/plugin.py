"""``op.safe_create_index(...)`` and the others, as Alembic operations.

:func:`register` adds each function of :mod:`migrasafe.safe_op` to Alembic's
``Operations`` under the name ``safe_<name>`` (``op.safe_create_index``,
``op.safe_set_not_null`` ...), through ``Operations.register_operation``,
Alembic's documented way for operation plugins. Each runs the safe operation
directly (it is a sequence of Alembic operations, not one to render), so
``--sql``, lint and verify see the operations it is made of.

Call it from ``env.py`` or at the top of a revision. Alembic's
``alembic.plugins`` entry point cannot: it runs while
``alembic.runtime.migration`` is still being imported, before ``Operations``
(and what this package imports from Alembic) can be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.operations import Operations
from alembic.operations.ops import MigrateOperation

from migrasafe import safe_op

NAMES = (
    "create_index",
    "drop_index",
    "add_foreign_key",
    "add_check",
    "add_unique",
    "drop_constraint",
    "set_not_null",
    "drop_not_null",
    "add_column",
    "drop_column",
    "rename_column_expand",
    "undo_rename_column_expand",
    "rename_column_contract",
    "undo_rename_column_contract",
)


def _operation(name: str, function: Callable[..., None]) -> type[MigrateOperation]:
    def run(cls: Any, operations: Operations, *args: Any, **kw: Any) -> None:
        function(*args, **kw)

    run.__name__ = f"safe_{name}"
    run.__doc__ = function.__doc__
    return type(f"Safe_{name}", (MigrateOperation,), {f"safe_{name}": classmethod(run)})


def register() -> None:
    """Add ``op.safe_<name>`` for each safe operation (once; later calls do nothing)."""
    for name in NAMES:
        if hasattr(Operations, f"safe_{name}"):
            continue
        Operations.register_operation(f"safe_{name}")(_operation(name, getattr(safe_op, name)))
