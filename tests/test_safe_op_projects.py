"""Revisions written with safe_op (tests/projects/safe_operations, one operation each):
verify and lint accept them, upgrade --sql renders them, and op.safe_* works once registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_project, query, run_cli

PROJECT = "safe_operations"
# 0006 and 0007 make a column NOT NULL through a validated CHECK: lint's set-not-null rule
# does not know that form yet, and mixed-schema-and-data counts the backfill's batches, each
# committed on its own, as if they ran in the revision's transaction.
LINT_DOES_NOT_KNOW = {"0006": ["set-not-null"], "0007": ["set-not-null", "mixed-schema-and-data"]}


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


@pytest.mark.parametrize(
    "revision",
    [
        pytest.param(f"000{n}", marks=pytest.mark.xfail(reason=str(LINT_DOES_NOT_KNOW[f"000{n}"])))
        if f"000{n}" in LINT_DOES_NOT_KNOW
        else f"000{n}"
        for n in range(2, 8)
    ],
)
def test_lint_finds_nothing_dangerous_in_a_safe_operation(project: Path, revision: str) -> None:
    result = run_cli("-c", str(project), "lint", "--json", "--dialect", "postgresql")
    findings = json.loads(result.stdout)["findings"]
    assert [f for f in findings if f["revision"] == revision] == []


def test_lint_finds_only_what_it_does_not_know_yet(project: Path) -> None:
    """The xfails above, pinned: anything else lint finds in these revisions is a regression."""
    result = run_cli("-c", str(project), "lint", "--json", "--dialect", "postgresql")
    found: dict[str, list[str]] = {}
    for finding in json.loads(result.stdout)["findings"]:
        found.setdefault(finding["revision"], []).append(finding["rule"])
    assert found == LINT_DOES_NOT_KNOW


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
