"""``show``, ``heads``, ``branches`` and ``current``: Alembic's questions about revisions.

Answered by Alembic's own RevisionMap (over the parsed graph, so no revision
file is imported), with the same arguments and the same resolution of
``head``, ``heads``, ``base``, partial ids and ``branch@rev`` as the
``alembic`` commands; ``current`` reads the database through ``env.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrasafe.errors import RevisionError
from migrasafe.project.scripts import as_tuple

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

    from migrasafe.project.config import Project


@dataclass(frozen=True)
class RevisionInfo:
    """One revision as ``alembic show`` describes it."""

    revision: str
    down_revision: tuple[str, ...]
    depends_on: tuple[str, ...]
    branch_labels: tuple[str, ...]
    next_revisions: tuple[str, ...]
    message: str
    doc: str
    path: str
    is_head: bool
    is_base: bool
    is_branch_point: bool
    is_merge_point: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "down_revision": list(self.down_revision),
            "depends_on": list(self.depends_on),
            "branch_labels": list(self.branch_labels),
            "next_revisions": list(self.next_revisions),
            "message": self.message,
            "doc": self.doc,
            "path": self.path,
            "is_head": self.is_head,
            "is_base": self.is_base,
            "is_branch_point": self.is_branch_point,
            "is_merge_point": self.is_merge_point,
        }


def info(script: Script) -> RevisionInfo:
    """What Alembic knows of one revision."""
    return RevisionInfo(
        revision=script.revision,
        down_revision=as_tuple(script.down_revision),
        depends_on=as_tuple(script.dependencies),
        branch_labels=tuple(sorted(script.branch_labels)),
        next_revisions=tuple(sorted(script.nextrev)),
        message=(script.doc or "").strip(),
        doc=(script.longdoc or "").strip(),
        path=str(script.path),
        is_head=script.is_head,
        is_base=script.is_base,
        is_branch_point=script.is_branch_point,
        is_merge_point=script.is_merge_point,
    )


def _resolve(script: ScriptDirectory, revisions: str | tuple[str, ...]) -> list[Script]:
    """Alembic's reading of ``revisions`` (as ``alembic show``), or one clear error."""
    from alembic.script import Script

    if revisions == "base":  # Alembic resolves it to nothing: the first revisions are meant
        revisions = tuple(script.get_bases())
    try:
        found = script.get_revisions(revisions)
    except Exception as exc:  # ResolutionError, MultipleHeads, RangeNotAncestorError
        raise RevisionError(
            f"no revision {revisions!r}: {exc}; `migrasafe history` lists the revisions"
        ) from exc
    scripts = [s for s in found if isinstance(s, Script)]
    if not scripts:
        raise RevisionError(f"{revisions!r} names no revision (the project has none yet?)")
    return scripts


def show(project: Project, revisions: str) -> tuple[RevisionInfo, ...]:
    """The revision(s) named by ``revisions``: an id or its prefix, head, heads, base, x@head,
    or ``current`` (read from the database)."""
    if revisions == "current":
        return current(project).revisions
    return tuple(info(s) for s in _resolve(project.graph, revisions))


def heads(project: Project, *, resolve_dependencies: bool = False) -> tuple[RevisionInfo, ...]:
    """The head revisions; with ``resolve_dependencies``, revisions that others only
    depend on (``depends_on``) are not heads, as ``alembic heads --resolve-dependencies``."""
    script = project.graph
    names = "heads" if resolve_dependencies else tuple(script.get_heads())
    return tuple(info(s) for s in _resolve(script, names)) if names else ()


def branches(project: Project) -> tuple[RevisionInfo, ...]:
    """The branch points: revisions with more than one next revision."""
    script = project.graph
    return tuple(info(s) for s in script.walk_revisions() if s.is_branch_point)


@dataclass(frozen=True)
class Current:
    """The database's heads as the project's ``env.py`` reads them."""

    url: str
    version_table: str
    heads: tuple[str, ...]
    revisions: tuple[RevisionInfo, ...]
    unknown: tuple[str, ...]  # recorded in the database, defined by no script

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "version_table": self.version_table,
            "heads": list(self.heads),
            "revisions": [r.to_dict() for r in self.revisions],
            "unknown": list(self.unknown),
        }


def current(project: Project) -> Current:
    """What ``alembic current`` prints, as data: read-only, through ``env.py``."""
    from migrasafe.project.env import probe
    from migrasafe.project.graph import is_defined

    context = probe(project)[0]
    script = project.graph
    known = [rev for rev in context.heads if is_defined(script, rev)]
    return Current(
        url=context.display_url,
        version_table=context.qualified_version_table,
        heads=context.heads,
        revisions=tuple(info(s) for s in _resolve(script, tuple(known))) if known else (),
        unknown=tuple(rev for rev in context.heads if rev not in known),
    )
