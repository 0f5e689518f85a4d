"""Reading revision files without running them.

Alembic imports every revision file to learn its ids; a file with a syntax
error stops it with a traceback, and with hundreds of revisions every command
pays for all of them. Here each file is parsed on its own, so that one broken
file becomes one finding and the others are still read. A value that is not a
literal (``revision = make_id()``) is taken by importing that one file, as
Alembic would.

:func:`fast_script_directory` feeds what was parsed to Alembic's own
``RevisionMap``, so read-only commands get Alembic's graph, order and heads
without importing anything. What each file declares is cached by the hash of
its content (see :class:`RevisionCache`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ScriptFile and RevisionCache serve the lean path
    import ast
    from pathlib import Path

    from alembic.script import ScriptDirectory

_MISSING = object()
_NOT_LITERAL = object()
_OPS_THAT_ONLY_READ = {"get_bind", "get_context", "f", "inline_literal", "implementation_for"}
# op.execute() of text that starts with one of these changes the schema, not rows.
_DDL_WORDS = {"CREATE", "ALTER", "DROP", "RENAME", "COMMENT", "GRANT", "REVOKE", "REINDEX"}


@dataclass(frozen=True)
class ScriptFile:
    """What one revision file declares. ``error`` is set when it cannot be read."""

    path: Path
    revision: str | None = None
    down_revisions: tuple[str, ...] | None = None  # None: no down_revision variable
    has_upgrade: bool = False
    has_downgrade: bool = False
    upgrade_changes_schema: bool = False  # an op.* call on the schema (DDL)
    upgrade_changes_data: bool = False  # op.execute() of rows (not DDL), op.bulk_insert()
    downgrade_is_empty: bool = False
    error: str | None = None
    line: int | None = None
    doc: str | None = None  # the module docstring, as Alembic reads it (__doc__)
    branch_labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    literal: bool = True  # False: values came from importing the file (not cached)


def as_tuple(value: object) -> tuple[Any, ...]:
    """As ``alembic.util.to_tuple(value, default=())``: one string is one item."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple | list | set | frozenset | dict):
        return tuple(value)
    return (value,)


# Letters, digits and "_": Alembic reads "-", "+", "@" and ":" in a target as
# syntax, and a quote or a space would reach the version table's SQL.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_]+")


def bad_revision_id(revision: object) -> str | None:
    """Why ``revision`` is no usable revision id; None when it is one."""
    if not isinstance(revision, str):
        return f"revision id {revision!r} is a {type(revision).__name__}, not a string"
    if not _PLAIN_ID.fullmatch(revision):
        return (
            f"revision id {revision!r} is not a plain identifier (letters, digits, _): "
            "Alembic reads - + @ : as target syntax, and quotes or spaces would reach SQL"
        )
    return None


def revision_paths(script: ScriptDirectory) -> Iterator[Path]:
    """The files Alembic would load as revisions, in Alembic's own order."""
    from alembic.script import Script

    for location in script._version_locations:
        if location.exists():
            for path in Script._list_py_dir(script, location):
                if (
                    path.suffix == ".py"
                    and path.name != "__init__.py"
                    and not path.name.startswith(".#")
                ):
                    yield path


