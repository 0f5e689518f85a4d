"""The walk: every revision, base to heads, up, down and up again on the scratch database.

For each revision R: every table holds generated rows, R is applied,
reverted and applied again, and after each step the schema and rows are read
back and compared (:mod:`.state`, :mod:`.roundtrip`). Each revision costs
three migration steps, and a step re-reads only what its SQL touched, so the
work grows linearly with the history. Up to :data:`.window.WINDOW`
revisions share one run of ``env.py`` (:mod:`.window`). The report's
coverage says which revisions were checked with data, which without, and
which not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from migrasafe.checks.findings import Finding
from migrasafe.checks.lint import lint
from migrasafe.checks.verify.drift import describe_diff
from migrasafe.checks.verify.locktrace import LockTracer, compare_with_lint
from migrasafe.checks.verify.report import Coverage, VerifyReport
from migrasafe.checks.verify.window import WINDOW, Windows
from migrasafe.db.urls import redact
from migrasafe.project.graph import apply_order

# Why the generated rows of a table were refused, and what to do, by SeedReport.cause.
_FAULTS = {
    "verify": "verify built rows that break a key, a type's range or a length it knows of: "
              "that is verify's limitation, not your schema's (please report it); meanwhile "
              "declare rows for it (before_revision_data)",
    "check": "a CHECK constraint verify cannot read accepts none of its rows: declare rows "
             "for it (before_revision_data)",
    "function": "a default or expression of the schema calls a function this database does "
                "not have (a PostgreSQL function in a SQLite history?): that is the schema's "
                "to fix",
}  # fmt: skip


class Verifier(Windows):
    """verify's walk over a project's history, and its report."""

    def run(self) -> VerifyReport:
        order = apply_order(self.script)
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection, self.watch.watching(), ExitStack() as stack:
                if self.trace_locks:
                    self.tracer = LockTracer(ours=connection)
                    stack.enter_context(self.tracer.tracing())
                self._learn_env(connection)
                self._refresh(connection, None)
                self._walk(connection, order)
                if not self.not_checked and not self.stuck and not self.leftovers:
                    self._model_drift(connection, order)
                    self.models_compared = True
        finally:
            engine.dispose()
        self._report_gaps()
        trace = self._lock_findings() if self.tracer is not None else None
        return VerifyReport(
            findings=tuple(self.findings), revisions=len(order), steps=self.steps,
            database=redact(self.url), rows=self.rows, seed=self.seed,
            coverage=Coverage(tuple(self.with_data), self.schema_only, self.not_checked,
                              self.upgrade_only),
            refused_rows=self.refused, models_not_compared=self.models_note, lock_trace=trace,
            notes=tuple(self.notes),
        )  # fmt: skip

    def _walk(self, connection: Connection, order: list[Script]) -> None:
        """Every revision in order: as many as can share one run of env.py together
        (:meth:`_window`); the others, and one that failed there, step by step."""
        dirty: set[str] | None = None
        index = 0
        while index < len(order):
            if self.abandoned:  # the scratch database could not be rebuilt: nothing is sure
                for revision in order[index:]:
                    self.not_checked[revision.revision] = self.abandoned
                break
            for rev in sorted(self.stuck - self.rebuilds):
                if self._rebuild(connection, self.script.get_revision(rev), len(order) - index):
                    dirty = None  # every table afresh
            end = index
            while end < len(order) and end - index < WINDOW and self._windowable(order[end]):
                if self._blocked(order[end]):
                    break
                end += 1
            if end > index:
                done, reached, kept = self._window(connection, order[index:end], dirty, index,
                                                   len(order))  # fmt: skip
                if not kept and done > 1:  # undone: those before the failing one, again
                    done, reached, kept = self._window(connection, order[index:index + done],
                                                       dirty, index, len(order))  # fmt: skip
                if kept and done:
                    index, dirty = index + done, reached
                    continue
            revision = order[index]
            index += 1
            self._progress(index, len(order), revision.revision)
            blocked = self._blocked(revision)
            if blocked:
                self.not_checked[revision.revision] = f"its parent {blocked} could not be applied"
                continue
            self._reseed(connection, dirty, revision)
            dirty = self._round_trip(connection, revision)

    def _rebuild(self, connection: Connection, revision: Script | None, after: int) -> bool:
        """Past a revision whose second upgrade failed (its downgrade left something behind):
        the scratch database is rebuilt (:meth:`_rebuilt_at`) to where the walk stands with
        that revision applied, so that what comes after it is checked too. False: that
        upgrade failed as well, and nothing after it can be checked."""
        assert revision is not None
        self.rebuilds.add(revision.revision)
        target = (self._heads(connection) - set(revision._all_down_revisions)) | {revision.revision}
        failure = self._rebuilt_at(connection, target)
        if failure is not None:
            self.abandoned = (f"the scratch database could not be rebuilt after "
                              f"{revision.revision}'s second upgrade failed")  # fmt: skip
            self.notes.append(
                f"after {revision.revision}'s second upgrade failed, a clean upgrade to it "
                f"failed too ({failure}): the revisions after it were not checked; fix its "
                "downgrade and run verify again"
            )
            return False
        self.stuck.discard(revision.revision)
        self.notes.append(
            f"after {revision.revision}'s second upgrade failed, the scratch database was "
            f"emptied and upgraded straight to {revision.revision} (Alembic's upgrade, on empty "
            f"tables), so that the revisions after it ({after} in the walk's order) were "
            "checked too"
        )
        return True

    def _blocked(self, revision: Script) -> str | None:
        """A parent of ``revision`` left unapplied: it cannot be reached."""
        for parent in revision._all_down_revisions:
            if parent in self.not_checked or parent in self.stuck:
                return parent
        return None

    def _report_gaps(self) -> None:
        heads = self.script.get_heads()
        if len(heads) > 1:
            for head in heads:
                self._finding(
                    "multiple-heads", self.script.get_revision(head),
                    f"{len(heads)} heads ({', '.join(heads)}): deployments running "
                    "`upgrade head` fail; merge them with `alembic merge`",
                )  # fmt: skip
        for table, revision in self.refused_at.items():
            fault = _FAULTS[self.refused_cause.get(table, "check")]
            self._finding(
                "data-not-checked", revision,
                f"the database refused up to {self.refused[table]} of the {self.rows} generated "
                f"rows for {table} in a seeding ({self.refused_why.get(table, '?')}): its data "
                f"was not fully checked from this revision on, only its schema. Cause: {fault}",
                table=table, severity="warning",
            )  # fmt: skip

    def _lock_findings(self) -> tuple[dict[str, object], ...]:
        """Findings from what the server reported, held against lint's guesses for the same."""
        assert self.tracer is not None
        entries = [
            e for e in self.tracer.entries
            if self.rows_before.get(e.revision, {}).get(e.table, 0) > 0  # new or empty: harmless
        ]  # fmt: skip
        for e in entries:
            revision = self.script.get_revision(e.revision)
            rows = self.rows_before[e.revision][e.table]
            lock = e.to_dict()["lock"]
            if e.rewritten:
                self._finding(
                    "table-rewrite", revision,
                    f"{e.statement!r} rewrote table {e.table} ({rows} rows) under {lock}: the "
                    "table is locked for as long as copying it takes; on a large table add a new "
                    "column and backfill it instead", table=e.table, severity="warning",
                )  # fmt: skip
            if e.blocking and e.lock_timeout in ("0", "unknown"):
                self._finding(
                    "lock-without-timeout", revision,
                    f"{e.statement!r} took {lock} on {e.table} ({rows} rows) with no "
                    f"lock_timeout: behind any open transaction on {e.table} it waits, and every "
                    f"query on {e.table} queues behind it; deploy with --db-lock-timeout and "
                    "--retries", table=e.table, severity="warning",
                )  # fmt: skip
        lint_tables: dict[tuple[str, str], list[str]] = {}
        for f in lint(self.project, dialect="postgresql").findings:
            if f.revision and f.table:
                lint_tables.setdefault((f.revision, f.table.split(".")[0]), []).append(f.rule)
        out: list[dict[str, object]] = []
        for entry, revision_id, table, verdict in compare_with_lint(entries, lint_tables):
            rules = lint_tables.get((revision_id, table), [])
            row: dict[str, object] = {
                "revision": revision_id, "table": table, "lint": verdict, "lint_rules": rules,
            }  # fmt: skip
            if entry is not None:
                row.update(entry.to_dict())
                row["rows"] = self.rows_before[revision_id][table]
            out.append(row)
        return tuple(out)

    def _model_drift(self, connection: Connection, order: list[Script]) -> None:
        """At head: do the models (``target_metadata``) match what the migrations built?"""
        if not order:
            self.models_note = "the project has no revision"
            return
        self.drift_findings(model_diffs(lambda fn: self._run_env(connection, fn), self), order)

    def drift_findings(self, diffs: list[Any], order: list[Script]) -> list[Finding]:
        """A model-drift finding per difference, on the last revision."""
        added = []
        for diff in diffs:
            table, message = describe_diff(diff)
            self._finding("model-drift", order[-1], f"models and migrations disagree: {message}; "
                          "write a revision for it (migrasafe revision --autogenerate)",
                          table=table)  # fmt: skip
            added.append(self.findings[-1])
        return added


def model_diffs(run: Callable[[Callable[..., list[Any]]], object], verifier: Verifier) -> list[Any]:
    """Autogenerate's comparison of ``target_metadata`` with the database env.py connects to."""
    diffs: list[Any] = []

    def compare(_rev: object, context: MigrationContext) -> list[Any]:
        metadata = context.opts.get("target_metadata")
        if metadata is None:
            verifier.models_note = "env.py passes no target_metadata to context.configure()"
        else:
            diffs.extend(compare_metadata(context, metadata))
        return []

    run(compare)
    return diffs
