"""Findings and the registries of checks that produce them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Generic, Literal, TypeVar

from migrasafe.errors import MigrasafeError

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, how bad, where, and a message saying what to do."""

    rule: str
    severity: Severity
    revision: str | None
    path: str | None
    message: str
    line: int | None = None
    table: str | None = None
    column: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


T = TypeVar("T")  # what a check looks at
U = TypeVar("U")  # what a check yields for each problem


@dataclass(frozen=True)
class Check(Generic[T, U]):
    rule: str
    severity: Severity
    summary: str
    run: Callable[[T], Iterable[U]]
    optional: bool = False  # opt-in: runs only when named (--rule)


class Registry(Generic[T, U]):
    """Checks by rule id, so that users can select them by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.checks: dict[str, Check[T, U]] = {}

    def register(
        self, rule: str, severity: Severity, summary: str, *, optional: bool = False
    ) -> Callable[[Callable[[T], Iterable[U]]], Callable[[T], Iterable[U]]]:
        def decorate(fn: Callable[[T], Iterable[U]]) -> Callable[[T], Iterable[U]]:
            self.checks[rule] = Check(rule, severity, summary, fn, optional)
            return fn

        return decorate

    def describe(self) -> list[dict[str, str]]:
        """Every rule, for ``--list-rules``."""
        return [{"rule": c.rule, "severity": c.severity, "summary": c.summary}
                for c in self.checks.values()]  # fmt: skip

    def select(self, only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Check[T, U]]:
        only, skip = list(only), list(skip)
        unknown = sorted(set(only + skip) - set(self.checks))
        if unknown:
            raise MigrasafeError(
                f"unknown {self.kind} rule(s): {', '.join(unknown)}; "
                f"known rules: {', '.join(sorted(self.checks))}"
            )
        names = only or [name for name, check in self.checks.items() if not check.optional]
        return [self.checks[name] for name in names if name not in skip]
