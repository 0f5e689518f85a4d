"""Trials: SIGKILL, SIGINT and SIGTERM at random moments of `migrasafe upgrade` (issue 25).

A generated project of --revisions revisions (default 40), each sending
several statements with a pause (--pause, default 20 ms) before each and
after the last, so that a signal lands inside a revision: create_table
t<n>, an INSERT of one row (idempotent: ON CONFLICT DO NOTHING, INSERT
IGNORE on MySQL, as a statement that `upgrade --resume` runs again must
be), add_column a<n>, create_index ix_t<n>_a<n>, add_column b<n>. Every
fourth revision builds its index in an `autocommit_block` (CONCURRENTLY on
PostgreSQL), so that on every database part of it commits early.

On each database (SQLite, a file; PostgreSQL with --pg; MariaDB or MySQL
with --mysql; each a new database), trial after trial: `migrasafe upgrade`
(`upgrade --resume` when the previous trial left a revision half-applied)
starts, and once the progress line of a revision chosen at random among
the next four appears, the signal comes after a random delay of up to one
revision's time. Then, once the server holds no session of the stopped run
(a killed client's statement may still finish on the server):

(a) agreement: the version table names R; every revision up to R has all
    its effects (table, row, columns, a valid index) and one checksum row,
    'applied'; of the later ones, only the next may have anything, and only
    where it could have committed part of itself (MySQL's DDL; an
    autocommit_block): then what it has is a prefix of its operations and
    its 'started' mark stands; no other mark, no other checksum row;
(b) a truthful status: `migrasafe status --json` exits 0 only at head with
    no mark, names R as current, the rest as pending, the marked revision
    as half_applied, and each of its operations present exactly when the
    schema has it (the INSERT: unknown, null);
(c) a half-applied revision is refused by a plain `upgrade` (exit 2,
    pointing at `upgrade --resume`, "nothing was migrated", nothing
    changed), and the next trial is `upgrade --resume`.

A SIGINT or SIGTERM must also end the run with 130 or 143, one `migrasafe:`
line on stderr, no traceback, naming the revision the database is at and
saying a revision was left part-applied exactly when its mark stands. At
head the database is taken back to base (`downgrade base`); at the end a
last upgrade must reach head with everything agreeing and status ok.
Exit 1 if any trial did not hold, after printing what disagreed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migrasafe import init

sys.path.insert(0, str(Path(__file__).parent))
from verify_vs_alembic import conditions

AUTOCOMMIT_EVERY = 4  # every fourth revision builds its index in an autocommit_block
OPERATIONS = 5  # per revision: create_table, INSERT, add_column, create_index, add_column
SIGNALS = {"SIGKILL": (signal.SIGKILL, -9), "SIGINT": (signal.SIGINT, 130),
           "SIGTERM": (signal.SIGTERM, 143)}  # fmt: skip

REVISION = '''"""revision {n}: several statements, each after a pause"""
import time

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("t{n}", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("name", sa.String(40)))
    time.sleep({pause})
    if op.get_context().dialect.name == "mysql":
        op.execute("INSERT IGNORE INTO t{n} (id, name) VALUES (1, 'row {n}')")
    else:
        op.execute("INSERT INTO t{n} (id, name) VALUES (1, 'row {n}') ON CONFLICT DO NOTHING")
    time.sleep({pause})
    op.add_column("t{n}", sa.Column("a{n}", sa.Integer()))
    time.sleep({pause})
{index}
    time.sleep({pause})
    op.add_column("t{n}", sa.Column("b{n}", sa.String(20)))
    time.sleep({pause})


def downgrade() -> None:
    op.drop_table("t{n}")
'''
INDEX = '    op.create_index("ix_t{n}_a{n}", "t{n}", ["a{n}"])'
INDEX_AUTOCOMMIT = (
    "    with op.get_context().autocommit_block():\n"
    '        op.create_index("ix_t{n}_a{n}", "t{n}", ["a{n}"], postgresql_concurrently=True)'
)


def rev(n: int) -> str:
    return f"{n:04d}"


def autocommits(n: int) -> bool:
    """Whether revision ``n`` builds its index in an autocommit_block (where enabled)."""
    return n % AUTOCOMMIT_EVERY == 0


def expected_operations(n: int) -> list[str]:
    """The operations of revision ``n`` as `status` names them (the INSERT: a prefix)."""
    return [f"create_table t{n}", "execute INSERT", f"add_column t{n}.a{n}",
            f"create_index ix_t{n}_a{n} on t{n}", f"add_column t{n}.b{n}"]  # fmt: skip


def make_history(root: Path, count: int, pause: float, autocommit: bool) -> Path:
    """The generated project (migrasafe's generic template); returns its alembic.ini."""
    init(root, "generic")
    versions = root / "migrations" / "versions"
    for n in range(1, count + 1):
        index = (INDEX_AUTOCOMMIT if autocommit and autocommits(n) else INDEX).format(n=n)
        down = f'"{rev(n - 1)}"' if n > 1 else "None"
        (versions / f"{rev(n)}_t{n}.py").write_text(
            REVISION.format(n=n, rev=rev(n), down=down, pause=pause, index=index)
        )
    return root / "alembic.ini"


# -- databases -----------------------------------------------------------------------------


@dataclass
class Database:
    """One database under trial: its URL, and what the server knows of its sessions."""

    name: str
    url: str
    dialect: str
    recreate: Callable[[], None]  # empty again, after a trial that did not hold
    autocommit: bool = True  # its history has the autocommit_block revisions

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url, poolclass=sa.NullPool)

    def partial(self, n: int) -> bool:
        """Whether revision ``n`` can be stopped with part of it committed."""
        return self.dialect == "mysql" or (self.autocommit and autocommits(n))

    def sessions(self) -> int:
        """Other sessions on this database (a killed run's may still be finishing a statement)."""
        if self.dialect == "sqlite":
            return 0
        database = sa.make_url(self.url).database
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
            if self.dialect == "postgresql"
            else "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = :db "
            "AND ID <> CONNECTION_ID()"
        )
        engine = self.engine()
        try:
            with engine.connect() as connection:
                return int(connection.execute(sa.text(sql), {"db": database}).scalar_one())
        finally:
            engine.dispose()

    def quiesce(self, timeout: float = 60.0) -> bool:
        """Wait until the server holds no session of a stopped run; False if it still does."""
        deadline = time.monotonic() + timeout
        while self.sessions():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


