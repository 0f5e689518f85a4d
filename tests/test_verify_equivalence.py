"""verify's shortcuts never change a verdict.

Revisions share one run of ``env.py`` (windows); the plain way runs ``env.py``
once per step, as separate ``alembic upgrade +1`` / ``downgrade -1`` commands
would. Both must find the same findings and the same coverage, with and
without ``transaction_per_migration`` (and with it asked for on a connection already in
a transaction), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrasafe import load_project, verify
from migrasafe.checks.verify.window import Windows

from conftest import make_project

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


# How env.py runs its migrations: a transaction per migration (migrasafe's template), one
# transaction for all, or transaction_per_migration asked for on a connection that a
# statement sent before context.configure() already put in a transaction (Alembic then
# leaves every step to that transaction: one transaction after all).
ENV_STYLES = {
    "per-migration": None,
    "one-transaction": ('"transaction_per_migration": True', '"transaction_per_migration": False'),
    "external-transaction": (  # as pypi/warehouse's env.py: SET first, commit at the end
        "    with context.begin_transaction():\n        context.run_migrations()\n\n\ndef run_",
        "    with context.begin_transaction():\n        context.run_migrations()\n"
        "    connection.commit()\n\n\ndef run_",
    ),
}  # fmt: skip


@pytest.mark.parametrize("env_style", list(ENV_STYLES))
@pytest.mark.parametrize(("template", "scenario"), SCENARIOS, ids=[s for _, s in SCENARIOS])
def test_windows_give_the_verdict_of_one_env_py_run_per_step(
    tmp_path: Path, template: str, scenario: str, env_style: str, scratch_server: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ini = make_project(tmp_path / "p", template, scenario)
    edit = ENV_STYLES[env_style]
    if edit is not None:
        env = ini.parent / "migrations" / "env.py"
        assert edit[0] in env.read_text()
        env.write_text(env.read_text().replace(*edit))
        if env_style == "external-transaction":
            text = env.read_text().replace(
                "    context.configure(connection=connection,",
                '    connection.exec_driver_sql("SELECT 1")\n'
                "    context.configure(connection=connection,",
            )
            env.write_text(text)
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
