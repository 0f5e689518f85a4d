"""Whether every migration runs with a ``lock_timeout``: the deploy settings in force.

``missing-lock-timeout`` stays quiet when the deploy sets one for every
statement: ``--db-lock-timeout`` given to lint (as to ``migrasafe upgrade``),
``db-lock-timeout`` in ``[tool.migrasafe]`` (what ``migrasafe upgrade`` sets
per session), or an ``env.py`` that executes ``SET lock_timeout`` itself (or
connects with ``options="-c lock_timeout=..."``). env.py is not run: its
syntax tree is read for a call that sends such SQL, so a comment or a string
that is never executed does not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from migrasafe.checks.lint.sql import Statement, operations_in
from migrasafe.project.settings import load_deploy_settings

# What sends SQL: connection.execute, exec_driver_sql, context.execute, cursor.execute.
_SENDERS = {"execute", "exec_driver_sql", "executescript"}
_OPTIONS = re.compile(r"-c\s*lock_timeout\s*=\s*'?(\w+)")


def lock_timeout_in_force(root: Path, given: str | None, env_py: Path | None) -> str | None:
    """Why every statement of the project runs with a lock_timeout; None when none is known.

    ``root``: where pyproject.toml is looked for; ``given``: ``--db-lock-timeout``.
    A timeout of 0 is none (PostgreSQL waits for ever).
    """
    deploy = load_deploy_settings(root, db_lock_timeout=given)
    if deploy.db_lock_timeout:
        return "--db-lock-timeout" if given is not None else "db-lock-timeout in [tool.migrasafe]"
    if env_py is not None and env_sets_lock_timeout(env_py):
        return f"{env_py} executes SET lock_timeout"
    return None


def env_sets_lock_timeout(env_py: Path) -> bool:
    """Whether ``env_py`` has a call that sends ``SET lock_timeout`` to a limit (not 0)."""
    try:
        tree = ast.parse(env_py.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if name in _SENDERS and node.args and _sets_lock_timeout(_text(node.args[0])):
            return True
        for keyword in node.keywords:  # create_engine(connect_args={"options": "-c ..."})
            if isinstance(keyword.value, ast.Dict):
                for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                    if _constant(key) == "options" and _option_sets(_text(value)):
                        return True
            elif keyword.arg == "options" and _option_sets(_text(keyword.value)):
                return True
    return False


def _constant(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _text(node: ast.expr) -> str | None:
    """The SQL a call argument holds: a string, text("..."), or an f-string (values as 1)."""
    if isinstance(node, ast.Call) and node.args:  # text("..."), sa.text("...")
        func = node.func
        if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "text":
            return _text(node.args[0])
        return None
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "1" for v in node.values)
    value = _constant(node)
    return value if isinstance(value, str) else None


def _limit(value: str) -> bool:
    """A lock_timeout value that limits the wait: not 0."""
    return value.strip().strip("'\"").rstrip("ms").strip() not in ("0", "")


def lock_timeout_set(op: object) -> bool | None:
    """True/False for ``SET [LOCAL] lock_timeout`` to a limit / to 0 (none); None otherwise."""
    if isinstance(op, Statement) and op.kind == "set" and op.table_name:
        name, _, value = op.table_name.partition("=")
        if name == "lock_timeout":
            return _limit(value)
    return None


def _sets_lock_timeout(sql: str | None) -> bool:
    found = operations_in(sql, "postgresql") if sql else None
    return any(lock_timeout_set(op) for op in found or ())


def _option_sets(text: str | None) -> bool:
    match = _OPTIONS.search(text or "")
    return match is not None and _limit(match.group(1))