@contextmanager
def fresh_database(name: str, server: str | None, root: Path) -> Iterator[Database]:
    """A new, empty database: a SQLite file under ``root``, or one on ``server``, dropped after."""
    if server is None:
        path = root / "trials.sqlite"
        yield Database(name, f"sqlite:///{path}", "sqlite", recreate=lambda: path.unlink())
        return
    admin = sa.make_url(server)
    dialect = admin.get_backend_name()
    database = f"migrasafe_kills_{uuid.uuid4().hex[:8]}"
    quoted = f'"{database}"' if dialect == "postgresql" else f"`{database}`"
    force = " WITH (FORCE)" if dialect == "postgresql" else ""
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def drop(create: bool) -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}{force}")
            if create:
                connection.exec_driver_sql(f"CREATE DATABASE {quoted}")

    drop(create=True)
    try:
        url = admin.set(database=database).render_as_string(hide_password=False)
        yield Database(name, url, dialect, recreate=lambda: drop(create=True))
    finally:
        drop(create=False)
        engine.dispose()


# -- what the database holds ---------------------------------------------------------------


@dataclass
class State:
    """The database as read directly: version, each revision's effects, checksum rows."""

    version: int  # 0: base
    versions: list[str]
    present: dict[int, list[bool]]  # revision -> its operations' effects, in order
    rows: dict[str, list[str]]  # revision -> its checksum rows' states

    @property
    def marks(self) -> list[int]:
        return sorted(int(r) for r, states in self.rows.items() if "applied" not in states)

    def key(self) -> tuple[object, ...]:
        return (self.versions, sorted(self.present.items()), sorted(self.rows.items()))


VERSIONS = "SELECT version_num FROM alembic_version"


def inspect_state(db: Database, count: int) -> State:
    engine = db.engine()
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            names = set(inspector.get_table_names())
            versions = (
                [str(v) for v in connection.exec_driver_sql(VERSIONS).scalars()]
                if "alembic_version" in names
                else []
            )
            rows: dict[str, list[str]] = {}
            if "migrasafe_checksums" in names:
                for revision, state in connection.execute(sa.text(
                    "SELECT revision, state FROM migrasafe_checksums "
                    "WHERE version_table = 'alembic_version'"
                )):  # fmt: skip
                    rows.setdefault(str(revision), []).append(str(state))
            valid = _valid_indexes(connection, db.dialect)
            present: dict[int, list[bool]] = {}
            for n in range(1, count + 1):
                table = f"t{n}"
                if table not in names:
                    present[n] = [False] * OPERATIONS
                    continue
                columns = {c["name"] for c in inspector.get_columns(table)}
                indexes = {i["name"] for i in inspector.get_indexes(table)}
                row = connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE id = 1"))
                index = f"ix_t{n}_a{n}"
                present[n] = [True, row.scalar_one() == 1, f"a{n}" in columns,
                              index in indexes and (valid is None or index in valid),
                              f"b{n}" in columns]  # fmt: skip
            connection.rollback()
    finally:
        engine.dispose()
    version = int(versions[0]) if len(versions) == 1 and versions[0].isdigit() else 0
    return State(version, versions, present, rows)


def _valid_indexes(connection: sa.Connection, dialect: str) -> set[str] | None:
    """PostgreSQL: the indexes a build finished (a CONCURRENTLY build cut short is invalid)."""
    if dialect != "postgresql":
        return None
    return set(connection.exec_driver_sql(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indisvalid"
    ).scalars())  # fmt: skip


def disagreements(db: Database, state: State, count: int) -> list[str]:
    """(a): version, schema, checksums and marks describe the same history."""
    found: list[str] = []
    if len(state.versions) > 1 or (state.versions and not state.version):
        found.append(f"version table holds {state.versions}")
    r = state.version
    for n in range(1, count + 1):
        have, rows = state.present[n], state.rows.get(rev(n), [])
        if n <= r:
            if not all(have):
                found.append(f"{rev(n)} is applied (version {rev(r)}) but its effects are {have}")
            if rows != ["applied"]:
                found.append(f"{rev(n)} is applied but its checksum rows are {rows}")
            continue
        marked = rows == ["started"] or rows == ["failed"]
        if rows and not marked:
            found.append(f"{rev(n)} is not applied (version {rev(r)}) but has rows {rows}")
        if n == r + 1 and db.partial(n):
            if any(have[i + 1] and not have[i] for i in range(OPERATIONS - 1)):
                found.append(f"{rev(n)}: its effects {have} are not a prefix of its operations")
            if any(have) and not marked:
                found.append(f"{rev(n)} is part-applied {have} with no mark standing")
        elif any(have) or rows:
            found.append(f"{rev(n)} (version {rev(r)}) has effects {have} and rows {rows}")
    return found


# -- the command line under trial ----------------------------------------------------------


def migrasafe(ini: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "migrasafe", "-c", str(ini), "--url", url, *args]


def said(err: str) -> str:
    """stderr less Alembic's log lines and the progress lines: what migrasafe itself said."""
    return "".join(
        line
        for line in err.splitlines(keepends=True)
        if not line.startswith(("INFO  [alembic", "upgrade: "))
    ).strip()


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300,
                          check=False)  # fmt: skip


