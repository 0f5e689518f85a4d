"""status and history on projects with branches, merges and unknown revisions."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project, query, run_cli


def test_history_marks_branch_and_merge_points(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "branches_and_merge")
    entries = json.loads(run_cli("-c", str(ini), "history", "--json").stdout)
    by_rev = {e["revision"]: e for e in entries}
    assert entries[0]["revision"] == "0001" and entries[-1]["revision"] == "0004"
    assert by_rev["0001"]["is_branch_point"] and by_rev["0004"]["is_merge_point"]
    assert sorted(by_rev["0004"]["down_revision"]) == ["0002", "0003"]
    assert [e["revision"] for e in entries if e["is_head"]] == ["0004"]


def test_pending_revisions_are_in_apply_order_across_branches(tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "branches_and_merge")
    assert run_cli("-c", str(ini), "--url", db_url, "upgrade", "0002").exit_code == 0
    result = run_cli("-c", str(ini), "--url", db_url, "status", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["pending"] == ["0003", "0004"]
    assert run_cli("-c", str(ini), "--url", db_url, "upgrade").exit_code == 0
    assert run_cli("-c", str(ini), "--url", db_url, "status").exit_code == 0


def test_revision_in_database_without_a_script_is_unknown(library: Path, db_url: str) -> None:
    run_cli("-c", str(library), "--url", db_url, "upgrade")
    query(db_url, "UPDATE alembic_version SET version_num = 'deadbeef'")
    result = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["unknown"] == ["deadbeef"] and data["current"] == ["deadbeef"]
    assert data["up_to_date"] is False


def test_history_without_a_reachable_database_still_lists_revisions(library: Path) -> None:
    url = "postgresql+psycopg://u:secret@127.0.0.1:1/nodb"
    result = run_cli("-c", str(library), "--url", url, "history", "--json")
    assert result.exit_code == 0
    assert [e["revision"] for e in json.loads(result.stdout)] == ["0001", "0002", "0003"]
    assert "current revision unknown" in result.stderr and "secret" not in result.stderr
