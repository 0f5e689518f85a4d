"""Installed distributions an answer came from: Alembic, SQLAlchemy, drivers, plugins, the app.

Files under site-packages are not watched one by one (hundreds of them, and
they change only with an install), so a cold run notes instead, for every
top-level module the process had imported by the end of it:

- each installed distribution that provides one (``importlib.metadata``: its
  ``top_level.txt``, else its ``RECORD``, or its name), with its version and
  the size and mtime of its ``METADATA`` and ``RECORD`` (pip writes both
  anew on every install, and an upgrade renames their directory);
- the mtime of each directory holding installed distributions (on
  ``sys.path``, or where an imported module came from): an install, upgrade
  or uninstall there adds or removes an entry, so a newly installed plugin
  or a module now shadowing another is noticed too.

The warm path checks them with a few ``os.stat`` calls. Not seen: a file
inside an installed package edited by hand (reinstall it, or run with
``MIGRASAFE_NO_CACHE=1``). Python's own modules change with Python, whose
version and ``sys.path`` are part of the answers' key
(:meth:`~migrasafe.commands.lean.answers.Invocation.location`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

_METADATA = (".dist-info", ".egg-info")
_IDENTITY = ("METADATA", "PKG-INFO", "RECORD", "installed-files.txt", "SOURCES.txt")


def holds(installed: dict[str, Any]) -> bool:
    """No install, upgrade or uninstall touched what the answers were computed with."""
    for site, mtime_ns in installed["sites"].items():
        try:
            if os.stat(site).st_mtime_ns != mtime_ns:
                return False
        except OSError:
            return False
    for found in installed["distributions"].values():
        for path, (size, mtime_ns) in found["files"].items():
            try:
                info = os.stat(path)
            except OSError:
                return False
            if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
                return False
    return True


def record() -> dict[str, Any]:
    """What :func:`holds` checks, for the modules imported so far (the cold run's side)."""
    imported: set[str] = set()
    sites: set[str] = set()
    for name, module in list(sys.modules.items()):
        if "." in name or module is None:
            continue
        # A package's directories (a namespace package has several), else the module's file:
        # either way, what stands in the directory it was installed to.
        places = getattr(module, "__path__", None) or [getattr(module, "__file__", None)]
        for place in places:
            if isinstance(place, str):
                imported.add(name)
                sites.add(os.path.dirname(os.path.abspath(place)))
    sites.update(os.path.abspath(e or os.curdir) for e in sys.path if isinstance(e, str))
    found: dict[str, Any] = {"sites": {}, "distributions": {}}
    for site in sorted(sites):
        try:
            with os.scandir(site) as entries:
                metadata = [e.path for e in entries if e.name.endswith(_METADATA)]
            mtime_ns = os.stat(site).st_mtime_ns
        except OSError:
            continue
        if not metadata:
            continue  # not a place packages are installed to: the project, Python's own
        found["sites"][site] = mtime_ns
        for path in metadata:
            distribution = _distribution(path, imported)
            if distribution is not None:
                found["distributions"][path] = distribution
    return found


def merge(earlier: dict[str, Any] | None, now: dict[str, Any]) -> dict[str, Any]:
    """Both runs' dependencies (a run that adds to an earlier one's answers)."""
    if not earlier:
        return now
    return {
        "sites": {**earlier["sites"], **now["sites"]},
        "distributions": {**earlier["distributions"], **now["distributions"]},
    }


def _distribution(path: str, imported: set[str]) -> dict[str, Any] | None:
    """The distribution whose metadata is at ``path`` if it provides an imported module."""
    if not _provides(path) & imported:
        return None
    from importlib.metadata import PathDistribution
    from pathlib import Path

    try:
        distribution = PathDistribution(Path(path))
        name, version = distribution.metadata["Name"] or "", distribution.version or ""
    except (OSError, ValueError, KeyError, TypeError):
        name, version = "", ""
    files = {}
    candidates = [path] if os.path.isfile(path) else [os.path.join(path, n) for n in _IDENTITY]
    for candidate in candidates:
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        files[candidate] = [info.st_size, info.st_mtime_ns]
    return {"name": name, "version": version, "files": files} if files else None


def _provides(path: str) -> set[str]:
    """The top-level modules a distribution installs: its ``top_level.txt``, else the first
    part of each path in its ``RECORD``, and its own name (an editable install's package
    is elsewhere). Read by hand: parsing every METADATA in site-packages costs more."""
    provides = {_normal(os.path.basename(path).split("-", 1)[0].rsplit(".", 1)[0])}
    for listing, whole in (("top_level.txt", True), ("RECORD", False)):
        try:
            with open(os.path.join(path, listing), encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, ValueError):
            continue
        if whole:
            provides.update(line.strip() for line in lines)
        else:
            provides.update(line.split("/", 1)[0].split(",", 1)[0].split(".", 1)[0]
                            for line in lines)  # fmt: skip
        break
    return provides


def _normal(name: str) -> str:
    """A distribution's name as a module spells it (``python-dateutil``: ``python_dateutil``)."""
    return name.replace("-", "_").replace(".", "_").lower()
