"""Benchmark: `migrasafe verify` against Alembic's and pytest-alembic's round trips.

For each size (default 200 and 1,000 generated revisions: tables created,
columns added, indexes created, alternately) and each database (SQLite, and
PostgreSQL when a server is given with --pg URL or $MIGRASAFE_BENCH_PG, e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/postgres; MySQL/MariaDB with
--mysql URL, e.g. mysql+pymysql://root@127.0.0.1:3306/test), in one run:

  (a) Alembic's upgrade head + downgrade base on a fresh database;
  (b) pytest-alembic's test_up_down_consistency + test_upgrade, run by pytest
      in a separate virtualenv (pytest-alembic does not load under pytest 9,
      which migrasafe's own tests use), created once in
      bench/.venv-pytest-alembic; the time is pytest's own session time;
  (v) migrasafe verify (3 steps per revision, 20 generated rows per table,
      schema and data compared after each step).

Prints the times, the ratios and the time per revision, and how much of that
is the migrations' own DDL (CREATE, ALTER, DROP as the database ran them): on
SQLite that cost grows with the schema, for Alembic as for verify. Targets:
v <= 3x (a) on every row, time per revision at 1,000 within 20% of that at
200, and v no slower than (b) while checking data that (a) and (b) do not.
(a) and (v) run three times each (--repeat N), alternately; the fastest of each
counts. Run: python bench/verify_vs_alembic.py [200,1000] [--pg URL]
[--mysql URL] [--no-pytest-alembic] [--repeat N]; --help for the options.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from migrasafe import init, load_project
from migrasafe.checks.verify import verify
from migrasafe.db.dialects import database_for
from migrasafe.db.urls import redact

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
    return sa.create_engine(URL or f"sqlite:///{tmp_path}/pytest_alembic.db")
"""
PYTEST_ALEMBIC_TESTS = "from pytest_alembic.tests import test_up_down_consistency, test_upgrade\n"


def pytest_alembic_seconds(project: Path, url: str | None) -> float:
    """pytest-alembic's two tests on the project, in their own virtualenv."""
    python = PYTEST_ALEMBIC_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYTEST_ALEMBIC_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pytest<9", "pytest-alembic",
                        "alembic", "sqlalchemy>=2", "psycopg[binary]", "pymysql"],
                       check=True)  # fmt: skip
    if (
        url
        and url.startswith("mysql")
        and subprocess.run(
            [str(python), "-c", "import pymysql"], capture_output=True, check=False
        ).returncode
    ):  # a virtualenv made before MySQL was measured
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pymysql"], check=True)
    (project / "conftest.py").write_text(f"URL = {url!r}\n" + PYTEST_ALEMBIC_CONFTEST)
    (project / "test_pytest_alembic.py").write_text(PYTEST_ALEMBIC_TESTS)
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_pytest_alembic.py"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    passed = re.search(r"(\d+) passed in ([\d.]+)s", result.stdout)
    if result.returncode != 0 or not passed or passed.group(1) != "2":
        raise SystemExit(f"pytest-alembic run failed:\n{result.stdout}\n{result.stderr}")
    return float(passed.group(2))


