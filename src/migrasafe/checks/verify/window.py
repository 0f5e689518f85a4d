"""Several revisions in one run of ``env.py``: its connection, its transaction.

One run instead of one per revision saves a connection, the version table's
checks and, on SQLite, a read of the whole schema. Each revision is reseeded
and round-tripped on ``env.py``'s own connection, read back between steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import Script
from sqlalchemy.engine import Connection

from migrasafe.checks.verify.roundtrip import RoundTrips
from migrasafe.checks.verify.snapshot import (
    Rows,
    Schema,
)
from migrasafe.checks.verify.state import release
from migrasafe.errors import MigrasafeError, reraise_interrupts

# Revisions that share one run of env.py; a failure walks them again.
WINDOW = 50


def commits_itself(revision: Script) -> bool:
    """Whether a revision commits in the middle of a run (``autocommit_block()`` for CREATE
    INDEX CONCURRENTLY, ``op.get_bind().commit()``): what it did before stays when a later
    step of a shared run fails and the run is rolled back, so it goes step by step, in runs
    of its own, as separate Alembic commands would run it (pypi/warehouse's 1b97443dea8a)."""
    try:
        text = Path(revision.path).read_text(errors="replace")
    except OSError:
        return True
    return "autocommit_block" in text or ".commit()" in text


class Windows(RoundTrips):
    """Revisions walked in windows, with the step-by-step walk for what fails there."""

    def _windowable(self, revision: Script) -> bool:
        """Whether ``revision`` can share a run of env.py with others (see :meth:`_window`).

        Declared revisions take their own path; so does every revision when
        locks are traced (one run of env.py per step).
        """
        rev = revision.revision
        return (self.batch and rev not in self.declared.irreversible
                and rev not in self.declared.before_revision_data
                and hasattr(revision.module, "downgrade")
                and not commits_itself(revision))  # fmt: skip

    def _window(
        self, connection: Connection, window: list[Script], dirty: set[str] | None, offset: int,
        total: int,
    ) -> tuple[int, set[str] | None, bool]:  # fmt: skip
        """Reseed and round-trip each revision of ``window`` in one run of env.py.

        Returns how many revisions were done, the tables to reseed next, and
        whether they stay done. One run instead of one per revision saves a
        connection, the version table's checks and, on SQLite, a read of the
        whole schema. When a step fails:

        - in one transaction, everything is undone and the verifier is as it
          was: the caller runs the revisions that passed again as a window,
          then the failing one on its own, which reports its failure;
        - with a transaction per step, the revisions that passed stay; a
          failing revision whose first step failed is left to the caller,
          one whose later step failed is judged here, as it stands;
        - where DDL commits at once (MySQL), a failing first step is judged
          here too: what it did before failing cannot be undone, and the
          caller would run it again on top of that.
        """
        saved = self._checkpoint()
        passed: list[set[str] | None] = []
        current: list[Any] = []  # the revision under way: its checkpoint, states, touched
        coverage = "data" if self.rows else "--rows 0: no generated rows"

        def steps(_heads: object, context: MigrationContext) -> Iterator[MigrationStep]:
            assert context.connection is not None
            nonlocal dirty
            for index, revision in enumerate(window):
                self._progress(offset + index + 1, total, revision.revision)
                states: list[tuple[Schema, dict[str, Rows]]] = []
                touched: list[set[str] | None] = []
                current[:] = [self._checkpoint(), states, touched]
                self._reseed(context.connection, dirty, revision, commit=False)
                states.append((self.schema, dict(self.data)))
                yield from self._three_steps(context, revision, states, touched)
                dirty = self._judge(revision, states, touched, coverage)
                passed.append(dirty)

        try:
            self._run_env(connection, steps)
        except MigrasafeError:
            self._restore(saved)
            raise
        except BaseException as failure:
            reraise_interrupts(failure)
            self.watch.active = False
            release(failure, collect=connection.dialect.name == "sqlite")
            if connection.in_transaction():
                connection.rollback()
            if not self.per_migration:
                self._restore(saved)
                return min(len(passed), len(window) - 1), None, False
            checkpoint, states, touched = current
            self.leftovers = True
            if not touched and not self.transactional:  # MySQL: its DDL so far stays
                self._refresh(connection, None)  # where it stands; running it again would fail
                self._without_data(connection, window[len(passed)], failure)  # on that instead
                return len(passed) + 1, None, True
            if not touched:  # its first step failed: the caller walks it on its own
                self._restore(checkpoint)
                self._refresh(connection, None)
                return len(passed), None, True
            self._part_committed(connection, window[len(passed)], states, touched, coverage)
            return len(passed) + 1, None, True
        return len(window), dirty, True
