"""What ``verify`` found, and how much of the history it could check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from migrasafe.checks.findings import Finding

Progress = Callable[[int, int, str], None]

# Findings that say something was not checked, rather than that something is wrong.
GAP_RULES = frozenset({"irreversible", "data-not-checked"})


@dataclass(frozen=True)
class Coverage:
    """Each revision, by how it was checked.

    ``with_data``: up, down and up again with generated rows, schema and rows
    compared. ``schema_only``: the round trip ran on empty tables (the
    generated rows were refused by the upgrade, or the downgrade is declared
    irreversible), with why. ``not_checked``: never applied, with why (a
    parent could not be applied). ``upgrade_only``: applied but never
    reverted, with why (an irreversible downgrade).
    """

    with_data: tuple[str, ...] = ()
    schema_only: dict[str, str] = field(default_factory=dict)
    not_checked: dict[str, str] = field(default_factory=dict)
    upgrade_only: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "with_data": list(self.with_data),
            "schema_only": dict(self.schema_only),
            "upgrade_only": dict(self.upgrade_only),
            "not_checked": dict(self.not_checked),
        }

    def summary(self) -> str:
        parts = [f"{len(self.with_data)} with data"]
        for label, group in (("schema only", self.schema_only),
                             ("upgrade only", self.upgrade_only),
                             ("not checked", self.not_checked)):  # fmt: skip
            if group:
                shown = ", ".join(list(group)[:5]) + (" ..." if len(group) > 5 else "")
                parts.append(f"{len(group)} {label} ({shown})")
            else:
                parts.append(f"0 {label}")
        return ", ".join(parts)


@dataclass(frozen=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    revisions: int
    steps: int
    database: str
    rows: int
    seed: int
    coverage: Coverage = field(default_factory=Coverage)
    refused_rows: dict[str, int] = field(default_factory=dict)
    models_not_compared: str | None = None  # why the models were not compared, if they were not
    lock_trace: tuple[dict[str, object], ...] | None = None  # with --trace-locks (PostgreSQL)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def checked(self) -> int:
        """Revisions whose round trip ran, with data or on empty tables."""
        coverage = self.coverage
        return len(coverage.with_data) + len(coverage.schema_only) + len(coverage.upgrade_only)

    @property
    def complete(self) -> bool:
        """Every revision was round-tripped (none was left behind a failing one)."""
        return not self.coverage.not_checked

    @property
    def fully_checked(self) -> bool:
        """Every revision checked with data, no table's rows refused, nothing declared away."""
        return (
            self.complete
            and not self.coverage.schema_only
            and not self.coverage.upgrade_only
            and not any(f.rule in GAP_RULES for f in self.findings)
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
            "revisions": self.revisions,
            "checked": self.checked,
            "steps": self.steps,
            "database": self.database,
            "rows": self.rows,
            "seed": self.seed,
            "coverage": self.coverage.to_dict(),
            "refused_rows": self.refused_rows,
            "complete": self.complete,
            "fully_checked": self.fully_checked,
            "models_not_compared": self.models_not_compared,
            "lock_trace": list(self.lock_trace) if self.lock_trace is not None else None,
        }
