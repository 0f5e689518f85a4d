"""What a project declares to ``verify``, as pytest-alembic lets a project declare it.

In ``[tool.migrasafe.verify]`` of the nearest ``pyproject.toml``::

    irreversible = ["8f1e2c", "9a0b1c"]   # downgrades not to run; reported, not failed

    [tool.migrasafe.verify.before_revision_data]
    "9a0b1c" = { settings = [{ key = "theme", value = "dark" }] }

``before_revision_data`` (pytest-alembic's name) gives rows to insert just
before a revision's upgrade, for data migrations that need specific rows; it
may also name a JSON file holding the same mapping. A downgrade that raises
``NotImplementedError`` is taken as declared irreversible too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrasafe.errors import ConfigError
from migrasafe.project.settings import tool_section

Rows = dict[str, list[dict[str, Any]]]  # table -> rows


@dataclass(frozen=True)
class Declarations:
    irreversible: frozenset[str] = frozenset()
    before_revision_data: dict[str, Rows] = field(default_factory=dict)


def load_declarations(start: Path) -> Declarations:
    section, path = tool_section(start)
    verify = section.get("verify", {})
    where = f"[tool.migrasafe.verify] in {path}"
    if not isinstance(verify, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(verify) - {"irreversible", "before_revision_data"})
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)} "
                          "(known: irreversible, before_revision_data)")  # fmt: skip
    irreversible = verify.get("irreversible", [])
    if not isinstance(irreversible, list) or not all(isinstance(r, str) for r in irreversible):
        raise ConfigError(f"{where}: irreversible must be a list of revision ids")
    data = verify.get("before_revision_data", {})
    if isinstance(data, str) and path is not None:
        file = path.parent / data
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: before_revision_data names {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: before_revision_data must map revision ids to tables")
    rows: dict[str, Rows] = {}
    for revision, tables in data.items():
        if not isinstance(revision, str) or not isinstance(tables, dict):
            raise ConfigError(f"{where}: before_revision_data.{revision} must map tables to rows")
        rows[revision] = {}
        for table, value in tables.items():
            listed = value if isinstance(value, list) else [value]
            if not all(isinstance(row, dict) for row in listed):
                raise ConfigError(
                    f"{where}: before_revision_data.{revision}.{table} must be a row "
                    "(a table of column = value) or a list of rows"
                )
            rows[revision][table] = listed
    return Declarations(frozenset(irreversible), rows)
