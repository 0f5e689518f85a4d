"""A pytest plugin: migration tests for your project without writing them.

Enable it by naming your Alembic config in pytest's ini options::

    [tool.pytest.ini_options]
    migrasafe_config = "alembic.ini"
    # migrasafe_url = "postgresql+psycopg://postgres@127.0.0.1/postgres"  # scratch server
    # migrasafe_tests = ["single_head", "upgrade", "roundtrip", "model_match"]

Each test is backed by one ``verify`` run per session, on a scratch database
(never the database of the config), and fails with verify's findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrasafe.checks.findings import Finding
from migrasafe.checks.verify import VerifyReport, verify
from migrasafe.errors import MigrasafeError
from migrasafe.project.config import load_project

TESTS: dict[str, tuple[str, frozenset[str]]] = {
    "single_head": ("the revision graph has a single head", frozenset({"multiple-heads"})),
    "upgrade": ("every revision upgrades from base to head", frozenset({"upgrade-failed"})),
    "roundtrip": (
        "every downgrade gives back the schema and the data",
        frozenset(
            {
                "downgrade-failed",
                "schema-not-restored",
                "data-lost",
                "data-changed",
                "reapply-differs",
            }
        ),
    ),
    "model_match": ("the models match the migrated schema", frozenset({"model-drift"})),
}
_REPORT = pytest.StashKey[VerifyReport | MigrasafeError]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("migrasafe_config", "Alembic config file to test (enables migrasafe's tests)")
    parser.addini("migrasafe_url", "Server for the scratch database (default: temporary SQLite)")
    parser.addini("migrasafe_tests", "Which migrasafe tests to run (default: all)", type="args")
    parser.addini("migrasafe_rows", "Generated rows per table", default="20")


class MigrasafeItem(pytest.Item):
    def __init__(self, *, rules: frozenset[str], summary: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rules = rules
        self.summary = summary

    def runtest(self) -> None:
        report = _report(self.config)
        if isinstance(report, MigrasafeError):
            raise MigrasafeFailure([], f"migrasafe could not run: {report}")
        found = [f for f in report.findings if f.rule in self.rules]
        if found:
            raise MigrasafeFailure(found, f"expected {self.summary}; found {len(found)} problem(s)")
        # A test that checked nothing does not pass.
        if self.name == "model_match" and report.models_not_compared:
            pytest.skip(f"models not compared: {report.models_not_compared}")
        if self.name in ("upgrade", "roundtrip") and not report.complete:
            raise MigrasafeFailure([], f"expected {self.summary}; only {report.checked} of "
                                   f"{report.revisions} revisions could be checked")  # fmt: skip
        if self.name == "roundtrip":
            unchecked = sorted(report.coverage.schema_only) + sorted(
                f"{f.revision} ({f.table})" for f in report.findings
                if f.rule == "data-not-checked" and f.table
            )  # fmt: skip
            if unchecked:  # the schema came back; nothing says the data did
                pytest.skip(f"data not checked: {', '.join(unchecked)} (see `migrasafe verify`)")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, MigrasafeFailure):
            failure = excinfo.value
            lines = [failure.headline]
            for f in failure.findings:
                where = f"{f.revision}" + (f" {f.table}" if f.table else "")
                lines.append(f"  [{f.rule}] {where}: {f.message}")
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"migrasafe: {self.name}"


class MigrasafeFailure(Exception):
    def __init__(self, findings: list[Finding], headline: str) -> None:
        super().__init__(headline)
        self.findings = findings
        self.headline = headline


class MigrasafeCollector(pytest.Collector):
    def collect(self) -> Iterator[pytest.Item]:
        selected = self.config.getini("migrasafe_tests") or list(TESTS)
        unknown = sorted(set(selected) - set(TESTS))
        if unknown:
            raise pytest.UsageError(
                f"unknown migrasafe_tests: {', '.join(unknown)}; known: {', '.join(TESTS)}"
            )
        for name in selected:
            summary, rules = TESTS[name]
            yield MigrasafeItem.from_parent(self, name=name, rules=rules, summary=summary)


def _report(config: pytest.Config) -> VerifyReport | MigrasafeError:
    """One verify run per session, shared by every migrasafe test."""
    if _REPORT not in config.stash:
        ini = Path(config.rootpath) / str(config.getini("migrasafe_config"))
        try:
            config.stash[_REPORT] = verify(
                load_project(ini),
                url=config.getini("migrasafe_url") or None,
                rows=int(config.getini("migrasafe_rows")),
            )
        except MigrasafeError as exc:
            config.stash[_REPORT] = exc
    return config.stash[_REPORT]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getini("migrasafe_config"):
        return
    collector = MigrasafeCollector.from_parent(session, name="migrasafe")
    items.extend(collector.collect())
