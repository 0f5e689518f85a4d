"""Benchmark: `migrasafe fleet upgrade` against a loop of `alembic upgrade head` processes.

Two fleets, each upgraded from base to head over REVISIONS generated revisions
(each creates a table with an index):

- SQLITE SQLite files, a database per tenant;
- SCHEMAS schemas of one PostgreSQL database (a database of its own, created and
  dropped here), a schema per tenant, passed to env.py as `-x tenant=NAME`.

For each fleet: (a) a sequential loop of `alembic upgrade head` processes, one per
tenant, as teams script it; (b) `migrasafe fleet upgrade --parallel P` for each P.
Every run starts from fresh tenants at base. Prints the wall time, the
throughput, the speed-up against the loop, and the peak memory of all the
processes of the run together (sampled from /proc every 50 ms). Target:
--parallel 1 no slower than the loop; near-linear speed-up until the server or
the cores saturate. Not a test: a measurement, on the machine it runs on.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import sqlalchemy as sa

BIN = Path(sys.executable).parent
ENV_PY = Path(__file__).resolve().parent.parent / "tests" / "envs" / "tenants"
REVISION = '''"""table {n}"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}


def upgrade() -> None:
    op.create_table("t{n}", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50)))
    op.create_index("ix_t{n}_name", "t{n}", ["name"])


def downgrade() -> None:
    op.drop_table("t{n}")
'''
# The loop's env.py gets each tenant's database from $TENANT_URL (alembic has no --url).
URL_HOOK = (
    'import os\nif os.environ.get("TENANT_URL"):\n'
    '    config.set_main_option("sqlalchemy.url", os.environ["TENANT_URL"])\n'
)


def make_project(root: Path, revisions: int, url: str) -> Path:
    """tests/envs/tenants' alembic.ini and env.py with ``revisions`` generated revisions."""
    shutil.copytree(ENV_PY, root, ignore=shutil.ignore_patterns("versions", "__pycache__"))
    ini = root / "alembic.ini"
    ini.write_text(ini.read_text().replace("@@URL@@", url))
    env = root / "migrations" / "env.py"
    text = env.read_text()
    env.write_text(
        text.replace("config = context.config\n", "config = context.config\n" + URL_HOOK)
    )
    versions = root / "migrations" / "versions"
    versions.mkdir()
    for n in range(1, revisions + 1):
        down = repr(f"{n - 1:04d}") if n > 1 else "None"
        (versions / f"{n:04d}_t{n}.py").write_text(REVISION.format(n=n, rev=f"{n:04d}", down=down))
    return ini


class PeakMemory:
    """The largest sum of RSS over this process's descendants, sampled from /proc."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.05):
            parents: dict[int, int] = {}
            rss: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    pages = int(Path(f"/proc/{entry}/statm").read_text().split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
            total = 0
            for pid in rss:
                ancestor = parents.get(pid)
                while ancestor not in (None, 0, 1, me):
                    ancestor = parents.get(ancestor)
                if ancestor == me:
                    total += rss[pid]
            self.peak = max(self.peak, total)


def timed(run: Callable[[], None]) -> tuple[float, float]:
    with PeakMemory() as memory:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    return seconds, memory.peak / 2**20


def check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        sys.exit(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")


def loop(ini: Path, targets: list[tuple[str, list[str], dict[str, str]]]) -> None:
    for _name, x_args, env in targets:
        done = subprocess.run(
            [str(BIN / "alembic"), "-c", str(ini), *x_args, "upgrade", "head"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )
        check(done, "alembic upgrade head")


def fleet(ini: Path, parallel: int, source: list[str]) -> None:
    done = subprocess.run(
        [
            str(BIN / "migrasafe"),
            "-q",
            "-c",
            str(ini),
            "fleet",
            "upgrade",
            *source,
            "--parallel",
            str(parallel),
        ],
        capture_output=True,
        text=True,
    )
    check(done, f"migrasafe fleet upgrade --parallel {parallel}")


def sqlite_fleet(
    root: Path, count: int
) -> tuple[list[tuple[str, list[str], dict[str, str]]], Path]:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    names = [f"tenant_{i:03d}" for i in range(count)]
    urls = {n: f"sqlite:///{root / n}.db" for n in names}
    listing = root / "fleet.txt"
    listing.write_text("".join(f"{n} {u}\n" for n, u in urls.items()))
    return [(n, [], {"TENANT_URL": urls[n]}) for n in names], listing


def reset_schemas(url: str, count: int) -> list[tuple[str, list[str], dict[str, str]]]:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    names = [f"tenant_{i:03d}" for i in range(count)]
    with engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE; CREATE SCHEMA "{name}"')
    engine.dispose()
    return [(n, ["-x", f"tenant={n}"], {}) for n in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    parser.add_argument("--sqlite", type=int, default=200, help="SQLite tenants (default 200)")
    parser.add_argument("--schemas", type=int, default=100, help="PostgreSQL tenants (100)")
    parser.add_argument("--revisions", type=int, default=20, help="revisions (default 20)")
    parser.add_argument("--parallel", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="an admin URL of the PostgreSQL server (trust)",
    )
    args = parser.parse_args()
    parallels = [int(p) for p in args.parallel.split(",")]
    work = Path(tempfile.mkdtemp(prefix="migrasafe-bench-fleet-"))
    database = f"bench_fleet_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
        version = conn.exec_driver_sql("SHOW server_version").scalar()
    pg_url = sa.make_url(args.pg).set(database=database).render_as_string(hide_password=False)
    rows: list[tuple[str, str, float, float, float]] = []
    try:
        sqlite_ini = make_project(work / "sqlite-project", args.revisions, "sqlite:///unused.db")
        pg_ini = make_project(work / "pg-project", args.revisions, pg_url)
        load = os.getloadavg()[0]
        if args.sqlite:
            label = f"{args.sqlite} SQLite files"
            targets, listing = sqlite_fleet(work / "tenants", args.sqlite)
            base, memory = timed(lambda: loop(sqlite_ini, targets))
            rows.append((label, "alembic upgrade head loop", base, 1.0, memory))
            for parallel in parallels:
                _targets, listing = sqlite_fleet(work / "tenants", args.sqlite)
                seconds, memory = timed(
                    partial(fleet, sqlite_ini, parallel, ["--targets", str(listing)])
                )
                rows.append((label, f"migrasafe fleet --parallel {parallel}", seconds,
                             base / seconds, memory))  # fmt: skip
        if args.schemas:
            label = f"{args.schemas} PostgreSQL schemas"
            targets = reset_schemas(pg_url, args.schemas)
            base, memory = timed(lambda: loop(pg_ini, targets))
            rows.append((label, "alembic upgrade head loop", base, 1.0, memory))
            for parallel in parallels:
                reset_schemas(pg_url, args.schemas)
                seconds, memory = timed(partial(fleet, pg_ini, parallel, ["--schemas", "tenant_*"]))
                rows.append((label, f"migrasafe fleet --parallel {parallel}", seconds,
                             base / seconds, memory))  # fmt: skip
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.revisions} revisions (a table and an index each) per tenant, base -> head; "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {version} "
          f"on 127.0.0.1; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after "
          "(other work on the machine); peak MB: all processes of the run together")  # fmt: skip
    print(
        f"{'fleet':<22} {'run':<30} {'seconds':>8} {'tenants/s':>10} {'speed-up':>9} {'peak MB':>8}"
    )
    for label, run, seconds, speedup, memory in rows:
        count = int(label.split()[0])
        print(f"{label:<22} {run:<30} {seconds:>8.1f} {count / seconds:>10.1f} "
              f"{speedup:>8.2f}x {memory:>8.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
