"""Batched data migrations for use inside migration scripts.

A data migration written as one ``UPDATE`` locks every row it touches until
it commits and shows nothing while it works; written as an ORM loop it is
orders of magnitude slower. :func:`backfill` (and :func:`backfill_insert`)
walk the table by ranges of an integer key, one statement per batch::

    from migrasafe.backfill import backfill

    def upgrade() -> None:
        books = sa.table("books", sa.column("id"), sa.column("price"))
        backfill(books, {"price": 19.99}, where=books.c.price.is_(None))

Resumable: each batch touches only rows that still match ``where``, so
running it again after an interruption continues where it stopped.

On PostgreSQL there are two ways to run it, chosen with ``commit_each_batch``:

- ``False`` (default): every batch runs in the migration's transaction. The
  migration stays all-or-nothing, but the rows updated stay locked until it
  commits, and a long backfill keeps its snapshot (and autovacuum waits).
- ``True``: each batch commits on its own (through Alembic's
  ``autocommit_block``), so locks are held for one batch at a time and the
  application keeps running: the way to backfill a large, live table. An
  interruption leaves the batches done so far; the version is not bumped, so
  the next ``upgrade`` runs the migration again and the predicate skips what
  is done. Everything the migration did before the backfill is committed with
  the first batch, so write those steps to be safe to re-run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrasafe.progress import bar_columns, duration

Log = Callable[[str], None]
Before = Callable[[sa.ColumnElement[bool]], sa.Executable]


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill did: rows changed, batches run, the slowest batch."""

    table: str
    rows: int
    batches: int
    seconds: float
    longest_batch: float


def backfill(
    table: sa.TableClause,
    values: Mapping[str, Any],
    *,
    where: sa.ColumnElement[bool],
    key: str = "id",
    batch_size: int = 10_000,
    commit_each_batch: bool = False,
    before: Before | None = None,
    connection: Connection | None = None,
    progress: bool | None = None,
    log: Log | None = None,
    log_every: int = 10,
) -> BackfillResult:
    """``UPDATE table SET values WHERE where``, one key range of ``batch_size`` at a time.

    ``values`` maps column names to values or SQL expressions (which may use
    the row's own columns). ``key`` is an integer column, normally the primary
    key. ``before``, given the batch's condition (its key range and ``where``),
    returns a statement to run first in the same batch and transaction, e.g.
    to record what is about to change; as the batch's rows no longer match
    ``where`` afterwards, a re-run does not record them twice. ``connection``
    defaults to the migration's (``op.get_bind()``).
    """

    # a plain value for an untyped column (sa.table("t", sa.column("b"))) gets the type of the
    # Python value, so that --sql can render it as a literal
    typed = {
        name: sa.literal(v) if _untyped(table, name) and not isinstance(v, sa.ClauseElement)
        and v is not None else v
        for name, v in values.items()
    }  # fmt: skip

    def statements(low: int | None, high: int | None) -> list[sa.Executable]:
        condition = where if low is None else sa.and_(_in_range(table.c[key], low, high), where)
        update = sa.update(table).where(condition).values(typed)
        return [before(condition), update] if before is not None else [update]

    return _run(table, key, statements, batch_size, commit_each_batch, connection, progress,
                log, log_every)  # fmt: skip


def backfill_insert(
    target: sa.TableClause,
    columns: list[str],
    select: sa.Select[Any],
    *,
    source: sa.TableClause,
    key: str = "id",
    batch_size: int = 10_000,
    commit_each_batch: bool = False,
    connection: Connection | None = None,
    progress: bool | None = None,
    log: Log | None = None,
    log_every: int = 10,
) -> BackfillResult:
    """``INSERT INTO target (columns) select``, one range of ``source.key`` at a time.

    ``select`` reads from ``source``; to be resumable it must leave out the
    rows already inserted (e.g. ``WHERE NOT EXISTS (...)``).
    """

    def statements(low: int | None, high: int | None) -> list[sa.Executable]:
        rows = select if low is None else select.where(_in_range(source.c[key], low, high))
        return [sa.insert(target).from_select(columns, rows)]

    return _run(source, key, statements, batch_size, commit_each_batch, connection, progress,
                log, log_every)  # fmt: skip


