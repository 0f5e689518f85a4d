"""Is an operation's effect in the database? What `status` says of a revision stopped midway,
and what `upgrade --resume` skips (only a sure "present")."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from migrasafe.deploy.effects import present


def _judged(url: str, operation: ops.MigrateOperation) -> bool | None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return present(operation, connection)
    finally:
        engine.dispose()


def _schema(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    engine.dispose()


def test_unnamed_constraints_are_found_by_their_columns(db_url: str) -> None:
    _schema(db_url, "CREATE TABLE authors (id INTEGER PRIMARY KEY, email VARCHAR(50))",
            "CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER "
            "REFERENCES authors (id), code VARCHAR(10), UNIQUE (code))")  # fmt: skip
    key = ops.CreateForeignKeyOp(None, "books", "authors", ["author_id"], ["id"])
    assert _judged(db_url, key) is True
    other = ops.CreateForeignKeyOp(None, "books", "authors", ["id"], ["id"])
    assert _judged(db_url, other) is False
    cascading = ops.CreateForeignKeyOp(None, "books", "authors", ["author_id"], ["id"],
                                       ondelete="CASCADE")  # fmt: skip
    assert _judged(db_url, cascading) is False  # the key there does not cascade
    assert _judged(db_url, ops.CreateUniqueConstraintOp(None, "books", ["code"])) is True
    assert _judged(db_url, ops.CreateUniqueConstraintOp(None, "authors", ["email"])) is False


def test_an_alter_of_a_column_not_there_yet_is_absent_and_a_retyped_one_is_not_sure(
    db_url: str,
) -> None:
    _schema(db_url, "CREATE TABLE authors (id INTEGER PRIMARY KEY, name VARCHAR(50))")
    missing = ops.AlterColumnOp("authors", "country", modify_nullable=False)
    assert _judged(db_url, missing) is False
    same_name = ops.AddColumnOp("authors", sa.Column("name", sa.Integer()))
    assert _judged(db_url, same_name) is None  # a column of that name, of another kind
    assert _judged(db_url, ops.AddColumnOp("authors", sa.Column("name", sa.String(50)))) is True
