"""Text output without rich, for the commands that must start fast.

``history``, ``status`` and ``validate`` print a few styled words; importing
rich for them costs more than their work on a warm cache. The words are the
same whoever prints them; styles go to a terminal only, and ``NO_COLOR``,
``FORCE_COLOR`` and ``TERM=dumb`` are honoured as rich honours them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TextIO

_CODES = {"bold": "1", "red": "31", "green": "32", "yellow": "33"}


class Styler:
    """``style(text, "red")``: the text, wrapped in ANSI codes when the stream shows them."""

    def __init__(self, stream: TextIO) -> None:
        self.colour = _wanted(stream)
        self.bold = self.colour or (bool(os.environ.get("NO_COLOR")) and _is_tty(stream))

    def __call__(self, text: str, style: str) -> str:
        if (style == "bold" and not self.bold) or (style != "bold" and not self.colour):
            return text
        return f"\x1b[{_CODES[style]}m{text}\x1b[0m"


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def _wanted(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return os.environ.get("TERM") != "dumb" and _is_tty(stream)


def write(lines: Iterable[str]) -> None:
    """One write for every line: thousands of small writes cost more than the work."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
