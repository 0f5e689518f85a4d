"""migrasafe: Alembic migrations that tell the truth about a database.

Every command is a function that takes a :class:`Project` and returns data;
the ``migrasafe`` command line only renders what they return.
"""

import importlib
from typing import TYPE_CHECKING, Any

# Light modules (no Alembic, SQLAlchemy or rich at import): imported here, so that
# the functions history, status and validate shadow their modules' names.
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
from .status import Status, status
from .validate import ValidationReport, validate

if TYPE_CHECKING:
    from .config import Project, load_project
    from .migrate import MigrationResult, downgrade, upgrade
    from .scaffold import InitResult, RevisionResult, init, revision

# Imported on first use: `migrasafe status` must not pay for Alembic and SQLAlchemy
# when its lean path answers (see migrasafe.lean).
_HOME = {
    "Project": "config", "load_project": "config",
    "MigrationResult": "migrate", "downgrade": "migrate", "upgrade": "migrate",
    "InitResult": "scaffold", "RevisionResult": "scaffold", "init": "scaffold",
    "revision": "scaffold",
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
