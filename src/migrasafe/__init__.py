"""migrasafe: Alembic migrations that tell the truth about a database.

Every command is a function that takes a :class:`Project` and returns data;
the ``migrasafe`` command line only renders what they return.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from migrasafe.checks.findings import Finding
    from migrasafe.checks.lint import LintReport, lint
    from migrasafe.checks.validate import ValidationReport, validate
    from migrasafe.checks.verify import VerifyReport, verify
    from migrasafe.commands.history import History, HistoryEntry, history
    from migrasafe.commands.scaffold import InitResult, RevisionResult, init, revision
    from migrasafe.commands.status import Status, status
    from migrasafe.deploy.migrate import MigrationResult, downgrade, upgrade
    from migrasafe.errors import (
        ConfigError,
        DatabaseError,
        MigrasafeError,
        MigrationFailed,
        ProjectError,
        RevisionError,
    )
    from migrasafe.project.config import Project, load_project

# Everything is imported on first use: importing migrasafe (as pytest does, loading the
# plugin) costs nothing, and `migrasafe status` does not pay for Alembic and SQLAlchemy
# when its lean path answers (see migrasafe.commands.lean).
_HOME = {
    "ConfigError": "errors", "DatabaseError": "errors", "MigrasafeError": "errors",
    "MigrationFailed": "errors", "ProjectError": "errors", "RevisionError": "errors",
    "Finding": "checks.findings",
    "History": "commands.history", "HistoryEntry": "commands.history",
    "history": "commands.history",
    "Status": "commands.status", "status": "commands.status",
    "ValidationReport": "checks.validate", "validate": "checks.validate",
    "Project": "project.config", "load_project": "project.config",
    "MigrationResult": "deploy.migrate", "downgrade": "deploy.migrate",
    "upgrade": "deploy.migrate",
    "InitResult": "commands.scaffold", "RevisionResult": "commands.scaffold",
    "init": "commands.scaffold", "revision": "commands.scaffold",
    "LintReport": "checks.lint", "lint": "checks.lint",
    "VerifyReport": "checks.verify", "verify": "checks.verify",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "ConfigError",
    "DatabaseError",
    "Finding",
    "History",
    "HistoryEntry",
    "InitResult",
    "LintReport",
    "MigrasafeError",
    "MigrationFailed",
    "MigrationResult",
    "Project",
    "ProjectError",
    "RevisionError",
    "RevisionResult",
    "Status",
    "ValidationReport",
    "VerifyReport",
    "downgrade",
    "history",
    "init",
    "lint",
    "load_project",
    "revision",
    "status",
    "upgrade",
    "validate",
    "verify",
]
