"""The pytest plugin gives a project migration tests from two lines of configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import make_project


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