class DdlClock:
    """Seconds spent in DDL statements while counting (two cursor events per statement,
    on the Alembic and the verify runs alike)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.counting = False
        self._started = 0.0
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", self._after)

    def _before(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        self._started = time.perf_counter() if self.counting and _DDL.match(statement) else 0.0

    def _after(self, *_: object) -> None:
        if self._started:
            self.seconds += time.perf_counter() - self._started
            self._started = 0.0


_DDL = re.compile(r"\s*(CREATE|ALTER|DROP)\b", re.I)
CLOCK = DdlClock()


def measure(
    count: int, root: Path, server: str | None, with_pa: bool, repeat: int
) -> tuple[float, ...]:
    """(a), (b) (or nan) and (v) seconds for ``count`` revisions on SQLite or ``server``,
    and the DDL seconds of (v): (a) and (v) run ``repeat`` times, alternately, and the
    fastest of each counts (what the machine's other load added least to)."""
    tag = sa.make_url(server).get_backend_name() if server else ""
    ini = generate(root / f"project{count}{tag}", count)
    scratch = database_for(sa.make_url(server)).scratch if server else None
    with scratch.create() if scratch else _sqlite(root, count) as url:
        project = load_project(ini, url=url)
        project.config.attributes["configure_logger"] = False
        project.script  # noqa: B018 - load the scripts once for both, outside the timings
        if with_pa:
            with scratch.create() if scratch else _sqlite(root, count, "pa") as pa_url:
                pa_seconds = pytest_alembic_seconds(ini.parent, pa_url if server else None)
        else:
            pa_seconds = float("nan")
        alembic_seconds, verify_seconds, ddl_seconds = math.inf, math.inf, 0.0
        for _ in range(repeat):
            start = time.perf_counter()
            command.upgrade(project.config, "head")
            command.downgrade(project.config, "base")
            alembic_seconds = min(alembic_seconds, time.perf_counter() - start)
            CLOCK.seconds, CLOCK.counting = 0.0, True
            start = time.perf_counter()
            report = verify(project, url=server)
            seconds = time.perf_counter() - start
            CLOCK.counting = False
            assert report.ok and report.fully_checked, report.findings
            if seconds < verify_seconds:
                verify_seconds, ddl_seconds = seconds, CLOCK.seconds
    return alembic_seconds, pa_seconds, verify_seconds, ddl_seconds


def _version(url: str) -> str:
    """The server's own name for its version (MariaDB says so in it)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        version = str(connection.exec_driver_sql("SELECT VERSION()").scalar()).lower()
    engine.dispose()
    return version


class _sqlite:
    def __init__(self, root: Path, count: int, tag: str = "alembic") -> None:
        self.url = f"sqlite:///{root}/{tag}{count}.db"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *_exc: object) -> None:
        pass


def conditions(servers: list[str]) -> str:
    """What a figure depends on: the machine, the versions, the database servers."""
    import importlib.metadata as metadata

    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("alembic", "sqlalchemy", "migrasafe")
    )
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; Python {sys.version.split()[0]}; {versions}; "
        f"SQLite {sqlite3.sqlite_version}"
    ]
    lines += [f"database: {_version(url)} at {redact(url)}" for url in servers]
    return "\n".join(lines)


def bench_parser(doc: str | None, sizes: str, repeat: int = 3) -> argparse.ArgumentParser:
    """The options every benchmark here shares: sizes, --pg URL, --repeat N."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="?", default=sizes,
                        help=f"revision counts, comma-separated (default: {sizes})")  # fmt: skip
    parser.add_argument("--pg", metavar="URL", default=os.environ.get("MIGRASAFE_BENCH_PG"),
                        help="a PostgreSQL server (default: $MIGRASAFE_BENCH_PG; "
                        "none: SQLite only)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"runs of each measurement (default: {repeat})")  # fmt: skip
    return parser


def main() -> None:
    parser = bench_parser(__doc__, "200,1000")
    parser.add_argument("--mysql", metavar="URL", help="a MySQL or MariaDB server")
    parser.add_argument("--no-pytest-alembic", dest="with_pa", action="store_false",
                        help="skip (b), pytest-alembic's tests")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    server, mysql, repeat, with_pa = args.pg, args.mysql, args.repeat, args.with_pa
    databases = [("SQLite", None)] + ([("PostgreSQL", server)] if server else [])
    databases += (
        [("MariaDB" if mysql and "maria" in _version(mysql) else "MySQL", mysql)] if mysql else []
    )
    print(conditions([url for _, url in databases if url]))
    print("in process (imports done); verify: 20 rows per "
          "table, schema and data compared after every step; (a) and (v): fastest of "
          f"{repeat} alternate runs")  # fmt: skip
    print(f"{'database':<11}{'revisions':>9}{'(a) alembic':>13}{'(b) pytest-alembic':>20}"
          f"{'(v) verify':>12}{'v/a':>7}{'v/b':>7}{'v per rev':>11}{'DDL of it':>11}",
          flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in databases:
            for count in sizes:
                a, b, v, ddl = measure(count, Path(tmp), url, with_pa, repeat)
                print(f"{name:<11}{count:>9}{a:>12.2f}s{b:>19.2f}s{v:>11.2f}s{v / a:>6.2f}x"
                      f"{v / b:>6.2f}x{v / count * 1000:>8.1f} ms{ddl / count * 1000:>8.1f} ms",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
