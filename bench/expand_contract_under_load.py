"""Benchmark: a column rename and an index build deployed under live traffic on PostgreSQL.

An application (WORKERS threads, each its own connection) runs the release's
queries without pause on a table of ROWS rows: SELECT by id, INSERT, and
UPDATE of the column being renamed. At the start of each migration command
a batch job's transaction that has written to the table stays open for HOLD
seconds (ended earlier if the command finishes first): the DDL must wait
for it. Deployed four ways:

  rename accounts.email to email_address
    (a) one plain revision (op.alter_column(new_column_name=...)) under
        `alembic upgrade head`; the old release keeps running for ROLLOUT s
        after it (the time a rollout takes), then switches to the new one;
    (b) `migrasafe upgrade --phase expand` (add email_address, a trigger that
        keeps both columns in sync both ways, a batched backfill with
        migrasafe.backfill committing each batch), then the workers switch
        to the new release one by one over ROLLOUT s, then
        `migrasafe upgrade --phase contract` (drop the trigger and email);
  index on accounts.email
    (a) op.create_index under `alembic upgrade head`;
    (b) safe_op.create_index (CONCURRENTLY) under `migrasafe upgrade`.
  The migrasafe runs use --db-lock-timeout LOCK_TIMEOUT --retries RETRIES.

Prints, for each, the application's failed queries (count and the first
error), its p99 and maximum latency, the migration commands' time and how
many times migrasafe retried after a lock timeout, over the window from the
first command's start to the last one's end (for the plain rename, to the
end of the old release's ROLLOUT). Target for (b): 0 failed queries and
maximum latency <= lock timeout + 1 s. Not a test: a measurement, on the
machine it runs on.

The sync trigger and backfill written inline in the revisions (SYNC,
TRIGGER, ADD_SYNCED below) are what a helper such as
`safe_op.rename_column_expand` would emit; migrasafe has none yet.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from deploy_under_load import (
    ADMIN,
    ALEMBIC,
    MIGRASAFE,
    Deployed,
    Release,
    Workload,
    conditions,
    make_project,
    migrasafe,
    percentile,
    run_deploy,
    scratch_database,
    use_revisions,
)

CREATE = '''"""accounts, {rows} rows"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("balance", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute("INSERT INTO accounts (email, balance) SELECT 'user' || g || '@example.com', "
               "g % 1000 FROM generate_series(1, {rows}) g")


def downgrade() -> None:
    op.drop_table("accounts")
'''
PLAIN_RENAME = '''"""rename accounts.email to email_address, in one revision"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.alter_column("accounts", "email", new_column_name="email_address")


def downgrade() -> None:
    op.alter_column("accounts", "email_address", new_column_name="email")
'''
# The two-way sync: a write of either column sets the other. On INSERT the
# release that wrote only one of them gets the other filled; on UPDATE the
# column that changed wins. Written to run again after an interruption (the
# backfill's batches commit on their own, so a retry finds the column).
SYNC = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.{new} IS NULL THEN
            NEW.{new} := NEW.{old};
        ELSIF NEW.{old} IS NULL THEN
            NEW.{old} := NEW.{new};
        END IF;
    ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} THEN
        NEW.{new} := NEW.{old};
    ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} THEN
        NEW.{old} := NEW.{new};
    END IF;
    RETURN NEW;
END $$
"""
TRIGGER = ("CREATE TRIGGER {function} BEFORE INSERT OR UPDATE ON accounts FOR EACH ROW "
           "EXECUTE FUNCTION {function}()")  # fmt: skip
PHASE = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa
from migrasafe.backfill import backfill

revision = "{revision}"
down_revision = "{down}"
phase = "{phase}"

SYNC = {sync!r}
TRIGGER = {trigger!r}
accounts = sa.table("accounts", sa.column("id", sa.BigInteger), sa.column("email", sa.Text),
                    sa.column("email_address", sa.Text))


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''
# Add a column kept in sync with the other by the trigger, then fill it from the other.
ADD_SYNCED = """    op.execute("ALTER TABLE accounts ADD COLUMN IF NOT EXISTS {add} text")
    op.execute(SYNC)
    op.execute("DROP TRIGGER IF EXISTS accounts_email_sync ON accounts")
    op.execute(TRIGGER)
    backfill(accounts, {{"{add}": accounts.c.{source}}},
             where=sa.and_(accounts.c.{add}.is_(None), accounts.c.{source}.is_not(None)),
             batch_size={batch}, commit_each_batch=True, progress=False)"""
DROP_SYNCED = """    op.execute("DROP TRIGGER IF EXISTS accounts_email_sync ON accounts")
    op.execute("DROP FUNCTION IF EXISTS accounts_email_sync()")
    op.drop_column("accounts", "{drop}")"""