def read_script_file(
    path: Path, cache: RevisionCache | None = None, *, imports: bool = True
) -> ScriptFile:
    """What ``path`` declares; from ``cache`` when a file with the same content was read.

    ``imports=False``: a value that is not a literal is not taken by importing
    the file (which needs Alembic); the result says ``literal=False`` instead.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ScriptFile(path=path, error=f"{type(exc).__name__}: {exc}")
    if cache is not None:
        key = hashlib.blake2b(data, digest_size=16).hexdigest()
        if (known := cache.get(key, path)) is not None:
            return known
    found = _parse(path, data, imports)
    if cache is not None and found.literal and found.error is None:
        cache.put(key, found)
    return found


def _parse(path: Path, data: bytes, imports: bool = True) -> ScriptFile:
    import ast

    try:
        source = data.decode("utf-8")
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return ScriptFile(path=path, error=f"SyntaxError: {exc.msg}", line=exc.lineno)
    except (OSError, UnicodeDecodeError) as exc:
        return ScriptFile(path=path, error=f"{type(exc).__name__}: {exc}")

    values = _module_values(tree)
    literal = all(value is not _NOT_LITERAL for value in values.values())
    if not literal and not imports:
        return ScriptFile(path=path, literal=False)
    if not literal:
        from alembic.util.pyfiles import load_python_file

        try:
            module = load_python_file(str(path.parent), path.name)
        except Exception as exc:  # the file's own code failed: report, don't crash
            return ScriptFile(path=path, error=f"{type(exc).__name__}: {exc}")
        values = {name: getattr(module, name, _MISSING) for name in values}

    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    revision = values.get("revision", _MISSING)
    down = values.get("down_revision", _MISSING)
    upgrade, downgrade = functions.get("upgrade"), functions.get("downgrade")
    return ScriptFile(
        path=path,
        revision=revision if isinstance(revision, str) and revision else None,
        down_revisions=None if down is _MISSING else as_tuple(down),
        has_upgrade=upgrade is not None,
        has_downgrade=downgrade is not None,
        upgrade_changes_schema=upgrade is not None and "schema" in _op_kinds(upgrade, tree),
        upgrade_changes_data=upgrade is not None and "data" in _op_kinds(upgrade, tree),
        downgrade_is_empty=downgrade is not None and _is_empty(downgrade),
        doc=ast.get_docstring(tree, clean=False),
        branch_labels=_strings(values.get("branch_labels")),
        depends_on=_strings(values.get("depends_on")),
        literal=literal,
    )


def _strings(value: object) -> tuple[str, ...]:
    if value is _MISSING or value is None:
        return ()
    return as_tuple(value)


_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")


def _module_values(tree: ast.Module) -> dict[str, object]:
    import ast

    values: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _NAMES:
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    values[target.id] = _NOT_LITERAL
    return values


def _op_kinds(function: ast.FunctionDef | ast.AsyncFunctionDef, tree: ast.Module) -> set[str]:
    """What the function's ``op.*`` calls change: ``"schema"``, ``"data"``, or both.

    ``op.execute()`` changes data unless what it runs is DDL text (a literal,
    ``sa.text()`` of one, or a name assigned one in the function or module);
    text it cannot read counts as schema, as any other operation does.
    """
    import ast

    kinds: set[str] = set()
    for node in ast.walk(function):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "op"
            and node.func.attr not in _OPS_THAT_ONLY_READ
        ):
            continue
        if node.func.attr == "bulk_insert":
            kinds.add("data")
        elif node.func.attr == "execute" and node.args:
            sql = _sql_text(node.args[0], function, tree)
            is_ddl = sql is None or (sql.split() or [""])[0].upper() in _DDL_WORDS
            kinds.add("schema" if is_ddl else "data")
        else:
            kinds.add("schema")
    return kinds


def _sql_text(
    node: ast.expr, function: ast.FunctionDef | ast.AsyncFunctionDef, tree: ast.Module
) -> str | None:
    """The SQL an ``op.execute()`` argument holds; "" for a SQLAlchemy statement; None: unknown."""
    import ast

    if isinstance(node, ast.Call) and node.args and _called_name(node) == "text":
        node = node.args[0]  # sa.text("...")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
        return None
    if isinstance(node, ast.Name):
        assigned = [
            a.value
            for scope in (tree.body, function.body)
            for a in scope
            if isinstance(a, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)
        ]
        return _sql_text(assigned[-1], function, tree) if assigned else None
    if isinstance(node, ast.Call) and _called_name(node) in {"update", "insert", "delete", "values",
                                                            "where", "select"}:  # fmt: skip
        return ""  # table.update().where(...).values(...), sa.insert(table), ...
    return None


def _called_name(call: ast.Call) -> str | None:
    import ast

    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _is_empty(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Only ``pass``, ``...`` or a docstring: the function does nothing."""
    import ast

    for statement in function.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue
        return False
    return True


def cache_directory() -> Path | None:
    """Where migrasafe caches what it read; None when ``MIGRASAFE_NO_CACHE`` is set."""
    from pathlib import Path

    base = cache_base()
    return None if base is None else Path(base)


def cache_base() -> str | None:
    """:func:`cache_directory` as a string, for the lean path (which does without pathlib)."""
    if os.environ.get("MIGRASAFE_NO_CACHE"):
        return None
    return os.environ.get("MIGRASAFE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "migrasafe",
    )


