"""Questions about the revision graph, answered with Alembic's RevisionMap."""

from __future__ import annotations

import re
from collections.abc import Iterable

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import ResolutionError

from .config import alembic_errors


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


# Letters, digits and "_": Alembic reads "-", "+", "@" and ":" in a target as
# syntax, and a quote or a space would reach the version table's SQL.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_]+")


def bad_revision_id(revision: object) -> str | None:
    """Why ``revision`` is no usable revision id; None when it is one."""
    if not isinstance(revision, str):
        return f"revision id {revision!r} is a {type(revision).__name__}, not a string"
    if not _PLAIN_ID.fullmatch(revision):
        return (
            f"revision id {revision!r} is not a plain identifier (letters, digits, _): "
            "Alembic reads - + @ : as target syntax, and quotes or spaces would reach SQL"
        )
    return None
