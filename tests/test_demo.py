"""demo runs the whole reference workflow for real."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import query, run_cli, tables


def test_demo_exits_0_from_the_installed_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "migrasafe", "demo"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Every step did what it should." in result.stdout
    assert "cleared the values 0003 filled on 3 books" in result.stdout


def test_demo_on_postgresql_leaves_the_database_empty(pg_url: str) -> None:
    result = run_cli("demo", "--url", pg_url, "--json")
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] and all(step["ok"] for step in report["steps"])
    assert len(report["steps"]) == 14
    assert tables(pg_url) == set()


def test_demo_refuses_a_database_that_has_tables(pg_url: str) -> None:
    query(pg_url, "CREATE TABLE precious (id int)")
    query(pg_url, "INSERT INTO precious VALUES (1)")
    result = run_cli("demo", "--url", pg_url)
    assert result.exit_code == 2
    assert "needs an empty database" in result.stderr
    assert query(pg_url, "SELECT id FROM precious") == [(1,)]
