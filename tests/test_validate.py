"""validate: one broken example project per rule, each reported with its own rule id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_project, query, run_cli, tables

SCENARIOS = {
    "validate_syntax_error": ("syntax-error", None, "0002_broken.py"),
    "validate_missing_revision": ("missing-revision", None, "0002_no_revision.py"),
    "validate_invalid_revision_id": (
        "invalid-revision-id",
        "0002' || (SELECT sqlite_version()) || '",
        "0002_quoted.py",
    ),
    "validate_missing_down_revision": ("missing-down-revision", "0002", "0002_no_down_revision.py"),
    "validate_missing_upgrade": ("missing-upgrade", "0002", "0002_no_upgrade.py"),
    "validate_missing_downgrade": ("missing-downgrade", "0002", "0002_no_downgrade.py"),
    "validate_empty_downgrade": ("empty-downgrade", "0002", "0002_empty_downgrade.py"),
    "validate_unknown_down_revision": ("unknown-down-revision", "0002", "0002_unknown_parent.py"),
    "validate_duplicate_revision": ("duplicate-revision", "0002", "0002_one.py"),
    "validate_cycle": ("cycle", None, None),
    "validate_multiple_heads": ("multiple-heads", "0002", "0002_left.py"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_broken_project_is_reported_under_its_rule(tmp_path: Path, scenario: str) -> None:
    rule, revision, filename = SCENARIOS[scenario]
    ini = make_project(tmp_path / "p", "generic", scenario)
    result = run_cli("-c", str(ini), "validate", "--json")
    assert result.exit_code == 1, result.stdout
    findings = json.loads(result.stdout)["findings"]
    assert {f["rule"] for f in findings} == {rule}
    match = [f for f in findings if filename is None or Path(f["path"]).name == filename]
    assert match, findings
    if revision is not None:
        assert match[0]["revision"] == revision
    assert all(f["severity"] == "error" and f["message"] for f in findings)


def test_data_only_revisions_with_a_pass_downgrade_are_a_note_not_an_error(
    tmp_path: Path,
) -> None:
    """op.execute() of rows, a bulk update, op.bulk_insert(): exit 0, one note per revision."""
    ini = make_project(tmp_path / "p", "generic", "validate_data_only_downgrade")
    result = run_cli("-c", str(ini), "validate", "--json")
    assert result.exit_code == 0, result.stdout
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["severity"], f["revision"]) for f in findings] == [
        ("empty-data-downgrade", "info", "0001"),
        ("empty-data-downgrade", "info", "0002"),
    ]
    assert "only data" in findings[0]["message"]


@pytest.mark.parametrize(
    "upgrade",
    [
        'op.execute("ALTER TABLE t_0001 ADD COLUMN name TEXT")',
        'op.execute("UPDATE t_0001 SET id = id")\n    op.drop_column("t_0001", "n")',
        "op.execute(SQL)",  # text validate cannot read: treated as a schema change
    ],
)
def test_a_pass_downgrade_after_schema_changes_stays_an_error(tmp_path: Path, upgrade: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_data_only_downgrade")
    revision = next((tmp_path / "p" / "migrations" / "versions").glob("0001_*.py"))
    text = revision.read_text()
    revision.write_text(
        text.replace('op.execute("UPDATE t_0001 SET id = id")', upgrade)
        .replace("from alembic import op", "from alembic import op\nimport sqlalchemy as sa")
        .replace("def upgrade", "SQL = open(__file__).read()[:0]\n\n\ndef upgrade")
    )
    result = run_cli("-c", str(ini), "validate", "--json")
    assert result.exit_code == 1, result.stdout
    findings = json.loads(result.stdout)["findings"]
    assert ("empty-downgrade", "error", "0001") in [
        (f["rule"], f["severity"], f["revision"]) for f in findings
    ]


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_syntax_error")
    result = run_cli("-c", str(ini), "validate")
    assert result.exit_code == 1
    assert "0002_broken.py:12: error syntax-error" in result.stdout


def test_cycle_names_the_revisions_along_it(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_cycle")
    findings = json.loads(run_cli("-c", str(ini), "validate", "--json").stdout)["findings"]
    assert len(findings) == 1
    assert "0002 -> 0003 -> 0002" in findings[0]["message"] or (
        "0003 -> 0002 -> 0003" in findings[0]["message"]
    )


def test_duplicate_revision_reports_both_files(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_duplicate_revision")
    findings = json.loads(run_cli("-c", str(ini), "validate", "--json").stdout)["findings"]
    assert sorted(Path(f["path"]).name for f in findings) == ["0002_one.py", "0002_other.py"]


def test_branches_joined_by_a_merge_are_valid(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "branches_and_merge")
    result = run_cli("-c", str(ini), "validate")
    assert result.exit_code == 0, result.stdout


def test_rules_can_be_selected_and_skipped(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_multiple_heads")
    assert run_cli("-c", str(ini), "validate", "--skip", "multiple-heads").exit_code == 0
    assert run_cli("-c", str(ini), "validate", "--rule", "multiple-heads").exit_code == 1
    assert run_cli("-c", str(ini), "validate", "--rule", "cycle").exit_code == 0


def test_unknown_rule_is_an_error(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic")
    result = run_cli("-c", str(ini), "validate", "--rule", "no-such-rule")
    assert result.exit_code == 2
    assert "unknown validate rule(s): no-such-rule" in result.stderr


def test_list_rules_names_every_rule(tmp_path: Path) -> None:
    result = run_cli("validate", "--list-rules", "--json")
    assert result.exit_code == 0
    scenario_rules = {r for r, _, _ in SCENARIOS.values()}
    # modified-after-apply needs a database: tests/test_deploy.py covers it; a note, above
    assert {r["rule"] for r in json.loads(result.stdout)} == scenario_rules | {
        "modified-after-apply",
        "empty-data-downgrade",
    }


def test_commands_that_load_scripts_point_to_validate(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_syntax_error")
    result = run_cli("-c", str(ini), "history")
    assert result.exit_code == 2
    assert "0002_broken.py" in result.stderr and "migrasafe validate" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_revision_id_that_would_reach_sql_is_never_migrated(tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_invalid_revision_id")
    assert run_cli("-c", str(ini), "--url", db_url, "upgrade", "0001").exit_code == 0
    result = run_cli("-c", str(ini), "--url", db_url, "upgrade")
    assert result.exit_code == 2
    assert "not a plain identifier" in result.stderr and "nothing was migrated" in result.stderr
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert "t_0002" not in tables(db_url)
