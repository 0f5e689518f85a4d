"""What migrasafe records of an applied revision, and what ``status`` reports of an edit.

Plain dataclasses with no database code, so that the read-only commands'
lean path (:mod:`migrasafe.commands.lean`) builds the same results without SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pathlib costs the lean path ~4 ms of imports (urllib, ipaddress)
    from pathlib import Path


@dataclass(frozen=True)
class Recorded:
    revision: str
    checksum: str
    script: str
    applied_at: dt.datetime
    applied_by: str
    state: str = "applied"


@dataclass(frozen=True)
class Modified:
    """An applied revision whose script no longer matches what was applied."""

    revision: str
    path: str
    recorded: str
    current: str
    applied_at: str
    applied_by: str

    def to_dict(self) -> dict[str, str]:
        return {
            "revision": self.revision,
            "path": self.path,
            "recorded": self.recorded,
            "current": self.current,
            "applied_at": self.applied_at,
            "applied_by": self.applied_by,
        }


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def checksum(path: str | Path) -> str:
    """sha256 of the file, with line endings normalised (a CRLF checkout is no edit).

    Remembered for the process by path, size and mtime: status and the lean
    path's cache both need every applied file's checksum, once is enough.
    """
    stat = os.stat(path)
    key = (os.fspath(path), stat.st_size, stat.st_mtime_ns)
    found = _checksums.get(key)
    if found is None:
        with open(path, "rb") as handle:
            data = handle.read().replace(b"\r\n", b"\n")
        found = _checksums[key] = hashlib.sha256(data).hexdigest()
    return found


_checksums: dict[tuple[str, int, int], str] = {}
