"""Questions about the revision graph, answered with Alembic's RevisionMap."""

from __future__ import annotations

from collections.abc import Iterable

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import ResolutionError

from migrasafe.project.config import alembic_errors
from migrasafe.project.scripts import bad_revision_id

__all__ = ["applied", "apply_order", "bad_revision_id", "is_defined"]


def apply_order(script: ScriptDirectory) -> list[Script]:
    """Every revision, base first, in an order ``upgrade heads`` could apply them."""
    with alembic_errors():
        return list(reversed(list(script.walk_revisions())))


def is_defined(script: ScriptDirectory, revision: str) -> bool:
    """Whether a script defines ``revision`` (as an exact id, not a prefix)."""
    try:
        found = script.revision_map.get_revision(revision)
    except ResolutionError:
        return False
    return found is not None and found.revision == revision


def applied(script: ScriptDirectory, heads: Iterable[str]) -> set[str]:
    """The revisions a database at ``heads`` has applied: the heads and their ancestors."""
    defined = [rev for rev in heads if is_defined(script, rev)]
    if not defined:
        return set()
    with alembic_errors():
        return {
            rev.revision for rev in script.revision_map.iterate_revisions(tuple(defined), "base")
        }
