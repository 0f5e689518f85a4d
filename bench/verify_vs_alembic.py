"""Benchmark: `migrasafe verify` against `alembic upgrade head` + `alembic downgrade base`.

Generates a project of N revisions (default 200: tables created, columns
added, indexes created, alternately), then times, in one run on one machine:

  (a) Alembic's upgrade head + downgrade base on a fresh SQLite file;
  (b) pytest-alembic's test_up_down_consistency + test_upgrade, run by pytest
      in a separate virtualenv (pytest-alembic 0.13 does not load under
      pytest 9, which migrasafe's own tests use), created once in
      bench/.venv-pytest-alembic; the time is pytest's own session time;
  (v) migrasafe verify (3 steps per revision, generated rows, schema and data
      compared after each step).

Prints the times and the ratios. Target: v <= 4x (a), while checking data
that (a) and (b) do not. Run: python bench/verify_vs_alembic.py [N]
(--no-pytest-alembic skips (b), e.g. without network).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alembic import command

from migrasafe import init, load_project
from migrasafe.verify import verify

TEMPLATE = '''"""Revision {n}"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down!r}


def upgrade() -> None:
{up}


def downgrade() -> None:
{down_body}
'''


def generate(directory: Path, count: int) -> Path:
    init(directory, "generic")
    versions = directory / "migrations" / "versions"
    table = None
    for n in range(1, count + 1):
        rev, down = f"{n:04d}", (f"{n - 1:04d}" if n > 1 else None)
        kind = n % 3
        if kind == 1 or table is None:
            table = f"t{n:04d}"
            up = (f"    op.create_table('{table}', sa.Column('id', sa.Integer(), primary_key=True),"
                  " sa.Column('name', sa.String(50), nullable=False))")  # fmt: skip
            back = f"    op.drop_table('{table}')"
        elif kind == 2:
            up = f"    op.add_column('{table}', sa.Column('c{n}', sa.Integer(), nullable=True))"
            back = (f"    with op.batch_alter_table('{table}') as b:\n"
                    f"        b.drop_column('c{n}')")  # fmt: skip
        else:
            up = f"    op.create_index('ix_{n}', '{table}', ['name'])"
            back = f"    op.drop_index('ix_{n}', table_name='{table}')"
        text = TEMPLATE.format(n=n, rev=rev, down=down, up=up, down_body=back)
        (versions / f"{rev}_r.py").write_text(text)
    return directory / "alembic.ini"


PYTEST_ALEMBIC_VENV = Path(__file__).parent / ".venv-pytest-alembic"
PYTEST_ALEMBIC_CONFTEST = """
import pytest
import sqlalchemy as sa
from pytest_alembic.config import Config


@pytest.fixture
def alembic_config():
    return Config(config_options={"file": "alembic.ini"})


@pytest.fixture
def alembic_engine(tmp_path):
    return sa.create_engine(f"sqlite:///{tmp_path}/pytest_alembic.db")
"""
PYTEST_ALEMBIC_TESTS = "from pytest_alembic.tests import test_up_down_consistency, test_upgrade\n"


def pytest_alembic_seconds(project: Path) -> float:
    """pytest-alembic's two tests on the project, in their own virtualenv."""
    python = PYTEST_ALEMBIC_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYTEST_ALEMBIC_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pytest<9",
                        "pytest-alembic", "alembic", "sqlalchemy>=2"], check=True)  # fmt: skip
    (project / "conftest.py").write_text(PYTEST_ALEMBIC_CONFTEST)
    (project / "test_pytest_alembic.py").write_text(PYTEST_ALEMBIC_TESTS)
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_pytest_alembic.py"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    passed = re.search(r"(\d+) passed in ([\d.]+)s", result.stdout)
    if result.returncode != 0 or not passed or passed.group(1) != "2":
        raise SystemExit(f"pytest-alembic run failed:\n{result.stdout}\n{result.stderr}")
    return float(passed.group(2))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 200
    with_pytest_alembic = "--no-pytest-alembic" not in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        ini = generate(Path(tmp) / "project", count)
        project = load_project(ini, url=f"sqlite:///{tmp}/alembic.db")
        project.config.attributes["configure_logger"] = False
        project.script  # noqa: B018 - load the scripts once for both, outside the timings

        start = time.perf_counter()
        command.upgrade(project.config, "head")
        command.downgrade(project.config, "base")
        alembic_seconds = time.perf_counter() - start

        start = time.perf_counter()
        report = verify(project)
        verify_seconds = time.perf_counter() - start

        pa_seconds = pytest_alembic_seconds(ini.parent) if with_pytest_alembic else None

    assert report.ok, report.findings
    print(f"{count} revisions, SQLite")
    print(f"{'command':<58}{'seconds':>10}")
    print(f"{'(a) alembic upgrade head + downgrade base':<58}{alembic_seconds:>10.2f}")
    if pa_seconds is not None:
        print(f"{'(b) pytest-alembic up_down_consistency + upgrade':<58}{pa_seconds:>10.2f}")
    print(f"{'(v) migrasafe verify (' + str(report.steps) + ' steps, rows=20, data checked)':<58}"
          f"{verify_seconds:>10.2f}")  # fmt: skip
    print(f"ratio v/a: {verify_seconds / alembic_seconds:.2f}x (target <= 4x)")
    if pa_seconds is not None:
        print(f"ratio v/b: {verify_seconds / pa_seconds:.2f}x")


if __name__ == "__main__":
    main()
