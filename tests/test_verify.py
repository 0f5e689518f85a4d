"""verify: each way a migration fails to reverse, found on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_project, query, run_cli, tables


def _verify(ini: Path, scratch: str | None, *extra: str) -> tuple[int, dict[str, object]]:
    args = ["-c", str(ini), "verify", "--json", *extra]
    if scratch is not None:
        args += ["--url", scratch]
    result = run_cli(*args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch(request: pytest.FixtureRequest) -> str | None:
    """Where verify creates its scratch database: the default, or a PostgreSQL server."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def _rules(report: dict[str, object]) -> set[tuple[str, str, str | None, str | None]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {(f["rule"], f["revision"], f["table"], f["column"]) for f in findings}


def test_reference_project_reverses_cleanly(library: Path, scratch: str | None) -> None:
    code, report = _verify(library, scratch)
    assert code == 0, report["findings"]
    assert report["checked"] == 3 and report["steps"] == 9 and report["refused_rows"] == {}


def test_downgrade_leaving_an_index_behind(tmp_path: Path, scratch: str | None) -> None:
    ini = make_project(tmp_path / "p", "generic", "verify_leftover_index")
    code, report = _verify(ini, scratch)
    assert code == 1
    assert ("schema-not-restored", "0002", "authors", None) in _rules(report)
    messages = [f["message"] for f in report["findings"]]  # type: ignore[union-attr]
    assert any("index ix_authors_name" in m and "was not before" in m for m in messages)


def test_index_dropped_by_name_is_traced_to_its_table(tmp_path: Path, scratch: str | None) -> None:
    """DROP INDEX names no table; verify re-reads only what a step touched, so it must map it."""
    ini = make_project(tmp_path / "p", "generic", "verify_wrong_index_dropped")
    code, report = _verify(ini, scratch)
    assert code == 1
    assert {(rule, rev, table) for rule, rev, table, _ in _rules(report)} == {
        ("schema-not-restored", "0002", "authors"),  # ix_authors_name left behind
        ("schema-not-restored", "0002", "books"),  # ix_books_title dropped
        ("reupgrade-failed", "0002", None),  # the second upgrade meets the leftover index
    }
    # the scratch database is rebuilt up to 0002, and 0003 is checked too
    assert report["coverage"]["with_data"] == ["0001", "0002", "0003"]  # type: ignore[index]
    assert any("upgraded straight to 0002" in note for note in report["notes"])  # type: ignore[attr-defined]


def test_merged_columns_recreated_empty(tmp_path: Path, scratch: str | None) -> None:
    ini = make_project(tmp_path / "p", "generic", "verify_merged_columns")
    code, report = _verify(ini, scratch)
    assert code == 1
    found = _rules(report)
    assert ("data-changed", "0002", "authors", "first_name") in found
    assert ("data-changed", "0002", "authors", "last_name") in found


def test_data_migration_downgrade_clearing_values_it_did_not_fill(
    tmp_path: Path, scratch: str | None
) -> None:
    ini = make_project(tmp_path / "p", "library", "verify_clearing_downgrade")
    code, report = _verify(ini, scratch)
    assert code == 1
    assert {(r, rev, t, c) for r, rev, t, c in _rules(report)} == {
        ("data-changed", "0003", "books", "description"),
        ("data-changed", "0003", "books", "price"),
        ("data-changed", "0003", "books", "page_count"),
    }


def test_failing_upgrade_is_a_finding_and_verify_goes_on(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "branches_and_merge")
    broken = tmp_path / "p" / "migrations" / "versions" / "0002_left.py"
    broken.write_text(broken.read_text().replace(
        "def upgrade() -> None:\n", "def upgrade() -> None:\n    op.execute('SELECT * FROM nope')\n"
    ))  # fmt: skip
    code, report = _verify(ini, None)
    assert code == 1
    assert ("upgrade-failed", "0002", None, None) in _rules(report)
    coverage = report["coverage"]
    assert coverage["with_data"] == ["0001", "0003"]  # type: ignore[index]
    assert coverage["not_checked"] == {  # type: ignore[index]
        "0002": "its upgrade failed, even on empty tables",
        "0004": "its parent 0002 could not be applied",
    }
    assert report["complete"] is False and report["fully_checked"] is False


def test_branches_and_merges_are_walked_in_one_pass(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "branches_and_merge")
    code, report = _verify(ini, None)
    assert code == 0, report["findings"]
    assert report["checked"] == 4 and report["steps"] == 12


