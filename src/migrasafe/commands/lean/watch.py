"""What a cold run depended on: the files it read and the environment variables it asked for.

``env.py`` decides the database, and it may decide from anything: the ini
file, a settings module, a ``.env`` file, ``$DATABASE_URL``. A cached answer
is only as good as the list of what it came from, so while a cold run loads
the project and runs ``env.py``, every file opened for reading (an audit hook
on Python's ``open`` event, which covers ``open``, ``io.open``, ``os.open``
and the imports' own reads) and every environment variable read is noted.
The lean path reuses the answer only when all of them are as they were.

What the user's code sees is what it sees under Alembic: ``os.environ`` stays
the same object, with the same contents, and its writes reach the process's
environment as ever; only its class is, while watching, a subclass whose
reads also note the variable (``os.environb`` likewise). An ``env.py`` that
assigns ``os.environ = dict(...)`` keeps its dictionary (the variables it
was built from were read through the watched one), ``os.putenv`` and
``dotenv.load_dotenv()`` act as they do under Alembic. A variable is noted
with the value the process started with: what ``env.py`` or a ``.env`` file
(itself watched) set is not a dependency of its own. The audit hook
(``sys.addaudithook`` cannot be undone) returns at once outside a cold run
and never raises: a failing hook would fail the ``open`` it audits.

A module an import looked for and did not find (``try: import local_settings
except ImportError``) counts too: the files it would have been are noted as
absent, so creating one sends the next run cold. Not seen: a file only
tested for existence (``os.path.exists``), and what C code reads on its own
(libpq's ``PGHOST``). The cache can be turned off with
``MIGRASAFE_NO_CACHE=1``.
"""

from __future__ import annotations

import importlib.util  # imported by the cold run only (see lean/remember.py)
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


@dataclass
class Watch:
    """Files read (absolute paths) and environment variables read (value, or None if unset)."""

    files: set[str] = field(default_factory=set)
    environ: dict[str, str | None] = field(default_factory=dict)
    whole_environ: bool = False  # something iterated os.environ: every variable counts
    started: dict[str, str] = field(default_factory=dict)  # the environment, as it began

    def read(self, key: object) -> None:
        """Note a variable read: its value when the watch began (later writes are the run's)."""
        name = os.fsdecode(key) if isinstance(key, bytes) else key
        if isinstance(name, str):
            self.environ.setdefault(name, self.started.get(name))


_active: list[Watch] = []
_hooked = False


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _active:
        return
    try:
        path, mode, flags = ((*tuple(args), None, None, None))[:3]
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return
        if mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS:
            return
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str | Path):
            _active[-1].files.add(os.path.abspath(path))
    except Exception:  # a hook that raises fails the user's open(): never
        return


class _Noting(os._Environ):  # type: ignore[type-arg]
    """The class of ``os.environ`` and ``os.environb`` while watching: reads are noted.

    Named as the class it stands in for, so ``type(os.environ)`` reads the same.
    """

    def __getitem__(self, key: Any) -> Any:
        if _active:
            _active[-1].read(key)
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[Any]:
        if _active:
            _active[-1].whole_environ = True
        return super().__iter__()

    def __len__(self) -> int:
        if _active:
            _active[-1].whole_environ = True
        return super().__len__()

    def __repr__(self) -> str:
        if _active:
            _active[-1].whole_environ = True
        return super().__repr__()


class _Absent:
    """First on ``sys.meta_path`` while watching: a module no finder finds is noted as the
    files it would have been, in each directory the import searched."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if not _active:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            try:
                if find(name, path, target) is not None:
                    return None  # found: the import goes on as it would have
            except Exception:  # a finder's own trouble: the import will report it
                return None
        leaf = name.rpartition(".")[2]
        for entry in path if path is not None else sys.path:
            if isinstance(entry, str):
                directory = os.path.abspath(entry or os.curdir)
                module = os.path.join(directory, f"{leaf}.py")
                package = os.path.join(directory, leaf, "__init__.py")
                _active[-1].files.update((module, package))
        return None


_Noting.__name__ = _Noting.__qualname__ = os._Environ.__qualname__
_Noting.__module__ = os._Environ.__module__
_ABSENT = _Absent()


@contextmanager
def watching() -> Iterator[Watch]:
    """Record, while inside, what the process reads (see the module's docstring)."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_on_audit)  # cannot be removed: it does nothing outside watching()
        _hooked = True
    environs = [e for e in (os.environ, getattr(os, "environb", None)) if type(e) is os._Environ]
    watch = Watch(started=_environment())
    modules = set(sys.modules)
    _active.append(watch)
    for environ in environs:  # the same objects: the user's code sees them as ever
        environ.__class__ = _Noting
    sys.meta_path.insert(0, _ABSENT)
    try:
        yield watch
    finally:
        with suppress(ValueError):
            sys.meta_path.remove(_ABSENT)
        _active.remove(watch)
        if not _active:
            for environ in environs:
                environ.__class__ = os._Environ
        for name in set(sys.modules) - modules:  # imported here: their sources count
            origin = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(origin, str):
                watch.files.add(os.path.abspath(origin))


def _environment() -> dict[str, str]:
    """The process's environment, read without noting it (a watch may be active)."""
    environ = os.environ
    if isinstance(environ, os._Environ):
        data: dict[bytes, bytes] = environ._data  # type: ignore[attr-defined]
        return {os.fsdecode(k): os.fsdecode(v) for k, v in data.items()}
    return dict(environ) if isinstance(environ, dict) else {}  # an env.py's own dict


def _python_roots() -> tuple[str, ...]:
    """Python's own files and installed packages: they change with an install, not a project."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(os.path.join(os.path.abspath(r), "") for r in roots if r)


def project_files(watch: Watch, skip: set[str], skip_under: tuple[str, ...] = ()) -> list[str]:
    """The files read that belong to the project: sources rather than their bytecode."""
    roots = (*_python_roots(), "/proc/", "/sys/", "/dev/", *skip_under)
    found = set()
    for path in watch.files:
        if "__pycache__" in path:
            with suppress(ValueError):
                path = importlib.util.source_from_cache(path)
        if path.startswith(roots) or path in skip or os.path.isdir(path):
            continue
        found.add(path)
    return sorted(found)
