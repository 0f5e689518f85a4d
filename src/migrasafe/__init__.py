"""migrasafe: Alembic migrations that tell the truth about a database.

Every command is a function that takes a :class:`Project` and returns data;
the ``migrasafe`` command line only renders what they return.
"""

import importlib
from typing import TYPE_CHECKING, Any

from migrasafe.checks.findings import Finding
from migrasafe.checks.validate import ValidationReport, validate
from migrasafe.commands.history import History, HistoryEntry, history
from migrasafe.commands.status import Status, status

# Light modules (no Alembic, SQLAlchemy or rich at import): imported here, so that
# the functions history, status and validate shadow their modules' names.
from migrasafe.errors import (
    ConfigError,
    DatabaseError,
    MigrasafeError,
    MigrationFailed,
    ProjectError,
    RevisionError,
)

if TYPE_CHECKING:
    from migrasafe.checks.lint import LintReport, lint
    from migrasafe.checks.verify import VerifyReport, verify
    from migrasafe.commands.scaffold import InitResult, RevisionResult, init, revision
    from migrasafe.deploy.migrate import MigrationResult, downgrade, upgrade
    from migrasafe.project.config import Project, load_project

# Imported on first use: `migrasafe status` must not pay for Alembic and SQLAlchemy
# when its lean path answers (see migrasafe.commands.lean).
_HOME = {
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
