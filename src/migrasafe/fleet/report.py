"""What a fleet run found or did, one record per target, and the counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# upgrade/downgrade: done (it moved), unchanged (already at the goal), failed, skipped
# (not started: the run stopped first). status: ok, pending, attention (modified,
# unverified, unknown or half-applied revisions), failed. verify/lint: done, failed.
STATES = ("done", "unchanged", "ok", "pending", "attention", "failed", "skipped")
TROUBLE = ("failed", "pending", "attention")  # the states that make the exit code 1


@dataclass(frozen=True)
class Record:
    """One target's outcome. ``before``/``after``: its revisions before and after the run,
    read from the database (status: its revisions and the heads it would reach; None when
    unknown: it was not reached, its worker died, or a check); ``url`` is redacted."""

    target: str
    url: str
    state: str
    before: tuple[str, ...] | None = None
    after: tuple[str, ...] | None = None
    seconds: float = 0.0
    error: str | None = None
    steps: int = 0  # revisions applied or reverted
    detail: dict[str, object] = field(default_factory=dict)  # the command's own result

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "url": self.url,
            "from": _revs(self.before),
            "to": _revs(self.after),
            "state": self.state,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "error": self.error,
            "detail": self.detail,
        }


def _revs(revisions: tuple[str, ...] | None) -> str | None:
    if revisions is None:
        return None
    return ", ".join(revisions) or "base"


@dataclass(frozen=True)
class FleetReport:
    """A fleet run: its action and goal, each target's record in the fleet's order."""

    action: str
    goal: str | None
    records: tuple[Record, ...]
    seconds: float = 0.0
    stopped: str | None = None  # why targets were skipped, when they were

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(r.state for r in self.records)
        return {state: found[state] for state in STATES if found[state]}

    @property
    def ok(self) -> bool:
        return not any(r.state in TROUBLE for r in self.records)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "goal": self.goal,
            "targets": [r.to_dict() for r in self.records],
            "summary": {"total": len(self.records), **self.counts},
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
        }
