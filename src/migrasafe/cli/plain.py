"""Text output without rich, for the commands that must start fast.

``history``, ``status`` and ``validate`` print a few styled words; importing
rich for them costs more than their work on a warm cache. The words are the
same whoever prints them; styles go to a terminal only, and ``NO_COLOR``,
``FORCE_COLOR`` and ``TERM=dumb`` are honoured as rich honours them.
"""

from __future__ import annotations

import os
import re
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


# Control characters a revision's docstring or file name may carry (an escape sequence that
# rewrites the terminal's title or hides the lines before it): shown, never obeyed. Our own
# styles (ESC [ digits m) are put in after this, by Styler, and kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_OUR_STYLE = re.compile(r"\x1b\[(?:0|1|31|32|33)m")


def visible(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``), our styles kept."""
    if not _CONTROL.search(text):
        return text
    parts = _OUR_STYLE.split(text)
    styles = _OUR_STYLE.findall(text)
    clean = [_CONTROL.sub(lambda m: repr(m.group())[1:-1], part) for part in parts]
    return "".join(p + s for p, s in zip(clean, [*styles, ""], strict=True))


def write(lines: Iterable[str]) -> None:
    """One write for every line: thousands of small writes cost more than the work."""
    sys.stdout.write("".join(f"{visible(line)}\n" for line in lines))
