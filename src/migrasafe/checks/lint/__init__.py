"""``lint``: dangerous operations, found before they reach a database.

The operations of each revision's ``upgrade()`` are recorded offline for a
dialect (:mod:`migrasafe.checks.lint.operations`); each rule is a plain function over one
revision's operations, registered under a stable id. What is dangerous, and
why, depends on the dialect: that knowledge lives in the rules below.

Suppress a finding with ``# migrasafe: ignore[rule-id]`` on the statement that
performs the operation, or for a whole project in pyproject.toml::

    [tool.migrasafe.lint]
    ignore = ["mixed-schema-and-data"]
    per-revision-ignore = { "0007" = ["drop-column"] }
"""

from __future__ import annotations

from migrasafe.checks.lint.base import DIALECTS, RULES, Hit, RevisionLint, type_name

# Each module registers its rules, in the order --list-rules shows them.
from migrasafe.checks.lint.rules import (  # noqa: F401 - each registers its rules
    mysql,
    phases,
    postgresql,
    schema,
    sqlite,
    style,
)
from migrasafe.checks.lint.run import (
    LintReport,
    lint,
    lint_sql_files,
    resolve_dialect,
    select_revisions,
    sql_files,
)
from migrasafe.checks.lint.suppress import LintSettings, load_settings

__all__ = [
    "DIALECTS", "RULES", "Hit", "LintReport", "LintSettings", "RevisionLint", "lint",
    "lint_sql_files", "load_settings", "resolve_dialect", "select_revisions", "sql_files",
    "type_name",
]  # fmt: skip
