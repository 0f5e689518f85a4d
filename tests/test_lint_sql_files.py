"""lint reads plain .sql migration files, with or without an Alembic project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import make_project, run_cli

V1 = """-- books
CREATE TABLE books (
    id integer PRIMARY KEY,
    title varchar(200),
    pages integer
);
ALTER TABLE books ADD COLUMN isbn text NOT NULL;  -- a new, empty table: safe
CREATE INDEX ix_books_title ON books (title);
"""

V2 = """ALTER TABLE books ALTER COLUMN pages TYPE bigint;
CREATE INDEX CONCURRENTLY ix_books_pages ON books (pages);

-- migrasafe: ignore[drop-column]
ALTER TABLE books DROP COLUMN isbn;
BEGIN;
CREATE INDEX CONCURRENTLY ix_books_isbn ON books (isbn);
COMMIT;
"""

V10 = """ALTER TABLE books ALTER COLUMN title TYPE varchar(300);
ALTER TABLE books DROP COLUMN pages;
SELEC this is not SQL;
"""


@pytest.fixture
def sql_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Migration files in a directory with no Alembic project anywhere."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / "sql"
    directory.mkdir()
    # V10 sorts after V2, as migration tools apply them: the schema V2 changes is V1's.
    for name, text in (("V1__books.sql", V1), ("V2__types.sql", V2), ("V10__drop.sql", V10)):
        (directory / name).write_text(text)
    (directory / "notes.txt").write_text("DROP TABLE books;")
    return directory


def _json(*args: str) -> tuple[int, dict[str, object]]:
    result = run_cli("lint", "--json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def _rows(report: dict[str, object]) -> list[tuple[str, int, str]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [(Path(f["path"]).name, f["line"], f["rule"]) for f in findings]


def test_a_directory_is_linted_file_by_file_in_order_without_a_project(sql_dir: Path) -> None:
    code, report = _json("sql")
    assert code == 1 and report["dialect"] == "postgresql" and report["revisions"] == 3
    # V1 only builds a new table; V2's unlocked CONCURRENTLY is fine outside BEGIN.
    assert sorted(_rows(report)) == sorted([
        ("V2__types.sql", 1, "change-column-type"),
        ("V2__types.sql", 1, "missing-lock-timeout"),
        ("V2__types.sql", 7, "concurrently-inside-transaction"),
        ("V10__drop.sql", 1, "missing-lock-timeout"),
        ("V10__drop.sql", 2, "drop-column"),
        ("V10__drop.sql", 3, "sql-not-linted"),
    ])  # fmt: skip
    findings = report["findings"]
    assert isinstance(findings, list)
    message = next(f["message"] for f in findings if f["rule"] == "change-column-type")
    assert "to BIGINT (from INTEGER)" in message  # V1's schema, replayed
    assert report["suppressed"] == 1  # V2's DROP COLUMN, by the comment above it


def test_files_and_directories_on_the_command_line_in_text(sql_dir: Path) -> None:
    result = run_cli("lint", "sql/V10__drop.sql", "--skip", "sql-not-linted",
                     "--db-lock-timeout", "2s")  # fmt: skip
    assert result.exit_code == 1
    # V1 and V2 are replayed, not reported: title is a varchar(200) widened (no finding).
    assert result.stdout.splitlines()[0].startswith(
        "sql/V10__drop.sql:2 [books.pages]: error drop-column (V10__drop.sql): drops column"
    )
    assert "1 error(s), 0 warning(s) in 1 revision files." in result.stdout
    assert "Linted for postgresql." in result.stdout


@pytest.mark.parametrize("fmt", ["gcc", "github", "sarif"])
def test_every_ci_format_points_at_file_and_line(sql_dir: Path, fmt: str) -> None:
    result = run_cli("lint", "sql", "--format", fmt)
    assert result.exit_code == 1
    if fmt == "gcc":
        assert "sql/V10__drop.sql:2:1: error: drops column books.pages" in result.stdout
        assert all(re.fullmatch(r"sql/V\d+__\w+\.sql:\d+:1: (error|warning|note): .+ \[[a-z-]+\]",
                                x) for x in result.stdout.splitlines())  # fmt: skip
    elif fmt == "github":
        assert "::error file=sql/V10__drop.sql,line=2,title=drop-column" in result.stdout
    else:
        results = json.loads(result.stdout)["runs"][0]["results"]
        where = {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                  r["locations"][0]["physicalLocation"]["region"]["startLine"])
                 for r in results}  # fmt: skip
        assert ("drop-column", "sql/V10__drop.sql", 2) in where


def test_only_warnings_exit_0(sql_dir: Path) -> None:
    (sql_dir / "V11__index.sql").write_text("DROP INDEX ix_books_title;\n")
    code, report = _json("sql/V11__index.sql")
    assert code == 0 and _rows(report) == [("V11__index.sql", 1, "drop-index-without-concurrently")]


def test_dialect_option_and_the_projects_dialect(sql_dir: Path, tmp_path: Path) -> None:
    _, report = _json("sql", "--dialect", "sqlite")
    assert report["dialect"] == "sqlite"
    assert ("V2__types.sql", 1, "sqlite-alter-outside-batch") in _rows(report)
    ini = make_project(tmp_path / "project")  # the library template: a SQLite URL
    result = run_cli("-c", str(ini), "lint", "--json", str(sql_dir))
    assert json.loads(result.stdout)["dialect"] == "sqlite"


def test_a_file_that_is_not_sql_is_refused_in_one_line(sql_dir: Path) -> None:
    result = run_cli("lint", "sql/notes.txt")
    assert result.exit_code == 2
    assert "notes.txt is not a .sql file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_since_is_for_revisions_only(sql_dir: Path) -> None:
    result = run_cli("lint", "sql", "--since", "0001")
    assert result.exit_code == 2 and "with .sql files, name the files" in result.stderr


def test_strict_reports_an_sql_ignore_comment_that_silences_nothing(sql_dir: Path) -> None:
    (sql_dir / "V11__clean.sql").write_text(
        "-- migrasafe: ignore[drop-table]\nCREATE TABLE authors (id integer);\n"
    )
    code, report = _json("sql/V11__clean.sql", "--strict")
    assert code == 1 and _rows(report) == [("V11__clean.sql", 1, "unused-suppression")]
    findings = report["findings"]
    assert isinstance(findings, list)
    assert "`-- migrasafe: ignore[drop-table]` silences nothing" in findings[0]["message"]
