"""status, history and validate read the revision files without importing them.

The graph comes from Alembic's own RevisionMap fed with parsed files, so it
must be Alembic's graph exactly: same revisions, parents, messages, labels,
heads and order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from migrasafe import load_project

from conftest import make_project, run_cli

IMPORT = "import not_installed_anywhere"


def _shape(script: ScriptDirectory) -> dict[str, object]:
    walk = [
        (s.revision, s.down_revision, s.doc, s.longdoc, sorted(s.branch_labels),
         s.dependencies, s.is_head, s.is_base, s.is_branch_point, s.is_merge_point, s.path)
        for s in script.walk_revisions()
    ]  # fmt: skip
    return {
        "walk": walk,
        "heads": script.get_heads(),
        "bases": script.get_bases(),
        "upgrade_order": [s.revision for s in script.iterate_revisions("heads", "base")],
    }


@pytest.mark.parametrize(
    ("template", "scenario"),
    [("library", None), ("generic", "branches_and_merge"), ("generic", "fast_graph")],
)
def test_parsed_graph_is_alembics_graph(tmp_path: Path, template: str, scenario: str) -> None:
    ini = make_project(tmp_path / "p", template, scenario)
    for path in (tmp_path / "p" / "migrations" / "versions").glob("*.py"):
        path.write_text(path.read_text().replace(IMPORT, ""))  # so that Alembic can import them
    project = load_project(ini)
    assert project.graph is not project.script  # the fast path was taken
    assert _shape(project.graph) == _shape(project.script)


def test_history_and_status_do_not_import_the_scripts(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "fast_graph")
    url = f"sqlite:///{tmp_path / 'none.db'}"
    history = run_cli("-c", str(ini), "--url", url, "history", "--json")
    assert history.exit_code == 0, history.stderr
    entries = json.loads(history.stdout)
    assert [e["revision"] for e in entries][:2] == ["a1", "b1"]
    assert {e["revision"] for e in entries if e["is_head"]} == {"e1", "f1"}
    assert next(e for e in entries if e["revision"] == "d1")["is_merge_point"]
    status = run_cli("-c", str(ini), "--url", url, "status", "--json")
    assert status.exit_code == 1 and sorted(json.loads(status.stdout)["heads"]) == ["e1", "f1"]
    assert run_cli("-c", str(ini), "validate", "--skip", "multiple-heads").exit_code == 0
    # running migrations does import them, and says which file failed
    upgrade = run_cli("-c", str(ini), "--url", url, "upgrade", "heads")
    assert upgrade.exit_code == 2 and "a1_base.py" in upgrade.stderr


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "branches_and_merge")
    first = json.loads(run_cli("-c", str(ini), "history", "--json").stdout)
    script = Path(first[0]["path"])
    script.write_text(script.read_text().replace(first[0]["message"], "Renamed in place", 1))
    again = json.loads(run_cli("-c", str(ini), "history", "--json").stdout)
    assert again[0]["message"] == "Renamed in place"


def test_a_broken_file_falls_back_to_alembics_error(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "validate_syntax_error")
    result = run_cli("-c", str(ini), "history")
    assert result.exit_code == 2 and "migrasafe validate" in result.stderr
