"""``upgrade`` and ``downgrade``: Alembic's commands, reporting what really happened.

The revisions applied (or reverted) are read back from the database before and
after the run, so the report is the database's word, whatever ``env.py`` does.

Around Alembic's run, migrasafe adds what it lacks for deploys:

- a lock (:meth:`DialectSupport.migration_lock`), so concurrent runs take
  turns, and the one that waited finds nothing left to do;
- transactional DDL on SQLite, so a failed migration leaves none of its
  changes behind (PostgreSQL's DDL already is);
- a checksum of each applied script (:mod:`migrasafe.checksums`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from alembic import command
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script

from . import checksums
from .config import Project, alembic_errors
from .database import Waiting, connect, describe_error, redact, support_for
from .errors import MigrasafeError, MigrationFailed
from .graph import applied, apply_order

Direction = Literal["upgrade", "downgrade"]


@dataclass(frozen=True)
class Step:
    revision: str
    message: str


@dataclass(frozen=True)
class MigrationResult:
    direction: Direction
    target: str
    url: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: tuple[Step, ...] = field(default_factory=tuple)
    sql: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "target": self.target,
            "url": self.url,
            "before": list(self.before),
            "after": list(self.after),
            "steps": [{"revision": s.revision, "message": s.message} for s in self.steps],
            "sql": self.sql,
        }


LOCK_TIMEOUT = 600.0


def upgrade(
    project: Project,
    target: str = "head",
    *,
    sql: bool = False,
    lock_timeout: float = LOCK_TIMEOUT,
    waiting: Waiting | None = None,
) -> MigrationResult:
    """Apply revisions up to ``target`` (``head``, an id, or relative like ``+1``).

    ``waiting`` is told, once, when another run holds the migration lock.
    """
    if sql:
        return _offline(project, "upgrade", target, command.upgrade)
    return _run(project, "upgrade", target, lock_timeout, waiting)


def downgrade(
    project: Project,
    target: str,
    *,
    sql: bool = False,
    lock_timeout: float = LOCK_TIMEOUT,
    waiting: Waiting | None = None,
) -> MigrationResult:
    """Revert revisions down to ``target`` (an id, ``base``, or relative like ``-1``)."""
    if sql:
        return _offline(project, "downgrade", target, command.downgrade)
    return _run(project, "downgrade", target, lock_timeout, waiting)


def _run(
    project: Project,
    direction: Direction,
    target: str,
    lock_timeout: float,
    waiting: Waiting | None,
) -> MigrationResult:
    script = project.script
    url = redact(project.url)
    support = support_for(project.url)
    with support.migration_lock(lock_timeout, waiting), support.transactional_ddl():
        before = project.current_heads()  # read under the lock: another run may have moved it
        plan = _plan(project, direction, target, before)
        try:
            with alembic_errors():
                _migrate(project, direction, target)
        except MigrasafeError:
            raise
        except Exception as exc:
            after = project.current_heads()
            changed = _changed(project, before, after)
            failed = next((s for s in plan if s.revision not in changed), None)
            where = (
                f"revision {failed.revision} ({failed.doc})" if failed else f"{direction} {target}"
            )
            raise MigrationFailed(
                f"{direction} failed at {where}: {describe_error(exc, project.url)}; "
                f"the database is now at {', '.join(after) or 'base'}",
                revision=failed.revision if failed else None,
            ) from exc
        after = project.current_heads()
        changed = _changed(project, before, after)
    order = apply_order(script)
    if direction == "downgrade":
        order.reverse()
    steps = tuple(Step(s.revision, s.doc or "") for s in order if s.revision in changed)
    return MigrationResult(direction, target, url, before, after, steps)


def _migrate(project: Project, direction: Direction, target: str) -> None:
    """What ``alembic.command.upgrade``/``downgrade`` do, on the scripts already loaded.

    Alembic's commands load the script directory again, importing every
    revision file a second time; on a long history that doubles the cost.
    """
    script = project.script

    def steps(rev: Any, _context: Any) -> Any:
        if direction == "upgrade":
            return script._upgrade_revs(target, rev)
        return script._downgrade_revs(target, rev)

    with EnvironmentContext(project.config, script, fn=steps, as_sql=False,
                            starting_rev=None, destination_rev=target):  # fmt: skip
        script.run_env()


def _changed(project: Project, before: tuple[str, ...], after: tuple[str, ...]) -> set[str]:
    """The revisions applied or reverted between two readings; their checksums are updated."""
    script = project.script
    was, now = applied(script, before), applied(script, after)
    if was != now:
        with connect(project.url) as connection, connection.begin():
            checksums.record(connection, project,
                             [script.get_revision(r) for r in sorted(now - was)],
                             sorted(was - now))  # fmt: skip
    return was ^ now


def _plan(
    project: Project, direction: Direction, target: str, current: tuple[str, ...]
) -> list[Script]:
    """The scripts Alembic will run, in order (resolves ``head``, ``-1``, ...)."""
    script = project.script
    with alembic_errors():
        if direction == "upgrade":
            revs = script.iterate_revisions(target, current, implicit_base=True)
            return [s for s in reversed(list(revs)) if isinstance(s, Script)]
        revs = script.iterate_revisions(current, target, select_for_downgrade=True)
        return [s for s in revs if isinstance(s, Script)]


def _offline(
    project: Project, direction: Direction, target: str, run: Callable[..., None]
) -> MigrationResult:
    """``--sql``: capture the SQL Alembic would run; the database is not touched.

    Alembic needs a starting point for an offline downgrade (``0003:0002``);
    given only a target, the start is read from the database.
    """
    before: tuple[str, ...] = ()
    if direction == "downgrade" and ":" not in target:
        before = project.current_heads()
        if len(before) != 1:
            raise MigrasafeError(
                f"downgrade --sql needs a start: the database is at "
                f"{', '.join(before) or 'base'}; pass FROM:TO, e.g. 0003:0002"
            )
        target = f"{before[0]}:{target}"
    buffer = io.StringIO()
    project.config.output_buffer = buffer
    try:
        with alembic_errors():
            run(project.config, target, sql=True)
    except MigrasafeError:
        raise
    except Exception as exc:
        raise MigrasafeError(
            f"cannot render the SQL for {direction} {target}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        project.config.output_buffer = None
    return MigrationResult(
        direction, target, redact(project.url), before, before, sql=buffer.getvalue()
    )
