"""``history``: the revision graph from base to heads, as the scripts define it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrasafe.errors import MigrasafeError
from migrasafe.project.scripts import as_tuple

if (
    TYPE_CHECKING
):  # the dataclasses serve the lean path too (migrasafe.commands.lean): no Alembic here
    from alembic.script import Script

    from migrasafe.project.config import Project


@dataclass(frozen=True)
class HistoryEntry:
    revision: str
    down_revision: tuple[str, ...]
    message: str
    path: str
    is_head: bool
    is_current: bool
    is_base: bool
    is_branch_point: bool
    is_merge_point: bool
    branch_labels: tuple[str, ...]
    depends_on: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = dict(self.__dict__)  # asdict's deep copy is slow on thousands
        data["down_revision"] = list(self.down_revision)
        data["branch_labels"] = list(self.branch_labels)
        data["depends_on"] = list(self.depends_on)
        return data


@dataclass(frozen=True)
class History:
    """Revisions base first. ``current`` is None when the database could not be read."""

    entries: tuple[HistoryEntry, ...]
    current: tuple[str, ...] | None
    warning: str | None = None


def _entry(script: Script, current: tuple[str, ...]) -> HistoryEntry:
    return HistoryEntry(
        revision=script.revision,
        down_revision=as_tuple(script.down_revision),
        message=script.doc or "",
        path=str(script.path),
        is_head=script.is_head,
        is_current=script.revision in current,
        is_base=script.is_base,
        is_branch_point=script.is_branch_point,
        is_merge_point=script.is_merge_point,
        branch_labels=tuple(sorted(script.branch_labels)),
        depends_on=as_tuple(script.dependencies),
    )


def history(project: Project, *, read_database: bool = True) -> History:
    """Follow ``down_revision`` links (not file names) from base to every head.

    The database is only read, to mark the current revision; when it cannot be
    read the history is still returned, with a warning saying why.
    """
    from migrasafe.project.env import probe
    from migrasafe.project.graph import apply_order

    script = project.graph
    current: tuple[str, ...] | None = None
    warning = None
    if read_database:
        try:
            current = probe(project)[0].heads
        except MigrasafeError as exc:
            warning = f"current revision unknown: {exc}"
    entries = tuple(_entry(s, current or ()) for s in apply_order(script))
    return History(entries=entries, current=current, warning=warning)