def rename_revisions(batch: int) -> dict[str, str]:
    """The expand and contract revisions of the rename, as files."""
    text = {"sync": SYNC.format(function="accounts_email_sync", old="email", new="email_address"),
            "trigger": TRIGGER.format(function="accounts_email_sync")}  # fmt: skip
    expand = PHASE.format(
        doc="expand: add accounts.email_address, kept in sync with email, backfilled",
        revision="0002", down="0001", phase="expand", **text,
        upgrade=ADD_SYNCED.format(add="email_address", source="email", batch=batch),
        downgrade=DROP_SYNCED.format(drop="email_address"),
    )  # fmt: skip
    contract = PHASE.format(
        doc="contract: drop the sync trigger and accounts.email",
        revision="0003", down="0002", phase="contract", **text,
        upgrade=DROP_SYNCED.format(drop="email"),
        downgrade=ADD_SYNCED.format(add="email", source="email_address", batch=batch),
    )  # fmt: skip
    return {"0002_expand.py": expand, "0003_contract.py": contract}


# A batch job's open transaction that has written to the table (ROW EXCLUSIVE, no row):
# it blocks CREATE INDEX (SHARE), which writers then queue behind, and the renames'
# ACCESS EXCLUSIVE, which every query then queues behind.
BATCH_JOB = "UPDATE accounts SET balance = balance WHERE id = 0"
INDEX = '''"""index accounts.email, {how}"""
from alembic import op
from migrasafe import safe_op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    {ops}.create_index("ix_accounts_email", "accounts", ["email"])


def downgrade() -> None:
    {ops}.drop_index("ix_accounts_email", "accounts")
'''


def release(column: str, rows: int) -> Release:
    """One query of a release that reads and writes ``accounts.<column>``."""

    def query(conn: psycopg.Connection[Any], chance: random.Random) -> None:
        key = chance.randint(1, rows)
        draw = chance.random()
        if draw < 0.5:
            conn.execute(f"SELECT id, {column}, balance FROM accounts WHERE id = %s",
                         (key,)).fetchall()  # fmt: skip
        elif draw < 0.75:
            conn.execute(f"UPDATE accounts SET {column} = %s WHERE id = %s",
                         (f"changed{chance.randint(1, 10**9)}@example.com", key))  # fmt: skip
        else:
            conn.execute(f"INSERT INTO accounts ({column}, balance) VALUES (%s, 0)",
                         (f"new{chance.randint(1, 10**9)}@example.com",))  # fmt: skip

    return query


@dataclass(frozen=True)
class Row:
    label: str
    failed: int
    first_error: str
    p99: float
    max: float
    migrate: float  # seconds the migration commands ran, summed
    retries: str  # how many times migrasafe stepped aside and tried again
    queries: int

    def line(self) -> str:
        return (f"{self.label:<56}{self.failed:>7}{self.p99 * 1000:>9.1f}{self.max:>8.2f}"
                f"{self.migrate:>10.1f}{self.retries:>8}{self.queries:>9}  "
                f"{self.first_error[:70].rstrip()}")  # fmt: skip


HEADING = (f"{'deploy':<56}{'failed':>7}{'p99 ms':>9}{'max s':>8}{'migrate s':>10}"
           f"{'retries':>8}{'queries':>9}  first error")  # fmt: skip


def measure(label: str, workload: Workload, start: float, end: float,
            steps: list[Deployed]) -> Row:  # fmt: skip
    samples = workload.during(start, end)
    latencies = sorted(s.seconds for s in samples)
    errors = [s.error for s in samples if s.error is not None]
    retries = sum(step.stderr.count("; retry ") for step in steps)
    return Row(label, len(errors), errors[0] if errors else "-", percentile(latencies, 0.99),
               latencies[-1], sum(step.finished - step.started for step in steps),
               str(retries) if "migrasafe" in label else "-", len(samples))  # fmt: skip


