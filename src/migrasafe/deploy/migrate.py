"""``upgrade`` and ``downgrade``: Alembic's commands, reporting what really happened.

The revisions applied (or reverted) are read back from the database before and
after the run, so the report is the database's word, whatever ``env.py`` does.

Around Alembic's run, migrasafe adds what it lacks for deploys:

- a lock (:meth:`~migrasafe.db.locks.Locks.migration_lock`), so concurrent runs take
  turns, and the one that waited finds nothing left to do;
- transactional DDL on SQLite, so a failed migration leaves none of its
  changes behind (PostgreSQL's DDL already is);
- a checksum of each applied script (:mod:`migrasafe.deploy.checksums`).
"""

from __future__ import annotations

import io
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from alembic.operations import AbstractOperations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import Script

from migrasafe.db.dialects import database_for, dialect_named
from migrasafe.db.locks import Waiting
from migrasafe.db.urls import describe_error, redact
from migrasafe.deploy import effects
from migrasafe.deploy.checksums import (
    REVERTING,
    Recorder,
    forget_stamped,
    read_marks,
)
from migrasafe.errors import (
    Interrupted,
    LockLost,
    MigrasafeError,
    MigrationFailed,
    RevisionError,
    Terminated,
    Unfinished,
    caught,
    check_interrupted,
    from_signal,
    reraise_interrupts,
)
from migrasafe.progress import Report
from migrasafe.project.config import Project
from migrasafe.project.env import Run, expect_url, probe, run_env
from migrasafe.project.graph import applied, bad_revision_id
from migrasafe.project.settings import DeploySettings

Direction = Literal["upgrade", "downgrade", "stamp"]


@dataclass(frozen=True)
class Step:
    revision: str
    message: str


@dataclass(frozen=True)
class Skipped:
    """An operation ``upgrade --resume`` did not run: its effect was already present."""

    revision: str
    operation: str


@dataclass(frozen=True)
class MigrationResult:
    """What a run did: the revisions applied (or reverted), read from Alembic's own hooks.

    ``failed`` names the revision that failed (with ``error``), when one did;
    ``steps`` then lists the revisions that ran before it and stayed.
    """

    direction: Direction
    target: str
    url: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: tuple[Step, ...] = field(default_factory=tuple)
    sql: str | None = None
    failed: str | None = None
    error: str | None = None
    skipped: tuple[Skipped, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "target": self.target,
            "url": self.url,
            "before": list(self.before),
            "after": list(self.after),
            "steps": [{"revision": s.revision, "message": s.message} for s in self.steps],
            "sql": self.sql,
            "failed": self.failed,
            "error": self.error,
            "skipped": [{"revision": s.revision, "operation": s.operation} for s in self.skipped],
        }


LOCK_TIMEOUT = 600.0


def upgrade(
    project: Project,
    target: str | tuple[str, ...] = "head",
    *,
    sql: bool = False,
    lock_timeout: float = LOCK_TIMEOUT,
    waiting: Waiting | None = None,
    deploy: DeploySettings | None = None,
    retrying: Waiting | None = None,
    progress: Report | None = None,
    resume: bool = False,
) -> MigrationResult:
    """Apply revisions up to ``target`` (``head``, an id, or relative like ``+1``).

    ``waiting`` is told, once, when another run holds the migration lock;
    ``deploy`` sets the database's lock and statement timeouts and how often
    a revision that waited too long for a lock is retried (``retrying`` is
    told each time); ``progress`` before each revision. Several targets (a tuple, as
    ``upgrade --phase`` plans on branches) are reached in one run, under one lock.

    A revision that stopped midway after committing part of its work (its
    mark stands: see :func:`~migrasafe.deploy.checksums.mark_started`) is
    not run again blindly: :class:`Unfinished` is raised before anything
    runs, unless ``resume``, which runs it skipping each operation whose
    effect is already in the database (:mod:`migrasafe.deploy.effects`).
    """
    targets = (target,) if isinstance(target, str) else tuple(target)
    if sql:
        return _offline(project, "upgrade", " ".join(targets))
    migration = _Migration(project, "upgrade", " ".join(targets), lock_timeout, waiting, deploy)
    migration.resume = resume
    if len(targets) > 1:
        for each in targets:
            check_target(project, each, "upgrade")
        migration.destinations = targets
    migration.progress = progress
    return migration.run(retrying)


