"""What both readers produce besides Alembic's own operations."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.operations import ops


class Statement(ops.MigrateOperation):
    """A raw statement no Alembic operation describes.

    ``kind``: ``truncate``, ``drop-database``, ``reindex``, ``vacuum-full``,
    ``cluster``, ``set-tablespace``, ``lock`` (``LOCK TABLE``; ``mode`` its
    lock), ``enum-add-value``, ``transaction`` (target BEGIN/COMMIT/ROLLBACK),
    ``set`` (target ``name=value``), and ``unread``: SQL the parser could
    read but lint cannot judge (a DO block), target why.
    """

    def __init__(self, kind: str, target: str | None, *, cascade: bool = False,
                 concurrently: bool = False, mode: str | None = None) -> None:  # fmt: skip
        self.kind = kind
        self.table_name = target
        self.cascade = cascade
        self.concurrently = concurrently
        self.mode = mode


class Named(sa.types.UserDefinedType[Any]):
    """A type known by its SQL name only (what lint prints)."""

    cache_ok = True

    def __init__(self, name: str) -> None:
        self.name = name

    def get_col_spec(self, **_kw: Any) -> str:
        return self.name

    def __repr__(self) -> str:
        return self.name
