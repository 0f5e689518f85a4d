"""Benchmark: a deploy under live traffic, plain Alembic against migrasafe's lock timeout.

On PostgreSQL, workers run short reads and writes on a hot table without
pause. One session holds an ACCESS SHARE lock in an open transaction for
HOLD seconds (a long report). Then a revision that adds a column to the hot
table is applied by

  (a) `alembic upgrade head`: its ALTER TABLE waits for the report, and every
      worker query queues behind the waiting ALTER for the whole time;
  (b) `migrasafe upgrade head --db-lock-timeout 2s --retries 30`: each attempt
      waits at most 2 s, steps aside, and retries after a pause.

Prints, for each, the workload's latency while the deploy ran (p50, p99,
max), how many queries took more than 1 s, and when the migration finished
(seconds after the report ended). Target: with (b) the maximum latency is at
most the lock timeout plus 1 s, and the migration completes once the report
ends. Not a test: a measurement, on the machine it runs on.

The workload, the report, the scratch database and the project are shared
with bench/expand_contract_under_load.py (a rename and an index build).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from migrasafe import init

BIN = Path(sys.executable).parent
MIGRASAFE, ALEMBIC = str(BIN / "migrasafe"), str(BIN / "alembic")
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORKERS = 4
ROWS = 10_000
REPORT = "SELECT count(*) FROM accounts"  # a long report: ACCESS SHARE, held
CREATE = '''"""accounts"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("accounts", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("balance", sa.Integer(), nullable=False))
    op.execute("INSERT INTO accounts SELECT g, 0 FROM generate_series(1, {rows}) g")


def downgrade() -> None:
    op.drop_table("accounts")
'''
ALTER = '''"""note on accounts"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "note")
'''

# One query of a release: run on the worker's autocommit connection, with its random source.
Release = Callable[["psycopg.Connection[Any]", random.Random], object]


@dataclass(frozen=True)
class Sample:
    started: float
    seconds: float
    error: str | None  # the query's error, first line, or None if it worked


class Workload:
    """Workers running their release's queries without pause; each query's latency and error."""

    def __init__(self, dsn: str, release: Release, workers: int = WORKERS) -> None:
        self.dsn = dsn
        self.releases = [release] * workers
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.work, args=(i,), daemon=True)
                        for i in range(workers)]  # fmt: skip

    def switch(self, worker: int, release: Release) -> None:
        """Roll worker ``worker`` out to another release (its next query runs it)."""
        self.releases[worker] = release

    def work(self, index: int) -> None:
        chance = random.Random()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.monotonic()
                error = None
                try:
                    self.releases[index](conn, chance)
                except psycopg.Error as exc:
                    error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                self.samples.append(Sample(started, time.monotonic() - started, error))
                time.sleep(0.005)

    def __enter__(self) -> Workload:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def during(self, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if start <= s.started <= end]


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, int(len(sorted_values) * fraction) - 1)]


@dataclass(frozen=True)
class Deployed:
    """One migration command run while a report held its lock: when, and how it ended."""

    started: float
    released: float  # when the report ended its transaction
    finished: float
    returncode: int
    stderr: str


def run_deploy(argv: list[str], cwd: Path, dsn: str, hold: float,
               report_sql: str = REPORT) -> Deployed:  # fmt: skip
    """Run ``argv`` while a session that ran ``report_sql`` keeps its transaction (and the
    locks it took) open for up to ``hold`` seconds, ended earlier if the command finishes
    first; 0: no such session."""
    report = psycopg.connect(dsn, application_name="long-report") if hold > 0 else None
    if report is not None:
        report.execute(report_sql)  # its locks held until release()
    released: list[float] = []
    once = threading.Lock()

    def release() -> None:
        with once:
            if not released:
                if report is not None:
                    report.rollback()
                    report.close()
                released.append(time.monotonic())

    started = time.monotonic()
    timer = threading.Timer(hold, release)
    timer.start()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    _out, err = process.communicate(timeout=1200)
    finished = time.monotonic()
    timer.cancel()
    timer.join()
    release()
    return Deployed(started, released[0], finished, process.returncode, err)


@contextmanager
def scratch_database(admin: str) -> Iterator[tuple[str, str]]:
    """A database of its own on the server at ``admin``, dropped after: (URL, libpq DSN)."""
    name = f"migrasafe_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin).set(database=name)
    try:
        yield (url.render_as_string(hide_password=False),
               url.set(drivername="postgresql").render_as_string(hide_password=False))  # fmt: skip
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def make_project(directory: Path, url: str) -> Path:
    """A generic migrasafe project in ``directory`` whose alembic.ini points at ``url``."""
    init(directory, "generic")
    ini = directory / "alembic.ini"
    ini.write_text("\n".join(
        f"sqlalchemy.url = {url}" if line.startswith("sqlalchemy.url") else line
        for line in ini.read_text().splitlines()
    ) + "\n")  # fmt: skip
    return directory


def use_revisions(project: Path, files: dict[str, str]) -> None:
    """Make ``files`` (name -> text) the project's revision files, removing any others."""
    versions = project / "migrations" / "versions"
    for old in versions.glob("*.py"):
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (versions / name).write_text(text)