def _untyped(table: sa.TableClause, name: str) -> bool:
    column = table.c.get(name)
    return column is not None and isinstance(column.type, sa.types.NullType)


def _in_range(column: Any, low: int, high: int | None) -> sa.ColumnElement[bool]:
    return sa.and_(column >= low, column < high)


def _run(
    table: sa.TableClause,
    key: str,
    statements: Callable[[int | None, int | None], list[sa.Executable]],
    batch_size: int,
    commit_each_batch: bool,
    connection: Connection | None,
    progress: bool | None,
    log: Log | None,
    log_every: int,
) -> BackfillResult:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    context: Any = None
    if connection is None:
        from alembic import op

        context = op.get_context()
        if context.as_sql:  # offline (--sql): no data to range over, whole-table statements
            # rendered where they run online: outside the revision's transaction when each
            # batch commits on its own (lint, too, then sees them there)
            outside = context.autocommit_block() if commit_each_batch else nullcontext()
            with outside:
                for each in statements(None, None):
                    op.execute(each)
            return BackfillResult(table.name, 0, 1, 0.0, 0.0)
        connection = op.get_bind()
    column = table.c[key]
    low, high = connection.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
    start = time.perf_counter()
    rows = batches = 0
    longest = 0.0
    if low is None:
        return BackfillResult(table.name, 0, 0, 0.0, 0.0)
    total = (high - low) // batch_size + 1
    say = log or _stderr
    autocommit = (
        context.autocommit_block() if commit_each_batch and context is not None else nullcontext()
    )
    with autocommit, _bar(table.name, total, progress) as advance:
        for first in range(low, high + 1, batch_size):
            began = time.perf_counter()
            with _batch_transaction(connection, commit_each_batch, context is not None):
                for each in statements(first, first + batch_size):
                    result = connection.execute(each.execution_options(preserve_rowcount=True))
            longest = max(longest, time.perf_counter() - began)
            rows += max(getattr(result, "rowcount", 0) or 0, 0)  # the last statement's rows
            batches += 1
            advance()
            if not _interactive(progress) and log_every and batches % log_every == 0:
                elapsed = time.perf_counter() - start
                eta = duration(elapsed / batches * max(total - batches, 0))
                say(f"backfill {table.name}: batch {batches}/{total}, {rows} rows, "
                    f"{elapsed:.1f} s, ETA {eta}")  # fmt: skip
    seconds = time.perf_counter() - start
    if not _interactive(progress) and log_every and batches >= log_every:
        say(f"backfill {table.name}: done, {rows} rows in {batches} batches, {seconds:.1f} s "
            f"(slowest batch {longest * 1000:.0f} ms)")  # fmt: skip
    return BackfillResult(table.name, rows, batches, seconds, longest)


@contextmanager
def _batch_transaction(connection: Connection, commit: bool, autocommit: bool) -> Iterator[None]:
    """One transaction per batch when committing each batch, else the caller's transaction.

    Inside Alembic's autocommit_block the connection autocommits each
    statement; a batch of several statements is made atomic with BEGIN/COMMIT.
    """
    if not commit:
        yield
    elif autocommit:
        connection.exec_driver_sql("BEGIN")
        try:
            yield
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")
    else:
        try:
            yield
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


def _interactive(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


@contextmanager
def _bar(name: str, total: int, progress: bool | None) -> Iterator[Callable[[], None]]:
    """A rich progress bar on a terminal; otherwise nothing (log lines instead)."""
    if not _interactive(progress):
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*bar_columns(f"backfill {name}"),
                  transient=True, console=Console(stderr=True)) as bar:  # fmt: skip
        task = bar.add_task(name, total=total)
        yield lambda: bar.advance(task)
