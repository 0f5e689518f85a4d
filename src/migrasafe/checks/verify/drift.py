"""Do the models (``target_metadata``) match what the migrations build?"""

from __future__ import annotations

from typing import Any


def describe_diff(diff: Any) -> tuple[str | None, str]:
    """Alembic's autogenerate diff tuples, as a table name and a phrase."""
    if isinstance(diff, list):  # modify_* come grouped per column
        first = diff[0]
        return first[2], f"{first[0]} on {first[2]}.{first[3]}: {first[-2]!r} -> {first[-1]!r}"
    kind, obj = diff[0], diff[-1]
    table = getattr(obj, "name", None) if kind.endswith("_table") else None
    if table is None:
        owner = getattr(obj, "table", None)
        table = (
            getattr(owner, "name", None)
            if owner is not None
            else (diff[2] if len(diff) > 2 and isinstance(diff[2], str) else None)
        )
    name = getattr(obj, "name", obj)
    return table, f"{kind} {name}"
