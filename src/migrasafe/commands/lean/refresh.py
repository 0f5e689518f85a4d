"""Bringing cached answers up to date after revision files alone changed.

When ``env.py``, what it imports and the environment are as the cold run
saw them, where the database is still holds; only the revision files moved
on. Each changed file is parsed again (not imported: a value that is not a
literal sends the run cold) and the answers are updated for the edits whose
effect on Alembic's graph is certain:

- a file whose ``revision``, ``down_revision``, ``branch_labels`` and
  ``depends_on`` are unchanged (an edited body or docstring): the graph is
  the same, only the file's checksum, its checks' facts and its message change;
- a new revision on the single head, with no dependency, in a project
  without branch labels: Alembic's order gains it last, and it is the new head;
- the single head's file deleted, when it had one parent and no dependency,
  nothing depended on it and the project has no branch labels: the parent
  is the head again.

Anything else (a changed ``down_revision`` or ``branch_labels``, a merge, a
new directory, several files added) answers None: the cold run recomputes
it with Alembic's own RevisionMap. ``tests/test_lean.py`` checks that every
refreshed answer equals a cold run's.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from migrasafe.commands.lean.answers import file_state, listing, unchanged
from migrasafe.project.scripts import ScriptFile, bad_revision_id, read_script_file

_DECLARED = tuple(f.name for f in dataclasses.fields(ScriptFile) if f.name != "path")
_GRAPH = ("revision", "down_revisions", "branch_labels", "depends_on")


def file_entry(found: ScriptFile) -> dict[str, Any] | None:
    """What the answers keep of a revision file; None when the lean path cannot keep it."""
    declared = {name: getattr(found, name) for name in _DECLARED}
    for name in ("branch_labels", "depends_on", "down_revisions"):
        values = declared[name]
        if values is not None and not all(isinstance(v, str) for v in values):
            return None  # not JSON, and not what Alembic would accept either
    state = file_state(str(found.path))
    if state is None:
        return None
    size, mtime_ns, digest = state
    return {"path": str(found.path), "size": size, "mtime_ns": mtime_ns, "checksum": digest,
            "declared": declared}  # fmt: skip


def message(doc: str | None) -> str:
    """Alembic's ``Script.doc``: the docstring's first paragraph."""
    return doc.strip().split("\n\n")[0] if doc else ""


def _read(path: str) -> dict[str, Any] | None:
    """A revision file parsed again, as the cold run would; None if only a cold run can."""
    from pathlib import Path

    found = read_script_file(Path(path), imports=False)
    if found.error is not None or not found.literal or found.revision is None:
        return None
    if found.down_revisions is None or bad_revision_id(found.revision) is not None:
        return None
    return file_entry(found)


def _same_graph(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def graph(declared: dict[str, Any]) -> list[Any]:
        return [list(declared[k]) if isinstance(declared[k], list | tuple) else declared[k]
                for k in _GRAPH]  # fmt: skip

    return graph(old["declared"]) == graph(new["declared"])


def refresh(answers: dict[str, Any]) -> dict[str, Any] | None:
    """``answers`` updated, in place, for the revision files changed since; None: answer cold.

    (When it answers None, what it changed is thrown away with the rest.)
    """
    files: list[dict[str, Any]] = answers["files"]
    by_path = {os.path.abspath(f["path"]): f for f in files}
    added: list[str] = []
    removed: list[dict[str, Any]] = []
    for directory, names in answers["directories"].items():
        try:
            now = listing(directory)
        except OSError:
            return None
        if now == names:
            continue
        for name in sorted(set(now) - set(names)):
            path = os.path.join(directory, name)
            if not name.endswith(".py") or os.path.isdir(path):
                return None  # a new directory: recursive version locations may read it
            if name != "__init__.py" and not name.startswith(".#"):
                added.append(path)
        removed += [by_path[p] for n in set(names) - set(now)
                    if (p := os.path.join(directory, n)) in by_path]  # fmt: skip
        answers["directories"][directory] = now
    graph = answers["graph"]
    entries = {e["revision"]: e for e in graph["entries"]}
    for index, entry in enumerate(files):
        if entry in removed or unchanged(entry):
            continue
        new = _read(entry["path"])
        if new is None or not _same_graph(entry, new):
            return None
        files[index] = new
        entries[new["declared"]["revision"]]["message"] = message(new["declared"]["doc"])
    if len(added) + len(removed) > 1:
        return None
    if added and not _add(answers, added[0], entries):
        return None
    if removed and not _remove(answers, removed[0], entries):
        return None
    return answers


def _labelled(files: list[dict[str, Any]]) -> bool:
    """A branch label anywhere: Alembic spreads labels along their branch, so a new or
    deleted revision can change other revisions' labels; the cold run works them out."""
    return any(f["declared"]["branch_labels"] for f in files)


def _add(answers: dict[str, Any], path: str, entries: dict[str, dict[str, Any]]) -> bool:
    """A new revision on the single head: last in the order, the new head."""
    graph, files = answers["graph"], answers["files"]
    directory = os.path.dirname(path)
    siblings = [i for i, f in enumerate(files)
                if os.path.dirname(os.path.abspath(f["path"])) == directory]  # fmt: skip
    if not siblings or len(graph["heads"]) != 1:
        return False
    shown = os.path.join(os.path.dirname(files[siblings[0]]["path"]), os.path.basename(path))
    new = _read(shown)
    if new is None:
        return False
    declared, (head,) = new["declared"], graph["heads"]
    revision = declared["revision"]
    if tuple(declared["down_revisions"]) != (head,) or declared["depends_on"]:
        return False
    if revision in graph["parents"] or _labelled(files) or declared["branch_labels"]:
        return False
    name = os.path.basename(path)
    after = [i for i in siblings if os.path.basename(files[i]["path"]) < name]
    files.insert((after[-1] + 1) if after else siblings[0], new)
    entries[head]["is_head"] = False
    graph["order"].append(revision)
    graph["heads"] = [revision]
    graph["parents"][revision] = [head]
    graph["entries"].append({
        "revision": revision, "down_revision": [head], "message": message(declared["doc"]),
        "path": os.path.realpath(shown), "is_head": True, "is_current": False, "is_base": False,
        "is_branch_point": False, "is_merge_point": False, "branch_labels": [], "depends_on": [],
    })  # fmt: skip
    return True


def _remove(answers: dict[str, Any], gone: dict[str, Any],
            entries: dict[str, dict[str, Any]]) -> bool:  # fmt: skip
    """The single head's file deleted: its parent is the head again."""
    graph, files = answers["graph"], answers["files"]
    declared = gone["declared"]
    revision = declared["revision"]
    parents = tuple(declared["down_revisions"])
    if (graph["heads"] != [revision] or graph["order"][-1:] != [revision] or len(parents) != 1
            or declared["branch_labels"] or declared["depends_on"]):  # fmt: skip
        return False
    if _labelled(files) or any(revision in f["declared"]["depends_on"] for f in files):
        return False
    (parent,) = parents
    files.remove(gone)
    graph["order"].pop()
    graph["heads"] = [parent]
    del graph["parents"][revision]
    graph["entries"] = [e for e in graph["entries"] if e["revision"] != revision]
    entries[parent]["is_head"] = True
    return True