def downgrade(
    project: Project,
    target: str,
    *,
    sql: bool = False,
    lock_timeout: float = LOCK_TIMEOUT,
    waiting: Waiting | None = None,
    deploy: DeploySettings | None = None,
    retrying: Waiting | None = None,
    progress: Report | None = None,
    resume: bool = False,
) -> MigrationResult:
    """Revert revisions down to ``target`` (an id, ``base``, or relative like ``-1``).

    Marked and refused, or resumed, as :func:`upgrade`'s revisions are.
    """
    if sql:
        return _offline(project, "downgrade", target)
    migration = _Migration(project, "downgrade", target, lock_timeout, waiting, deploy)
    migration.resume = resume
    migration.progress = progress
    return migration.run(retrying)


def stamp(
    project: Project,
    revisions: str | tuple[str, ...] = "head",
    *,
    sql: bool = False,
    purge: bool = False,
    tag: str | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    waiting: Waiting | None = None,
) -> MigrationResult:
    """Set the version table to ``revisions`` without running any migration, as ``alembic
    stamp``; under migrasafe's lock, and no checksum survives it (see ``forget_stamped``).

    The revisions stamped on are then unverified, as if plain Alembic had applied them.
    """
    targets = (revisions,) if isinstance(revisions, str) else tuple(revisions)
    if not targets:
        raise RevisionError("stamp needs a revision: an id, head, heads or base")
    for target in targets:
        check_target(project, target.rpartition(":")[2] if sql else target)
    target = " ".join(targets)
    if sql and purge:
        raise RevisionError("stamp --purge empties the version table, which --sql cannot show: "
                            "drop one of them")  # fmt: skip
    if sql:
        starts = {t.split(":", 1)[0] for t in targets if ":" in t}
        if len(starts) > 1:
            raise RevisionError("stamp --sql supports one starting revision at a time (FROM:TO)")
        destinations = tuple(t.rpartition(":")[2] for t in targets)
        return _offline(project, "stamp", target, destinations=destinations,
                        starting=next(iter(starts), None), tag=tag)  # fmt: skip
    migration = _Migration(project, "stamp", target, lock_timeout, waiting)
    migration.opts = {"destination_rev": targets, "purge": purge, "tag": tag}
    migration.destinations = targets
    return migration.run()


# Alembic's relative targets (+2, -1, 0003+1, head-2, branch@+1), read whole: Alembic itself
# matches only a prefix, so "+1a" and "+1.5" would move one revision.
_RELATIVE = re.compile(r"(?:(?P<branch>[^@]+)@)?(?P<base>\w+)?(?P<step>[+-]\d+)")


def _check_relative(target: str, direction: Direction | None) -> None:
    """A relative target is refused unless Alembic would read all of it, and go that way."""
    relative = target.rpartition("@")[2]
    if not re.search(r"[+-]\d", relative):  # "my-feature" is a branch label, not a step
        return
    match = _RELATIVE.fullmatch(target)
    if match is None:
        raise RevisionError(
            f"target {target!r} is not a revision: a relative step is +N or -N, after a "
            "revision, head or base if any (e.g. +1, -2, head-1, 0003+1)"
        )
    step, base = int(match["step"]), match["base"]
    if (base == "base" and step < 0) or (base in ("head", "heads") and step > 0):
        raise RevisionError(f"target {target!r} is {'below base' if step < 0 else 'past the head'}")
    if (
        base is None
        and direction in ("upgrade", "downgrade")
        and ((step < 0) == (direction == "upgrade"))
    ):
        other = "downgrade" if direction == "upgrade" else "upgrade"
        raise RevisionError(f"{direction} {target!r} would move the other way: use {other}")


