"""The ``migrasafe`` command's entry point: SIGTERM is handled before anything is imported.

Importing the command line (click, then each command's module) takes a tenth
of a second; a SIGTERM in that window would kill the process with -15
rather than exit 143 as everywhere else. Nothing has run yet then, so it
says so and exits at once.
"""

from __future__ import annotations

import os
import signal
from contextlib import suppress

_started: list[bool] = []
_process: list[bool] = []  # main() runs: the process is the command's, signals and all


def owns_process() -> bool:
    """Whether this process runs the ``migrasafe`` command (not a test calling it in-process)."""
    return bool(_process)


def started() -> None:
    """The command is running: from now on, its own handler answers signals."""
    _started[:] = [True]


def _before_start(signum: int, _frame: object) -> None:
    if _started:  # the command has finished (see migrasafe.cli.app): nothing to stop
        return
    os.write(2, b"migrasafe: interrupted by SIGTERM before it started; nothing was done\n")
    os._exit(128 + signum)


def main() -> None:
    _process[:] = [True]
    with suppress(ValueError):  # not the main thread: leave signals to whoever runs us
        signal.signal(signal.SIGTERM, _before_start)
    from migrasafe.cli import main as cli

    cli()
