"""migrasafe's cache files: written so that nothing else is, read only when they are the user's.

The cache lives in a directory other users may share (``$MIGRASAFE_CACHE_DIR``
can be anywhere), so each file (the lean path's answers, the revision files'
declarations) is:

- written to a new temporary file in the same directory, created with
  ``O_EXCL | O_NOFOLLOW`` (a planted symlink or file of that name is never
  opened) and mode 0600, then renamed over the old one (a rename replaces a
  symlink, it does not follow it), in a directory created 0700;
- read with ``O_NOFOLLOW | O_NONBLOCK`` (a symlink is not followed, a FIFO
  not waited on) and only when it is a regular file owned by the user, with
  no permission for the group or others, and at most :data:`MAX_BYTES` long;
  anything else reads as no cache at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from typing import Any

# 10,000 revisions make about 8 MB of answers: far above, a file is not ours.
MAX_BYTES = 256 * 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def trusted(info: os.stat_result) -> bool:
    """A regular file of the user's, private to them, of a size the lean path writes."""
    owner = getattr(os, "getuid", None)
    return (
        stat.S_ISREG(info.st_mode)
        and (owner is None or info.st_uid == owner())
        and not info.st_mode & 0o077
        and info.st_size <= MAX_BYTES
    )


def read_json(location: str) -> dict[str, Any] | None:
    """The JSON object at ``location`` when the file can be trusted (see above); else None."""
    try:
        descriptor = os.open(location, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | _CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        if not trusted(info):
            return None
        chunks, size = [], 0
        while chunk := os.read(descriptor, max(info.st_size + 1 - size, 65536)):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BYTES:  # grew while read
                return None
    except OSError:
        return None
    finally:
        os.close(descriptor)
    try:
        found = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):  # not JSON, not UTF-8, nested beyond reason
        return None
    return found if isinstance(found, dict) else None


def write_json(location: str, data: dict[str, Any]) -> None:
    """Put ``data`` at ``location`` (see above); a cache that cannot be written is skipped."""
    directory = os.path.dirname(location)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        temporary = os.path.join(directory, f".{os.path.basename(location)}.{os.urandom(8).hex()}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        descriptor = os.open(temporary, flags, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data))  # the C encoder: json.dump is pure Python
        os.replace(temporary, location)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
