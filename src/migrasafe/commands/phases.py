"""``upgrade --phase``: deploying in expand and contract phases.

A deploy that keeps the application running goes: ``upgrade --phase expand``
(what the running release tolerates), then the application's rollout, then
``upgrade --phase contract`` (the rest). The expand phase applies the
pending revisions that are expand, in order, up to the first that is not:
a revision after a contract one waits for the contract phase even if it only
adds, since it may build on what the contract revision changed. A revision
whose phase cannot be told (SQL migrasafe does not read) stops the expand
phase, with the reason. A project laid out as two labelled branches gets
Alembic's own reading: the expand phase is ``upgrade expand@head``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrasafe.checks.lint.phases import (
    PHASES,
    Phase,
    RevisionPhase,
    branch_layout,
    revision_phase,
)
from migrasafe.errors import ConfigError

if TYPE_CHECKING:
    from migrasafe.project.config import Project


def revision_phases(project: Project, dialect: str | None = None) -> dict[str, RevisionPhase]:
    """Every revision's phase, declared or inferred from its operations (lint's recording)."""
    from migrasafe.checks.lint.base import RevisionLint
    from migrasafe.checks.lint.operations import Offline
    from migrasafe.checks.lint.replay import Tables
    from migrasafe.checks.lint.run import resolve_dialect
    from migrasafe.project.graph import apply_order

    name = resolve_dialect(project, dialect)
    found: dict[str, RevisionPhase] = {}
    schema = Tables()  # replayed from base, as lint does: what each revision finds
    layout = branch_layout(project.script)
    with Offline(project.config, project.script_directory, name) as offline:
        for script in apply_order(project.script):
            recorded = offline.record(script)
            view = RevisionLint(name, recorded, schema.copy())
            found[script.revision] = revision_phase(script, recorded, view, layout)
            for r in recorded.operations:
                schema.apply(r.operation)
    return found


def pending_by_phase(project: Project, pending: tuple[str, ...]) -> dict[str, list[str]]:
    """``status --phases``: the pending revisions (in order) under expand, contract, unknown."""
    known = revision_phases(project)
    phase = {rev: known[rev].phase or "unknown" for rev in pending if rev in known}
    return {name: [rev for rev in pending if phase.get(rev) == name]
            for name in ("expand", "contract", "unknown")}  # fmt: skip


def _expand_labels(script: Any) -> list[str]:
    """The branch labels that name an expand branch (``expand``, ``2024_expand`` ...)."""
    from migrasafe.checks.lint.phases import _LABEL_WORD

    found = {label for s in script.walk_revisions() for label in s.branch_labels
             if "expand" in _LABEL_WORD.split(label.lower())}  # fmt: skip
    return sorted(found)


@dataclass(frozen=True)
class PhasePlan:
    """What ``upgrade --phase`` applies: up to ``targets``; ``waiting`` what it leaves, and why."""

    phase: Phase
    current: tuple[str, ...]
    apply: tuple[str, ...]
    targets: tuple[str, ...]
    waiting: tuple[tuple[str, str], ...]  # (revision, why it waits)
    phases: dict[str, RevisionPhase]

    def to_dict(self) -> dict[str, object]:
        return {
            "phase": self.phase,
            "current": list(self.current),
            "apply": list(self.apply),
            "targets": list(self.targets),
            "waiting": [{"revision": r, "why": why} for r, why in self.waiting],
            "phases": {r: p.to_dict() for r, p in self.phases.items()},
        }


def plan(project: Project, phase: str, dialect: str | None = None) -> PhasePlan:
    """The revisions ``upgrade --phase PHASE`` applies, read from the database's heads."""
    from migrasafe.project.env import probe
    from migrasafe.project.graph import applied, apply_order

    if phase not in PHASES:
        raise ConfigError(f"--phase {phase!r}: choose expand or contract")
    current = probe(project)[0].heads
    script = project.script
    done = applied(script, current)
    pending = [s for s in apply_order(script) if s.revision not in done]
    phases = revision_phases(project, dialect)
    chosen: list[str] = []
    waiting: list[tuple[str, str]] = []
    held: set[str] = set()
    labels = _expand_labels(script) if branch_layout(script) else []
    if labels and phase == "expand":  # the two-branch layout: Alembic's own expand@head
        along = {step.revision.revision for label in labels
                 for step in script._upgrade_revs(f"{label}@head", current)}  # type: ignore[arg-type]  # fmt: skip
        chosen = [s.revision for s in pending if s.revision in along]
        waiting = [(s.revision, f"it is not on the {' or '.join(labels)} branch")
                   for s in pending if s.revision not in along]  # fmt: skip
        return PhasePlan(phase, current, tuple(chosen), tuple(f"{label}@head" for label in labels),
                         tuple(waiting), phases)  # fmt: skip
    for revision in pending:
        parents = set(revision._all_down_revisions)
        blocked = sorted(parents & held)
        known = phases[revision.revision]
        if phase == "contract":
            chosen.append(revision.revision)
        elif known.phase == "contract":
            held.add(revision.revision)
            why = ": " + "; ".join(known.reasons) if known.reasons else ""
            waiting.append((revision.revision, f"it is contract ({known.source}{why})"))
        elif blocked:
            held.add(revision.revision)
            waiting.append((revision.revision, f"it comes after {', '.join(blocked)}, which "
                            "waits for the contract phase"))  # fmt: skip
        elif known.phase == "expand":
            chosen.append(revision.revision)
        else:
            held.add(revision.revision)
            waiting.append((revision.revision, "its phase is unknown ("
                            + "; ".join(known.reasons) + "): declare phase = 'expand' or "
                            "'contract' in it"))  # fmt: skip
    chosen_set = set(chosen)
    targets = tuple(
        rev for rev in chosen
        if not any(child in chosen_set for child in script.get_revision(rev).nextrev)
    )  # fmt: skip
    return PhasePlan(phase, current, tuple(chosen), targets, tuple(waiting), phases)