def check_target(project: Project, target: str, direction: Direction | None = None) -> None:
    """Refuse a target Alembic would misread, before anything runs.

    Alembic reads ``abc@base`` with no branch ``abc`` as "everything down to
    base", and fails with bare AssertionErrors on ``""`` or ``@``: each is one
    clear error here instead, and the database does not move.
    """
    if not target.strip():
        raise RevisionError(
            "empty target: name a revision id, head, heads, base, or a relative step like +1 or -1"
        )
    _check_relative(target, direction)
    branch, at, rest = target.rpartition("@")
    if at:
        if not branch or not rest:
            raise RevisionError(f"target {target!r}: expected BRANCH@REVISION, e.g. mybranch@head")
        try:
            project.script.revision_map.get_revisions(branch)
        except Exception as exc:
            raise RevisionError(
                f"target {target!r} names {branch!r}, which is no branch label or revision; "
                "`migrasafe history` lists them"
            ) from exc


def _steps_to(
    project: Project,
    direction: Direction,
    target: str,
    destinations: tuple[str, ...] = (),
) -> Callable[[tuple[str, ...], MigrationContext], list[Any]]:
    """Alembic's own work function for upgrade/downgrade, on the scripts already loaded.

    Alembic's commands would load the script directory again, importing every
    revision file a second time; on a long history that doubles the cost. A
    target that cannot be resolved from the current heads (``+5`` past the
    head) is an error before any revision runs.
    """
    script = project.script
    if not destinations:  # stamp() and upgrade() checked each of theirs
        check_target(project, target, direction)

    def steps(heads: tuple[str, ...], _context: MigrationContext) -> list[Any]:
        current: Any = heads  # Alembic's own commands pass the heads tuple here too
        try:
            planned: list[Any]
            if direction == "stamp":
                planned = list(script._stamp_revs(destinations or (target,), current))
            elif direction == "upgrade":
                planned = list(script._upgrade_revs(destinations or target, current))  # type: ignore[arg-type]
            else:
                planned = list(script._downgrade_revs(target, current))
        except Exception as exc:  # Alembic's CommandError, or a bare AssertionError
            why = str(exc) or "Alembic cannot resolve it"
            raise RevisionError(
                f"cannot {direction} to {target!r} from {', '.join(heads) or 'base'}: {why}; "
                "`migrasafe history` lists the revisions"
            ) from exc
        for step in planned:  # before any SQL is sent: ids reach the version table's SQL
            if direction == "stamp":
                continue
            bad = bad_revision_id(step.info.up_revision_id)
            if bad is not None:
                raise RevisionError(f"{bad} ({step.revision.path}); nothing was migrated")
        return planned

    return steps


def _reported(steps: Iterable[Any], total: int, progress: Report) -> Iterator[Any]:
    for index, step in enumerate(steps, 1):
        progress(index, total, step.info.up_revision_id or "base")
        yield step


# Statements that change no schema, so commit only with their transaction.
_DATA = re.compile(r"\s*(?:SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH)\b", re.IGNORECASE)


def _doc(project: Project, revision: str) -> str:
    found = project.script.get_revision(revision)
    return (found.doc or "") if isinstance(found, Script) else ""


