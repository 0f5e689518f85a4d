"""Deploys under live traffic: a database lock timeout, retries, and who was blocking.

A report query's open transaction holds a lock on the table a revision
alters. Without a lock timeout the migration would wait behind it, and every
later query on the table would queue behind the migration.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from conftest import make_project, query

ALTER = '''"""add a column to authors"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    {body}


def downgrade() -> None:
    op.drop_column('authors', 'country')
'''
CREATE = '''"""authors"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('authors', sa.Column('id', sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table('authors')
'''


def _project(directory: Path, url: str, body: str = "op.add_column('authors', "
             "sa.Column('country', sa.String(2)))") -> Path:  # fmt: skip
    ini = make_project(directory, "generic")
    versions = directory / "migrations" / "versions"
    (versions / "0001_authors.py").write_text(CREATE)
    (versions / "0002_country.py").write_text(ALTER.format(body=body))
    run = subprocess.run(_migrasafe(ini, url, "upgrade", "0001"), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return ini


def _migrasafe(ini: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "migrasafe", "-c", str(ini), "--url", url, *args]


@contextmanager
def report_query(url: str) -> Iterator[int | None]:
    """An open transaction that read authors (holding its lock) until the block ends."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database or "", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # SQLite locks the whole file
        try:
            yield None
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    conn = psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                           dbname=parsed.database, application_name="nightly-report")  # fmt: skip
    try:
        conn.execute("SELECT count(*) FROM authors").fetchall()  # ACCESS SHARE until commit
        yield conn.info.backend_pid
    finally:
        conn.rollback()
        conn.close()


def _version(url: str) -> list[tuple[object, ...]]:
    return query(url, "SELECT version_num FROM alembic_version")


def test_a_blocked_revision_is_retried_and_applied_once_the_blocker_ends(
    tmp_path: Path, db_url: str
) -> None:
    ini = _project(tmp_path / "p", db_url)
    with report_query(db_url) as blocker:
        process = subprocess.Popen(
            _migrasafe(ini, db_url, "upgrade", "--db-lock-timeout", "200ms", "--retries", "30"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2.5)  # a few attempts run into the report's lock
        assert process.poll() is None, process.communicate()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Applied 0002" in out
    retries = [line for line in err.splitlines() if "retry" in line]
    assert retries and all(
        "revision 0002 could not get its lock within 0.2 s" in r for r in retries
    )
    if blocker is not None:  # PostgreSQL names who was blocking
        assert f"blocked by server process {blocker} (nightly-report" in retries[-1]
    assert _version(db_url) == [("0002",)]
    checksummed = query(db_url, "SELECT revision FROM migrasafe_checksums ORDER BY revision")
    assert checksummed == [("0001",), ("0002",)]  # the retried revision's checksum too


def test_when_retries_run_out_the_error_names_the_revision_and_the_blocker(
    tmp_path: Path, db_url: str
) -> None:
    ini = _project(tmp_path / "p", db_url)
    with report_query(db_url) as blocker:
        result = subprocess.run(
            _migrasafe(ini, db_url, "upgrade", "--db-lock-timeout", "200ms", "--retries", "2"),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("migrasafe: error")]
    assert len(ours) == 1 and "Traceback" not in result.stderr
    assert "upgrade failed at revision 0002" in ours[0] and "(after 3 attempts)" in ours[0]
    assert "the database is now at 0001" in ours[0]
    if blocker is not None:
        assert f"blocked by server process {blocker} (nightly-report" in ours[0]
    assert len([line for line in result.stderr.splitlines() if "retry" in line]) == 2
    assert _version(db_url) == [("0001",)]


def test_other_errors_are_never_retried(tmp_path: Path, db_url: str) -> None:
    ini = _project(tmp_path / "p", db_url, body="raise RuntimeError('not a lock problem')")
    result = subprocess.run(
        _migrasafe(ini, db_url, "upgrade", "--db-lock-timeout", "1s", "--retries", "5"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not a lock problem" in result.stderr and "retry" not in result.stderr
    assert "attempts" not in result.stderr


def test_defaults_come_from_pyproject_and_bad_values_are_one_line(
    tmp_path: Path, db_url: str
) -> None:
    ini = _project(tmp_path / "p", db_url)
    pyproject = tmp_path / "p" / "pyproject.toml"
    pyproject.write_text('[tool.migrasafe]\ndb-lock-timeout = "200ms"\nretries = 1\n')
    with report_query(db_url):
        result = subprocess.run(_migrasafe(ini, db_url, "upgrade"), capture_output=True,
                                text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "(after 2 attempts)" in result.stderr, result.stderr
    pyproject.write_text('[tool.migrasafe]\ndb-lock-timeout = "soon"\n')
    bad = subprocess.run(_migrasafe(ini, db_url, "upgrade"), capture_output=True, text=True)
    assert bad.returncode == 2 and "expected a duration" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("value", ["2s", "500ms", "1m", "1.5", 3])
def test_durations_are_read_as_people_write_them(value: object) -> None:
    from migrasafe.project.settings import parse_duration

    assert (
        parse_duration(value, "x")
        == {"2s": 2, "500ms": 0.5, "1m": 60, "1.5": 1.5, 3: 3}[
            value  # type: ignore[index]
        ]
    )
