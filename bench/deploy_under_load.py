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

Run: python bench/deploy_under_load.py [ADMIN_URL] [HOLD_SECONDS]
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres, 20 s).
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from migrasafe import init

BIN = Path(sys.executable).parent
WORKERS = 4
ROWS = 10_000
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


class Workload:
    """Workers doing a read and a write in turn; latencies recorded with their start time."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.work, daemon=True) for _ in range(WORKERS)]

    def work(self) -> None:
        chance = random.Random()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                key = chance.randint(1, ROWS)
                started = time.monotonic()
                if chance.random() < 0.5:
                    conn.execute("SELECT balance FROM accounts WHERE id = %s", (key,)).fetchall()
                else:
                    conn.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (key,))
                self.samples.append((started, time.monotonic() - started))
                time.sleep(0.005)

    def __enter__(self) -> Workload:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def during(self, start: float, end: float) -> list[float]:
        return [latency for at, latency in self.samples if start <= at <= end]


def deploy(label: str, argv: list[str], cwd: Path, dsn: str, hold: float) -> str:
    with Workload(dsn) as workload:
        time.sleep(1.0)
        report = psycopg.connect(dsn, application_name="long-report")
        report.execute("SELECT count(*) FROM accounts").fetchall()  # ACCESS SHARE, held
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(hold)
        report.rollback()
        report.close()
        released = time.monotonic()
        _out, err = process.communicate(timeout=600)
        finished = time.monotonic()
        time.sleep(0.5)
    latencies = sorted(workload.during(started, finished))
    if process.returncode != 0:
        raise SystemExit(f"{label} failed: {err}")
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    slow = sum(1 for x in latencies if x > 1.0)
    return (f"{label:<46}{p50 * 1000:>8.1f}{p99 * 1000:>9.1f}{max(latencies):>8.2f}"
            f"{slow:>8}{finished - released:>+10.1f}{len(latencies):>9}")  # fmt: skip


def main() -> None:
    import argparse

    from verify_vs_alembic import conditions

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("admin", nargs="?", metavar="ADMIN_URL",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server to create a temporary database on")  # fmt: skip
    parser.add_argument("hold", nargs="?", type=float, default=20.0, metavar="HOLD_SECONDS",
                        help="how long the report holds its lock (default: 20)")  # fmt: skip
    args = parser.parse_args()
    admin, hold = args.admin, args.hold
    print(conditions([admin]))
    name = f"migrasafe_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin).set(database=name)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    full = url.render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp) / "project"
            init(project, "generic")
            versions = project / "migrations" / "versions"
            (versions / "0001_accounts.py").write_text(CREATE.format(rows=ROWS))
            (versions / "0002_note.py").write_text(ALTER)
            ini = project / "alembic.ini"
            ini.write_text("\n".join(
                f"sqlalchemy.url = {full}" if line.startswith("sqlalchemy.url") else line
                for line in ini.read_text().splitlines()
            ) + "\n")  # fmt: skip
            migrasafe, alembic = str(BIN / "migrasafe"), str(BIN / "alembic")
            subprocess.run([migrasafe, "upgrade", "0001"], cwd=project, check=True,
                           capture_output=True)  # fmt: skip
            print(f"PostgreSQL, {WORKERS} workers on a {ROWS:,}-row table, a report holding "
                  f"ACCESS SHARE for {hold:g} s; latencies while the deploy ran")  # fmt: skip
            print(f"{'deploy':<46}{'p50 ms':>8}{'p99 ms':>9}{'max s':>8}{'> 1 s':>8}"
                  f"{'done at':>10}{'queries':>9}")  # fmt: skip
            rows = [deploy("(a) alembic upgrade head", [alembic, "upgrade", "head"], project,
                           dsn, hold)]  # fmt: skip
            subprocess.run([migrasafe, "downgrade", "0001"], cwd=project, check=True,
                           capture_output=True)  # fmt: skip
            print(rows[0])
            rows.append(deploy("(b) migrasafe --db-lock-timeout 2s --retries 30",
                               [migrasafe, "upgrade", "head", "--db-lock-timeout", "2s",
                                "--retries", "30"], project, dsn, hold))  # fmt: skip
            print(rows[1])
            print("done at: seconds after the report ended; target for (b): max <= 3 s")
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


if __name__ == "__main__":
    main()
