"""``validate``: structural checks of the script directory, without a database.

Each check is a plain function registered under a stable rule id; it looks at
every revision file (read by :mod:`migrasafe.project.scripts`, so a broken file is
a finding, not a crash) and yields ``(file, message)`` for each problem.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from migrasafe.checks.findings import Check, Finding, Registry
from migrasafe.deploy.records import Modified
from migrasafe.project.scripts import ScriptFile, bad_revision_id

if TYPE_CHECKING:  # the checks serve the lean path too (migrasafe.commands.lean): no Alembic here
    from migrasafe.project.config import Project

Problem = tuple[ScriptFile, str]


@dataclass
class ScriptSet:
    """Every revision file of a project, with the graph they declare."""

    files: Sequence[ScriptFile]
    modified: Sequence[Modified] = ()  # from the database, when validate was given one

    @cached_property
    def readable(self) -> list[ScriptFile]:
        return [f for f in self.files if f.error is None and f.revision is not None]

    @cached_property
    def by_revision(self) -> dict[str, ScriptFile]:
        return {f.revision: f for f in self.readable if f.revision is not None}

    @cached_property
    def complete(self) -> bool:
        """Whether every file was read and every parent is known: heads are then certain."""
        return len(self.readable) == len(self.files) and all(
            f.down_revisions is not None and all(p in self.by_revision for p in f.down_revisions)
            for f in self.readable
        )

    @cached_property
    def children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = defaultdict(list)
        for f in self.readable:
            for parent in f.down_revisions or ():
                children[parent].append(f.revision or "")
        return children


CHECKS: Registry[ScriptSet, Problem] = Registry("validate")


@CHECKS.register("syntax-error", "error", "a revision file that cannot be parsed or imported")
def _syntax_error(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.files:
        if f.error is not None:
            yield f, f"cannot be read: {f.error}; Alembic fails on every command until it is fixed"


@CHECKS.register("missing-revision", "error", "a file without a `revision` identifier")
def _missing_revision(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.files:
        if f.error is None and f.revision is None:
            yield f, 'declares no `revision = "..."`: Alembic cannot load it'


@CHECKS.register("invalid-revision-id", "error", "a revision id that is not letters, digits and _")
def _invalid_revision_id(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.files:
        if f.error is None and f.revision is not None:
            why = bad_revision_id(f.revision)
            if why is not None:
                yield f, f"{why}; migrasafe refuses to migrate it"


@CHECKS.register("missing-down-revision", "error", "a file without a `down_revision`")
def _missing_down_revision(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.readable:
        if f.down_revisions is None:
            yield (
                f,
                (
                    "declares no `down_revision`: set it to the parent revision id, "
                    "or to None for the first revision"
                ),
            )


@CHECKS.register("missing-upgrade", "error", "a file without an upgrade() function")
def _missing_upgrade(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.readable:
        if not f.has_upgrade:
            yield f, "has no upgrade() function: `upgrade` fails when it reaches this revision"


@CHECKS.register("missing-downgrade", "error", "a file without a downgrade() function")
def _missing_downgrade(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.readable:
        if not f.has_downgrade:
            yield (
                f,
                (
                    "has no downgrade() function: `downgrade` fails when it reaches this revision; "
                    "write one, or raise NotImplementedError to say it cannot be reversed"
                ),
            )


@CHECKS.register(
    "empty-downgrade", "error", "a downgrade that does nothing while its upgrade changes the schema"
)
def _empty_downgrade(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.readable:
        if f.upgrade_changes_schema and f.downgrade_is_empty:
            yield (
                f,
                (
                    "upgrade() changes the schema but downgrade() does nothing: a downgrade past "
                    "this revision would record success and leave the changes behind; reverse "
                    "them, or raise NotImplementedError"
                ),
            )


@CHECKS.register(
    "empty-data-downgrade", "info",
    "a downgrade that does nothing while its upgrade changes only data",
)  # fmt: skip
def _empty_data_downgrade(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.readable:
        if f.upgrade_changes_data and not f.upgrade_changes_schema and f.downgrade_is_empty:
            yield (
                f,
                (
                    "upgrade() changes only data (op.execute, op.bulk_insert) and downgrade() "
                    "does nothing: a downgrade past this revision keeps the data as upgrade() "
                    "left it. Fine when the older schema accepts that data; otherwise reverse "
                    "the change in downgrade()"
                ),
            )


@CHECKS.register("unknown-down-revision", "error", "a down_revision naming no known revision")
def _unknown_down_revision(scripts: ScriptSet) -> Iterator[Problem]:
    for f in scripts.readable:
        for parent in f.down_revisions or ():
            if parent not in scripts.by_revision:
                yield f, f"down_revision {parent!r} is not the revision of any file"


@CHECKS.register("duplicate-revision", "error", "two files with the same revision id")
def _duplicate_revision(scripts: ScriptSet) -> Iterator[Problem]:
    counts = Counter(f.revision for f in scripts.readable)
    for f in scripts.readable:
        if counts[f.revision] > 1:
            others = [
                str(o.path.name)
                for o in scripts.readable
                if o.revision == f.revision and o is not f
            ]
            yield (
                f,
                (
                    f"revision id {f.revision!r} is also declared by {', '.join(others)}: "
                    "Alembic silently keeps only one of them; give each file its own id"
                ),
            )


@CHECKS.register("cycle", "error", "revisions whose down_revision links form a cycle")
def _cycle(scripts: ScriptSet) -> Iterator[Problem]:
    for cycle in _cycles(scripts):
        f = scripts.by_revision[cycle[0]]
        yield f, f"down_revision links form a cycle: {' -> '.join([*cycle, cycle[0]])}"


@CHECKS.register("multiple-heads", "error", "more than one head revision")
def _multiple_heads(scripts: ScriptSet) -> Iterator[Problem]:
    if not scripts.complete:  # another rule reports why; heads would be guesses
        return
    heads = [rev for rev in scripts.by_revision if rev not in scripts.children]
    if len(heads) > 1 and not _labelled_branches(scripts, heads):
        for rev in heads:
            yield (
                scripts.by_revision[rev],
                (
                    f"is one of {len(heads)} heads ({', '.join(heads)}): "
                    "`upgrade head` is ambiguous; join them with "
                    f'`migrasafe merge -m "merge" {" ".join(heads)}`, or give each branch '
                    "a branch label if they are meant to stay apart (as expand/contract)"
                ),
            )


def _labelled_branches(scripts: ScriptSet, heads: list[str]) -> bool:
    """Whether each head ends a branch of its own label (``expand`` and ``contract``, or
    one per database): heads kept apart by design, which Alembic names as ``label@head``."""
    seen: set[str] = set()
    for head in heads:
        labels: set[str] = set()
        rev: str | None = head
        while rev is not None and rev in scripts.by_revision:
            found = scripts.by_revision[rev]
            labels |= set(found.branch_labels)
            parents = found.down_revisions or ()
            if len(parents) != 1 or len(scripts.children.get(parents[0], ())) > 1:
                break  # the branch starts here
            rev = parents[0]
        if not labels or labels & seen:
            return False
        seen |= labels
    return True


def _cycles(scripts: ScriptSet) -> list[list[str]]:
    """Each cycle once, as the revisions along it (iterative depth-first search)."""
    done: set[str] = set()
    found: list[list[str]] = []

    def parents_of(rev: str) -> Iterator[str]:
        parents = scripts.by_revision[rev].down_revisions or ()
        return iter([p for p in parents if p in scripts.by_revision])

    for start in scripts.by_revision:
        if start in done:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, parents_of(start))]
        on_path = {start: 0}  # revision -> its place on the stack: a long history is deep
        while stack:
            parent = next(stack[-1][1], None)
            if parent is None:
                rev = stack.pop()[0]
                del on_path[rev]
                done.add(rev)
            elif parent in on_path:
                found.append([rev for rev, _ in stack[on_path[parent] :]])
            elif parent not in done:
                on_path[parent] = len(stack)
                stack.append((parent, parents_of(parent)))
    return found


@dataclass(frozen=True)
class ValidationReport:
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "files": self.files,
            "ok": self.ok,
        }


@CHECKS.register(
    "modified-after-apply", "error",
    "an applied script edited since it was applied (needs a database: --database)",
)  # fmt: skip
def _modified_after_apply(scripts: ScriptSet) -> Iterator[Problem]:
    for m in scripts.modified:
        if m.revision in scripts.by_revision:
            yield (
                scripts.by_revision[m.revision],
                (
                    f"{m.revision} was edited after it was applied on {m.applied_at} by "
                    f"{m.applied_by}: the database went through the old version; "
                    f"review the change, then `migrasafe accept {m.revision}` (or restore the file)"
                ),
            )


def validate(
    project: Project, *, only: Iterable[str] = (), skip: Iterable[str] = (), database: bool = False
) -> ValidationReport:
    """Run the selected checks (all by default) over every revision file.

    With ``database``, the configured database is also read (read-only) to
    find applied scripts edited since they were applied.
    """
    from migrasafe.deploy.checksums import modified, read_state

    checks = CHECKS.select(only, skip)
    files = project.script_files
    edited: list[Modified] = []
    wanted = database and any(c.rule == "modified-after-apply" for c in checks)
    if wanted and all(f.error is None for f in files):  # else they cannot be loaded to compare
        context, recorded, _failed = read_state(project)
        edited = modified(project.graph, context.heads, recorded)
    return run_checks(checks, files, edited)


def run_checks(
    checks: Sequence[Check[ScriptSet, Problem]],
    files: Sequence[ScriptFile],
    edited: Sequence[Modified] = (),
) -> ValidationReport:
    """The checks over files already read (by :func:`validate`, or from the lean path's cache)."""
    scripts = ScriptSet(files, edited)
    findings = [
        Finding(
            rule=check.rule,
            severity=check.severity,
            revision=f.revision,
            path=str(f.path),
            message=message,
            line=f.line,
        )
        for check in checks
        for f, message in check.run(scripts)
    ]
    return ValidationReport(findings=tuple(findings), files=len(scripts.files))
