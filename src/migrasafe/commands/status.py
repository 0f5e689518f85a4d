"""``status``: where the database stands, read from the database itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrasafe.deploy.records import Modified

if TYPE_CHECKING:  # Status serves the lean path too (migrasafe.commands.lean): no SQLAlchemy here
    from migrasafe.project.config import Project
    from migrasafe.project.env import EnvContext


@dataclass(frozen=True)
class Found:
    """One operation of a half-applied revision, and whether its effect is in the database
    (None: cannot tell, as for raw SQL)."""

    revision: str
    operation: str
    present: bool | None

    def to_dict(self) -> dict[str, object]:
        return {"revision": self.revision, "operation": self.operation, "present": self.present}


@dataclass(frozen=True)
class Status:
    """What the database has applied compared with what the scripts define.

    ``pending`` is in the order ``upgrade`` would apply it; ``unknown`` lists
    revisions recorded in the database that no script defines (a script was
    deleted, or the database was migrated from another branch of the code);
    ``modified`` lists applied revisions whose script was edited afterwards;
    ``unverified`` those applied without a recorded checksum (by plain
    Alembic, or the record was deleted): nothing says their scripts are the
    ones that ran, until ``accept`` records them. They are a note, not a
    failure (a database migrated by plain Alembic adopting migrasafe has
    nothing but), unless ``strict``.
    """

    url: str
    version_table: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: tuple[str, ...]
    modified: tuple[Modified, ...] = field(default_factory=tuple)
    unverified: tuple[str, ...] = ()
    # stopped midway (killed, or failed) after committing part of their work: their
    # mark stands (see migrasafe.deploy.checksums.mark_started); ``found``: their operations
    half_applied: tuple[str, ...] = ()
    half_reverted: tuple[str, ...] = ()  # the same, in a downgrade: still applied, in part
    found: tuple[Found, ...] = ()
    under_way: bool = False  # a run holds the migration lock: a half-applied one may be its own
    strict: bool = False  # unverified revisions fail the status too

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.unknown

    @property
    def ok(self) -> bool:
        """Nothing to apply or unknown, no applied script edited; if ``strict``, none unverified."""
        return (
            self.up_to_date
            and not self.modified
            and not self.half_applied
            and not self.half_reverted
            and not (self.strict and self.unverified)
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "version_table": self.version_table,
            "current": list(self.current),
            "heads": list(self.heads),
            "pending": list(self.pending),
            "unknown": list(self.unknown),
            "modified": [m.to_dict() for m in self.modified],
            "unverified": list(self.unverified),
            "half_applied": list(self.half_applied),
            "half_reverted": list(self.half_reverted),
            "half_applied_operations": [f.to_dict() for f in self.found],
            "under_way": self.under_way,
            "up_to_date": self.up_to_date,
            "strict": self.strict,
            "ok": self.ok,
        }


def status(project: Project, *, strict: bool = False) -> Status:
    """Compare the revisions recorded in the database with the script directory.

    ``strict``: unverified revisions make the status fail (``ok`` false).
    """
    from migrasafe.deploy.checksums import modified, read_state
    from migrasafe.project.graph import applied, apply_order, is_defined

    script = project.graph
    context, recorded, failed = read_state(project)
    current = context.heads
    done = applied(script, current)
    half_applied = tuple(f.revision for f in failed if f.revision not in done)
    half_reverted = tuple(f.revision for f in failed if f.revision in done)
    found, under_way = _found(project, context, half_applied, half_reverted)
    return Status(
        url=context.display_url,
        version_table=context.qualified_version_table,
        current=current,
        heads=tuple(script.get_heads()),
        pending=tuple(s.revision for s in apply_order(script) if s.revision not in done),
        unknown=tuple(rev for rev in current if not is_defined(script, rev)),
        modified=tuple(modified(script, current, recorded)),
        half_applied=half_applied,
        half_reverted=half_reverted,
        found=found,
        under_way=under_way,
        unverified=tuple(
            s.revision
            for s in apply_order(script)
            if s.revision in done and s.revision not in recorded and s.revision not in half_reverted
        ),
        strict=strict,
    )


def judged(done: list[Any]) -> list[Any]:
    """Which of a revision's recorded operations (lint's ``Recorded``) status judges: SQL
    read into operations is judged by them, SQL that reads into none (INSERT, UPDATE) is
    listed itself (--resume runs it again); COMMIT, SET and LOCK TABLE have no lasting
    effect of their own to look for."""
    from alembic.operations.ops import MigrateOperation

    from migrasafe.checks.lint.sql import Statement

    kept = []
    for index, each in enumerate(done):
        read = each.read_sql and index + 1 < len(done) and done[index + 1].from_sql
        said = isinstance(each.operation, Statement) and each.operation.kind in (
            "transaction", "set", "lock")  # fmt: skip
        if isinstance(each.operation, MigrateOperation) and not read and not said:
            kept.append(each)
    return kept


def _found(
    project: Project, context: EnvContext, applying: tuple[str, ...], reverting: tuple[str, ...]
) -> tuple[tuple[Found, ...], bool]:
    """Each operation of the half-applied revisions' upgrade() and the half-reverted ones'
    downgrade() (recorded offline, as lint does), judged against the live schema through
    ``env.py`` (a second read-only run); and whether a run holds the migration lock now
    (the revision may be under way, not stopped)."""
    if not applying and not reverting:
        return (), False
    from alembic.script import Script

    from migrasafe.checks.lint.operations import Offline
    from migrasafe.db.dialects import database_for
    from migrasafe.deploy.effects import describe, present
    from migrasafe.project.env import probe
    from migrasafe.project.graph import is_defined

    recorded: list[tuple[str, Any]] = []
    with Offline(project.config, project.script_directory, context.dialect) as offline:
        for revision, function in [*((r, "upgrade") for r in applying),
                                   *((r, "downgrade") for r in reverting)]:  # fmt: skip
            defined = is_defined(project.script, revision)
            found = project.script.get_revision(revision) if defined else None
            if isinstance(found, Script):
                record = offline.record(found, function)
                recorded += [(revision, each.operation) for each in judged(record.operations)]
                if record.error is not None:  # what it does past there is not known
                    where = f"line {record.error_line}" if record.error_line else "a point"
                    rest = (f"the rest of {function}() from {where}, not recorded without a "
                            f"database: {record.error}")  # fmt: skip
                    recorded.append((revision, rest))

    locks = database_for(context.url).locks
    locks.scope = context.version_table_schema

    def judge(migration: Any) -> tuple[tuple[Found, ...], bool]:
        connection = migration.connection
        found = tuple(
            Found(revision, operation, None) if isinstance(operation, str)
            else Found(revision, describe(operation), present(operation, connection))
            for revision, operation in recorded
        )  # fmt: skip
        return found, bool(locks.held(connection))

    return probe(project, judge)[1] or ((), False)
