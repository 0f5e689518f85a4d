"""verify's catalog reading on PostgreSQL says what reflection says, in one query.

The comparison of schemas and the seeder's tables no longer come from
SQLAlchemy's reflection on PostgreSQL; these tests hold them against it on a
schema with what the seeder must respect (an enum, a CHECK, a composite and a
partial unique index, a foreign key to a table it does not fill, an identity)
and what a downgrade can get wrong (an index's predicate and method).
"""

from __future__ import annotations

import sqlalchemy as sa

from migrasafe.verify.seed import Seeder, allowed_by_checks, reflect
from migrasafe.verify.snapshot import Namespaces, read_schema
from migrasafe.verify.tables import catalog_tables

from conftest import query

SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE authors (id integer PRIMARY KEY, name varchar(50) NOT NULL);
CREATE TABLE books (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id integer NOT NULL REFERENCES authors (id) ON DELETE CASCADE,
    title varchar(200) NOT NULL,
    price numeric(6, 2) CHECK (price >= 0),
    feeling mood,
    code char(4),
    closed_at timestamptz
);
CREATE UNIQUE INDEX uq_books_author_title ON books (author_id, title);
CREATE UNIQUE INDEX uq_books_open_code ON books (code) WHERE closed_at IS NULL;
CREATE INDEX ix_books_lower_title ON books USING hash (lower(title));
"""


def _schema(url: str) -> None:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            query(url, statement)


def test_catalog_tables_hold_what_reflection_holds(pg_url: str) -> None:
    _schema(pg_url)
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    where = Namespaces()
    with engine.connect() as connection:
        schema = read_schema(connection, where=where)
        built = catalog_tables(connection, {"books"}, schema, where)
        reflected = reflect(connection, set(), {"books"}, where)
    engine.dispose()
    assert built is not None
    mine, theirs = built.tables["books"], reflected.tables["books"]
    assert [(c.name, type(c.type), c.nullable) for c in mine.columns] == [
        (c.name, type(c.type), c.nullable) for c in theirs.columns
    ]
    assert mine.c.feeling.type.enums == ["happy", "sad"]  # type: ignore[attr-defined]
    assert (mine.c.price.type.precision, mine.c.price.type.scale) == (6, 2)  # type: ignore[attr-defined]
    assert [c.name for c in mine.primary_key] == ["id"]
    assert [fk.target_fullname for fk in mine.foreign_keys] == ["authors.id"]
    assert {fk.column.table.name for fk in mine.foreign_keys} == {"authors"}  # resolved
    unique = {tuple(c.name for c in ix.columns) for ix in mine.indexes if ix.unique}
    assert unique == {("author_id", "title"), ("code",)}
    checks = [str(c.sqltext) for c in mine.constraints if isinstance(c, sa.CheckConstraint)]
    assert checks == ["(price >= 0::numeric)"]
    # what the generated rows obey is the same
    assert allowed_by_checks(mine, "postgresql") == allowed_by_checks(theirs, "postgresql")


def test_rows_seeded_from_the_catalog_are_accepted(pg_url: str) -> None:
    _schema(pg_url)
    query(pg_url, "INSERT INTO authors VALUES (1, 'Ann'), (2, 'Bo')")
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    where = Namespaces()
    with engine.connect() as connection:
        schema = read_schema(connection, where=where)
        report = Seeder(20, 0).fill(connection, set(), only={"books"}, where=where, schema=schema)
        connection.commit()
    engine.dispose()
    assert report.inserted == {"books": 20} and report.refused == {}
    feelings = {row[0] for row in query(pg_url, "SELECT DISTINCT feeling::text FROM books")}
    assert feelings <= {"happy", "sad", None}


def test_an_index_is_read_with_its_method_and_predicate(pg_url: str) -> None:
    _schema(pg_url)
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        indexes = read_schema(connection, only={"books"}).tables["books"].indexes
    engine.dispose()
    assert ("uq_books_open_code", ("code", "WHERE closed_at IS NULL"), True) in indexes
    assert ("ix_books_lower_title", ("lower(title::text)", "USING hash"), False) in indexes
