"""A revision that Alembic itself refuses (its CommandError) is named, with what ran before it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import query, run_cli


def test_downgrade_sql_in_sqlite_batch_mode_prints_alembics_sql_and_names_the_revision(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library template's env.py renders SQLite as batch; 0002's downgrade needs reflection."""
    monkeypatch.chdir(library.parent)
    assert run_cli("upgrade").exit_code == 0
    result = run_cli("downgrade", "--sql", "0001")
    assert result.exit_code == 2
    assert "-- Running downgrade 0003 -> 0002" in result.stdout
    assert "-- Running downgrade 0002 -> 0001" in result.stdout
    assert "DROP TABLE reviews" in result.stdout
    assert "cannot render the SQL of revision 0002" in result.stderr
    assert "requires a live database connection" in result.stderr
    # what `alembic downgrade --sql` prints, up to the line where it says FAILED
    alembic = subprocess.run(
        [sys.executable, "-m", "alembic", "downgrade", "--sql", "0003:0001"], cwd=library.parent,
        capture_output=True, text=True, env={**os.environ}, timeout=120,
    )  # fmt: skip
    assert alembic.stdout.split("FAILED:")[0] == result.stdout
    assert query(f"sqlite:///{library.parent / 'library.db'}",
                 "SELECT version_num FROM alembic_version") == [("0003",)]  # fmt: skip

    data = json.loads(run_cli("downgrade", "--sql", "0001", "--json").stdout)
    assert data["failed"] == "0002" and "DROP TABLE reviews" in data["sql"]


def test_a_revision_raising_alembics_command_error_is_named_and_earlier_ones_kept(
    library: Path, db_url: str
) -> None:
    third = next((library.parent / "migrations" / "versions").glob("0003_*.py"))
    third.write_text(third.read_text().replace(
        "def upgrade() -> None:\n",
        "def upgrade() -> None:\n"
        "    from alembic.util import CommandError\n\n"
        "    raise CommandError('not on this database')\n",
    ))  # fmt: skip
    result = run_cli("-c", str(library), "--url", db_url, "upgrade", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["failed"] == "0003" and "not on this database" in data["detail"]
    assert data["error"]["kind"] == "migration-failed"
    assert [s["revision"] for s in data["steps"]] == ["0001", "0002"]
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0002",)]
