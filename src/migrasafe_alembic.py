"""An Alembic plugin that keeps migrasafe's bookkeeping out of autogenerate.

migrasafe records checksums of applied scripts in ``migrasafe_checksums``,
next to the version table. Alembic leaves its own version table out of
autogenerate, but any other table it finds in the database and not in the
models becomes ``op.drop_table(...)``, and ``alembic check`` fails. Alembic
(1.18+) loads every installed ``alembic.plugins`` entry point when it is
imported, so with migrasafe installed, ``alembic revision --autogenerate``
and ``alembic check`` leave the table alone on any project, with its
``env.py`` unchanged.

Alembic 1.18.0 to 1.20.0 iterate over what the entry point loads and set up
each module it yields; 1.20.1 sets up a module directly (and warns, as
deprecated, about anything else). So this module is both: a module whose
iteration yields itself (``_SelfListingModule``, below), set up once either
way.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

# Not imported from migrasafe.project.config: this loads while Alembic itself is being imported.
CHECKSUM_TABLE = "migrasafe_checksums"


def _hide_bookkeeping(autogen_context: Any, upgrade_ops: Any, schemas: Any) -> None:
    """Drop autogenerate's operations on migrasafe's own table (it is in no model)."""
    from alembic.operations import ops

    upgrade_ops.ops[:] = [
        op
        for op in upgrade_ops.ops
        if not (
            isinstance(op, ops.DropTableOp | ops.ModifyTableOps) and op.table_name == CHECKSUM_TABLE
        )
    ]


def setup(plugin: Any) -> None:
    """Called by Alembic when it is imported: hide the table in every autogenerate run.

    A plugin's comparators run only when ``autogenerate_plugins`` includes it
    (by default only ``alembic.autogenerate.*``), and Alembic's global
    registry, which every run copies, does not exist yet while plugins are
    set up. So the plugin's comparator is registered the documented way,
    and each run's population of comparators (after Alembic's own) adds it
    too, whatever ``autogenerate_plugins`` an ``env.py`` chose.
    """
    from alembic.runtime.plugins import Plugin
    from alembic.util import DispatchPriority

    plugin.add_autogenerate_comparator(
        _hide_bookkeeping, "schema", "migrasafe", priority=DispatchPriority.LAST
    )
    populate = Plugin.populate_autogenerate_priority_dispatch.__func__  # type: ignore[attr-defined]
    if getattr(populate, "_migrasafe", False):
        return

    def populate_with_migrasafe(cls: Any, comparators: Any, include_plugins: list[str]) -> None:
        populate(cls, comparators, include_plugins)
        comparators.populate_with(plugin.autogenerate_comparators)

    populate_with_migrasafe._migrasafe = True  # type: ignore[attr-defined]
    Plugin.populate_autogenerate_priority_dispatch = classmethod(populate_with_migrasafe)  # type: ignore[method-assign,assignment]


class _SelfListingModule(types.ModuleType):
    """This module, iterable as the one-module collection Alembic 1.18.0-1.20.0 expect."""

    def __iter__(self) -> Iterator[types.ModuleType]:
        yield self


sys.modules[__name__].__class__ = _SelfListingModule
