"""The answers a cold run leaves for the lean path, and the checks that they still hold.

One JSON file per invocation (working directory, ``-c``, ``--url``, ``-x``,
``-n``, ``--app`` and the environment variables that choose a project) in
migrasafe's cache directory. It holds:

- ``files``: every revision file in Alembic's order, with size, mtime,
  checksum and what it declares (:class:`~migrasafe.project.scripts.ScriptFile`);
- ``directories``: the listing of each directory the files came from, so an
  added or deleted revision is noticed;
- ``graph``: Alembic's answers (the order ``upgrade`` applies, the heads, each
  entry of ``history``, each revision's parents as Alembic walks them), so the
  lean path repeats Alembic's RevisionMap instead of reimplementing it;
- ``watched`` and ``environ``: the files and variables the cold run read
  (:mod:`migrasafe.commands.lean.watch`), whose change means ``env.py`` may now decide
  otherwise;
- ``installed``: the installed distributions the cold run had imported
  (:mod:`migrasafe.commands.lean.installed`);
- ``database``: where ``env.py`` connected and its version table, or why the
  lean path cannot reach it (a password, which is never written to disk).

A file is unchanged when its content is: every revision file and every file
the cold run read is hashed again on each warm run (they are small: 2,000
revision files take about 9 ms), since a size and an mtime can stay the same
through an edit (an mtime restored, or two edits within one tick of the
file system's clock). The file itself is read and written as
:mod:`migrasafe.project.cachefile` says, and only answers of the shape this
version writes are used (:mod:`migrasafe.commands.lean.shape`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrasafe.commands.lean import installed, shape
from migrasafe.project.cachefile import read_json, write_json
from migrasafe.project.scripts import ScriptFile, cache_base

FORMAT = 3  # 2: history entries have depends_on; 3: installed, contents, the interpreter
# The interpreter as it started: Python's version and its own sys.path, before a cold run's
# env.py or prepend_sys_path adds to it. Another venv or $PYTHONPATH is another answer.
INTERPRETER = (sys.version, list(sys.path))
# Shell bookkeeping that differs between two runs of the same command.
VOLATILE = frozenset({"_", "OLDPWD", "PWD", "SHLVL"})


@dataclass(frozen=True)
class Invocation:
    """What names one project on the command line: the cache holds one answer per invocation."""

    config: tuple[str, ...] = ()
    url: str | None = None
    x_args: tuple[str, ...] = ()
    name: str = "alembic"
    app: str | None = None

    def location(self) -> str | None:
        base = cache_base()
        if base is None:
            return None
        chosen: list[object] = [
            os.getcwd(),
            list(self.config),
            self.url,
            list(self.x_args),
            self.name,
            self.app,
        ]
        chosen += [os.environ.get("ALEMBIC_CONFIG"), os.environ.get("FLASK_APP"), INTERPRETER]
        name = hashlib.blake2b(json.dumps(chosen).encode(), digest_size=12).hexdigest()
        return os.path.join(base, f"answers-{name}.json")


def salted(salt: str, value: str) -> str:
    """A variable's value as the cache keeps it: hashed, since it may hold a password."""
    return hashlib.blake2b(value.encode(), key=bytes.fromhex(salt), digest_size=16).hexdigest()


def environ_digest(salt: str, environ: Mapping[str, str] | None = None) -> str:
    """The whole environment, for a cold run that iterated it (shell bookkeeping aside)."""
    items = sorted((k, v) for k, v in (environ or os.environ).items() if k not in VOLATILE)
    return salted(salt, json.dumps(items))


_READ = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO is not waited on


def _checksum(data: bytes) -> str:
    """sha256, line endings normalised: what migrasafe records as a script's checksum
    (:func:`migrasafe.deploy.records.checksum`, which remembers it per process: not here)."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def _content(path: str) -> tuple[os.stat_result, str]:
    """A file's stat and checksum."""
    descriptor = os.open(path, _READ)
    try:
        stat = os.fstat(descriptor)
        chunks = [os.read(descriptor, stat.st_size + 1)]
        while chunks[-1]:
            chunks.append(os.read(descriptor, 1 << 16))
    finally:
        os.close(descriptor)
    return stat, _checksum(b"".join(chunks))


