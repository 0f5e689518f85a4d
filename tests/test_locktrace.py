"""verify --trace-locks: what PostgreSQL really locks and rewrites, held against lint."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project, run_cli


def test_trace_reports_the_rewrite_of_a_type_change_and_none_for_a_nullable_column(
    tmp_path: Path, pg_url: str
) -> None:
    ini = make_project(tmp_path / "p", "generic", "trace_locks")
    result = run_cli("-c", str(ini), "verify", "--url", pg_url, "--trace-locks", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr  # warnings only
    data = json.loads(result.stdout)
    trace = {(e["revision"], e["table"]): e for e in data["lock_trace"]}
    retype = trace[("0002", "books")]
    assert retype["lock"] == "ACCESS EXCLUSIVE" and retype["rewritten"] is True
    assert retype["rows"] == 20 and retype["lint"] == "confirmed"
    assert "ALTER COLUMN pages TYPE BIGINT" in retype["statement"]
    added = trace[("0003", "books")]
    assert added["lock"] == "ACCESS EXCLUSIVE" and added["rewritten"] is False
    assert added["lint"] == "confirmed"  # lint's missing-lock-timeout, seen by the server
    assert "missing-lock-timeout" in added["lint_rules"]
    rules = {(f["rule"], f["revision"]) for f in data["findings"]}
    assert ("table-rewrite", "0002") in rules and ("table-rewrite", "0003") not in rules
    assert ("lock-without-timeout", "0003") in rules
    assert ("0001", "books") not in trace  # created in that revision: empty, harmless


def test_trace_locks_needs_postgresql(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "trace_locks")
    result = run_cli("-c", str(ini), "verify", "--trace-locks")
    assert result.exit_code == 2
    assert "--trace-locks reads PostgreSQL" in result.stderr and "Traceback" not in result.stderr
