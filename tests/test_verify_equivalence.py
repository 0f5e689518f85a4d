"""verify's shortcuts never change a verdict.

Revisions share one run of ``env.py`` (windows); the plain way runs ``env.py``
once per step, as separate ``alembic upgrade +1`` / ``downgrade -1`` commands
would. Both must find the same findings and the same coverage, with and
without ``transaction_per_migration``, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import make_project
from migrasafe import load_project, verify
from migrasafe.checks.verify.window import Windows

SCENARIOS = [
    ("generic", "verify_shared_enum"),
    ("generic", "verify_leftover_index"),
    ("generic", "verify_wrong_index_dropped"),
    ("generic", "verify_merged_columns"),
    ("generic", "verify_enum_cast"),
    ("generic", "verify_unchecked"),
    ("library", "verify_clearing_downgrade"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_server(request: pytest.FixtureRequest) -> str | None:
    """Where verify makes its scratch database: a temporary SQLite file, or PostgreSQL."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def _verdict(report: Any) -> tuple[object, ...]:
    findings = sorted((f.rule, f.severity, f.revision, f.table, f.column) for f in report.findings)
    return tuple(findings), report.coverage.to_dict(), report.ok


@pytest.mark.parametrize("per_migration", [True, False], ids=["per-migration", "one-transaction"])
@pytest.mark.parametrize(("template", "scenario"), SCENARIOS, ids=[s for _, s in SCENARIOS])
def test_windows_give_the_verdict_of_one_env_py_run_per_step(
    tmp_path: Path, template: str, scenario: str, per_migration: bool, scratch_server: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ini = make_project(tmp_path / "p", template, scenario)
    if not per_migration:
        env = ini.parent / "migrations" / "env.py"
        env.write_text(env.read_text().replace('"transaction_per_migration": True',
                                               '"transaction_per_migration": False'))  # fmt: skip
    windowed = verify(load_project(str(ini)), url=scratch_server)
    with monkeypatch.context() as patched:
        patched.setattr(Windows, "_windowable", lambda _self, _revision: False)
        plain = verify(load_project(str(ini)), url=scratch_server)
    assert _verdict(windowed) == _verdict(plain)


def test_a_shared_enum_dropped_by_the_downgrade_is_created_again(
    tmp_path: Path, scratch_server: str | None
) -> None:
    """An initial revision of a dozen tables sharing two enum types, made by create_table,
    dropped by the downgrade's DROP TYPE. In one MigrationContext, SQLAlchemy remembers that
    it created the types and skips them on the second upgrade, which then fails; separate
    Alembic runs pass. Three steps per revision: no step had to be run again the plain way."""
    ini = make_project(tmp_path / "p", "generic", "verify_shared_enum")
    report = verify(load_project(str(ini)), url=scratch_server)
    assert report.ok, [f.message for f in report.findings]
    assert report.coverage.with_data == ("0001", "0002", "0003")
    assert report.steps == 9
