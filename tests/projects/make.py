"""Make a runnable project of one of the scenarios in this directory.

Each scenario holds revision files only: laid over ``migrasafe init``'s
generic template when it has its own 0001 (the whole history), else over
the library template, replacing the revisions with the same numbers. The
tests build their projects the same way (``tests/conftest.py``).

    python tests/projects/make.py lint_dangerous /tmp/lint-demo
    cd /tmp/lint-demo && migrasafe lint
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from migrasafe import init

SCENARIOS = Path(__file__).parent


def make_project(directory: Path, template: str | None = None, scenario: str | None = None) -> Path:
    """A fresh project in ``directory`` with a scenario's revision files; its alembic.ini."""
    files = sorted((SCENARIOS / scenario).glob("*.py")) if scenario else []
    if template is None:
        template = "generic" if any(p.name.startswith("0001") for p in files) else "library"
    init(directory, template)  # type: ignore[arg-type]
    versions = directory / "migrations" / "versions"
    replaced = list(versions.glob("*.py"))
    for path in files:
        number = path.name.split("_")[0]
        for old in replaced:
            if old.name.split("_")[0] == number:
                old.unlink(missing_ok=True)
        shutil.copy(path, versions / path.name)
    return directory / "alembic.ini"


def main(argv: list[str]) -> int:
    names = sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir() and p.name[0] != "_")
    if len(argv) != 2 or argv[0] not in names:
        print(f"usage: python {sys.argv[0]} SCENARIO DIRECTORY\nscenarios: {', '.join(names)}",
              file=sys.stderr)  # fmt: skip
        return 2
    ini = make_project(Path(argv[1]), scenario=argv[0])
    print(f"Wrote {argv[0]} into {ini.parent}: cd {ini.parent} && migrasafe verify")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
