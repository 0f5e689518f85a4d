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


def _before_start(signum: int, _frame: object) -> None:
    os.write(2, b"migrasafe: interrupted by SIGTERM before it started; nothing was done\n")
    os._exit(128 + signum)


def main() -> None:
    with suppress(ValueError):  # not the main thread: leave signals to whoever runs us
        signal.signal(signal.SIGTERM, _before_start)
    from migrasafe.cli import main as cli

    cli()