def file_state(path: str) -> list[Any] | None:
    """[size, mtime_ns, checksum] of a file; None when it does not exist."""
    try:
        stat, digest = _content(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns, digest]


def listing(directory: str) -> list[str]:
    """What in a directory can be a revision: .py files and subdirectories (not bytecode)."""
    with os.scandir(directory) as entries:
        return sorted(
            e.name for e in entries
            if e.name.endswith(".py") or (e.is_dir() and e.name != "__pycache__")
        )  # fmt: skip


def _unchanged(path: str, size: int, _mtime_ns: int, digest: str) -> bool:
    """The same content, whatever the mtime says: one read of the size it had, and one byte
    more to see that it did not grow (with ``os.read``, not ``open()``: on thousands of
    small files, a third of the time)."""
    try:
        descriptor = os.open(path, _READ)
        try:
            data = os.read(descriptor, size + 1)
        finally:
            os.close(descriptor)
    except OSError:
        return False
    return len(data) == size and _checksum(data) == digest


def load(invocation: Invocation) -> dict[str, Any] | None:
    """The cached answers for ``invocation`` when all they came from is unchanged; else None.

    When only revision files changed (env.py, its imports and the environment
    as they were), the changed files alone are read again and the answers
    brought up to date (:func:`migrasafe.commands.lean.refresh.refresh`); an
    edit the lean path cannot follow answers None (a cold run).
    """
    location = invocation.location()
    answers = None if location is None else read(location)
    if answers is None:
        return None
    try:
        if not environment_holds(answers):
            return None
        if _files_hold(answers):
            return answers
        from migrasafe.commands.lean.refresh import refresh

        refreshed = refresh(answers)
    except (KeyError, TypeError, ValueError, AttributeError):  # a second net: answer cold
        return None
    if refreshed is not None:
        save(invocation, refreshed)
    return refreshed


_FIELDS = frozenset(f for f in ScriptFile.__dataclass_fields__ if f != "path")


def read(location: str) -> dict[str, Any] | None:
    """The answers at ``location`` if the file is the user's own and of this version's shape."""
    found = read_json(location)
    return found if found is not None and shape.well_formed(found, FORMAT, _FIELDS) else None


def environment_holds(answers: dict[str, Any]) -> bool:
    """The variables and files env.py and the project's loading read are as they were."""
    salt = answers["salt"]
    for name, digest in answers["environ"].items():
        value = os.environ.get(name)
        if (None if value is None else salted(salt, value)) != digest:
            return False
    whole = answers.get("whole_environ")
    if whole is not None and environ_digest(salt) != whole:
        return False
    if not installed.holds(answers["installed"]):
        return False
    for path, state in answers["watched"].items():
        if state is None:
            if os.path.exists(path):
                return False
        elif not _unchanged(path, *state):
            return False
    return True


def _files_hold(answers: dict[str, Any]) -> bool:
    """No revision file was added, deleted or changed."""
    for directory, names in answers["directories"].items():
        try:
            if listing(directory) != names:
                return False
        except OSError:
            return False
    return all(unchanged(f) for f in answers["files"])


def unchanged(entry: dict[str, Any]) -> bool:
    """A revision file's cached entry still describes it."""
    return _unchanged(entry["path"], entry["size"], entry["mtime_ns"], entry["checksum"])


def save(invocation: Invocation, answers: dict[str, Any], location: str | None = None) -> None:
    """Write the answers (:func:`migrasafe.project.cachefile.write_json`: the user's only).

    ``location``: where, when known before the cold run (whose env.py may have
    changed ``os.environ``, and with it :meth:`Invocation.location`).
    """
    location = location or invocation.location()
    if location is not None:
        write_json(location, {"format": FORMAT, **answers})


def forget(invocation: Invocation, location: str | None = None) -> None:
    """Drop the answers (a cold run that cannot be cached must not leave stale ones)."""
    location = location or invocation.location()
    if location is not None:
        with contextlib.suppress(OSError):
            os.unlink(location)
