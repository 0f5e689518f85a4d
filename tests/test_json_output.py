"""Under --json (and --format sarif/github/gcc) stdout holds the document alone, whatever the
project writes: a print() in a revision, env.py's logging to stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_project, run_cli


def _noisy(tmp_path: Path) -> Path:
    ini = make_project(tmp_path / "p")
    revision = next((ini.parent / "migrations" / "versions").glob("0002_*.py"))
    revision.write_text(revision.read_text().replace(
        "def upgrade() -> None:", 'print("hello from 0002")\n\n\ndef upgrade() -> None:\n'
        '    print("upgrading 0002")', 1))  # fmt: skip
    env = ini.parent / "migrations" / "env.py"
    noise = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.INFO)\n"
        "logging.getLogger('app').info('env.py logs to stdout')\n"
    )
    env.write_text(
        env.read_text().replace(
            "from alembic import context\n", "from alembic import context\n" + noise, 1
        )
    )
    return ini


COMMANDS = [
    ("verify", "--json"),
    ("lint", "--json"),
    ("upgrade", "--json"),
    ("lint", "--format", "sarif"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_the_document_is_alone_on_stdout(tmp_path: Path, command: tuple[str, ...]) -> None:
    ini = _noisy(tmp_path)
    run = subprocess.run([sys.executable, "-m", "migrasafe", "-c", str(ini), *command],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode in (0, 1), run.stderr
    json.loads(run.stdout)  # nothing before or after it
    assert "hello from 0002" in run.stderr


def test_the_document_is_alone_in_process_too(tmp_path: Path) -> None:
    """The library's own CLI runner (no file descriptors): Python-level output moves too."""
    result = run_cli("-c", str(_noisy(tmp_path)), "lint", "--json")
    assert result.exit_code in (0, 1), result.stderr
    json.loads(result.stdout)
