"""A project's migrations, driven step by step on a scratch database, for the migration
tests users write themselves (the ``migrasafe_runner`` fixture; pytest-alembic's
``alembic_runner`` in spirit)::

    def test_backfill_keeps_prices(migrasafe_runner):
        migrasafe_runner.migrate_up_to("0002")
        migrasafe_runner.insert_into("books", [{"id": 1, "title": "Dune", "price": None}])
        migrasafe_runner.migrate_up_one()
        assert migrasafe_runner.rows("SELECT price FROM books") == [(19.99,)]

Every step is a run of the project's own ``env.py``, as ``alembic upgrade`` runs it,
redirected to a scratch database that is created for the test and removed after it
(verify's: the database the project names is never written to).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from migrasafe.checks.verify import scratch_for
from migrasafe.errors import RevisionError
from migrasafe.project.config import Project
from migrasafe.project.env import probe, run_env


class MigrationRunner:
    """Migrate the scratch database ``url`` of ``project`` up and down, and look at it."""

    def __init__(self, project: Project, url: str) -> None:
        self.project = project
        self.url = url
        self.script = project.script

    @property
    def heads(self) -> tuple[str, ...]:
        """The revisions the database is at, read through env.py as ``alembic current``."""
        return probe(self.project)[0].heads

    def migrate_up_to(self, revision: str = "heads") -> None:
        """``alembic upgrade REVISION``."""
        run_env(self.project, lambda rev, _ctx: self.script._upgrade_revs(revision, rev))  # type: ignore[arg-type]

    def migrate_down_to(self, revision: str) -> None:
        """``alembic downgrade REVISION`` (``base`` for all the way)."""
        run_env(self.project, lambda rev, _ctx: self.script._downgrade_revs(revision, rev))  # type: ignore[arg-type]

    def migrate_up_one(self) -> None:
        self.migrate_up_to("+1")

    def migrate_down_one(self) -> None:
        if not self.heads:
            raise RevisionError("the database is at base: there is no revision to downgrade")
        self.migrate_down_to("-1")

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A connection to the scratch database, committed when the block ends."""
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                yield connection
        finally:
            engine.dispose()

    def insert_into(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` into ``table`` (``schema.table`` for another schema) as it stands."""
        schema, _, name = table.rpartition(".")
        with self.connect() as connection:
            reflected = sa.Table(name, sa.MetaData(), schema=schema or None,
                                 autoload_with=connection)  # fmt: skip
            connection.execute(reflected.insert(), [dict(row) for row in rows])

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """The rows a query returns, as tuples."""
        with self.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql), params)]


@contextmanager
def migration_runner(project: Project, server: str | None) -> Iterator[MigrationRunner]:
    """A runner on a new scratch database (on ``server``, else the project's own server,
    else a temporary SQLite file), removed afterwards."""
    with scratch_for(project, server) as url:
        yield MigrationRunner(project, url)
