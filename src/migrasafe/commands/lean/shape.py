"""The answers' shape: a file is used only when it is of the shape this version writes.

The file itself is read and written as :mod:`migrasafe.project.cachefile` says
(never through a symlink, only the user's, 0600, of a bounded size). Here its
content is checked field by field (:func:`well_formed`): a truncated, corrupt
or hand-made file is ignored and the command answers cold, never with a
traceback and never with a value of the wrong type.
"""

from __future__ import annotations

from typing import Any


def _strings(value: object) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


def _state(value: object, length: int) -> bool:
    """[size, mtime_ns] or [size, mtime_ns, checksum]."""
    return (
        type(value) is list
        and len(value) == length
        and type(value[0]) is int
        and type(value[1]) is int
        and (length == 2 or type(value[2]) is str)
    )


_FLAGS = ("has_upgrade", "has_downgrade", "upgrade_changes_schema", "upgrade_changes_data",
          "downgrade_is_empty", "literal")  # fmt: skip
_ENTRY = {"revision": str, "down_revision": list, "message": str, "path": str, "is_head": bool,
          "is_current": bool, "is_base": bool, "is_branch_point": bool,
          "is_merge_point": bool, "branch_labels": list, "depends_on": list}  # fmt: skip
_ENTRY_SHAPE = (tuple(_ENTRY), tuple(_ENTRY.values()))
_FILE_SHAPE = (("path", "size", "mtime_ns", "checksum", "declared"), (str, int, int, str, dict))


def _shape(value: dict[str, Any]) -> tuple[tuple[str, ...], tuple[type, ...]]:
    """Names and types, in order: thousands of entries share a few shapes, checked once."""
    return tuple(value), tuple(map(type, value.values()))


def _declared_shape(declared: dict[str, Any], fields: frozenset[str]) -> bool:
    if declared.keys() != fields:
        return False
    for name, value in declared.items():
        if name in _FLAGS:
            ok = type(value) is bool
        elif name in ("revision",):
            ok = type(value) is str
        elif name in ("doc", "error"):
            ok = value is None or type(value) is str
        elif name == "line":
            ok = value is None or type(value) is int
        elif name == "down_revisions":
            ok = value is None or type(value) is list
        elif name in ("branch_labels", "depends_on"):
            ok = type(value) is list
        else:  # a field added since: plain JSON values only
            ok = value is None or type(value) in (bool, int, str, list)
        if not ok:
            return False
    return True


# Loops rather than all(): these run over every revision on every warm run.


def _files(files: list[Any], fields: frozenset[str]) -> bool:
    """Revision files' entries (:func:`migrasafe.commands.lean.refresh.file_entry`)."""
    seen: set[Any] = set()  # the declarations' shapes already checked
    for entry in files:
        if type(entry) is not dict or _shape(entry) != _FILE_SHAPE:
            return False
        declared = entry["declared"]
        shape = _shape(declared)
        if shape not in seen:
            if not _declared_shape(declared, fields):
                return False
            seen.add(shape)
        for value in declared.values():
            if type(value) is list:
                for item in value:
                    if type(item) is not str:
                        return False
    return True


def _entries(entries: list[Any]) -> bool:
    """History entries (:class:`~migrasafe.commands.history.HistoryEntry`)."""
    for entry in entries:
        if type(entry) is not dict or _shape(entry) != _ENTRY_SHAPE:
            return False
        for item in entry["down_revision"] + entry["branch_labels"] + entry["depends_on"]:
            if type(item) is not str:
                return False
    return True


def _graph(graph: object, revisions: set[str]) -> bool:
    """Alembic's answers, consistent with each other and with the revision files."""
    if type(graph) is not dict or graph.keys() != {"order", "heads", "entries", "parents"}:
        return False
    order, heads, entries, parents = (graph[k] for k in ("order", "heads", "entries", "parents"))
    if not (_strings(order) and _strings(heads) and type(entries) is list):
        return False
    if type(parents) is not dict or not all(_strings(p) for p in parents.values()):
        return False
    known = set(order)
    return (
        len(known) == len(order)
        and parents.keys() == known
        and all(p in known for ps in parents.values() for p in ps)
        and set(heads) <= known
        and known <= revisions
        and _entries(entries)
        and [e["revision"] for e in entries] == order
    )


def _database(database: object) -> bool:
    if database is None:
        return True
    if type(database) is not dict:
        return False
    common = (
        type(database.get("display_url")) is str
        and type(database.get("version_table")) is str
        and (database.get("schema") is None or type(database.get("schema")) is str)
    )
    if not common:
        return False
    if "unreachable" in database:
        return type(database["unreachable"]) is str
    if database.get("dialect") == "sqlite":
        return type(database.get("path")) is str
    if database.get("dialect") == "postgresql":
        connect, path = database.get("connect"), database.get("search_path")
        return (
            type(database.get("driver")) is str
            and type(connect) is dict
            and all(type(v) is str for v in connect.values())
            and connect.keys() <= {"host", "port", "user", "dbname"}
            and (path is None or type(path) is str)
        )
    return False


def _installed(installed: object) -> bool:
    """{"sites": {dir: mtime_ns}, "distributions": {dist-info: {name, version, files}}}."""
    if type(installed) is not dict or installed.keys() != {"sites", "distributions"}:
        return False
    sites, distributions = installed["sites"], installed["distributions"]
    if type(sites) is not dict or not all(type(m) is int for m in sites.values()):
        return False
    if type(distributions) is not dict:
        return False
    for found in distributions.values():
        if type(found) is not dict or found.keys() != {"name", "version", "files"}:
            return False
        files = found["files"]
        if type(found["name"]) is not str or type(found["version"]) is not str:
            return False
        if type(files) is not dict or not all(_state(s, 2) for s in files.values()):
            return False
    return True


def well_formed(answers: dict[str, Any], fmt: int, fields: frozenset[str]) -> bool:
    """Every field the lean path reads is there, of its type, and the graph is whole.

    ``fields``: the names a revision file's declarations have (ScriptFile's).
    """
    salt = answers.get("salt")
    if answers.get("format") != fmt or type(salt) is not str or len(salt) != 32:
        return False
    try:
        bytes.fromhex(salt)
    except ValueError:
        return False
    environ, watched, directories = (answers.get(k) for k in ("environ", "watched", "directories"))
    files, whole = answers.get("files"), answers.get("whole_environ")
    if type(environ) is not dict or not all(v is None or type(v) is str for v in environ.values()):
        return False
    if type(watched) is not dict or not all(s is None or _state(s, 3) for s in watched.values()):
        return False
    if type(directories) is not dict or not all(_strings(n) for n in directories.values()):
        return False
    if type(files) is not list or not _files(files, fields):
        return False
    revisions = {f["declared"]["revision"] for f in files}
    return (
        (whole is None or type(whole) is str)
        and _graph(answers.get("graph"), revisions)
        and _database(answers.get("database"))
        and _installed(answers.get("installed"))
    )
