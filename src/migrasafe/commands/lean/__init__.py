"""The read-only commands' lean path: Alembic's answers, cached, with no Alembic imported.

``migrasafe history``, ``status`` and ``validate`` start by asking here. A
cold run (empty or stale cache) imports Alembic, runs ``env.py`` and leaves
its answers behind (:mod:`.remember`); the next run checks that nothing they
came from changed (:mod:`.answers`; installed packages: :mod:`.installed`),
reads the database with the bare driver (:mod:`.reader`) and builds the same
results (:mod:`.commands`), without importing Alembic, SQLAlchemy, mako or
rich. The answers are used only when of the shape this version writes
(:mod:`.shape`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from migrasafe.commands.lean.answers import Invocation
from migrasafe.commands.lean.commands import history, status, validate

if TYPE_CHECKING:
    from migrasafe.project.config import Project

__all__ = ["Invocation", "answer", "history", "status", "validate"]

R = TypeVar("R")


def answer(
    invocation: Invocation,
    warm: Callable[[Invocation], R | None],
    cold: Callable[[Project], R],
    load: Callable[[], Project],
    keep: Callable[[R], bool] = lambda _result: True,
) -> R:
    """``warm`` from the cached answers, else ``cold`` on the loaded project, watched, and
    its answers cached for next time (when ``keep`` says the result is worth caching)."""
    found = warm(invocation)
    if found is not None:
        return found
    from migrasafe.commands.lean.remember import recording

    with recording(invocation) as watched:
        project = load()
        result = cold(project)
        if keep(result):
            watched.remember(project)
    return result
