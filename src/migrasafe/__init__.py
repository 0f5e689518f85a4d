"""migrasafe: Alembic migrations that tell the truth about a database.

Every command is a function that takes a :class:`Project` and returns data;
the ``migrasafe`` command line only renders what they return.
"""

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