def status_lies(ini: Path, db: Database, state: State, count: int,
                env: dict[str, str]) -> list[str]:  # fmt: skip
    """(b): what `status --json` says, against what the database holds."""
    done = run(migrasafe(ini, db.url, "status", "--json"), env)
    try:
        reported: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [f"status exit {done.returncode}, not JSON: {done.stdout[-300:]} "
                f"{said(done.stderr)[-500:]}"]  # fmt: skip
    found: list[str] = []
    r, marks = state.version, state.marks
    code = 0 if r == count and not marks else 1
    if done.returncode != code:
        found.append(f"status exit {done.returncode}, expected {code}")
    if reported["current"] != ([rev(r)] if r else []):
        found.append(f"status current {reported['current']}, the version table {state.versions}")
    if reported["pending"] != [rev(n) for n in range(r + 1, count + 1)]:
        found.append(f"status pending {reported['pending'][:3]}..., version {rev(r)}")
    if reported["half_applied"] != [rev(n) for n in marks]:
        found.append(f"status half_applied {reported['half_applied']}, marks {marks}")
    if reported["modified"] or reported["unverified"] or reported["unknown"]:
        found.append(f"status modified {reported['modified']}, unverified "
                     f"{reported['unverified']}, unknown {reported['unknown']}")  # fmt: skip
    operations = reported.get("half_applied_operations", [])
    for n in marks:
        listed = [o for o in operations if o["revision"] == rev(n)]
        names = [str(o["operation"]) for o in listed]
        wanted = expected_operations(n)
        if len(names) != OPERATIONS or any(
            not name.startswith(w) for name, w in zip(names, wanted, strict=False)
        ):
            found.append(f"status lists {rev(n)}'s operations as {names}")
            continue
        for i, entry in enumerate(listed):
            truth = state.present[n][i]
            unknowable = wanted[i] == "execute INSERT" and entry["present"] is None
            if entry["present"] != truth and not unknowable:
                found.append(f"status says {entry['operation']} present={entry['present']}, "
                             f"the schema {truth}")  # fmt: skip
    if len(operations) != OPERATIONS * len(marks):
        found.append(f"status lists {len(operations)} operations for marks {marks}")
    return found


def refusal_wrong(ini: Path, db: Database, state: State, count: int,
                  env: dict[str, str]) -> list[str]:  # fmt: skip
    """(c): a plain upgrade over a half-applied revision refuses, and changes nothing."""
    done = run(migrasafe(ini, db.url, "upgrade"), env)
    found: list[str] = []
    if done.returncode != 2:
        found.append(f"plain upgrade over half-applied {state.marks}: exit {done.returncode}, "
                     f"{said(done.stderr)[-400:]}")  # fmt: skip
    elif "upgrade --resume" not in done.stderr or "nothing was migrated" not in done.stderr:
        found.append(f"plain upgrade's refusal does not say so: {said(done.stderr)[-400:]}")
    after = inspect_state(db, count)
    if after.key() != state.key():
        found.append(f"the refused upgrade changed the database: version {after.versions}, "
                     f"marks {after.marks}")  # fmt: skip
    return found


class Child:
    """`migrasafe upgrade` under trial, its stderr read as it comes (the progress lines)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=env, preexec_fn=_default_sigint)  # fmt: skip
        self.lines: list[str] = []
        self.out: list[str] = []
        self.started: dict[str, float] = {}  # revision -> when its progress line came
        self.seen = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.stdout = threading.Thread(target=self._read_stdout, daemon=True)
        self.stdout.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self.out.extend(self.process.stdout)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.seen:
                self.lines.append(line)
                now = re.search(r", now (\w+)$", line.rstrip())
                if now:
                    self.started[now.group(1)] = time.monotonic()
                self.seen.notify_all()
        with self.seen:
            self.seen.notify_all()

    def wait_for(self, revision: str, timeout: float = 120.0) -> float | None:
        """When ``revision`` started (its progress line); None if the run ended first."""
        deadline = time.monotonic() + timeout
        with self.seen:
            while revision not in self.started:
                if not self.reader.is_alive() or time.monotonic() > deadline:
                    return None
                self.seen.wait(0.05)
            return self.started[revision]

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        """Exit code, stdout and stderr (less the progress lines)."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join()
        self.stdout.join()
        return self.process.returncode, "".join(self.out), said("".join(self.lines))


