"""The reference project's workflow through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import query, run_cli, tables


def test_status_exits_1_before_upgrade_and_0_after(library: Path, db_url: str) -> None:
    before = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert before.exit_code == 1
    data = json.loads(before.stdout)
    assert data["current"] == [] and data["pending"] == ["0001", "0002", "0003"]
    assert data["up_to_date"] is False and data["heads"] == ["0003"] and data["unknown"] == []

    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0

    after = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert after.exit_code == 0
    assert json.loads(after.stdout) | {"url": None} == {
        "url": None, "version_table": "alembic_version", "current": ["0003"], "heads": ["0003"],
        "pending": [], "unknown": [], "modified": [], "unverified": [], "half_applied": [],
        "half_reverted": [], "half_applied_operations": [], "under_way": False,
        "up_to_date": True, "strict": False, "ok": True,
    }  # fmt: skip


def test_status_reads_the_database_not_the_files(library: Path, db_url: str) -> None:
    run_cli("-c", str(library), "--url", db_url, "upgrade", "0001")
    result = run_cli("-c", str(library), "--url", db_url, "status")
    assert result.exit_code == 1
    assert "Current:   0001" in result.stdout
    assert "Pending:   0002, 0003" in result.stdout


def test_status_does_not_create_a_missing_sqlite_file(library: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    result = run_cli("-c", str(library), "--url", f"sqlite:///{missing}", "status", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["pending"] == ["0001", "0002", "0003"]
    assert not missing.exists()


def test_history_follows_the_graph_and_marks_current(library: Path, db_url: str) -> None:
    run_cli("-c", str(library), "--url", db_url, "upgrade", "0002")
    result = run_cli("-c", str(library), "--url", db_url, "history", "--json")
    assert result.exit_code == 0
    entries = json.loads(result.stdout)
    assert [e["revision"] for e in entries] == ["0001", "0002", "0003"]
    assert [e["down_revision"] for e in entries] == [[], ["0001"], ["0002"]]
    assert [e["is_head"] for e in entries] == [False, False, True]
    assert [e["is_current"] for e in entries] == [False, True, False]
    assert entries[0]["message"] == "Create the books table"


def test_validate_passes_on_the_reference_project(library: Path) -> None:
    result = run_cli("-c", str(library), "validate", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["findings"] == []


def test_upgrade_and_downgrade_report_what_ran(library: Path, db_url: str) -> None:
    up = run_cli("-c", str(library), "--url", db_url, "upgrade", "--json")
    assert up.exit_code == 0
    assert [s["revision"] for s in json.loads(up.stdout)["steps"]] == ["0001", "0002", "0003"]

    down = run_cli("-c", str(library), "--url", db_url, "downgrade", "-1", "--json")
    assert down.exit_code == 0
    data = json.loads(down.stdout)
    assert [s["revision"] for s in data["steps"]] == ["0003"] and data["after"] == ["0002"]

    base = run_cli("-c", str(library), "--url", db_url, "downgrade", "base")
    assert base.exit_code == 0
    assert "Reverted 0001" in base.stdout
    assert tables(db_url) <= {"alembic_version", "migrasafe_checksums"}

    again = run_cli("-c", str(library), "--url", db_url, "upgrade")
    assert again.exit_code == 0
    assert {"books", "reviews"} <= tables(db_url)
    nothing = run_cli("-c", str(library), "--url", db_url, "upgrade")
    assert nothing.exit_code == 0 and "Nothing to do" in nothing.stdout


def test_every_downgrade_runs_one_step_at_a_time(library: Path, db_url: str) -> None:
    run_cli("-c", str(library), "--url", db_url, "upgrade")
    for expected in (["0002"], ["0001"], []):
        result = run_cli("-c", str(library), "--url", db_url, "downgrade", "-1", "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["after"] == expected


def test_upgrade_sql_prints_sql_and_leaves_the_database_alone(library: Path, db_url: str) -> None:
    result = run_cli("-c", str(library), "--url", db_url, "upgrade", "0002", "--sql")
    assert result.exit_code == 0
    assert "CREATE TABLE books" in result.stdout and "CREATE TABLE reviews" in result.stdout
    assert "alembic_version" not in tables(db_url)


def test_downgrade_sql_starts_from_the_current_revision(library: Path, pg_url: str) -> None:
    run_cli("-c", str(library), "--url", pg_url, "upgrade")
    result = run_cli("-c", str(library), "--url", pg_url, "downgrade", "0002", "--sql")
    assert result.exit_code == 0, result.stderr
    assert "UPDATE books SET description=NULL" in result.stdout
    assert "DROP TABLE migrasafe_backfill_0003" in result.stdout
    assert query(pg_url, "SELECT version_num FROM alembic_version") == [("0003",)]


def test_json_output_is_only_json(library: Path, db_url: str) -> None:
    for args in (["upgrade", "--json"], ["status", "--json"], ["history", "--json"],
                 ["validate", "--json"], ["downgrade", "base", "--json"]):  # fmt: skip
        result = run_cli("-c", str(library), "--url", db_url, *args)
        json.loads(result.stdout)  # raises if anything else is on stdout


def test_url_from_environment_variable(library: Path, db_url: str) -> None:
    result = run_cli("-c", str(library), "upgrade", env={"MIGRASAFE_URL": db_url})
    assert result.exit_code == 0
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0003",)]


def test_revisions_applied_without_a_checksum_are_unverified_until_accepted(
    library: Path, db_url: str
) -> None:
    """Plain Alembic, or a deleted record: a note (a failure with --strict) until accepted."""
    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    query(db_url, "DELETE FROM migrasafe_checksums WHERE revision = '0002'")
    result = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["unverified"] == ["0002"] and data["up_to_date"] is True
    assert data["strict"] is False and data["ok"] is True
    strict = run_cli("-c", str(library), "--url", db_url, "status", "--strict", "--json")
    assert strict.exit_code == 1
    assert json.loads(strict.stdout) | {"strict": None, "ok": None} == data | {
        "strict": None, "ok": None
    }  # fmt: skip
    assert json.loads(strict.stdout)["strict"] is True
    text = run_cli("-c", str(library), "--url", db_url, "status")
    assert "Note: 0002 applied without a recorded checksum" in text.stdout
    assert "migrasafe accept" in text.stdout and "but see above" not in text.stdout
    strict_text = run_cli("-c", str(library), "--url", db_url, "status", "--strict")
    assert "Unverified: 0002" in strict_text.stdout
    assert "Up to date, but see above." in strict_text.stdout
    query(db_url, "DROP TABLE migrasafe_checksums")
    data = json.loads(run_cli("-c", str(library), "--url", db_url, "status", "--json").stdout)
    assert data["unverified"] == ["0001", "0002", "0003"]
    accepted = run_cli("-c", str(library), "--url", db_url, "accept", "--json")
    assert json.loads(accepted.stdout)["accepted"] == ["0001", "0002", "0003"]
    assert run_cli("-c", str(library), "--url", db_url, "status", "--strict").exit_code == 0


def test_a_database_migrated_by_plain_alembic_passes_status_with_a_note(
    library: Path, db_url: str
) -> None:
    """Adopting migrasafe in CI: exit 0 and a note, until --strict (or accept)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(library))
    config.set_main_option("sqlalchemy.url", db_url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    result = run_cli("-c", str(library), "--url", db_url, "status")
    assert result.exit_code == 0, result.stdout
    assert "Note: 0001, 0002, 0003 applied without a recorded checksum" in result.stdout
    assert "Up to date (3 unverified revision(s): see the note above)." in result.stdout
    assert run_cli("-c", str(library), "--url", db_url, "status", "--strict").exit_code == 1
    # An edit after applying stays a failure without --strict.
    assert run_cli("-c", str(library), "--url", db_url, "accept").exit_code == 0
    script = next((library.parent / "migrations" / "versions").glob("0002_*.py"))
    script.write_text(script.read_text() + "\n# edited\n")
    edited = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert edited.exit_code == 1
    assert [m["revision"] for m in json.loads(edited.stdout)["modified"]] == ["0002"]
