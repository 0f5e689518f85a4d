"""``lint``: dangerous operations, found before they reach a database.

The operations of each revision's ``upgrade()`` are recorded offline for a
dialect (:mod:`migrasafe.operations`); each rule is a plain function over one
revision's operations, registered under a stable id. What is dangerous, and
why, depends on the dialect: that knowledge lives in the rules below.

Suppress a finding with ``# migrasafe: ignore[rule-id]`` on the statement that
performs the operation, or for a whole project in pyproject.toml::

    [tool.migrasafe.lint]
    ignore = ["mixed-schema-and-data"]
    per-revision-ignore = { "0007" = ["drop-column"] }
"""

from __future__ import annotations

# Each module registers its rules, in the order --list-rules shows them.
# isort: off
from . import schema, postgresql, style, sqlite, mysql  # noqa: F401

# isort: on
from .base import DIALECTS, RULES, Hit, RevisionLint, type_name
from .run import LintReport, lint, resolve_dialect, select_revisions
from .suppress import LintSettings, load_settings

__all__ = [
    "DIALECTS", "RULES", "Hit", "LintReport", "LintSettings", "RevisionLint", "lint",
    "load_settings", "resolve_dialect", "select_revisions", "type_name",
]  # fmt: skip