def test_multiple_heads_are_reported(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_multiple_heads")
    code, report = _verify(ini, None)
    assert code == 1
    assert {r for r, *_ in _rules(report)} == {"multiple-heads"}


def test_verify_never_touches_the_projects_database(library: Path, pg_url: str) -> None:
    query(pg_url, "CREATE TABLE precious (id int)")
    result = run_cli("-c", str(library), "--url", pg_url, "verify", "--url", pg_url)
    assert result.exit_code == 0, result.stdout
    assert tables(pg_url) == {"precious"}
    leftovers = query(
        pg_url, "SELECT datname FROM pg_database WHERE datname LIKE 'migrasafe_scratch%'"
    )
    assert leftovers == []


def test_same_seed_same_rows(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "verify_merged_columns")
    first = _verify(ini, None, "--seed", "7")[1]["findings"]
    again = _verify(ini, None, "--seed", "7")[1]["findings"]
    assert first == again


def test_model_drift_is_reported(library: Path) -> None:
    models = library.parent / "library" / "models.py"
    models.write_text(models.read_text().replace(
        "    description: Mapped[str | None] = mapped_column(Text)\n",
        "    description: Mapped[str | None] = mapped_column(Text)\n"
        "    language: Mapped[str | None] = mapped_column(String(20))\n",
    ))  # fmt: skip
    result = subprocess.run(  # a new process imports the edited models
        [sys.executable, "-m", "migrasafe", "-c", str(library), "verify", "--json"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["revision"], f["table"]) for f in findings] == [
        ("model-drift", "0003", "books")
    ]
    assert "language" in findings[0]["message"]


def test_what_verify_could_not_check_is_said_not_called_clean(tmp_path: Path, db_url: str) -> None:
    """An irreversible revision and rows the database refused are warnings, never "clean"."""
    ini = make_project(tmp_path / "p", "generic", "verify_unchecked")
    server = ["--url", db_url] if db_url.startswith("postgresql") else []
    result = run_cli("-c", str(ini), "verify", *server, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr  # warnings only
    data = json.loads(result.stdout)
    found = {(f["rule"], f["revision"], f["severity"]) for f in data["findings"]}
    assert ("irreversible", "0002", "info") in found
    assert ("data-not-checked", "0002", "warning") in found  # seeded before 0002
    refused = next(f for f in data["findings"] if f["rule"] == "data-not-checked")
    assert "ck_orders_status" in refused["message"]  # the database's word for what refused them
    assert data["coverage"]["upgrade_only"] == {
        "0002": "its downgrade raises NotImplementedError (the audit trail is never removed)"
    }
    assert data["coverage"]["with_data"] == ["0001", "0003"]  # 0003: checked past 0002
    assert data["fully_checked"] is False
    text = run_cli("-c", str(ini), "verify", *server)
    assert "Every revision reverses cleanly" not in text.stdout
    assert "1 irreversible" in text.stdout and "data not checked in orders" in text.stdout


def test_a_table_only_indexed_keeps_its_rows_and_a_later_loss_is_still_found(
    tmp_path: Path, scratch: str | None
) -> None:
    """Rows still valid for the table (an index added) are not regenerated: fewer writes,
    the same checks. The rows 0003's downgrade deletes are those seeded before 0002."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    ini = make_project(tmp_path / "p", "generic", "verify_index_only")
    writes: list[str] = []

    def watch(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("DELETE FROM BOOKS", "INSERT INTO BOOKS")):
            writes.append(" ".join(statement.split()[:3]).upper())

    event.listen(Engine, "before_cursor_execute", watch)
    try:
        report = verify(load_project(ini), url=scratch)
    finally:
        event.remove(Engine, "before_cursor_execute", watch)
    # seeded once, before 0002, into the new and so empty table (nothing to delete); kept
    # for 0003, whose downgrade deletes some
    assert writes[0] == "INSERT INTO BOOKS" and set(writes[1:]) == {"DELETE FROM BOOKS"}, writes
    assert {(f.rule, f.revision) for f in report.findings} == {("data-lost", "0003")}
    assert list(report.coverage.with_data) == ["0001", "0002", "0003"]


def test_tables_made_dropped_and_renamed_in_raw_sql_are_followed(
    tmp_path: Path, scratch: str | None
) -> None:
    """verify infers the tables there after CREATE, DROP and RENAME by name and asks the
    database to confirm; where the name's case defeats the inference (SQLite keeps an
    unquoted "Shelves" as written) it lists them. Either way the rows a rebuild loses
    are found."""
    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    ini = make_project(tmp_path / "p", "generic", "verify_raw_tables")
    report = verify(load_project(ini), url=scratch)
    assert {(f.rule, f.revision, f.table) for f in report.findings} == {
        ("data-lost", "0003", "racks")
    }
    assert list(report.coverage.with_data) == ["0001", "0002", "0003"]


def test_rewritten_key_values_are_changed_values_not_lost_rows(
    tmp_path: Path, scratch: str | None
) -> None:
    """A data migration lowercases primary-key values and its downgrade cannot undo it: the
    rows are all there with other keys. That is changed data, said with an example."""
    ini = make_project(tmp_path / "p", "generic", "verify_rekeyed_rows")
    code, report = _verify(ini, scratch)
    assert code == 1
    assert _rules(report) == {("data-changed", "0002", "tags", "code"),
                              ("data-changed", "0002", "codes", "code")}  # fmt: skip
    messages = " ".join(f["message"] for f in report["findings"])  # type: ignore[union-attr]
    assert "their other values unchanged" in messages and "is keyed" in messages
    assert "gone after the downgrade" not in messages
    assert report["verdict"] == "Failed: values changed (0002)."


def test_a_downgrade_alembic_cannot_run_on_sqlite_is_a_failure_not_irreversible(
    tmp_path: Path,
) -> None:
    """Alembic's own NotImplementedError (no ALTER of constraints on SQLite) is the downgrade
    failing; only the revision's own NotImplementedError declares it irreversible."""
    ini = make_project(tmp_path / "p", "generic", "verify_alembic_not_implemented")
    code, report = _verify(ini, None)
    assert code == 1
    assert _rules(report) == {("downgrade-failed", "0002", None, None)}
    assert "No support for ALTER of constraints" in report["findings"][0]["message"]  # type: ignore[index]
    coverage = report["coverage"]
    assert coverage["with_data"] == ["0001"]  # type: ignore[index]
    assert coverage["upgrade_only"] == {"0002": "its downgrade failed"}  # type: ignore[index]
    assert report["verdict"] == "Failed: the downgrade failed (0002)."


@pytest.mark.parametrize("per_migration", [True, False], ids=["per-migration", "one-transaction"])
def test_a_revision_without_a_downgrade_function_is_irreversible(
    tmp_path: Path, scratch: str | None, per_migration: bool
) -> None:
    """No downgrade() at all (OpenStack projects write none, by policy): like a downgrade
    raising NotImplementedError, a note, and verify goes on; never a traceback."""
    ini = make_project(tmp_path / "p", "generic", "verify_no_downgrade_function")
    if not per_migration:
        env = ini.parent / "migrations" / "env.py"
        env.write_text(env.read_text().replace('"transaction_per_migration": True',
                                               '"transaction_per_migration": False'))  # fmt: skip
    code, report = _verify(ini, scratch)
    assert code == 0
    assert _rules(report) == {("irreversible", "0002", None, None)}
    assert report["coverage"]["upgrade_only"] == {  # type: ignore[index]
        "0002": "it has no downgrade() function"
    }


def test_a_keyless_table_whose_column_comes_back_empty_has_changed_values_not_lost_rows(
    tmp_path: Path, scratch: str | None
) -> None:
    """As many rows after the round trip as before, one column emptied: the column is named,
    and no row is called lost (ckan's package_revision was, before)."""
    ini = make_project(tmp_path / "p", "generic", "verify_keyless_nulled")
    code, report = _verify(ini, scratch)
    assert code == 1
    assert _rules(report) == {("data-changed", "0002", "log", "url")}


def test_an_index_name_postgresql_cuts_is_followed_when_dropped(
    tmp_path: Path, scratch: str | None
) -> None:
    """PostgreSQL keeps the first 63 characters of a longer index name, and DROP INDEX with
    the long name drops it: the downgrade restores the schema (verify said it did not)."""
    ini = make_project(tmp_path / "p", "generic", "verify_long_index_name")
    code, report = _verify(ini, scratch)
    assert code == 0, report["findings"]
    assert report["coverage"]["with_data"] == ["0001", "0002"]  # type: ignore[index]


def test_a_downgrade_that_refuses_with_raise_is_irreversible_a_bug_is_a_failure(
    tmp_path: Path, scratch: str | None
) -> None:
    """pypi/warehouse refuses some downgrades with `raise RuntimeError("Cannot downgrade past
    ...")`: the project's word, like NotImplementedError. A KeyError from a line that is not a
    raise statement is the downgrade failing."""
    ini = make_project(tmp_path / "p", "generic", "verify_deliberate_refusal")
    code, report = _verify(ini, scratch)
    assert code == 1
    assert _rules(report) == {("irreversible", "0002", None, None),
                              ("downgrade-failed", "0003", None, None)}  # fmt: skip
    assert report["coverage"]["upgrade_only"] == {  # type: ignore[index]
        "0002": "its downgrade raises RuntimeError (Cannot downgrade past revision 0002)",
        "0003": "its downgrade failed",
    }


def test_an_index_built_concurrently_waits_for_no_transaction_of_verify(
    tmp_path: Path, scratch: str | None
) -> None:
    """CREATE INDEX CONCURRENTLY waits for every open transaction: verify's own reads must
    leave none open while a migration runs (its catalog query did, and warehouse's second
    upgrades failed on their lock timeout where plain Alembic passes)."""
    ini = make_project(tmp_path / "p", "generic", "verify_concurrent_index")
    code, report = _verify(ini, scratch)
    assert code == 0, report["findings"]
    assert report["coverage"]["with_data"] == ["0001", "0002"]  # type: ignore[index]
