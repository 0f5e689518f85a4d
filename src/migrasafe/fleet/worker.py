"""One target's work, in a worker process: load the project for it, call the library.

Each worker is a process of its own (Alembic is not thread-safe, and ``env.py``
and revisions keep module state); it serves one target after another, so the
imports of Alembic, SQLAlchemy and the project are paid once per worker, not
once per target. A target's migration is :func:`migrasafe.deploy.migrate.upgrade`
as for a single database: under migrasafe's lock on that target, with its
checksums and its half-applied notes.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from migrasafe.db.urls import describe_error, redact, scrub
from migrasafe.errors import MigrasafeError, MigrationFailed, Terminated, interrupt
from migrasafe.fleet.report import Record
from migrasafe.fleet.targets import Target
from migrasafe.project.settings import DeploySettings

ACTIONS = ("status", "upgrade", "downgrade", "verify", "lint")


@dataclass(frozen=True)
class Job:
    """What every target of the run gets: the action, its goal, the project's options."""

    action: str
    goal: str | None = None  # upgrade/downgrade's target revision
    config: tuple[str, ...] = ()
    name: str = "alembic"
    app: str | None = None
    x_args: tuple[str, ...] = ()
    lock_timeout: float = 600.0
    deploy: DeploySettings | None = None
    rows: int = 20  # verify
    seed: int = 0
    dialect: str | None = None  # lint
    quiet: bool = True


Step = Callable[[int, int, str], None]


def run_target(job: Job, target: Target, step: Step | None = None) -> Record:
    """Run ``job`` on ``target``; every error becomes the record's, without a password."""
    from migrasafe.project.config import load_project

    start = time.monotonic()
    shown = target.display_url

    def record(state: str, **fields: Any) -> Record:
        error = fields.pop("error", None)
        if error is not None:
            error = scrub(" ".join(str(error).split()), target.url)
        return Record(target.name, shown, state, seconds=time.monotonic() - start,
                      error=error, **fields)  # fmt: skip

    try:
        project = load_project(job.config or None, target.url, x_args=(*job.x_args,
                               *target.x_args), name=job.name, app=job.app)  # fmt: skip
        return record(**_act(job, project, step))
    except MigrationFailed as exc:
        result = exc.result
        before = getattr(result, "before", None)
        after = getattr(result, "after", None)
        steps = len(getattr(result, "steps", ()) or ())
        return record("failed", before=before, after=after, steps=steps, error=exc.message)
    except MigrasafeError as exc:  # Interrupted (SIGTERM) too: where the target stopped
        result = getattr(exc, "result", None)
        before, after = getattr(result, "before", None), getattr(result, "after", None)
        return record("failed", before=before, after=after, error=exc.message)
    except Exception as exc:  # a bug in env.py, a revision, or migrasafe: this target's only
        return record("failed", error=describe_error(exc, target.url))


def _act(job: Job, project: Any, step: Step | None) -> dict[str, Any]:
    """The library call for the action, as ``Record`` fields."""
    if job.action in ("upgrade", "downgrade"):
        import migrasafe.deploy.migrate as migrate

        run = migrate.upgrade if job.action == "upgrade" else migrate.downgrade
        result = run(project, job.goal or "head", lock_timeout=job.lock_timeout,
                     deploy=job.deploy, progress=step)  # fmt: skip
        state = "done" if result.steps else "unchanged"
        return {"state": state, "before": result.before, "after": result.after,
                "steps": len(result.steps)}  # fmt: skip
    if job.action == "status":
        from migrasafe.commands.status import status

        found = status(project)
        stopped = found.half_applied or found.half_reverted  # pending too, but worse
        state = "pending" if found.pending and not stopped else "ok" if found.ok else "attention"
        problem = None
        if state == "attention":
            names = ("unknown", "modified", "unverified", "half_applied", "half_reverted")
            problem = "; ".join(f"{n.replace('_', '-')}: {len(getattr(found, n))}"
                                for n in names if getattr(found, n))  # fmt: skip
        elif state == "pending":
            problem = f"{len(found.pending)} pending: {', '.join(found.pending)}"
        return {"state": state, "before": found.current, "after": found.heads,  # what upgrade does
                "error": problem, "detail": found.to_dict()}  # fmt: skip
    report: Any
    if job.action == "verify":
        from migrasafe.checks.verify import verify

        report = verify(project, rows=job.rows, seed=job.seed)
    else:
        from migrasafe.checks.lint import lint

        report = lint(project, dialect=job.dialect)
    errors = [f for f in report.findings if f.severity == "error"]
    problem = (
        f"{len(errors)} error(s); first: [{errors[0].rule}] {errors[0].message}" if errors else None
    )
    return {"state": "done" if report.ok else "failed", "error": problem,
            "detail": report.to_dict()}  # fmt: skip


def _terminate(_signum: int, _frame: object) -> None:
    raise interrupt(Terminated())  # raised again at the next step if a destructor swallows it


def _stepper(connection: Connection, name: str) -> Step:
    def step(index: int, total: int, item: str) -> None:
        connection.send(("step", name, index, total, item))

    return step


def serve(connection: Connection, quiet: bool) -> None:
    """A worker's life: receive ``(job, target)``, send ``("step", ...)`` lines while it
    runs and ``("done", record)`` at the end; ``None`` or a closed pipe ends it.

    SIGTERM unwinds the migration under way as in the single-database command
    (its revision rolls back, its lock is released); SIGINT is the parent's to handle.
    """
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the parent decides
    if quiet:
        logging.disable(logging.INFO)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job, target = message
        try:
            record = run_target(job, target, _stepper(connection, target.name))
        except KeyboardInterrupt:  # SIGTERM from the parent: say where the target stopped
            record = Record(target.name, redact(target.url), "failed",
                            error="interrupted: the run was stopped")  # fmt: skip
            connection.send(("done", target.name, record))
            return
        connection.send(("done", target.name, record))