class _Migration:
    """One online run of ``env.py`` with migrasafe's hooks in the context it configures.

    When ``env.py`` calls ``context.configure(connection=...)``, migrasafe
    takes the migration lock on that connection's database (so the heads
    Alembic reads next are read under the lock) and adds its checksum
    recorder to ``on_version_apply``; every revision that completes is
    reported from that hook.
    """

    def __init__(self, project: Project, direction: Direction, target: str,
                 lock_timeout: float, waiting: Waiting | None,
                 deploy: DeploySettings | None = None) -> None:  # fmt: skip
        self.project, self.direction, self.target = project, direction, target
        self.lock_timeout, self.waiting = lock_timeout, waiting
        self.deploy = deploy or DeploySettings()
        self.locks = ExitStack()
        self.blockers: Callable[[], str | None] = lambda: None
        self.first: tuple[str, ...] | None = None  # the heads before the first attempt
        self.url = ""
        self.raw_url: Any = None
        self.done: list[Step] = []
        self.heads: tuple[str, ...] | None = None
        self.recorder = Recorder(project.script, check_marks=self._check_marks)
        self.run_now = Run()  # the attempt under way
        self.resume = False  # run marked revisions again, skipping what is present
        self.skipped: list[Skipped] = []
        self.transactional = True  # the database's DDL (False: MySQL, marks each revision)
        self.check_lock: Callable[[], None] = lambda: None
        self.expect = expect_url(project)
        self.opts: dict[str, Any] = {}  # for EnvironmentContext: stamp's purge and tag
        self.destinations: tuple[str, ...] = ()
        self.progress: Report | None = None

    def configure(self, kw: dict[str, Any]) -> dict[str, Any]:
        connection = kw.get("connection")
        if connection is None:
            return kw
        if self.expect is not None:
            kw = self.expect(kw)
        self.raw_url = connection.engine.url
        self.url = redact(self.raw_url)
        locks = database_for(self.raw_url).locks
        self.transactional = locks.sessions.ddl_is_transactional
        self.recorder.mark_each = not self.transactional
        if not self.transactional:  # each statement commits: only while the lock is ours
            sa.event.listen(connection, "before_cursor_execute", self._sending)
        locks.scope = kw.get("version_table_schema")  # a lock per tenant schema (fleets)
        self.check_lock = self.locks.enter_context(
            locks.migration_lock(self.lock_timeout, self.waiting)
        )
        deploy = self.deploy
        if deploy.db_lock_timeout is not None or deploy.statement_timeout is not None:
            fresh = not connection.in_transaction()
            locks.set_timeouts(connection, deploy.db_lock_timeout, deploy.statement_timeout)
            self.blockers = self.locks.enter_context(locks.blocker_watch(connection))
            if fresh:  # else Alembic would take the session for an external transaction
                connection.commit()
        callbacks = kw.get("on_version_apply") or ()
        callbacks = [callbacks] if callable(callbacks) else list(callbacks)
        kw["on_version_apply"] = [*callbacks, self.recorder, forget_stamped, self.applied]
        # Before each commit (each revision's, or the run's one): still ours to migrate?
        # Checked at the commit rather than after each revision: a run in one transaction
        # asks the lock's session once, not once per revision.
        sa.event.listen(connection, "commit", self._before_commit)
        self.locks.callback(sa.event.remove, connection, "commit", self._before_commit)
        return kw

    def _sending(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        """Where DDL commits at once, a run whose lock session ended must not send one more
        DDL statement: the run that took the lock over may be running the same revision.
        (Data statements wait for the commit, which is checked: see ``_before_commit``.)"""
        if self.run_now.running is not None and not _DATA.match(statement):
            self.check_lock()

    def _before_commit(self, _connection: Any) -> None:
        check_interrupted()
        self.check_lock()
        self.recorder.before_commit()

    def _check_marks(self, marks: dict[str, str], planned: list[Any]) -> None:
        """Before any revision runs: a planned one whose mark stands is refused, unless resumed
        or the revision says it is written to be run again (``resumable = True``, as a batched
        backfill that skips the rows it did); an upgrade past a half-reverted one too."""
        reverting = sorted(rev for rev, state in marks.items() if state == REVERTING)
        if reverting and self.direction == "upgrade" and planned:
            raise Unfinished(
                f"revision {reverting[0]} stopped midway through its downgrade in an earlier "
                "run, so its schema is part-reverted (`migrasafe status` lists what is "
                "present); finish it with `migrasafe downgrade --resume` to below it, or "
                f"repair the schema by hand and `migrasafe accept {reverting[0]}`, before "
                "upgrading past it; nothing was migrated"
            )
        stopped = [s.revision.revision for s in planned
                   if getattr(s, "revision", None) is not None
                   and s.revision.revision in marks
                   and getattr(s.revision.module, "resumable", False) is not True]  # fmt: skip
        if not stopped or self.resume:
            return
        where = (
            "this database commits DDL at once"
            if not self.transactional
            else "it had committed part of its work (an autocommit_block, or a commit of its own)"
        )
        verb = self.direction
        raise Unfinished(
            f"revision {stopped[0]} stopped midway through its {verb} in an earlier run "
            f"(killed, or it failed) and {where}, so some of its statements may have run while "
            "the version table does not say so; `migrasafe status` lists which are present. "
            f"Run `migrasafe {verb} --resume` to run it again skipping those whose effect is "
            "already there, or repair the schema by hand and "
            f"`migrasafe accept {stopped[0]}`; nothing was migrated"
        )

    @contextmanager
    def _resuming(self) -> Iterator[None]:
        """With ``resume``: each operation of a revision whose mark stood when the run began
        is skipped (and reported) when its effect is present; the others run. Alembic's
        ``invoke`` is where every ``op.*`` call becomes SQL (``op.batch_alter_table``'s too,
        before the batch is flushed)."""
        if not self.resume:
            yield
            return
        invoke = AbstractOperations.invoke

        def resumed(operations: AbstractOperations, operation: Any) -> Any:
            running = self.run_now.running
            revision = getattr(getattr(running, "revision", None), "revision", None)
            connection = operations.migration_context.connection
            if revision in self.recorder.standing and connection is not None:
                found = effects.present(operation, connection)
                if found is True:
                    self.skipped.append(Skipped(revision, effects.describe(operation)))
                    if isinstance(operation, ops.CreateTableOp):  # op.bulk_insert(t, ...)
                        return operation.to_table(operations.migration_context)
                    return None
                effects.clear_leftover(operation, operations)
            return invoke(operations, operation)

        AbstractOperations.invoke = resumed  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            AbstractOperations.invoke = invoke  # type: ignore[method-assign]

    def applied(self, *, ctx: Any, step: Any, heads: set[str], run_args: Any) -> None:
        """After each revision, before its commit: count it."""
        self.heads = tuple(sorted(heads))
        if not getattr(step, "is_stamp", False):
            rev = step.up_revision_id
            self.done.append(Step(rev, _doc(self.project, rev)))

    def run(self, retrying: Waiting | None = None) -> MigrationResult:
        """Run; a revision that hit the lock timeout or a deadlock is tried again.

        Each attempt runs ``env.py`` afresh from the database's current
        revision: with ``transaction_per_migration``, the revisions committed
        before stay and the retry resumes at the one that waited.
        """
        project = self.project
        plan = _steps_to(project, self.direction, self.target, self.destinations)

        def steps(heads: tuple[str, ...], context: MigrationContext) -> Any:
            planned = plan(heads, context)
            followed = self.recorder.follow(context, heads, planned)
            if self.progress is None:
                return followed
            return _reported(followed, len(planned), self.progress)

        for attempt in range(self.deploy.retries + 1):
            run = self.run_now = Run()
            self.locks, self.blockers = ExitStack(), lambda: None
            try:
                with self.locks, dialect_named("sqlite").sessions.transactional_ddl(), \
                        self._resuming():  # fmt: skip
                    run_env(project, steps, run=run, on_configure=self.configure, **self.opts)
            except KeyboardInterrupt as exc:
                if not from_signal(exc):  # raised by the revision itself: its failure
                    raise self._failure(run, exc) from exc
                caught()
                raise self._interrupted(run, exc) from exc
            except LockLost as exc:
                raise self._failure(run, exc) from exc
            except MigrasafeError:
                raise
            except BaseException as exc:  # SystemExit: a revision called sys.exit()
                reraise_interrupts(exc)
                blocked = self.raw_url is not None and (
                    database_for(self.raw_url).locks.is_lock_conflict(exc)
                )
                if not blocked or attempt == self.deploy.retries:
                    raise self._failure(run, exc, blocker=self.blockers() if blocked else None,
                                        attempts=attempt + 1) from exc  # fmt: skip
                self.first = run.heads if self.first is None else self.first
                self.done = self._kept(self.first)[0]  # what a rolled-back attempt did is gone
                # Where DDL commits at once, the blocked revision's statements before the one
                # that waited stayed (its mark says so): the next attempt resumes it.
                self.resume = self.resume or bool(self.recorder.marks)
                self._pause(run, attempt, retrying)
                continue
            before = run.heads if self.first is None else self.first
            after = self.heads if self.heads is not None else run.heads
            return MigrationResult(self.direction, self.target, self.url, before, after,
                                   tuple(self.done), skipped=tuple(self.skipped))  # fmt: skip
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _pause(self, run: Run, attempt: int, retrying: Waiting | None) -> None:
        """A jittered, growing pause before the next attempt, said in one line."""
        # Growing, but capped low: the blocker may end at any moment, and each
        # attempt costs the application at most one lock timeout of waiting.
        pause = min(0.5 * 2**attempt, 3.0) * random.uniform(0.75, 1.25)
        failed = run.running.info.up_revision_id if run.running is not None else "the run"
        who = self.blockers()
        if retrying is not None:
            retrying(
                f"revision {failed} could not get its lock within "
                f"{self.deploy.db_lock_timeout or 0:g} s"
                + (f", blocked by {who}" if who else "")
                + f"; retry {attempt + 1} of {self.deploy.retries} in {pause:.1f} s"
            )
        time.sleep(pause)

    def _interrupted(self, run: Run, exc: KeyboardInterrupt) -> Interrupted:
        """Ctrl-C or SIGTERM: which revision was under way, and where the database is now."""
        result, now = self._outcome(run, str(exc) or type(exc).__name__)
        signal_name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        where = f" during revision {result.failed}" if result.failed else ""
        interrupted = Interrupted(
            f"{self.direction} interrupted by {signal_name}{where}; {len(result.steps)} "
            f"revision(s) completed before it; the database is now at {now}"
            + self._left_midway(run, result.failed),
            terminated=isinstance(exc, Terminated),
        )
        interrupted.result = result
        return interrupted

    def _failure(self, run: Run, exc: BaseException, blocker: str | None = None,
                 attempts: int = 1) -> MigrationFailed:  # fmt: skip
        """The revision that failed, what ran before it and stayed, where the database is."""
        error = describe_error(exc, self.raw_url or "")
        if attempts > 1:
            error += f" (after {attempts} attempts)"
        if blocker:
            error += f"; blocked by {blocker}"
        result, now = self._outcome(run, error)
        failed = result.failed
        where = (f"revision {failed} ({_doc(self.project, failed)})" if failed
                 else f"{self.direction} {self.target}")  # fmt: skip
        ran = f" after {len(result.steps)} revision(s) ran" if result.steps else ""
        return MigrationFailed(
            f"{self.direction} failed at {where}{ran}: {result.error}; "
            f"the database is now at {now}" + self._left_midway(run, failed),
            revision=failed, result=result,
        )  # fmt: skip

    def _left_midway(self, run: Run, revision: str | None) -> str:
        """What to say of a revision that stopped with its mark standing (part of it committed).

        Read on a session of migrasafe's own; empty when the revision left nothing behind.
        """
        context = run.context
        if revision is None or self.raw_url is None or context is None or not self.recorder.marks:
            return ""
        sessions = database_for(self.raw_url).sessions
        try:
            engine, connection = sessions.own_session()
            try:
                with connection.begin():
                    marks = read_marks(connection, context.version_table,
                                       context.version_table_schema)  # fmt: skip
            finally:
                connection.close()
                engine.dispose()
        except Exception:  # the note explains; it never replaces the migration's error
            logging.getLogger(__name__).debug("cannot read the marks", exc_info=True)
            return ""
        if revision not in marks:
            return ""
        done = "part-applied" if self.direction == "upgrade" else "part-reverted"
        return (f"; revision {revision} was left {done} (some of its statements "
                f"committed): `migrasafe status` lists which, `migrasafe {self.direction} "
                f"--resume` finishes it")  # fmt: skip

    def _kept(self, before: tuple[str, ...]) -> tuple[list[Step], tuple[str, ...] | None]:
        """The steps done since ``before`` that the database still shows, and its heads now."""
        try:
            after: tuple[str, ...] | None = probe(self.project)[0].heads
        except Exception:
            return self.done, None
        script = self.project.script
        changed = applied(script, before) ^ applied(script, after or ())
        return [s for s in self.done if s.revision in changed], after

    def _outcome(self, run: Run, error: str) -> tuple[MigrationResult, str]:
        """The partial result of a run that stopped, read back from the database."""
        failed = run.running.info.up_revision_id if run.running is not None else None
        kept, after = self._kept(run.heads if self.first is None else self.first)
        if failed is not None and after is not None and self.direction != "stamp":
            # Stopped after the revision committed, before the next began: it is done.
            now_applied = failed in applied(self.project.script, after)
            if now_applied == (self.direction == "upgrade"):
                failed = None
        now = (", ".join(after) or "base") if after is not None else "unknown (cannot read it)"
        result = MigrationResult(self.direction, self.target, self.url, run.heads,
                                 after if after is not None else (), tuple(kept),
                                 failed=failed, error=error)  # fmt: skip
        return result, now


def _offline(project: Project, direction: Direction, target: str, *,
             destinations: tuple[str, ...] = (), starting: str | None = None,
             tag: str | None = None) -> MigrationResult:  # fmt: skip
    """``--sql``: the SQL Alembic would run, rendered by ``env.py``'s offline mode.

    Alembic needs a starting point for an offline downgrade (``0003:0002``);
    given only a target, the start is read from the database. A revision that
    fails to render is named, after the SQL rendered before it.
    """
    before: tuple[str, ...] = ()
    if direction == "downgrade" and ":" not in target:
        before = probe(project)[0].heads
        if len(before) != 1:
            raise MigrasafeError(
                f"downgrade --sql needs a start: the database is at "
                f"{', '.join(before) or 'base'}; pass FROM:TO, e.g. 0003:0002"
            )
        target = f"{before[0]}:{target}"
    destination = target
    if ":" in target and direction != "stamp":
        starting, destination = target.split(":", 1)
    buffer = io.StringIO()
    project.config.output_buffer = buffer
    run = Run()
    url = redact(project.configured_url or "")
    try:
        run_env(project, _steps_to(project, direction, destination, destinations), run=run,
                as_sql=True, starting_rev=starting, destination_rev=destinations or destination,
                tag=tag)  # fmt: skip
    except MigrasafeError:
        raise
    except Exception as exc:
        failed = run.running.info.up_revision_id if run.running is not None else None
        where = f"revision {failed}" if failed else f"{direction} {target}"
        error = f"{type(exc).__name__}: {exc}"
        result = MigrationResult(direction, target, url, before, before, sql=buffer.getvalue(),
                                 failed=failed, error=error)  # fmt: skip
        raise MigrationFailed(f"cannot render the SQL of {where}: {error}", revision=failed,
                              result=result) from exc  # fmt: skip
    finally:
        project.config.output_buffer = None
    return MigrationResult(direction, target, url, before, before, sql=buffer.getvalue())
