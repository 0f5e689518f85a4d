"""Reading revision files without running them.

Alembic imports every revision file to learn its ids; a file with a syntax
error stops it with a traceback. Here each file is parsed on its own, so that
one broken file becomes one finding and the others are still read. A value
that is not a literal (``revision = make_id()``) is taken by importing that
one file, as Alembic would.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.script import Script, ScriptDirectory
from alembic.util import to_tuple
from alembic.util.pyfiles import load_python_file

_MISSING = object()
_NOT_LITERAL = object()
_OPS_THAT_ONLY_READ = {"get_bind", "get_context", "f", "inline_literal", "implementation_for"}


@dataclass(frozen=True)
class ScriptFile:
    """What one revision file declares. ``error`` is set when it cannot be read."""

    path: Path
    revision: str | None = None
    down_revisions: tuple[str, ...] | None = None  # None: no down_revision variable
    has_upgrade: bool = False
    has_downgrade: bool = False
    upgrade_changes_schema: bool = False
    downgrade_is_empty: bool = False
    error: str | None = None
    line: int | None = None


def revision_paths(script: ScriptDirectory) -> Iterator[Path]:
    """The files Alembic would load as revisions, in Alembic's own order."""
    for location in script._version_locations:
        if location.exists():
            for path in Script._list_py_dir(script, location):
                if (
                    path.suffix == ".py"
                    and path.name != "__init__.py"
                    and not path.name.startswith(".#")
                ):
                    yield path


def read_script_file(path: Path) -> ScriptFile:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        return ScriptFile(path=path, error=f"SyntaxError: {exc.msg}", line=exc.lineno)
    except (OSError, UnicodeDecodeError) as exc:
        return ScriptFile(path=path, error=f"{type(exc).__name__}: {exc}")

    values = _module_values(tree)
    if any(value is _NOT_LITERAL for value in values.values()):
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
        down_revisions=None if down is _MISSING else to_tuple(down, default=()),
        has_upgrade=upgrade is not None,
        has_downgrade=downgrade is not None,
        upgrade_changes_schema=upgrade is not None and _calls_op(upgrade),
        downgrade_is_empty=downgrade is not None and _is_empty(downgrade),
    )


_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")


def _module_values(tree: ast.Module) -> dict[str, object]:
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


def _calls_op(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether the function calls an ``op.*`` operation that changes something."""
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "op"
            and node.func.attr not in _OPS_THAT_ONLY_READ
        ):
            return True
    return False


def _is_empty(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Only ``pass``, ``...`` or a docstring: the function does nothing."""
    for statement in function.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue
        return False
    return True
