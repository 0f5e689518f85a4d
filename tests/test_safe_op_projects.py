"""Revisions written with safe_op (tests/projects/safe_operations, one operation each):
verify and lint accept them, upgrade --sql renders them, and op.safe_* works once registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_project, query, run_cli

PROJECT = "safe_operations"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    ini = make_project(tmp_path / "p", "generic", PROJECT)
    (ini.parent / "pyproject.toml").write_text('[tool.migrasafe]\ndb-lock-timeout = "2s"\n')
    return ini


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def scratch(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(
        request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")
    )


def test_verify_reverses_every_safe_operation_with_data(project: Path, scratch: str | None) -> None:
    args = ["-c", str(project), "-q", "verify", "--json"]
    result = run_cli(*args, *(["--url", scratch] if scratch else []))
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["findings"]
    assert report["findings"] == []
    assert report["coverage"]["with_data"] == [f"000{n}" for n in range(1, 8)]


@pytest.mark.parametrize("revision", [f"000{n}" for n in range(2, 8)])
def test_lint_finds_nothing_dangerous_in_a_safe_operation(project: Path, revision: str) -> None:
    """Including the NOT NULL set through a validated CHECK (0006, 0007) on PostgreSQL 12+,
    and a backfill whose batches commit on their own (0007)."""
    result = run_cli("-c", str(project), "lint", "--json", "--dialect", "postgresql")
    findings = json.loads(result.stdout)["findings"]
    assert [f for f in findings if f["revision"] == revision] == []


def test_a_validated_check_does_not_spare_the_scan_before_postgresql_12(project: Path) -> None:
    result = run_cli("-c", str(project), "lint", "--json", "--dialect", "postgresql",
                     "--pg-version", "11")  # fmt: skip
    rules = {(f["revision"], f["rule"]) for f in json.loads(result.stdout)["findings"]}
    assert ("0006", "set-not-null") in rules


def test_upgrade_sql_renders_the_safe_sequences(project: Path) -> None:
    url = "postgresql+psycopg://u@localhost/db"  # offline: never connected to
    result = run_cli("-c", str(project), "--url", url, "upgrade", "head", "--sql")
    assert result.exit_code == 0, result.stderr
    sql = " ".join(result.stdout.split())
    for statement in (
        "CREATE INDEX CONCURRENTLY ix_books_title ON books (title);",
        "CREATE UNIQUE INDEX CONCURRENTLY uq_books_isbn ON books (isbn);",
        "ADD CONSTRAINT uq_books_isbn UNIQUE USING INDEX uq_books_isbn;",
        "REFERENCES authors (id) NOT VALID; COMMIT; "
        "ALTER TABLE books VALIDATE CONSTRAINT fk_books_editor_id;",
        "CHECK (pages >= 0) NOT VALID; COMMIT; "
        "ALTER TABLE books VALIDATE CONSTRAINT ck_books_pages;",
        "ALTER TABLE books ALTER COLUMN author_id SET NOT NULL; "
        "ALTER TABLE books DROP CONSTRAINT books_author_id_not_null;",
        "COMMIT; UPDATE books SET shelf=random() WHERE books.shelf IS NULL; BEGIN;",
    ):
        assert statement in sql


REGISTERED = '''"""an index through op.safe_create_index"""
from alembic import op

from migrasafe.safe_op.plugin import register

register()

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.safe_create_index("ix_books_title", "books", ["title"])


def downgrade() -> None:
    op.safe_drop_index("ix_books_title", "books")
'''


def test_op_safe_create_index_once_registered(tmp_path: Path, pg_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", PROJECT)
    versions = ini.parent / "migrations" / "versions"
    for path in versions.glob("000[2-7]_*.py"):
        path.unlink()
    (versions / "0002_registered.py").write_text(REGISTERED)
    result = run_cli("-c", str(ini), "--url", pg_url, "upgrade", "head")
    assert result.exit_code == 0, result.stderr
    assert query(pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                 "'ix_books_title'::regclass") == [(True,)]  # fmt: skip
    sql = run_cli("-c", str(ini), "--url", pg_url, "upgrade", "0001:0002", "--sql").stdout
    assert "CREATE INDEX CONCURRENTLY ix_books_title" in sql


def test_the_long_steps_take_no_lock_that_blocks_writes(project: Path, pg_url: str) -> None:
    """verify --trace-locks: index builds and validations (the steps that read the whole
    table) take no lock the application's writes wait for; what remains are the brief
    catalog changes around them, which a deploy's lock timeout bounds."""
    result = run_cli("-c", str(project), "-q", "verify", "--trace-locks", "--json",
                     "--url", pg_url)  # fmt: skip
    trace = json.loads(result.stdout)["lock_trace"]
    assert trace, "no lock traced at all"
    for entry in trace:
        statement = entry["statement"]
        assert not statement.startswith("CREATE") and "VALIDATE" not in statement, entry
        assert not statement.startswith("UPDATE"), entry  # the backfill's batches
    assert {e["revision"] for e in trace} <= {"0003", "0004", "0005", "0006", "0007"}
