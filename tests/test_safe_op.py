"""migrasafe.safe_op: the schema each safe operation leaves, its reverse, retries and --sql.

Each operation runs as in a revision: inside a MigrationContext's transaction,
with Alembic's ``op`` proxy installed, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from migrasafe import safe_op
from migrasafe.db.sqlite import SQLiteSessions
from migrasafe.errors import MigrasafeError

from conftest import query


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(
        request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")
    )


def run(url: str, step: Callable[[], None]) -> None:
    """``step`` as the body of a revision's upgrade(), on ``url``: all or nothing, as
    migrasafe upgrade runs it (SQLite's DDL inside the transaction too)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with SQLiteSessions.transactional_ddl(), engine.connect() as connection:
            context = MigrationContext.configure(connection)
            # one revision's transaction, begun as run_migrations() begins it (on MySQL too)
            per_revision = not context.impl.transactional_ddl
            with (
                Operations.context(context),
                context.begin_transaction(_per_migration=per_revision),
            ):
                step()
            connection.commit()
    finally:
        engine.dispose()


def offline(dialect: str, step: Callable[[], None]) -> list[str]:
    """The statements ``step`` renders with --sql on ``dialect`` (BEGIN/COMMIT included)."""
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name=dialect,
        opts={"as_sql": True, "output_buffer": buffer, "transactional_ddl": dialect != "mysql"},
    )
    with Operations.context(context), context.begin_transaction():
        step()
    return [" ".join(s.split()) for s in buffer.getvalue().split(";") if s.strip()]


def books(url: str, rows: list[dict[str, Any]] | None = None) -> None:
    """authors and books, with ``rows`` of books."""
    metadata = sa.MetaData()
    sa.Table("authors", metadata, sa.Column("id", sa.Integer, primary_key=True))
    table = sa.Table(
        "books",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", sa.String(40)),
        sa.Column("author_id", sa.Integer),
        sa.Column("pages", sa.Integer),
    )
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        metadata.create_all(connection)
        connection.execute(metadata.tables["authors"].insert(), [{"id": 1}, {"id": 2}])
        if rows:
            connection.execute(table.insert(), rows)
    engine.dispose()


def inspect(url: str) -> Iterator[sa.Inspector]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            yield sa.inspect(connection)
    finally:
        engine.dispose()


def schema(url: str) -> dict[str, Any]:
    """What a user checks of books: columns, indexes, constraints."""
    for found in inspect(url):
        return {
            "columns": [
                (c["name"], c["nullable"], c["default"]) for c in found.get_columns("books")
            ],
            "indexes": sorted((i["name"], i["unique"]) for i in found.get_indexes("books")),
            "foreign_keys": sorted(str(f["name"]) for f in found.get_foreign_keys("books")),
            "unique": sorted(str(u["name"]) for u in found.get_unique_constraints("books")),
            "checks": sorted(str(c["name"]) for c in found.get_check_constraints("books")),
        }
    raise AssertionError


def dialect(url: str) -> str:
    return sa.make_url(url).get_backend_name()


def pg_invalid_or_unvalidated(url: str) -> list[tuple[object, ...]]:
    """Indexes left INVALID and constraints left NOT VALID on PostgreSQL."""
    return query(url, "SELECT relname FROM pg_index JOIN pg_class ON oid = indexrelid "
                 "WHERE NOT indisvalid UNION ALL "
                 "SELECT conname FROM pg_constraint WHERE NOT convalidated")  # fmt: skip


ROWS = [{"id": n, "title": f"t{n}", "author_id": 1 + n % 2, "pages": n} for n in range(1, 6)]


# -- the schema each operation leaves, and its reverse ----------------------------------


def test_create_index_builds_a_valid_index_and_drop_index_removes_it(any_url: str) -> None:
    books(any_url, ROWS)
    before = schema(any_url)
    run(any_url, lambda: safe_op.create_index("ix_books_title", "books", ["title"]))
    assert ("ix_books_title", False) in schema(any_url)["indexes"]
    if dialect(any_url) == "postgresql":
        assert pg_invalid_or_unvalidated(any_url) == []
    run(any_url, lambda: safe_op.drop_index("ix_books_title", "books"))
    assert schema(any_url) == before


def test_add_unique_is_a_unique_constraint_and_drop_constraint_removes_it(any_url: str) -> None:
    books(any_url, ROWS)
    before = schema(any_url)
    run(any_url, lambda: safe_op.add_unique("uq_books_title", "books", ["title"]))
    after = schema(any_url)
    if dialect(any_url) == "mysql":  # MySQL's unique constraint is its unique index
        assert ("uq_books_title", True) in after["indexes"]
    else:
        assert after["unique"] == ["uq_books_title"]
    if dialect(any_url) == "postgresql":
        assert query(any_url, "SELECT contype FROM pg_constraint "
                     "WHERE conname = 'uq_books_title'") == [("u",)]  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError):
        query(any_url, "INSERT INTO books (id, title) VALUES (99, 't1')")
    run(any_url, lambda: safe_op.drop_constraint("uq_books_title", "books", "unique"))
    assert schema(any_url) == before


def test_add_foreign_key_is_validated_and_drop_constraint_removes_it(any_url: str) -> None:
    books(any_url, ROWS)
    before = schema(any_url)
    add = lambda: safe_op.add_foreign_key(  # noqa: E731
        "fk_books_author_id", "books", "authors", ["author_id"], ["id"]
    )
    run(any_url, add)
    assert schema(any_url)["foreign_keys"] == ["fk_books_author_id"]
    if dialect(any_url) == "postgresql":
        assert pg_invalid_or_unvalidated(any_url) == []
    run(any_url, lambda: safe_op.drop_constraint("fk_books_author_id", "books", "foreignkey"))
    assert schema(any_url) == before


def test_add_check_is_validated_and_drop_constraint_removes_it(any_url: str) -> None:
    books(any_url, ROWS)
    before = schema(any_url)
    run(any_url, lambda: safe_op.add_check("ck_books_pages", "books", "pages > 0"))
    assert schema(any_url)["checks"] == ["ck_books_pages"]
    if dialect(any_url) == "postgresql":
        assert pg_invalid_or_unvalidated(any_url) == []
    with pytest.raises(sa.exc.DBAPIError):  # IntegrityError, OperationalError on MariaDB
        query(any_url, "INSERT INTO books (id, pages) VALUES (99, -1)")
    run(any_url, lambda: safe_op.drop_constraint("ck_books_pages", "books", "check"))
    assert schema(any_url) == before


def test_set_not_null_leaves_no_check_behind_and_drop_not_null_reverses_it(any_url: str) -> None:
    books(any_url, ROWS)
    before = schema(any_url)
    run(any_url, lambda: safe_op.set_not_null("books", "author_id", existing_type=sa.Integer()))
    after = schema(any_url)
    assert ("author_id", False, None) in after["columns"]
    assert after["checks"] == []  # the CHECK it went through is gone
    run(any_url, lambda: safe_op.drop_not_null("books", "author_id", existing_type=sa.Integer()))
    assert schema(any_url) == before


RANDOM = {"postgresql": "random()", "sqlite": "abs(random()) % 1000000", "mysql": "rand()"}


def test_add_column_with_a_volatile_default_fills_every_row_in_batches(any_url: str) -> None:
    rows = [{"id": n, "title": f"t{n}"} for n in range(1, 251)]
    books(any_url, rows)
    before = schema(any_url)
    column = sa.Column(
        "shelf", sa.Float(), server_default=sa.text(f"({RANDOM[dialect(any_url)]})"), nullable=False
    )
    run(any_url, lambda: safe_op.add_column("books", column, batch_size=100))
    values = [v for (v,) in query(any_url, "SELECT shelf FROM books")]
    assert len(values) == 250 and None not in values
    assert len(set(values)) > 200  # computed per row, not once
    shelf = next(c for c in schema(any_url)["columns"] if c[0] == "shelf")
    assert shelf[1] is False and shelf[2] is not None  # NOT NULL, with its default
    query(any_url, "INSERT INTO books (id, title) VALUES (999, 'new')")  # the default fills it
    assert query(any_url, "SELECT shelf IS NULL FROM books WHERE id = 999") in ([(False,)], [(0,)])
    run(any_url, lambda: safe_op.drop_column("books", "shelf"))
    assert schema(any_url) == before


def test_add_column_without_default_or_backfill_refuses_a_not_null_column(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'test.db'}"
    books(url)
    column = sa.Column("shelf", sa.Float(), nullable=False)
    with pytest.raises(MigrasafeError, match="neither a server_default nor backfill_with"):
        run(url, lambda: safe_op.add_column("books", column))
    assert "shelf" not in [c[0] for c in schema(url)["columns"]]


def test_a_unique_index_failing_on_duplicates_runs_again_once_they_are_fixed(any_url: str) -> None:
    books(any_url, [*ROWS, {"id": 6, "title": "t1", "author_id": 1, "pages": 1}])
    build = lambda: safe_op.add_unique("uq_books_title", "books", ["title"])  # noqa: E731
    before = schema(any_url)
    with pytest.raises(sa.exc.IntegrityError):
        run(any_url, build)
    assert schema(any_url) == before  # nothing left half-built (no INVALID index on PostgreSQL)
    query(any_url, "DELETE FROM books WHERE id = 6")
    run(any_url, build)
    after = schema(any_url)
    assert ("uq_books_title", True) in after["indexes"] or after["unique"] == ["uq_books_title"]


def test_elsewhere_sql_is_the_plain_operation() -> None:
    sql = offline("sqlite", lambda: safe_op.create_index("ix_t", "books", ["title"]))
    assert sql == ["BEGIN", "CREATE INDEX ix_t ON books (title)", "COMMIT"]
    sql = offline("sqlite", lambda: safe_op.drop_index("ix_t", "books"))
    assert sql == ["BEGIN", "DROP INDEX ix_t", "COMMIT"]
    sql = offline("oracle", lambda: safe_op.add_check("ck_p", "books", "pages > 0"))
    assert "ALTER TABLE books ADD CONSTRAINT ck_p CHECK (pages > 0) /" in " ".join(sql)
