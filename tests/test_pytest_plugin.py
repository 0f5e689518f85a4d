"""The pytest plugin gives a project migration tests from two lines of configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import make_project, make_user_project


def _pytest(project: Path, *ini_lines: str) -> subprocess.CompletedProcess[str]:
    (project / "pytest.ini").write_text("\n".join(["[pytest]", *ini_lines]) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_reference_project_passes_every_migration_test(library: Path) -> None:
    result = _pytest(library.parent, "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    for name in ("single_head", "upgrade", "roundtrip", "model_match"):
        assert f"::migrasafe::{name} PASSED" in result.stdout


def test_roundtrip_fails_with_the_findings(tmp_path: Path) -> None:
    make_project(tmp_path / "p", "library", "verify_clearing_downgrade")
    result = _pytest(tmp_path / "p", "migrasafe_config = alembic.ini")
    assert result.returncode == 1
    assert "::migrasafe::roundtrip FAILED" in result.stdout
    assert "[data-changed] 0003 books: books.description differs" in result.stdout


def test_tests_are_selected_by_name(library: Path) -> None:
    result = _pytest(
        library.parent, "migrasafe_config = alembic.ini", "migrasafe_tests = single_head"
    )
    assert result.returncode == 0
    assert "::migrasafe::single_head PASSED" in result.stdout
    assert "roundtrip" not in result.stdout
    bad = _pytest(library.parent, "migrasafe_config = alembic.ini", "migrasafe_tests = nope")
    assert bad.returncode != 0 and "unknown migrasafe_tests: nope" in bad.stdout + bad.stderr


def test_plugin_does_nothing_unless_configured(library: Path) -> None:
    result = _pytest(library.parent)
    assert "migrasafe::" not in result.stdout


def test_an_env_py_that_expects_an_engine_is_really_checked(tmp_path: Path) -> None:
    """pytest-alembic's convention (an Engine in config.attributes) is verified, not skipped."""
    project = make_user_project("engine_attribute", tmp_path / "e", f"sqlite:///{tmp_path}/e.db")
    result = _pytest(project, "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    for name in ("single_head", "upgrade", "roundtrip", "model_match"):
        assert f"::migrasafe::{name} PASSED" in result.stdout
    assert not (tmp_path / "e.db").exists()


def test_models_not_compared_is_a_skip_not_a_pass(tmp_path: Path) -> None:
    project = make_user_project("generic", tmp_path / "g", f"sqlite:///{tmp_path}/g.db")
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    assert "from models import metadata as target_metadata" in text
    env_py.write_text(text.replace("from models import metadata as target_metadata",
                                   "target_metadata = None"))  # fmt: skip
    result = _pytest(project, "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    assert "::migrasafe::roundtrip PASSED" in result.stdout
    assert "::migrasafe::model_match SKIPPED" in result.stdout


def test_roundtrip_whose_data_was_not_checked_is_a_skip_not_a_pass(tmp_path: Path) -> None:
    """Rows refused by a CHECK verify cannot read: the schema came back, the data is unproven."""
    make_project(tmp_path / "p", "generic", "verify_unchecked")
    result = _pytest(tmp_path / "p", "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    assert "::migrasafe::roundtrip SKIPPED" in result.stdout
    assert "data not checked: 0002 (orders)" in result.stdout