class RevisionCache:
    """What each revision file declares, keyed by a hash of its content.

    One JSON file per script directory under the user's cache directory
    (``$MIGRASAFE_CACHE_DIR``, else ``$XDG_CACHE_HOME/migrasafe`` or
    ``~/.cache/migrasafe``); ``MIGRASAFE_NO_CACHE=1`` turns it off. A file
    whose content changed gets a new key, so the cache cannot go stale; a
    cache that cannot be read or written is ignored.
    """

    _FIELDS = tuple(f.name for f in dataclasses.fields(ScriptFile) if f.name != "path")

    def __init__(self, directory: str | Path) -> None:
        from pathlib import Path

        self.path = self._location(Path(directory))
        self.entries: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self.changed = False
        if self.path is not None:  # only the user's own file (project/cachefile.py)
            from migrasafe.project.cachefile import read_json

            self.entries = read_json(str(self.path)) or {}

    @staticmethod
    def _location(directory: Path) -> Path | None:
        base = cache_directory()
        if base is None:
            return None
        name = hashlib.blake2b(str(directory.resolve()).encode(), digest_size=8).hexdigest()
        return base / f"revisions-{name}.json"

    def get(self, key: str, path: Path) -> ScriptFile | None:
        entry = self.entries.get(key)
        if not isinstance(entry, dict) or len(entry) != len(self._FIELDS):  # another version's
            return None
        self.used.add(key)
        try:
            values: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()
            }
            return ScriptFile(path=path, **values)
        except TypeError:  # written by another version of migrasafe
            return None

    def put(self, key: str, found: ScriptFile) -> None:
        entry = {name: getattr(found, name) for name in self._FIELDS}
        try:
            json.dumps(entry)
        except (TypeError, ValueError):
            return  # a declaration JSON cannot hold (bytes, a set): read it again next time
        self.entries[key] = entry
        self.used.add(key)
        self.changed = True

    def save(self) -> None:
        """Write the entries used this time (files deleted since are dropped)."""
        if self.path is None or not (self.changed or self.used != set(self.entries)):
            return
        from migrasafe.project.cachefile import write_json

        # A read-only home: no cache, same results.
        write_json(str(self.path), {k: v for k, v in self.entries.items() if k in self.used})


def read_script_files(script: ScriptDirectory) -> list[ScriptFile]:
    """Every revision file of the directory, in Alembic's order, through the cache."""
    cache = RevisionCache(script.dir)
    files = [read_script_file(path, cache) for path in revision_paths(script)]
    cache.save()
    return files


def _real_path(path: Path, parents: dict[Path, Path]) -> Path:
    """``path.resolve()``, resolving each directory once (thousands of files, one directory)."""
    if path.is_symlink():
        return path.resolve()
    if path.parent not in parents:
        parents[path.parent] = path.parent.resolve()
    return parents[path.parent] / path.name


def fast_script_directory(
    script: ScriptDirectory, files: list[ScriptFile] | None = None
) -> ScriptDirectory | None:
    """``script`` with its revision map built from parsed files instead of imports.

    Gives Alembic's own graph (RevisionMap does the linking, the heads, the
    order), so results are Alembic's. None when a file cannot be read that way
    (a syntax error, no revision or down_revision, a sourceless project): the
    caller then lets Alembic import the files and report the problem.
    """
    from alembic.script import Script
    from alembic.script.revision import RevisionMap

    if script.sourceless:
        return None
    scripts = []
    seen: set[Path] = set()
    parents: dict[Path, Path] = {}
    for found in read_script_files(script) if files is None else files:
        real = _real_path(found.path, parents)
        if real in seen:
            continue  # Alembic warns and skips a file listed twice
        seen.add(real)
        if found.error or found.revision is None or found.down_revisions is None:
            return None
        down = found.down_revisions
        module = SimpleNamespace(
            revision=found.revision,
            down_revision=down[0] if len(down) == 1 else (down or None),
            branch_labels=found.branch_labels or None,
            depends_on=found.depends_on or None,
            __doc__=found.doc,
        )
        scripts.append(Script(module, found.revision, real))  # type: ignore[arg-type]
    import copy

    fast = copy.copy(script)
    fast.revision_map = RevisionMap(lambda: iter(scripts))
    return fast
