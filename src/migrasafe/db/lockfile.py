"""A lock file held with flock: never followed through a symlink, never a file someone
else planted, and saying which process holds it (the SQLite migration lock's)."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import tempfile
from pathlib import Path

from migrasafe.errors import DatabaseError


class LockFile:
    """One flock'd file that is never followed through a symlink, never a file someone
    else planted (a hard link to one of the user's files would be truncated), and whose
    contents say which process holds it.

    A ``transient`` one is removed by its holder on release (it sits in /tmp, one per
    database): a waiter that locked the file just removed sees that the name now
    belongs to another file and locks that one instead.
    """

    def __init__(self, path: Path, mode: int, owners: set[int], transient: bool = False) -> None:
        self.path, self.mode, self.owners, self.transient = path, mode, owners, transient
        self.fd: int | None = None
        self.seen = ""  # the pid the holder wrote, when this file was found locked

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, self.mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DatabaseError(
                    f"refusing the migration lock file {self.path}: it is a symbolic link "
                    "(migrasafe never follows one there); remove it and run again"
                ) from exc
            raise DatabaseError(
                f"cannot open the migration lock file {self.path}: {exc.strerror}"
            ) from exc
        found = os.fstat(fd)
        problem = ""
        if not stat.S_ISREG(found.st_mode):
            problem = "it is not a regular file"
        elif found.st_nlink != 1:
            problem = f"it is a hard link ({found.st_nlink} names for one file)"
        elif found.st_uid not in self.owners:
            problem = f"it belongs to another user (uid {found.st_uid})"
        if problem:
            os.close(fd)
            raise DatabaseError(
                f"refusing the migration lock file {self.path}: {problem}; remove it "
                "(migrasafe creates its own) and run again"
            )
        return fd

    def acquire(self) -> bool:
        while True:
            if self.fd is None:
                self.fd = self._open()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.seen = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
                if self.transient:  # its holder removes it: open the name afresh next time
                    self.close()
                return False
            if self._named():
                os.ftruncate(self.fd, 0)  # safe: a regular file of ours with one name
                os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
                return True
            self.close()  # the previous holder removed it: lock the file named so now

    def _named(self) -> bool:
        """Whether the path still names the file locked (a transient one can be removed)."""
        if not self.transient or self.fd is None:
            return True
        try:
            named = os.lstat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self.fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if self.transient and self._named():
                os.unlink(self.path)
            else:
                os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def private_lock_directory() -> Path | None:
    """The user's own directory for locks keyed by inode, under /tmp (the same for every
    run on this machine, whatever $TMPDIR says); None where /tmp cannot hold it."""
    base = Path("/tmp") if os.path.isdir("/tmp") else Path(tempfile.gettempdir())
    directory = base / f"migrasafe-{os.geteuid()}"
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError:  # a read-only /tmp: the lock beside the database still holds
        logging.getLogger(__name__).debug("no private lock directory", exc_info=True)
        return None
    found = os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o077:
        raise DatabaseError(
            f"refusing {directory} for migration locks: it is not a directory of yours "
            "that only you can write; remove it and run again"
        )
    return directory
