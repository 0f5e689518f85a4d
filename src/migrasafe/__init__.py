"""migrasafe: Alembic migrations that tell the truth about a database.

Every command is a function that takes a :class:`Project` and returns data;
the ``migrasafe`` command line only renders what they return.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Project, load_project
    from .errors import (
        ConfigError,
        DatabaseError,
        MigrasafeError,
        MigrationFailed,
        ProjectError,
        RevisionError,
    )
    from .findings import Finding
    from .history import History, HistoryEntry, history
    from .migrate import MigrationResult, downgrade, upgrade
    from .scaffold import InitResult, RevisionResult, init, revision
    from .status import Status, status
    from .validate import ValidationReport, validate

# Imported on first use: the command line imports this package for every
# command, and most commands need few of these modules.
_WHERE = {
    "Project": "config", "load_project": "config",
    "ConfigError": "errors", "DatabaseError": "errors", "MigrasafeError": "errors",
    "MigrationFailed": "errors", "ProjectError": "errors", "RevisionError": "errors",
    "Finding": "findings",
    "History": "history", "HistoryEntry": "history", "history": "history",
    "MigrationResult": "migrate", "downgrade": "migrate", "upgrade": "migrate",
    "InitResult": "scaffold", "RevisionResult": "scaffold", "init": "scaffold",
    "revision": "scaffold",
    "Status": "status", "status": "status",
    "ValidationReport": "validate", "validate": "validate",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'migrasafe' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)


__all__ = [
    "ConfigError",
    "DatabaseError",
    "Finding",
    "History",
    "HistoryEntry",
    "InitResult",
    "MigrasafeError",
    "MigrationFailed",
    "MigrationResult",
    "Project",
    "ProjectError",
    "RevisionError",
    "RevisionResult",
    "Status",
    "ValidationReport",
    "downgrade",
    "history",
    "init",
    "load_project",
    "revision",
    "status",
    "upgrade",
    "validate",
]
