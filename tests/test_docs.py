"""The README documents every command, and CI runs the README's test command."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrasafe.cli import main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_is_documented_and_has_help(name: str) -> None:
    command = main.commands[name]
    assert command.help, f"`migrasafe {name}` has no help text"
    assert f"### `migrasafe {name}" in README or f"`migrasafe {name} " in README


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(
        line
        for line in README.splitlines()
        if line.startswith("python3 -m venv") and "pytest" in line
    )
    assert test_command in (ROOT / ".ci" / "run").read_text()
