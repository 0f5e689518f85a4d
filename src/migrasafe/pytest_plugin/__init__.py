"""A pytest plugin: migration tests for your project without writing them.

Installed, it does nothing until asked: ``pytest --migrasafe`` adds four tests
(``single_head``, ``upgrade``, ``roundtrip``, ``model_match``), backed by one
``verify`` run per session on a scratch database (never the database of the
config), each failing with verify's findings of its own kind. ``pytest`` alone, or
``pytest tests/test_one.py``, runs none of them and imports nothing heavy. Options
(all optional)::

    [tool.pytest.ini_options]
    migrasafe_config = "alembic.ini"   # default: found as the migrasafe command finds it
    # migrasafe_url = "postgresql+psycopg://postgres@127.0.0.1/postgres"  # scratch server
    # migrasafe_tests = ["single_head", "upgrade", "roundtrip", "model_match"]

The ``migrasafe_runner`` fixture migrates a scratch database step by step for the
migration tests users write (:mod:`.runner`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when a migrasafe test runs: pytest's start stays light
    from migrasafe.checks.findings import Finding
    from migrasafe.checks.verify import VerifyReport
    from migrasafe.project.config import Project
    from migrasafe.pytest_plugin.runner import MigrationRunner

_ROUNDTRIP = frozenset({"downgrade-failed", "reupgrade-failed", "schema-not-restored", "data-lost",
                        "data-changed", "reapply-differs"})  # fmt: skip
# name -> (what it expects, the rules whose errors fail it)
TESTS: dict[str, tuple[str, frozenset[str]]] = {
    "single_head": ("the revision graph has a single head", frozenset({"multiple-heads"})),
    "upgrade": ("every revision upgrades from base to head", frozenset({"upgrade-failed"})),
    "roundtrip": (
        "every downgrade gives back the schema and the data",
        _ROUNDTRIP,
    ),
    "model_match": ("the models match the migrated schema", frozenset({"model-drift"})),
}
_REPORT = pytest.StashKey["VerifyReport | Exception"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("migrasafe")
    group.addoption(
        "--migrasafe", action="store_true", default=False,
        help="Run migrasafe's migration tests (verify on a scratch database).",
    )  # fmt: skip
    parser.addini("migrasafe_config", "Alembic config to test (default: as `migrasafe` finds it)")
    parser.addini("migrasafe_url", "Server for the scratch database (default: the project's, "
                  "else a temporary SQLite file)")  # fmt: skip
    parser.addini("migrasafe_tests", "Which migrasafe tests to run (default: all)", type="args")
    parser.addini("migrasafe_rows", "Generated rows per table", default="20")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "migrasafe: migrasafe's migration tests (--migrasafe)")
    if config.getoption("migrasafe"):
        _rows(config)  # a bad migrasafe_rows is a usage error before anything runs


class MigrasafeItem(pytest.Item):
    def __init__(self, *, rules: frozenset[str], summary: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rules = rules
        self.summary = summary
        self.add_marker("migrasafe")

    def runtest(self) -> None:
        report = _report(self.config)
        if isinstance(report, Exception):
            raise MigrasafeFailure([], f"migrasafe could not run: {report}")
        found = [f for f in report.findings if f.rule in self.rules and f.severity == "error"]
        if found:
            raise MigrasafeFailure(found, f"expected {self.summary}; found {len(found)} problem(s)")
        gap = _gap(self.name, report)
        if gap:  # a test that checked nothing does not pass
            pytest.skip(gap)

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


def _gap(name: str, report: VerifyReport) -> str | None:
    """Why test ``name`` checked less than it claims, when it found nothing of its own kind:
    a skip with the reason, never a pass. Another test's defect is that test's failure."""
    coverage = report.coverage
    if name != "single_head" and not report.revisions:
        return "the project has no revision"
    if name == "model_match" and report.models_not_compared:
        return f"models not compared: {report.models_not_compared}"
    if name in ("upgrade", "roundtrip") and coverage.not_checked:
        first, why = next(iter(coverage.not_checked.items()))
        return (f"{len(coverage.not_checked)} of {report.revisions} revisions not reached "
                f"(first: {first}, {why}); see the other migrasafe tests")  # fmt: skip
    if name == "roundtrip":
        unchecked = [f"{rev} ({why})" for rev, why in coverage.schema_only.items()]
        unchecked += sorted(f"{f.revision} ({f.table})" for f in report.findings
                            if f.rule == "data-not-checked" and f.table)  # fmt: skip
        if unchecked:  # the schema came back; nothing says the data did
            return f"data not checked: {', '.join(unchecked)} (see `migrasafe verify`)"
        never = [rev for rev, why in coverage.upgrade_only.items() if "failed" not in why]
        if never:
            return f"never reverted: {', '.join(never)} (irreversible)"
    return None


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


@contextmanager
def _at_root(config: pytest.Config) -> Iterator[Project]:
    """The project, loaded and run from pytest's root directory, as ``alembic`` would be
    from there: ``migrasafe_config`` (relative to the root), else found as the
    ``migrasafe`` command finds it. Relative paths in alembic.ini (``script_location``,
    ``prepend_sys_path = .``) then mean what they mean there, wherever pytest started."""
    from migrasafe.project.config import load_project

    here = Path.cwd()
    os.chdir(config.rootpath)
    try:
        named = str(config.getini("migrasafe_config") or "")
        yield load_project(named or None)
    finally:
        os.chdir(here)


def _report(config: pytest.Config) -> VerifyReport | Exception:
    """One verify run per session, shared by every migrasafe test (its error too)."""
    if _REPORT not in config.stash:
        from migrasafe.checks.verify import verify

        try:
            with _at_root(config) as project:
                config.stash[_REPORT] = verify(project, url=config.getini("migrasafe_url") or None,
                                               rows=_rows(config))  # fmt: skip
        except Exception as exc:
            config.stash[_REPORT] = exc
    return config.stash[_REPORT]


def _rows(config: pytest.Config) -> int:
    text = str(config.getini("migrasafe_rows"))
    if not text.isdigit():
        raise pytest.UsageError(f"migrasafe_rows = {text!r}: expected a whole number of rows")
    return int(text)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not config.getoption("migrasafe"):
        return
    collector = MigrasafeCollector.from_parent(session, name="migrasafe")
    items.extend(collector.collect())


@pytest.fixture
def migrasafe_runner(request: pytest.FixtureRequest) -> Iterator[MigrationRunner]:
    """The project's migrations on a new scratch database, removed after the test."""
    from migrasafe.pytest_plugin.runner import migration_runner

    config = request.config
    server = config.getini("migrasafe_url") or None
    with _at_root(config) as project, migration_runner(project, server) as runner:
        yield runner  # from pytest's root directory, as the project is run
