"""The cold run's side of the lean path: note what it read, then write the answers.

Imported only by a cold run, which has Alembic and SQLAlchemy loaded anyway.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from migrasafe.commands.history import _entry
from migrasafe.commands.lean import installed
from migrasafe.commands.lean.answers import (
    Invocation,
    environ_digest,
    environment_holds,
    file_state,
    forget,
    listing,
    read,
    salted,
    save,
)
from migrasafe.commands.lean.refresh import file_entry
from migrasafe.commands.lean.watch import Watch, project_files, watching
from migrasafe.project.config import Project
from migrasafe.project.env import EnvContext, observe_probes
from migrasafe.project.graph import apply_order


class Recording:
    """A cold run under watch; :meth:`remember` writes what it found for the next run."""

    def __init__(self, invocation: Invocation, watch: Watch, probes: list[EnvContext]) -> None:
        self.invocation = invocation
        self.watch = watch
        self.probes = probes
        # Before env.py runs: it may change os.environ, and with it the cache's location.
        self.location = invocation.location()

    def remember(self, project: Project) -> None:
        """Cache the project's graph and, if env.py was run, where its database is."""
        try:
            answers = self._answers(project)
        except Exception:  # a cache is never worth a failed command
            answers = None
        if self.location is None:
            return
        if answers is None:
            forget(self.invocation, self.location)
        else:
            save(self.invocation, answers, self.location)

    def _answers(self, project: Project) -> dict[str, Any] | None:
        files = project.script_files
        if any(f.error is not None or f.revision is None for f in files):
            return None  # validate must read them again: errors are not cached
        # A file whose values came from importing it (not literals) is kept too: its
        # imports were watched. Edited, it sends the next run cold (lean/refresh.py).
        kept = [file_entry(f) for f in files]
        if any(entry is None for entry in kept):
            return None
        graph = project.graph
        order = apply_order(graph)
        revision_files = {os.path.abspath(f.path) for f in files}
        directories = {os.path.dirname(p) for p in revision_files}
        directories.update(os.path.abspath(d) for d in graph._version_locations)
        # A run that did not run env.py (validate) keeps what an earlier one learnt of the
        # database, with what that answer depended on, while that still holds:
        # dependencies only ever add up.
        earlier = {} if self.probes else _earlier(self.location)
        salt = earlier.get("salt") or secrets.token_hex(16)
        environ = dict(earlier.get("environ") or {})
        environ.update((k, None if v is None else salted(salt, v))
                       for k, v in self.watch.environ.items())  # fmt: skip
        watched = dict(earlier.get("watched") or {})
        watched.update(
            (path, file_state(path))
            for path in project_files(self.watch, revision_files, _cache_roots())
        )
        whole = self.watch.whole_environ or earlier.get("whole_environ") is not None
        return {
            "salt": salt,
            "environ": environ,
            "whole_environ": environ_digest(salt, self.watch.started) if whole else None,
            "watched": watched,
            "directories": {d: listing(d) for d in sorted(directories) if os.path.isdir(d)},
            "files": kept,
            "graph": {
                "order": [s.revision for s in order],
                "heads": list(graph.get_heads()),
                "entries": [_entry(s, ()).to_dict() for s in order],
                "parents": {s.revision: list(s._normalized_down_revisions) for s in order},
            },
            "installed": installed.merge(earlier.get("installed"), installed.record()),
            "database": _database(self.probes[-1]) if self.probes else earlier.get("database"),
        }


def _earlier(location: str | None) -> dict[str, Any]:
    """The answers as they stand, for a run that adds to them, if what they depend on holds."""
    found = None if location is None else read(location)
    return found if found is not None and environment_holds(found) else {}


def _cache_roots() -> tuple[str, ...]:
    """Not the project's: migrasafe's own cache and its own sources."""
    from migrasafe.project.scripts import cache_directory

    base = cache_directory()
    own = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = [own] if base is None else [own, os.path.abspath(base)]
    return tuple(os.path.join(r, "") for r in roots)


# What SQLAlchemy's PostgreSQL dialects add for their own use: not a connection setting.
_DRIVER_OWN = frozenset(
    {"context", "prepared_statement_cache_size", "prepared_statement_name_func"}
)


def _database(context: EnvContext) -> dict[str, Any]:
    """How the lean path reaches the database env.py connected to, or why it cannot."""
    common = {
        "display_url": context.display_url,
        "version_table": context.version_table,
        "schema": context.version_table_schema,
    }
    if context.connected is None:
        return {"unreachable": "env.py made no connection of its own", **common}
    dialect, driver, cargs, cparams = context.connected
    if dialect == "sqlite":
        database = cargs[0] if cargs else None
        if (not isinstance(database, str) or database in ("", ":memory:")
                or database.startswith("file:") or cparams.get("uri")
                or context.version_table_schema):  # fmt: skip
            return {"unreachable": "an in-memory, URI or attached SQLite database", **common}
        return {"dialect": "sqlite", "path": os.path.abspath(database), **common}
    if dialect == "postgresql":
        if context.url.password is not None or cparams.get("password") is not None:
            return {"unreachable": "a password, which is never cached", **common}
        cparams = {k: v for k, v in cparams.items() if k not in _DRIVER_OWN and v is not None}
        if cargs or set(cparams) - {"host", "port", "user", "dbname", "database"}:
            return {"unreachable": "connect arguments beyond host, port, user, database",
                    **common}  # fmt: skip
        connect = {("dbname" if k == "database" else k): str(v) for k, v in cparams.items()}
        return {"dialect": "postgresql", "driver": driver, "connect": connect,
                "search_path": context.session.get("search_path"), **common}  # fmt: skip
    return {"unreachable": f"no lean reader for {dialect}", **common}


@contextmanager
def recording(invocation: Invocation) -> Iterator[Recording]:
    """Watch a cold run; call ``remember(project)`` on the result inside the block."""
    with ExitStack() as stack:
        watch = stack.enter_context(watching())
        probes = stack.enter_context(observe_probes())
        yield Recording(invocation, watch, probes)
