"""``upgrade --phase`` and ``status --phases``: deploying in expand and contract phases.

A deploy that keeps the application running goes: ``upgrade --phase expand``
(what the running release tolerates), then the application's rollout, then
``upgrade --phase contract`` (the rest). The expand phase applies the
pending revisions that are expand, in order, up to the first that is not:
a revision after a contract one waits for the contract phase even if it only
adds, since it may build on what the contract revision changed. A revision
whose phase cannot be told (SQL migrasafe does not read) stops the expand
phase, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrasafe.checks.lint.phases import PHASES, Phase, RevisionPhase, revision_phase
from migrasafe.errors import ConfigError

if TYPE_CHECKING:
    from migrasafe.project.config import Project


def revision_phases(project: Project, dialect: str | None = None) -> dict[str, RevisionPhase]:
    """Every revision's phase, declared or inferred from its operations (lint's recording)."""
    from migrasafe.checks.lint.operations import Offline
    from migrasafe.checks.lint.run import resolve_dialect
    from migrasafe.project.graph import apply_order

    name = resolve_dialect(project, dialect)
    found: dict[str, RevisionPhase] = {}
    with Offline(project.config, project.script_directory, name) as offline:
        for script in apply_order(project.script):
            found[script.revision] = revision_phase(script, offline.record(script))
    return found


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
    for revision in pending:
        parents = set(revision._all_down_revisions)
        blocked = sorted(parents & held)
        known = phases[revision.revision]
        if phase == "contract":
            chosen.append(revision.revision)
        elif blocked:
            held.add(revision.revision)
            waiting.append((revision.revision, f"it comes after {', '.join(blocked)}, which "
                            "waits for the contract phase"))  # fmt: skip
        elif known.phase == "expand":
            chosen.append(revision.revision)
        else:
            held.add(revision.revision)
            why = ("its phase is unknown (" + "; ".join(known.reasons) + "): declare "
                   "phase = 'expand' or 'contract' in it") if known.phase is None else (
                   f"it is contract ({known.source}"
                   + (": " + "; ".join(known.reasons) if known.reasons else "") + ")")  # fmt: skip
            waiting.append((revision.revision, why))
    chosen_set = set(chosen)
    targets = tuple(
        rev for rev in chosen
        if not any(child in chosen_set for child in script.get_revision(rev).nextrev)
    )  # fmt: skip
    return PhasePlan(phase, current, tuple(chosen), targets, tuple(waiting), phases)
