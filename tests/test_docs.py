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
    assert any(f"{start}migrasafe {name}{end}" in README
               for start, end in (("### `", ""), ("`", " "), ("`", "`")))  # fmt: skip


def _options(command: object) -> list[str]:
    return [
        opt
        for param in getattr(command, "params", ())
        for opt in (*param.opts, *getattr(param, "secondary_opts", ()))
        if opt.startswith("--") and opt != "--help"
    ]


@pytest.mark.parametrize("name", ["", *sorted(main.commands)])
def test_every_option_of_every_command_is_in_the_readme(name: str) -> None:
    command = main.commands[name] if name else main
    missing = [opt for opt in _options(command) if opt not in README]
    assert not missing, f"README does not mention `migrasafe {name}`'s {', '.join(missing)}"


def test_every_alembic_command_is_in_the_readme_command_map() -> None:
    import alembic.command

    table = README[README.index("| alembic | migrasafe |") :]
    table = table[: table.index("\n\n")]
    names = [n for n, f in vars(alembic.command).items()
             if callable(f) and getattr(f, "__module__", "") == "alembic.command"
             and not n.startswith("_")]  # fmt: skip
    missing = [n for n in names if f"alembic {n}" not in table and f"`{n}`" not in table]
    assert not missing, f"the README's command map lacks alembic {', '.join(missing)}"


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(
        line
        for line in README.splitlines()
        if line.startswith("python3 -m venv") and "pytest" in line
    )
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_readmes_example_projects_can_be_made_and_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    made = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "projects" / "make.py"), "lint_dangerous",
         str(tmp_path / "demo")], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    linted = subprocess.run([sys.executable, "-m", "migrasafe", "lint"], cwd=tmp_path / "demo",
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert linted.returncode == 1 and "error" in linted.stdout  # the dangerous operations
    assert "python tests/projects/make.py SCENARIO DIR" in README
