"""The scheduler: targets to worker processes, canaries first, stopping when told to.

Up to ``parallel`` worker processes (the ``spawn`` start method: a fresh
interpreter each, nothing inherited from the parent's state) each take one
target at a time. A worker that dies (SIGKILL, out of memory) fails only its
own target, whose database keeps what its last committed revision left; a new
worker takes its place. When a target fails the run stops starting new ones
(unless ``keep_going``) and lets those under way finish, so no other target is
left half-migrated; targets never started are ``skipped``. A rerun is a resume:
a target already at the goal is ``unchanged`` and costs one read.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from migrasafe.errors import ConfigError, Interrupted, Terminated, caught
from migrasafe.fleet.report import FleetReport, Record
from migrasafe.fleet.targets import Target
from migrasafe.fleet.worker import ACTIONS, Job, serve

# ("start", name, None) | ("step", name, (index, total, revision)) | ("done", name, Record)
Event = Callable[[str, str, Any], None]
STOP_GRACE = 60.0  # seconds a stopped worker gets to roll back and release its lock


@dataclass
class _Worker:
    process: Any  # multiprocessing's SpawnProcess
    connection: Connection
    target: Target | None = None
    started: float = 0.0


@dataclass
class _Run:
    job: Job
    parallel: int
    on_event: Event
    workers: list[_Worker] = field(default_factory=list)
    records: dict[str, Record] = field(default_factory=dict)
    stopped: str | None = None

    def spawn(self) -> _Worker:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, self.job.quiet), daemon=True,
                                  name="migrasafe-fleet-worker")  # fmt: skip
        process.start()
        theirs.close()
        worker = _Worker(process, mine)
        self.workers.append(worker)
        return worker

    def stage(self, targets: Sequence[Target], stop_on_failure: bool, label: str) -> None:
        """Run ``targets``; on a failure (when stopping), start no more of them."""
        queue = deque(targets)
        while queue or self.busy():
            while queue and self.stopped is None:
                worker = self.idle()
                if worker is None:
                    break
                target = queue.popleft()
                worker.target, worker.started = target, time.monotonic()
                self.on_event("start", target.name, None)
                worker.connection.send((self.job, target))
            if not self.busy():
                break
            self.receive(stop_on_failure, label)

    def busy(self) -> list[_Worker]:
        return [w for w in self.workers if w.target is not None]

    def idle(self) -> _Worker | None:
        for worker in self.workers:
            if worker.target is None:
                return worker
        return self.spawn() if len(self.workers) < self.parallel else None

    def receive(self, stop_on_failure: bool, label: str) -> None:
        busy = self.busy()
        ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
        for worker in busy:
            if worker.connection in ready or worker.process.sentinel in ready:
                self.read(worker, stop_on_failure, label)

    def read(self, worker: _Worker, stop_on_failure: bool, label: str) -> None:
        target = worker.target
        assert target is not None
        closed = False
        try:
            while worker.connection.poll():
                kind, name, *rest = worker.connection.recv()
                if kind == "step":
                    self.on_event("step", name, tuple(rest))
                    continue
                self.finish(worker, rest[0], stop_on_failure, label)
                return
        except (EOFError, OSError):
            closed = True
        if not closed and worker.process.is_alive():
            return  # steps so far; the record comes later
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit code {code}")  # fmt: skip
        record = Record(target.name, target.display_url, "failed",
                        seconds=time.monotonic() - worker.started,
                        error=f"the worker process died ({how}) while running this target; "
                        "each revision commits or rolls back whole, so the database is at its "
                        "last committed revision: rerun to resume")  # fmt: skip
        self.workers.remove(worker)
        worker.connection.close()
        worker.target = None
        self.finish(worker, record, stop_on_failure, label)

    def finish(self, worker: _Worker, record: Record, stop_on_failure: bool, label: str) -> None:
        worker.target = None
        self.records[record.target] = record
        self.on_event("done", record.target, record)
        if record.state == "failed" and stop_on_failure and self.stopped is None:
            self.stopped = f"{label} {record.target} failed"

    def interrupt(self) -> None:
        """Stop the targets under way (their revision rolls back, their lock is released)."""
        self.stopped = self.stopped or "interrupted"
        for worker in self.busy():
            worker.process.terminate()  # SIGTERM: unwinds as a single upgrade does
        deadline = time.monotonic() + STOP_GRACE
        while self.busy() and time.monotonic() < deadline:
            try:
                self.receive(False, "")
            except KeyboardInterrupt:
                continue

    def close(self) -> None:
        for worker in self.workers:
            with suppress(OSError, ValueError):  # a worker that died has no pipe left
                worker.connection.send(None)
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
        self.workers.clear()


def run_fleet(
    job: Job,
    targets: Sequence[Target],
    *,
    parallel: int = 1,
    canary: int = 0,
    keep_going: bool = False,
    on_event: Event | None = None,
) -> FleetReport:
    """Run ``job`` on every target: ``canary`` targets first (all must succeed), then the
    rest, ``parallel`` at a time; a failure stops the run unless ``keep_going``."""
    if job.action not in ACTIONS:
        raise ConfigError(f"unknown fleet action {job.action!r}: expected {', '.join(ACTIONS)}")
    if parallel < 1:
        raise ConfigError(f"--parallel {parallel}: expected at least 1 worker process")
    if canary < 0:
        raise ConfigError(f"--canary {canary}: expected 0 or more targets")
    started = time.monotonic()
    run = _Run(job, parallel, on_event or (lambda _kind, _name, _data: None))
    first, rest = list(targets[:canary]), list(targets[canary:])
    try:
        if first:
            run.stage(first, stop_on_failure=True, label="canary")
            if run.stopped is not None and rest:
                run.stopped += f": the other {len(rest)} target(s) were not started"
        if run.stopped is None:
            run.stage(rest, stop_on_failure=not keep_going, label="target")
    except KeyboardInterrupt as exc:
        caught()
        run.interrupt()
        report = _report(job, targets, run, started)
        signal_name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        done = sum(1 for r in report.records if r.state in ("done", "unchanged"))
        interrupted = Interrupted(
            f"fleet {job.action} interrupted by {signal_name}: {done} target(s) finished, "
            f"the ones under way were stopped (each rolled back its current revision), "
            f"{report.counts.get('skipped', 0)} not started",
            terminated=isinstance(exc, Terminated),
        )
        interrupted.result = report
        raise interrupted from exc
    finally:
        run.close()
    return _report(job, targets, run, started)


def _report(job: Job, targets: Sequence[Target], run: _Run, started: float) -> FleetReport:
    records = tuple(
        run.records.get(t.name) or Record(t.name, t.display_url, "skipped") for t in targets
    )
    return FleetReport(job.action, job.goal, records, time.monotonic() - started, run.stopped)
