"""What ``verify`` found, and how much of the history it could check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from migrasafe.checks.findings import Finding

Progress = Callable[[int, int, str], None]

# Findings that say something was not checked, rather than that something is wrong.
GAP_RULES = frozenset({"irreversible", "data-not-checked"})

# What an error of each rule says failed, in the verdict line, in this order.
FAILED = {
    "upgrade-failed": "the upgrade failed",
    "downgrade-failed": "the downgrade failed",
    "reupgrade-failed": "upgrading again after the downgrade failed",
    "schema-not-restored": "the downgrade did not restore the schema",
    "data-lost": "rows were lost",
    "data-changed": "values changed",
    "reapply-differs": "upgrading again gave another schema",
    "model-drift": "the models differ from the migrated schema",
    "multiple-heads": "the history has several heads",
}


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
    notes: tuple[str, ...] = ()  # how the run was set up, where it was not asked for

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

    @property
    def verdict(self) -> str:
        """One sentence: what failed, by kind and revision; else what was left unchecked."""
        failed: dict[str, list[str]] = {}
        for f in self.findings:
            if f.severity == "error":
                revisions = failed.setdefault(f.rule, [])
                if f.revision and f.revision not in revisions:
                    revisions.append(f.revision)
        if failed:
            parts = []
            for rule in [*FAILED, *sorted(failed.keys() - FAILED.keys())]:
                if rule in failed:
                    shown = ", ".join(failed[rule][:5]) + (" ..." if len(failed[rule]) > 5 else "")
                    parts.append(f"{FAILED.get(rule, rule)} ({shown})")
            return "Failed: " + "; ".join(parts) + "."
        if self.fully_checked:
            return "Every revision reverses cleanly."
        coverage, gaps = self.coverage, []
        if not self.complete:
            gaps.append(f"{len(coverage.not_checked)} revision(s) could not be checked")
        if coverage.schema_only:
            gaps.append(f"{len(coverage.schema_only)} checked without data")
        if coverage.upgrade_only:
            gaps.append(f"{len(coverage.upgrade_only)} irreversible")
        tables = sorted(
            {f.table for f in self.findings if f.rule == "data-not-checked" and f.table}
        )
        if tables:
            gaps.append(f"data not checked in {', '.join(tables)}")
        return f"No error, but not everything was checked: {'; '.join(gaps)}."

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
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
            "notes": list(self.notes),
        }
