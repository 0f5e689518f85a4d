"""The one exception family that reaches the user.

Every error migrasafe expects (bad configuration, unknown revision, a database
that cannot be reached, a failed migration) is a :class:`MigrasafeError` whose
message is a complete sentence for the user: what went wrong and what to do.
The CLI prints that message on one line and exits 2; anything else is a bug.
"""

from __future__ import annotations

from typing import Any


class MigrasafeError(Exception):
    """An error with a message meant for the user."""

    exit_code = 2

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(MigrasafeError):
    """The Alembic configuration cannot be used."""


class EnvError(ConfigError):
    """The project's env.py failed before any revision ran: a setup problem, not a migration's."""


class ProjectError(MigrasafeError):
    """The migration scripts (or the directory to write them to) cannot be used."""


class RevisionError(MigrasafeError):
    """A revision named by the user does not exist or cannot be reached."""


class DatabaseError(MigrasafeError):
    """The database cannot be reached or used."""


class MigrationFailed(MigrasafeError):
    """A migration raised while it ran; ``revision`` names the one that failed.

    ``result`` (a :class:`migrasafe.deploy.migrate.MigrationResult`) says what ran
    before the failure and stayed, or the SQL rendered before it.
    """

    def __init__(self, message: str, revision: str | None = None, result: object = None) -> None:
        super().__init__(message)
        self.revision = revision
        self.result = result


class Unfinished(MigrasafeError):
    """A revision to run stopped midway before, after committing part of its work: it is
    not run again blindly (``upgrade --resume`` skips what is present)."""


class LockTimeout(DatabaseError):
    """Another run held the migration lock for longer than we were willing to wait."""


class LockLost(DatabaseError):
    """The migration lock's session ended while migrating: stop before another run starts too."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that cleanup (locks, scratch databases) runs."""


class Interrupted(MigrasafeError):
    """The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143); says where it stopped."""

    def __init__(self, message: str, terminated: bool = False) -> None:
        super().__init__(message)
        self.exit_code = 143 if terminated else 130
        self.result: object = None


_pending: list[KeyboardInterrupt] = []
_raised: list[KeyboardInterrupt] = []  # every exception a handler raised in this command
_handling: list[bool] = []  # the command line's handler is installed


def handling_signals(on: bool) -> None:
    """Whether SIGINT and SIGTERM come through :func:`interrupt` (the command line's handler)."""
    _handling[:] = [on] if on else []
    _raised.clear()


def from_signal(exc: BaseException) -> bool:
    """Whether ``exc`` is a signal's (Ctrl-C, SIGTERM), not a ``raise KeyboardInterrupt`` in a
    revision; without the command line's handler every one is taken for a signal's."""
    return not _handling or any(exc is raised for raised in _raised)


def interrupt(exc: KeyboardInterrupt) -> KeyboardInterrupt:
    """The signal handler's exception, remembered until someone catches it (:func:`caught`).

    Python raises a handler's exception wherever the main thread happens to
    be, and where that is a destructor or a weakref callback (garbage
    collection, at any allocation) it is printed as "Exception ignored" and
    lost: the run would go on as if no signal came. :func:`check_interrupted`
    at each step raises it again.
    """
    _pending[:] = [exc]
    _raised.append(exc)
    return exc


def quiet_unraisable(hook: Any) -> Any:
    """A ``sys.unraisablehook`` that says nothing of an interrupt a destructor swallowed (it
    is raised again at the next step: :func:`check_interrupted`), and passes the rest on."""

    def unraisable(info: Any) -> None:
        if not any(info.exc_value is raised for raised in _raised):
            hook(info)

    return unraisable


def caught() -> None:
    """The interrupt reached code that handles it: nothing is pending any more."""
    _pending.clear()


def check_interrupted() -> None:
    """Raise the interrupt a signal handler raised where it was swallowed, if any."""
    if _pending:
        raise _pending.pop()


def reraise_interrupts(exc: BaseException) -> None:
    """In an ``except BaseException`` around the project's code: let Ctrl-C and SIGTERM
    through, and treat the rest as that code's failure. A revision or ``env.py`` may raise
    ``BaseException``, ``GeneratorExit`` or ``SystemExit``, which ``Exception`` misses."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc
