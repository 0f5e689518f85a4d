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
- ``database``: where ``env.py`` connected and its version table, or why the
  lean path cannot reach it (a password, which is never written to disk).

A file is unchanged when its size and mtime are; when only its mtime moved,
its content's checksum decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from migrasafe.deploy.records import checksum
from migrasafe.project.scripts import cache_base

FORMAT = 2  # 2: history entries have depends_on
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
        chosen = [os.getcwd(), list(self.config), self.url, list(self.x_args), self.name, self.app]
        chosen += [os.environ.get("ALEMBIC_CONFIG"), os.environ.get("FLASK_APP")]
        name = hashlib.blake2b(json.dumps(chosen).encode(), digest_size=12).hexdigest()
        return os.path.join(base, f"answers-{name}.json")


def salted(salt: str, value: str) -> str:
    """A variable's value as the cache keeps it: hashed, since it may hold a password."""
    return hashlib.blake2b(value.encode(), key=bytes.fromhex(salt), digest_size=16).hexdigest()


def environ_digest(salt: str) -> str:
    """The whole environment, for a cold run that iterated it (shell bookkeeping aside)."""
    items = sorted((k, v) for k, v in os.environ.items() if k not in VOLATILE)
    return salted(salt, json.dumps(items))


def file_state(path: str) -> list[Any] | None:
    """[size, mtime_ns, checksum] of a file; None when it does not exist."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns, checksum(path)]


def listing(directory: str) -> list[str]:
    """What in a directory can be a revision: .py files and subdirectories (not bytecode)."""
    with os.scandir(directory) as entries:
        return sorted(
            e.name for e in entries
            if e.name.endswith(".py") or (e.is_dir() and e.name != "__pycache__")
        )  # fmt: skip


def _unchanged(path: str, size: int, mtime_ns: int, digest: str) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if stat.st_size != size:
        return False
    if stat.st_mtime_ns == mtime_ns:
        return True
    try:
        return checksum(path) == digest
    except OSError:
        return False


def load(invocation: Invocation) -> dict[str, Any] | None:
    """The cached answers for ``invocation`` when all they came from is unchanged; else None.

    When only revision files changed (env.py, its imports and the environment
    as they were), the changed files alone are read again and the answers
    brought up to date (:func:`migrasafe.commands.lean.refresh.refresh`); an
    edit the lean path cannot follow answers None (a cold run).
    """
    location = invocation.location()
    if location is None:
        return None
    try:
        with open(location, encoding="utf-8") as handle:
            answers = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    if not isinstance(answers, dict) or answers.get("format") != FORMAT:
        return None
    try:
        if not _environment_holds(answers):
            return None
        if _files_hold(answers):
            return answers
        from migrasafe.commands.lean.refresh import refresh

        refreshed = refresh(answers)
    except (KeyError, TypeError, ValueError, AttributeError):  # another version: answer cold
        return None
    if refreshed is not None:
        save(invocation, refreshed)
    return refreshed


def _environment_holds(answers: dict[str, Any]) -> bool:
    """The variables and files env.py and the project's loading read are as they were."""
    salt = answers["salt"]
    for name, digest in answers["environ"].items():
        value = os.environ.get(name)
        if (None if value is None else salted(salt, value)) != digest:
            return False
    whole = answers.get("whole_environ")
    if whole is not None and environ_digest(salt) != whole:
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


def save(invocation: Invocation, answers: dict[str, Any]) -> None:
    """Write the answers, readable by the user only; a cache that cannot be written is skipped."""
    location = invocation.location()
    if location is None:
        return
    answers = {"format": FORMAT, **answers}
    try:
        os.makedirs(os.path.dirname(location), exist_ok=True)
        temporary = f"{location}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps(answers))  # the C encoder: json.dump is pure Python
        os.replace(temporary, location)
    except OSError:
        pass


def forget(invocation: Invocation) -> None:
    """Drop the answers (a cold run that cannot be cached must not leave stale ones)."""
    location = invocation.location()
    if location is not None:
        with contextlib.suppress(OSError):
            os.unlink(location)
