"""One revision's round trip, step by step: up, down, up, each in its own run of ``env.py``.

A failing upgrade does not end the walk. When it failed on the generated
rows, R is retried on empty tables; if that passes, the rows are generated
again shaped by the schema R leaves (the enum a column is cast to, the NOT
NULL it gains) and the round trip runs with data; if even those are refused,
R is checked on empty tables and reported (``data-not-checked``). Only a
revision that fails on empty tables stops its descendants.
"""

from __future__ import annotations

import linecache
from collections.abc import Iterator
from pathlib import Path

import alembic
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import Script
from sqlalchemy.engine import Connection

from migrasafe.checks.verify.compare import data_differences
from migrasafe.checks.verify.snapshot import (
    Rows,
    Schema,
)
from migrasafe.checks.verify.state import Step, StepFailed, WalkState, either_touched
from migrasafe.db.urls import describe_error


class RoundTrips(WalkState):
    """Round trips and what they find: restored or not, lost rows, a failing step."""

    def _round_trip(self, connection: Connection, revision: Script) -> set[str] | None:
        """Up, down, up again, step by step (a run of env.py each); returns the tables whose
        rows may have changed (None: all)."""
        schema_before, data_before = self.schema, dict(self.data)
        touched, failure = self._attempt(connection, revision, True, trace=True)
        if failure is not None:
            return self._without_data(connection, revision, failure)
        coverage = "data" if self.rows else "--rows 0: no generated rows"
        return self._reverse(connection, revision, schema_before, data_before, touched, coverage)

    def _attempt(
        self, connection: Connection, revision: Script, up: bool, trace: bool = False
    ) -> tuple[set[str] | None, BaseException | None]:
        """One step: (the tables it may have changed, None) or (None, why it failed)."""
        try:
            return self._step(connection, revision, up=up, trace=trace), None
        except StepFailed as exc:
            self.leftovers = True
            return None, exc.cause

    def _reverse(
        self,
        connection: Connection,
        revision: Script,
        schema_before: Schema,
        data_before: dict[str, Rows],
        touched: set[str] | None,
        coverage: str,
    ) -> set[str] | None:
        """From R applied: down, compare with before, up again, compare with the first up."""
        rev = revision.revision
        schema_after = self.schema
        if rev in self.declared.irreversible:
            self._irreversible(revision, "declared irreversible ([tool.migrasafe.verify])",
                               "declared irreversible: only its upgrade ran")  # fmt: skip
            return touched
        touched_down, failure = self._attempt(connection, revision, False)
        if failure is not None:
            self._down_failed(revision, failure)
            return None  # the database is still at R: its descendants can be checked
        self._compare_round_trip(revision, schema_before, data_before, self.schema, self.data)
        touched_again, failure = self._attempt(connection, revision, True)
        both = either_touched(touched, touched_down)
        if failure is not None:
            self._failed(revision, True, failure, " the second time", again=True)
            self._covered(rev, coverage, data_before, both)
            self.stuck.add(rev)  # back at its parent: the descendants cannot be reached
            return None
        when = "after upgrade, downgrade, upgrade, compared with the first upgrade"
        self._compare_schema(revision, schema_after, self.schema, "reapply-differs", when)
        self._covered(rev, coverage, data_before, both)
        return either_touched(both, touched_again)

    def _down_failed(self, revision: Script, failure: BaseException) -> None:
        """A downgrade that raised: irreversible when the revision says so (its own code
        raises NotImplementedError), else a failure. Either way it was never reverted."""
        if not hasattr(revision.module, "downgrade"):  # OpenStack's: no downgrades, by policy
            self._irreversible(revision, "it has no downgrade() function",
                               "it has no downgrade() function")  # fmt: skip
        elif _declared_irreversible(failure, revision):
            said = " ".join(str(failure).split())[:120]
            why = f"its downgrade raises {type(failure).__name__}" + (f" ({said})" if said else "")
            self._irreversible(revision, why, why)
        else:
            self._failed(revision, False, failure)
            self.upgrade_only[revision.revision] = "its downgrade failed"

    def _part_committed(
        self,
        connection: Connection,
        revision: Script,
        states: list[tuple[Schema, dict[str, Rows]]],
        touched: list[set[str] | None],
        coverage: str,
    ) -> None:
        """A round trip whose later step failed in a shared run of env.py, after the earlier
        steps committed: the failed step is run again the plain way, in a run of env.py of its
        own (as separate Alembic commands would run it), and only a failure there is reported.
        What a shared run keeps between steps (a MigrationContext's memo of the enum types it
        created, say) must never make a verdict."""
        self._refresh(connection, None)  # each step committed: read where it stands
        before, data_before = states[0]
        if len(touched) == 1:  # applied, and its downgrade failed: down (and up) again, plainly
            self._reverse(connection, revision, before, data_before, touched[0], coverage)
            return
        (after, _), (back, data_back) = states[1:3]
        self._compare_round_trip(revision, before, data_before, back, data_back)
        _, failure = self._attempt(connection, revision, True)
        both = either_touched(touched[0], touched[1])
        if failure is not None:
            self._failed(revision, True, failure, " the second time", again=True)
            self._covered(revision.revision, coverage, data_before, both)
            self.stuck.add(revision.revision)
            return
        when = "after upgrade, downgrade, upgrade, compared with the first upgrade"
        self._compare_schema(revision, after, self.schema, "reapply-differs", when)
        self._covered(revision.revision, coverage, data_before, both)

    def _compare_round_trip(
        self, revision: Script, before: Schema, data_before: dict[str, Rows],
        back: Schema, data_back: dict[str, Rows],
    ) -> None:  # fmt: skip
        """After the downgrade against before the upgrade: the schema, then the rows."""
        self._compare_schema(revision, before, back, "schema-not-restored",
                             "after the downgrade, compared with before the upgrade")  # fmt: skip
        for rule, table, column, message in data_differences(before, data_before, data_back, back):
            self._finding(rule, revision, message, table=table, column=column)

    def _irreversible(self, revision: Script, why: str, coverage: str) -> None:
        self._finding("irreversible", revision,
                      f"{revision.revision}: {why}, so its round trip was not checked; verify "
                      "goes on from it", severity="info")  # fmt: skip
        self.upgrade_only[revision.revision] = coverage

    def _without_data(
        self, connection: Connection, revision: Script, failure: BaseException
    ) -> set[str] | None:
        """The upgrade failed with generated rows: is it the rows, or the revision?"""
        rev = revision.revision
        if not any(self.data.values()):
            self._failed(revision, True, failure)
            self.not_checked[rev] = "its upgrade failed"
            return None
        if not self.transactional:  # MySQL: what ran before the failure stayed; start afresh
            broken = self._rebuilt_at(connection, self._heads(connection))
            if broken is not None:
                self._failed(revision, True, failure)
                self.not_checked[rev] = (f"its upgrade failed, and the scratch database could "
                                         f"not be rebuilt to retry it ({broken})")  # fmt: skip
                return None
        self._reseed(connection, None, revision, rows=0)
        schema_before = self.schema
        touched, again = self._attempt(connection, revision, True)
        if again is not None:
            self._failed(revision, True, failure, " (and on empty tables too)")
            self.not_checked[rev] = "its upgrade failed, even on empty tables"
            return None
        # R passes on empty tables: learn the schema it leaves, shape the rows to it, retry.
        hints = self._reflect(connection)
        _, down_failure = self._attempt(connection, revision, False)
        if down_failure is not None:
            return self._reverse(connection, revision, schema_before, dict(self.data), touched,
                                 "its upgrade refused the generated rows")  # fmt: skip
        self._reseed(connection, None, revision, hints=hints)
        schema_before, data_before = self.schema, dict(self.data)
        touched, refused = self._attempt(connection, revision, True, trace=True)
        if refused is None:
            return self._reverse(connection, revision, schema_before, data_before, touched, "data")
        self._finding(
            "data-not-checked", revision,
            f"the upgrade of {rev} fails on generated rows ({describe_error(refused, self.url)}), "
            "even on rows shaped by the schema it leaves, and passes on empty tables: only its "
            "schema was checked. Make sure the rows production holds can take it, or declare "
            "rows for it (before_revision_data)", severity="warning",
        )  # fmt: skip
        self._reseed(connection, None, revision, rows=0)
        schema_before = self.schema
        touched, _ = self._attempt(connection, revision, True)
        return self._reverse(connection, revision, schema_before, dict(self.data), touched,
                             "its upgrade refused the generated rows")  # fmt: skip

    def _three_steps(
        self,
        context: MigrationContext,
        revision: Script,
        states: list[tuple[Schema, dict[str, Rows]]],
        touched: list[set[str] | None],
    ) -> Iterator[MigrationStep]:
        """Up, down, up as Alembic steps, each read back on env.py's connection.

        Each step starts as a run of its own would: the context's memo (where
        SQLAlchemy notes the enum types a ``create_table`` made, and so skips
        them next time) is emptied, or the second upgrade would not create a
        type the downgrade dropped.
        """
        assert context.connection is not None
        for up in (True, False, True):
            self.steps += 1
            self.watch.start()
            context.impl.memo.clear()
            yield Step(self.script.revision_map, revision, up)
            touched.append(self._after_step(context.connection, commit=False))
            states.append((self.schema, dict(self.data)))

    def _judge(
        self,
        revision: Script,
        states: list[tuple[Schema, dict[str, Rows]]],
        touched: list[set[str] | None],
        coverage: str,
    ) -> set[str] | None:
        """The findings of a round trip whose three steps passed; the tables they touched."""
        (before, data_before), (after, _), (back, data_back), _ = states
        self._compare_round_trip(revision, before, data_before, back, data_back)
        when = "after upgrade, downgrade, upgrade, compared with the first upgrade"
        self._compare_schema(revision, after, self.schema, "reapply-differs", when)
        result: set[str] | None = set()
        for each in touched:
            result = either_touched(result, each)
        self._covered(revision.revision, coverage, data_before, result)
        return result


def _declared_irreversible(failure: BaseException, revision: Script) -> bool:
    """The project says "this cannot be undone": NotImplementedError raised by its code (the
    revision, its helpers), or any exception its downgrade raises with a ``raise`` statement
    of its own (pypi/warehouse's ``raise RuntimeError("Cannot downgrade past ...")``). One
    raised inside Alembic or SQLAlchemy (Alembic's "No support for ALTER of constraints in
    SQLite dialect"), or by a statement that is not a raise, is the downgrade failing."""
    trace, innermost = failure.__traceback__, None
    while trace is not None:
        innermost, trace = trace, trace.tb_next
    if innermost is None:
        return isinstance(failure, NotImplementedError)
    code = innermost.tb_frame.f_code
    raised_in = Path(code.co_filename).resolve()
    if isinstance(failure, NotImplementedError):
        return not any(raised_in.is_relative_to(library) for library in _LIBRARIES)
    line = linecache.getline(code.co_filename, innermost.tb_lineno).strip()
    return raised_in == Path(revision.path).resolve() and line.startswith("raise ")


_LIBRARIES = tuple(Path(module.__file__ or "").resolve().parent for module in (alembic, sa))
