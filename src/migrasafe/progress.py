"""Progress of long runs (verify, upgrade, backfill) on stderr: done/total, elapsed, ETA.

On a terminal a rich bar that clears itself; otherwise (CI logs, ``| cat``) a
plain line once the run has taken a second, then every few seconds, and one
when it is done: a long job piped into a log is never silent for long, and
a run under a second prints nothing. ``MIGRASAFE_PROGRESS_EVERY`` sets the
seconds between lines (0: every step).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

Report = Callable[[int, int, str], None]
"""``report(index, total, item)``: item ``index`` (1-based) of ``total`` is starting."""

EVERY = 5.0
FIRST = 1.0  # the first line: after a second (or ``every``, when shorter)


def _every() -> float:
    try:
        return max(float(os.environ.get("MIGRASAFE_PROGRESS_EVERY", EVERY)), 0.0)
    except ValueError:
        return EVERY


def duration(seconds: float) -> str:
    """``75.3`` -> ``1m15s``; under a minute ``12.3s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Lines:
    """Plain progress lines, at most one every ``every`` seconds (and none for a short run)."""

    def __init__(self, label: str, stream: TextIO, every: float) -> None:
        self.label, self.stream, self.every = label, stream, every
        self.start = time.monotonic()
        self.last = self.start - max(every - FIRST, 0.0)
        self.printed = False
        self.total = 0

    def __call__(self, index: int, total: int, item: str) -> None:
        now = time.monotonic()
        self.total = total
        if now - self.last < self.every:
            return
        self.last, self.printed = now, True
        done = max(index - 1, 0)
        elapsed = now - self.start
        eta = f", ETA {duration(elapsed / done * (total - done))}" if done and total else ""
        share = f" ({100 * done // total}%)" if total else ""
        self.stream.write(f"{self.label}: {done}/{total}{share}, {duration(elapsed)} elapsed"
                          f"{eta}, now {item}\n")  # fmt: skip
        self.stream.flush()

    def finish(self) -> None:
        if self.printed:
            self.stream.write(f"{self.label}: {self.total}/{self.total} done in "
                              f"{duration(time.monotonic() - self.start)}\n")  # fmt: skip
            self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def bar_columns(label: str) -> tuple[Any, ...]:
    """rich's columns for a bar: label, bar, done/total, elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn())  # fmt: skip


@contextmanager
def reporter(label: str, *, enabled: bool = True, stream: TextIO | None = None) -> Iterator[Report]:
    """A :data:`Report` for a run called ``label``: a bar on a terminal, lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if not enabled:
        yield lambda _index, _total, _item: None
        return
    if not _is_terminal(out):
        lines = Lines(label, out, _every())
        yield lines
        lines.finish()
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*bar_columns(f"{label} {{task.description}}"), console=Console(file=out),
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("", total=None)

        def advance(index: int, total: int, item: str) -> None:
            bar.update(task, completed=max(index - 1, 0), total=total, description=item)

        yield advance
