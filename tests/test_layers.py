"""The tree shows the layers, and imports keep to them.

cli and the pytest plugin -> commands -> checks -> deploy -> project -> db -> errors:
each layer imports only those below it (pyproject's [tool.importlinter] contract,
checked by import-linter), and the read-only commands' lean path imports neither
Alembic, SQLAlchemy nor rich when it is imported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("alembic", "sqlalchemy", "rich", "mako")


def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under ``src``, with the project's contract."""
    script = (
        "import sys; sys.path.insert(0, sys.argv.pop(1));"
        "from importlinter.cli import lint_imports_command; lint_imports_command()"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(src), str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip


def test_each_layer_imports_only_the_layers_below_it() -> None:
    run = _lint_imports(ROOT / "src")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 kept, 0 broken" in run.stdout


def test_an_import_from_a_higher_layer_breaks_the_contract(tmp_path: Path) -> None:
    """The contract is not vacuous: db importing the CLI (two layers up) is reported."""
    shutil.copytree(ROOT / "src" / "migrasafe", tmp_path / "migrasafe",
                    ignore=shutil.ignore_patterns("__pycache__", "templates"))  # fmt: skip
    urls = tmp_path / "migrasafe" / "db" / "urls.py"
    urls.write_text(urls.read_text() + "\nfrom migrasafe.cli import render  # wrong\n")
    run = _lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "migrasafe.db.urls -> migrasafe.cli.render" in run.stdout, run.stdout


def test_the_lean_path_imports_no_alembic_sqlalchemy_or_rich() -> None:
    """What `migrasafe status` imports before its warm answer is known (the cache's modules,
    the command line, plain text output): a static contract cannot say it, since the cold
    path imports Alembic inside functions of the same modules."""
    modules = ["migrasafe", "migrasafe.cli", "migrasafe.cli.plain", "migrasafe.commands.lean",
               "migrasafe.commands.lean.reader", "migrasafe.commands.lean.watch"]  # fmt: skip
    script = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert run.stdout.strip() == "[]", run.stdout