def migrasafe(project: Path, *args: str) -> None:
    run = subprocess.run([MIGRASAFE, *args], cwd=project, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"migrasafe {' '.join(args)} failed: {run.stderr}")


def conditions(dsn: str) -> str:
    """The server's version and the machine's cores, for a benchmark's heading."""
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchall()[0][0]
    return f"PostgreSQL {version.split()[0]}, {os.cpu_count()} cores"


def _balance(conn: psycopg.Connection[Any], chance: random.Random) -> None:
    key = chance.randint(1, ROWS)
    if chance.random() < 0.5:
        conn.execute("SELECT balance FROM accounts WHERE id = %s", (key,)).fetchall()
    else:
        conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (key,))


def deploy(label: str, argv: list[str], cwd: Path, dsn: str, hold: float) -> str:
    with Workload(dsn, _balance) as workload:
        time.sleep(1.0)
        run = run_deploy(argv, cwd, dsn, hold)
        time.sleep(0.5)
    if run.returncode != 0:
        raise SystemExit(f"{label} failed: {run.stderr}")
    latencies = sorted(s.seconds for s in workload.during(run.started, run.finished))
    p50 = statistics.median(latencies)
    p99 = percentile(latencies, 0.99)
    slow = sum(1 for x in latencies if x > 1.0)
    return (f"{label:<46}{p50 * 1000:>8.1f}{p99 * 1000:>9.1f}{max(latencies):>8.2f}"
            f"{slow:>8}{run.finished - run.released:>+10.1f}{len(latencies):>9}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "admin_url",
        nargs="?",
        default=ADMIN,
        help=f"a server to make a scratch database on (default {ADMIN})",
    )
    parser.add_argument("hold", nargs="?", type=float, default=20.0,
                        help="seconds the report holds its lock (default 20)")  # fmt: skip
    args = parser.parse_args()
    hold = args.hold
    with scratch_database(args.admin_url) as (full, dsn), \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        project = make_project(Path(tmp) / "project", full)
        use_revisions(project, {"0001_accounts.py": CREATE.format(rows=ROWS),
                                "0002_note.py": ALTER})  # fmt: skip
        migrasafe(project, "upgrade", "0001")
        print(f"PostgreSQL, {WORKERS} workers on a {ROWS:,}-row table, a report holding "
              f"ACCESS SHARE for {hold:g} s; latencies while the deploy ran")  # fmt: skip
        print(f"{'deploy':<46}{'p50 ms':>8}{'p99 ms':>9}{'max s':>8}{'> 1 s':>8}"
              f"{'done at':>10}{'queries':>9}")  # fmt: skip
        print(deploy("(a) alembic upgrade head", [ALEMBIC, "upgrade", "head"], project, dsn,
                     hold))  # fmt: skip
        migrasafe(project, "downgrade", "0001")
        print(deploy("(b) migrasafe --db-lock-timeout 2s --retries 30",
                     [MIGRASAFE, "upgrade", "head", "--db-lock-timeout", "2s", "--retries", "30"],
                     project, dsn, hold))  # fmt: skip
        print("done at: seconds after the report ended; target for (b): max <= 3 s")


if __name__ == "__main__":
    main()