def _default_sigint() -> None:
    """As a terminal starts it: a bench run in the background (where the shell ignores SIGINT,
    which children inherit) still sends it a SIGINT it obeys (as tests/test_faults.py)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def message_wrong(name: str, code: int, returncode: int, err: str, state: State) -> list[str]:
    """SIGINT/SIGTERM: the exit code and the one line say what happened, truthfully: the
    revision the database is at (or, for a signal outside the migration, that nothing was
    left half-done), a revision left part-applied exactly when its mark stands, and never
    an applied revision as the one interrupted."""
    found: list[str] = []
    if returncode != code:
        found.append(f"{name}: exit {returncode}, expected {code}")
    ours = [line for line in err.splitlines() if line.startswith("migrasafe:")]
    if "Traceback" in err or len(ours) != 1:
        found.append(f"{name}: stderr has {len(ours)} migrasafe: lines: {err.strip()[-800:]}")
        return found
    line = ours[0]
    now = rev(state.version) if state.version else "base"
    outside = "nothing was left half-done" in line and not state.marks
    if f"interrupted by {name}" not in line or (
        f"the database is now at {now}" not in line and not outside
    ):
        found.append(f"{name}: the database is at {now}, the message says: {line}")
    if ("part-applied" in line) != bool(state.marks):
        found.append(f"{name}: marks {state.marks}, the message says: {line}")
    during = re.search(r"during revision (\d+)", line)
    if during and int(during.group(1)) <= state.version:
        found.append(f"{name}: names applied revision {during.group(1)} as interrupted: {line}")
    return found


def kind(problem: str) -> str:
    """A problem with its revision ids, counts and timings taken out: for the summary."""
    return re.sub(r"\d+", "N", problem.split(": ", 1)[-1])[:90]


# -- trials --------------------------------------------------------------------------------


@dataclass
class Tally:
    tried: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNALS, 0))
    held: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNALS, 0))
    half_applied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIGNALS, 0))
    resumed: int = 0  # trials that were an `upgrade --resume`
    ended_early: int = 0  # runs that reached head before their signal (not counted)
    final: bool = False
    failures: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)


class Trials:
    def __init__(self, db: Database, ini: Path, count: int, pause: float, chance: random.Random,
                 env: dict[str, str]) -> None:  # fmt: skip
        self.db, self.ini, self.count, self.chance, self.env = db, ini, count, chance, env
        self.revision_seconds = (OPERATIONS + 1) * pause + 0.05  # refined as runs report
        self.tally = Tally()
        self.state = inspect_state(db, count)

    def fail(self, what: str, problems: list[str]) -> None:
        self.tally.failures.append(f"{self.db.name} {what}: " + "; ".join(problems))
        self.tally.kinds.update(f"{self.db.name}: {kind(p)}" for p in problems)

    def trial(self, name: str, number: int) -> None:
        sig, code = SIGNALS[name]
        before = self.state.version
        target = self.chance.randint(before + 1, before + 4)
        if target > self.count:  # past head: this run finishes, and the database goes to base
            self._to_head_and_base()
            return
        delay = self.chance.uniform(0, self.revision_seconds)
        resume = bool(self.state.marks)
        args = ["upgrade", "--resume"] if resume else ["upgrade"]
        child = Child(migrasafe(self.ini, self.db.url, *args), self.env)
        started = child.wait_for(rev(target))
        if started is not None:
            time.sleep(max(0.0, started + delay - time.monotonic()))
            if child.process.poll() is None:
                child.process.send_signal(sig)
        returncode, _out, err = child.finish()
        self._learn(child)
        quiet = self.db.quiesce()
        self.state = inspect_state(self.db, self.count)
        what = (f"{name} #{number} ({' '.join(args)} from {rev(before) if before else 'base'}, "
                f"in {rev(target)} +{delay * 1000:.0f} ms)")  # fmt: skip
        problems = [] if quiet else ["the stopped run's session stayed on the server for 60 s"]
        problems += disagreements(self.db, self.state, self.count)
        broken = bool(problems)
        problems += status_lies(self.ini, self.db, self.state, self.count, self.env)
        at_head = self.state.version == self.count and not self.state.marks
        if started is None or (returncode == 0 and at_head and name != "SIGKILL"):
            # it ended before its signal (or exited unaware of it, done): no trial
            self.tally.ended_early += 1
            if returncode != 0 or not at_head:
                problems.append(f"ended before its signal: exit {returncode}, {err[-400:]}")
            self._settle(what, problems, broken=True)
            return
        if name != "SIGKILL":
            problems += message_wrong(name, code, returncode, err, self.state)
        if self.state.marks:
            self.tally.half_applied[name] += 1
            problems += refusal_wrong(self.ini, self.db, self.state, self.count, self.env)
        self.tally.tried[name] += 1
        self.tally.resumed += resume
        self.tally.held[name] += self._settle(what, problems, broken)

    def _settle(self, what: str, problems: list[str], broken: bool) -> bool:
        """Whether the trial held; if not, the failure is kept, and where the database itself
        disagrees (which can stop every later run) the trials go on from an empty one."""
        if not problems:
            return True
        self.fail(what, problems)
        if broken:
            self.db.recreate()
            self.state = inspect_state(self.db, self.count)
        return False

    def _to_head_and_base(self) -> None:
        """Finish the history (resuming if need be), then take the database back to base."""
        for args in (["upgrade", "--resume"] if self.state.marks else ["upgrade"],
                     ["downgrade", "base"]):  # fmt: skip
            done = run(migrasafe(self.ini, self.db.url, *args), self.env)
            self.state = inspect_state(self.db, self.count)
            problems = disagreements(self.db, self.state, self.count)
            wanted = self.count if args[0] == "upgrade" else 0
            if done.returncode != 0 or self.state.version != wanted:
                problems.append(f"exit {done.returncode}: {said(done.stderr)[-400:]}")
            if not self._settle(" ".join(args), problems, broken=True):
                return

    def _learn(self, child: Child) -> None:
        """One revision's time, as the runs so far report it (the delays scale with it)."""
        times = sorted(child.started.values())
        if len(times) >= 3:
            gaps = sorted(b - a for a, b in itertools.pairwise(times))
            self.revision_seconds = gaps[len(gaps) // 2]

    def finish(self) -> None:
        """A last upgrade (resuming if need be) reaches head, and everything agrees."""
        args = ["upgrade", "--resume"] if self.state.marks else ["upgrade"]
        done = run(migrasafe(self.ini, self.db.url, *args), self.env)
        self.state = inspect_state(self.db, self.count)
        problems = disagreements(self.db, self.state, self.count)
        problems += status_lies(self.ini, self.db, self.state, self.count, self.env)
        if done.returncode != 0 or self.state.version != self.count:
            problems.append(f"exit {done.returncode}: {said(done.stderr)[-400:]}")
        self.tally.final = not problems
        if problems:
            self.fail(f"final {' '.join(args)}", problems)


def run_database(db: Database, ini: Path, args: argparse.Namespace, seed: int,
                 env: dict[str, str]) -> Tally:  # fmt: skip
    trials = Trials(db, ini, args.revisions, args.pause, random.Random(seed), env)
    plan = ["SIGKILL"] * args.trials + ["SIGINT", "SIGTERM"] * args.signals
    random.Random(seed + 1).shuffle(plan)  # signals interleaved, so each meets every state
    numbers = dict.fromkeys(SIGNALS, 0)
    for name in plan:
        numbers[name] += 1
        attempts = 0
        while trials.tally.tried[name] < numbers[name] and attempts < 10:
            trials.trial(name, numbers[name])
            attempts += 1
        print(f"  {db.name} {name} #{numbers[name]}: version "
              f"{rev(trials.state.version)}, marks {[rev(n) for n in trials.state.marks]}",
              flush=True)  # fmt: skip
    trials.finish()
    return trials.tally


def _backend(url: str | None) -> str:
    return sa.make_url(url).get_backend_name() if url else "sqlite"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg", metavar="URL", default=os.environ.get("MIGRASAFE_BENCH_PG"),
                        help="a PostgreSQL server, admin URL (default: $MIGRASAFE_BENCH_PG; "
                        "none: no PostgreSQL trials)")  # fmt: skip
    parser.add_argument("--mysql", metavar="URL",
                        default=os.environ.get("MIGRASAFE_BENCH_MYSQL"),
                        help="a MariaDB or MySQL server, admin URL (default: "
                        "$MIGRASAFE_BENCH_MYSQL; none: no MariaDB trials)")  # fmt: skip
    parser.add_argument("--trials", type=int, default=30, help="SIGKILLs per database (default 30)")
    parser.add_argument(
        "--signals",
        type=int,
        default=10,
        help="SIGINTs and SIGTERMs, each, per database (default 10)",
    )
    parser.add_argument(
        "--revisions", type=int, default=40, help="revisions in the generated history (default 40)"
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.02,
        help="seconds before each statement of a revision (default 0.02)",
    )
    parser.add_argument("--autocommit", default="sqlite,postgresql,mysql",
                        help="databases whose history has the autocommit_block revisions, "
                        "comma-separated (default: all; '' for none)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--only", action="append", choices=("sqlite", "postgresql", "mysql"),
                        help="run only these databases (repeatable)")  # fmt: skip
    args = parser.parse_args()
    servers: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.pg:
        servers.append(("PostgreSQL", args.pg))
    if args.mysql:
        servers.append(("MariaDB", args.mysql))
    if args.only:
        servers = [(n, u) for n, u in servers if _backend(u) in args.only]
    print(conditions([url for _, url in servers if url]))
    print(
        f"{args.revisions} revisions of {OPERATIONS} statements (every "
        f"{AUTOCOMMIT_EVERY}th with an autocommit_block on: {args.autocommit or 'none'}), "
        f"{args.pause * 1000:.0f} ms before "
        f"each and after the last; {args.trials} SIGKILLs, {args.signals} SIGINTs and "
        f"{args.signals} SIGTERMs per database, interleaved; seed {args.seed}",
        flush=True,
    )
    tallies: list[tuple[str, Tally]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "MIGRASAFE_PROGRESS_EVERY": "0",
               "MIGRASAFE_CACHE_DIR": str(root / "cache")}  # fmt: skip
        for index, (name, server) in enumerate(servers):
            autocommit = _backend(server) in args.autocommit.split(",")
            ini = make_history(root / f"project-{index}", args.revisions, args.pause, autocommit)
            with fresh_database(name, server, root / f"project-{index}") as db:
                db.autocommit = autocommit
                tally = run_database(db, ini, args, args.seed + index, env)
            tallies.append((name, tally))
    print()
    print(f"{'database':<12}" + "".join(f"{s + ' held/tried':>22}" for s in SIGNALS)
          + f"{'half-applied':>14}{'resumed':>9}{'final':>7}")  # fmt: skip
    for name, tally in tallies:
        cells = "".join(f"{tally.held[s]:>16}/{tally.tried[s]:<5}" for s in SIGNALS)
        marked = sum(tally.half_applied.values())
        print(f"{name:<12}{cells}{marked:>14}{tally.resumed:>9}"
              f"{'ok' if tally.final else 'FAIL':>7}")  # fmt: skip
    print(
        "half-applied: trials that left a revision's mark standing; resumed: trials that "
        "were an `upgrade --resume`; final: a last upgrade reached head, all agreeing"
    )
    failures = [f for _, tally in tallies for f in tally.failures]
    for failure in failures:
        print(f"DID NOT HOLD: {failure}")
    if failures:
        print("What disagreed, by kind (problems, not trials):")
        for what, times in sum((t.kinds for _, t in tallies), Counter()).most_common():
            print(f"- {times} x {what}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
