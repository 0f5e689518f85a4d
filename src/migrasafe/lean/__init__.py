"""The read-only commands' lean path: Alembic's answers, cached, with no Alembic imported.

``migrasafe history``, ``status`` and ``validate`` start by asking here. A
cold run (empty or stale cache) imports Alembic, runs ``env.py`` and leaves
its answers behind (:mod:`.remember`); the next run checks that nothing they
came from changed (:mod:`.answers`), reads the database with the bare driver
(:mod:`.reader`) and builds the same results (:mod:`.commands`), without
importing Alembic, SQLAlchemy, mako or rich.
"""

from __future__ import annotations

from .answers import Invocation
from .commands import history, status, validate

__all__ = ["Invocation", "history", "status", "validate"]