@dataclass(frozen=True)
class Bench:
    project: Path
    dsn: str
    rows: int
    workers: int
    hold: float
    rollout: float
    safe_flags: list[str]

    def step(self, argv: list[str]) -> Deployed:
        """Run one migration command while the batch job is open."""
        run = run_deploy(argv, self.project, self.dsn, self.hold, BATCH_JOB)
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(argv[1:])} failed: {run.stderr}")
        return run

    def traffic(self, column: str, scenario: Callable[[Workload], Row]) -> Row:
        with Workload(self.dsn, release(column, self.rows), self.workers) as workload:
            time.sleep(1.0)
            return scenario(workload)

    def index(self, label: str, argv: list[str], how: str, ops: str) -> Row:
        use_revisions(self.project, {"0001_accounts.py": CREATE.format(rows=self.rows),
                                     "0002_index.py": INDEX.format(how=how, ops=ops)})  # fmt: skip

        def scenario(workload: Workload) -> Row:
            run = self.step(argv)
            return measure(label, workload, run.started, run.finished, [run])

        row = self.traffic("email", scenario)
        migrasafe(self.project, "downgrade", "0001")
        return row

    def plain_rename(self) -> Row:
        use_revisions(self.project, {"0001_accounts.py": CREATE.format(rows=self.rows),
                                     "0002_rename.py": PLAIN_RENAME})  # fmt: skip

        def scenario(workload: Workload) -> Row:
            run = self.step([ALEMBIC, "upgrade", "head"])
            time.sleep(self.rollout)  # the old release runs until the rollout replaces it
            row = measure("(a) alembic upgrade head (plain rename)", workload, run.started,
                          time.monotonic(), [run])  # fmt: skip
            for worker in range(self.workers):
                workload.switch(worker, release("email_address", self.rows))
            return row

        row = self.traffic("email", scenario)
        migrasafe(self.project, "downgrade", "0001")
        return row

    def expand_contract(self) -> Row:
        use_revisions(self.project, {"0001_accounts.py": CREATE.format(rows=self.rows),
                                     **rename_revisions(10_000)})  # fmt: skip

        def scenario(workload: Workload) -> Row:
            expand = self.step([MIGRASAFE, "upgrade", "--phase", "expand", *self.safe_flags])
            for worker in range(self.workers):  # a rolling rollout: both releases run a while
                time.sleep(self.rollout / self.workers)
                workload.switch(worker, release("email_address", self.rows))
            contract = self.step([MIGRASAFE, "upgrade", "--phase", "contract",
                                  *self.safe_flags])  # fmt: skip
            label = "(b) migrasafe expand -> new release -> contract"
            return measure(label, workload, expand.started, contract.finished,
                           [expand, contract])  # fmt: skip

        return self.traffic("email", scenario)


def check_sync(dsn: str) -> str:
    """After the rename: every row has its email_address (the backfill and trigger missed none)."""
    with psycopg.connect(dsn) as conn:
        rows, missing = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE email_address IS NULL) FROM accounts"
        ).fetchall()[0]
    return f"after the contract: {rows:,} rows, {missing} without email_address"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Runs the index build first, then the rename; a scratch database is made on "
        "the server and dropped after.",
    )
    parser.add_argument("--url", default=ADMIN, help=f"PostgreSQL server (default {ADMIN})")
    parser.add_argument("--rows", type=int, default=1_000_000, help="table rows (1,000,000)")
    parser.add_argument("--workers", type=int, default=4, help="application threads (4)")
    parser.add_argument("--hold", type=float, default=10.0,
                        help="seconds a batch job's write transaction stays open at each "
                        "command's start; "
                        "0: none (10)")  # fmt: skip
    parser.add_argument("--rollout", type=float, default=4.0,
                        help="seconds the application's rollout takes (4)")  # fmt: skip
    parser.add_argument("--lock-timeout", default="2s", help="migrasafe's --db-lock-timeout (2s)")
    parser.add_argument("--retries", default="10", help="migrasafe's --retries (10)")
    parser.add_argument("--only", choices=["index", "rename"], help="run one scenario")
    args = parser.parse_args()
    safe = ["--db-lock-timeout", args.lock_timeout, "--retries", args.retries]
    with scratch_database(args.url) as (url, dsn), tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "project", url)
        bench = Bench(project, dsn, args.rows, args.workers, args.hold, args.rollout, safe)
        use_revisions(project, {"0001_accounts.py": CREATE.format(rows=args.rows)})
        began = time.monotonic()
        migrasafe(project, "upgrade", "0001")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE accounts")
        print(f"{conditions(dsn)}; accounts: {args.rows:,} rows (made in "
              f"{time.monotonic() - began:.0f} s); {args.workers} application workers "
              "(50% SELECT by id, 25% UPDATE of email, 25% INSERT); a batch job's write "
              f"transaction open for {args.hold:g} s at each command's start; rollout "
              f"{args.rollout:g} s; migrasafe runs: {' '.join(safe)}")  # fmt: skip
        print(HEADING)
        if args.only != "rename":
            print("index on accounts.email")
            print(bench.index("(a) alembic upgrade head (op.create_index)",
                              [ALEMBIC, "upgrade", "head"], "plain", "op").line())  # fmt: skip
            print(bench.index(f"(b) migrasafe upgrade {' '.join(safe)}",
                              [MIGRASAFE, "upgrade", "head", *safe], "concurrently",
                              "safe_op").line())  # fmt: skip
        if args.only != "index":
            print("rename accounts.email to email_address")
            print(bench.plain_rename().line())
            print(bench.expand_contract().line())
            print(check_sync(dsn))
        print("migrate s: the migration commands' run time; retries: migrasafe's, after a lock "
              "timeout; measured from the first command's start to the last one's end (plain "
              f"rename: + {args.rollout:g} s of the old release); target for (b): 0 failed, "
              "max <= lock timeout + 1 s")  # fmt: skip


if __name__ == "__main__":
    main()
