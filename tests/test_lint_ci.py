"""lint and validate in CI: output formats, --since, --git-base, the pre-commit hooks."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_project, run_cli

ROOT = Path(__file__).parent.parent


@pytest.fixture
def dangerous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ini = make_project(tmp_path / "p", "generic", "lint_dangerous")
    monkeypatch.chdir(ini.parent)
    return ini


def test_gcc_lines_name_file_line_severity_and_rule(dangerous: Path) -> None:
    result = run_cli("lint", "--dialect", "postgresql", "--format", "gcc")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and all(
        re.fullmatch(r"migrations/versions/\d{4}_\w+\.py:\d+:1: (error|warning): .+ \[[a-z-]+\]", x)
        for x in lines
    ), lines
    assert any(x.startswith("migrations/versions/0003_index.py:10:1: error:") for x in lines)


def test_github_annotations_are_one_workflow_command_each(dangerous: Path) -> None:
    result = run_cli("lint", "--dialect", "postgresql", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines and all(
        re.match(r"::(error|warning) file=[^,]+,line=\d+,title=", x) for x in lines
    )
    assert any("title=drop-column (0004)" in x for x in lines)


def test_sarif_carries_the_rules_and_one_result_per_finding(dangerous: Path) -> None:
    as_json = json.loads(run_cli("lint", "--dialect", "postgresql", "--json").stdout)
    result = run_cli("lint", "--dialect", "postgresql", "--format", "sarif")
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert len(run["results"]) == len(as_json["findings"])
    for found in run["results"]:
        assert found["ruleId"] in rule_ids and found["level"] in ("error", "warning")
        location = found["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].startswith("migrations/versions/")
        assert location["region"]["startLine"] > 0


def test_validate_speaks_the_same_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_missing_downgrade")
    monkeypatch.chdir(ini.parent)
    result = run_cli("validate", "--format", "gcc")
    assert result.exit_code == 1
    assert "0002_no_downgrade.py:" in result.stdout and "[missing-downgrade]" in result.stdout


def test_since_lints_only_the_revisions_after_it(dangerous: Path) -> None:
    result = run_cli("lint", "--dialect", "postgresql", "--since", "0007", "--json")
    data = json.loads(result.stdout)
    assert data["revisions"] == 2
    assert {f["revision"] for f in data["findings"]} == {"0008", "0009"}
    bad = run_cli("lint", "--since", "nosuch")
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr


def _git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
                   cwd=directory, check=True, capture_output=True)  # fmt: skip


def test_git_base_lints_only_what_changed_since_the_ref(dangerous: Path) -> None:
    project = dangerous.parent
    versions = project / "migrations" / "versions"
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "history")
    assert json.loads(run_cli("lint", "--git-base", "HEAD", "--json").stdout)["revisions"] == 0
    drop = versions / "0004_drop.py"
    drop.write_text(drop.read_text() + "\n# touched\n")  # changed, not committed
    (versions / "0010_new.py").write_text(
        (versions / "0004_drop.py")
        .read_text()
        .replace('revision = "0004"', 'revision = "0010"')
        .replace('down_revision = "0003"', 'down_revision = "0009"')
    )  # untracked
    data = json.loads(run_cli("lint", "--dialect", "postgresql", "--git-base", "HEAD",
                              "--json").stdout)  # fmt: skip
    assert data["revisions"] == 2 and {f["revision"] for f in data["findings"]} == {"0004", "0010"}
    bad = run_cli("lint", "--git-base", "no-such-ref")
    assert bad.exit_code == 2 and "names no commit" in bad.stderr


def test_the_pre_commit_hooks_run_as_written(dangerous: Path) -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text()
    entries = re.findall(r"^\s+entry: (.+)$", text, re.MULTILINE)
    assert {e.split()[1] for e in entries} == {"lint", "validate"}
    project = dangerous.parent
    _git(project, "init", "-q")
    for entry in entries:
        argv = shlex.split(entry)
        done = subprocess.run([sys.executable, "-m", "migrasafe", *argv[1:]], cwd=project,
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        assert "Traceback" not in done.stderr
