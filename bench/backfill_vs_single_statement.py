"""Benchmark: the reference project's 0003 backfill on 1,000,000 books.

Times, in one run, on SQLite and on PostgreSQL, the same data migration
(record which values are missing, then fill them) written three ways:

  (s) single statements: one INSERT ... SELECT and one UPDATE over the whole
      table (the floor: no batching, everything locked until commit);
  (h) migrasafe.backfill: the same statements by ranges of 10,000 ids, which
      is what 0003 runs;
  (o) an ORM loop: load each book that misses a value, set it, add a record
      (measured on the first ORM_ROWS books and scaled to the whole table,
      since the full loop takes minutes; the scale factor is printed).

Targets: h <= 1.5x s; h >= 20x faster than o; the longest batch <= 100 ms.
Run: python bench/backfill_vs_single_statement.py [ROWS] [--pg URL]
(default PostgreSQL: postgresql+psycopg://postgres@127.0.0.1:5432/postgres,
where a temporary database is created and dropped; --no-pg skips it).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from sqlalchemy import orm

from migrasafe.backfill import backfill

ORM_ROWS = 50_000
BATCH = 5_000
FILLED = ("description", "price", "page_count")

books = sa.table(
    "books", sa.column("id", sa.Integer), sa.column("title", sa.String),
    sa.column("author", sa.String), sa.column("description", sa.Text),
    sa.column("price", sa.Float), sa.column("page_count", sa.Integer),
)  # fmt: skip
filled = sa.table("filled", sa.column("book_id", sa.Integer),
                  *(sa.column(n, sa.Boolean) for n in FILLED))  # fmt: skip
VALUES = {
    "description": sa.func.coalesce(
        books.c.description,
        sa.literal('A book titled "') + books.c.title + '" by ' + books.c.author,
    ),
    "price": sa.func.coalesce(books.c.price, 19.99),
    "page_count": sa.func.coalesce(books.c.page_count, 300),
}
MISSING = [books.c[n].is_(None) for n in FILLED]
RECORD_ONCE = sa.select(books.c.id, *MISSING).where(sa.or_(*MISSING))


def record(batch: sa.ColumnElement[bool]) -> sa.Executable:
    """0003's bookkeeping, run in each batch before its update (as 0003 does)."""
    rows = sa.select(books.c.id, *MISSING).where(batch)
    return sa.insert(filled).from_select(["book_id", *FILLED], rows)


def raw(conn: sa.Connection, sql: str) -> None:
    """Plain SQL; psycopg reads % as a placeholder, so it is doubled there."""
    conn.exec_driver_sql(sql.replace("%", "%%") if conn.dialect.name == "postgresql" else sql)


def create(engine: sa.Engine, rows: int) -> None:
    series = (
        f"(SELECT generate_series(1, {rows}) AS n) s"
        if engine.dialect.name == "postgresql"
        else f"(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {rows}) "
        "SELECT n FROM c) s"
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE books (id INTEGER PRIMARY KEY, title VARCHAR(200) NOT NULL, "
            "author VARCHAR(200) NOT NULL, description TEXT, price FLOAT, page_count INTEGER)"
        )
        conn.exec_driver_sql(
            "CREATE TABLE filled (book_id INTEGER PRIMARY KEY, description BOOLEAN NOT NULL, "
            "price BOOLEAN NOT NULL, page_count BOOLEAN NOT NULL)"
        )
        raw(
            conn,
            "INSERT INTO books (id, title, author, description, price, page_count) "
            "SELECT n, 'Title ' || n, 'Author ' || (n % 1000), "
            "CASE WHEN n % 2 = 0 THEN 'curated ' || n END, "
            "CASE WHEN n % 3 = 0 THEN 9.5 END, CASE WHEN n % 5 = 0 THEN 120 END FROM " + series,
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE books")


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        raw(
            conn,
            "UPDATE books SET description = CASE WHEN id % 2 = 0 THEN 'curated ' || id END, "
            "price = CASE WHEN id % 3 = 0 THEN 9.5 END, "
            "page_count = CASE WHEN id % 5 = 0 THEN 120 END",
        )
        conn.exec_driver_sql("DELETE FROM filled")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE books")
            conn.exec_driver_sql("VACUUM ANALYZE filled")


def single(engine: sa.Engine) -> float:
    with engine.begin() as conn:
        conn.execute(sa.insert(filled).from_select(["book_id", *FILLED], RECORD_ONCE))
        conn.execute(sa.update(books).where(sa.or_(*MISSING)).values(VALUES))
    return 0.0


def helper(engine: sa.Engine) -> float:
    with engine.begin() as conn:
        result = backfill(books, VALUES, where=sa.or_(*MISSING), before=record,
                          batch_size=BATCH, connection=conn, progress=False,
                          log=lambda _l: None)  # fmt: skip
    return result.longest_batch


class Base(orm.DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    title: orm.Mapped[str]
    author: orm.Mapped[str]
    description: orm.Mapped[str | None]
    price: orm.Mapped[float | None]
    page_count: orm.Mapped[int | None]


class Filled(Base):
    __tablename__ = "filled"
    book_id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    description: orm.Mapped[bool]
    price: orm.Mapped[bool]
    page_count: orm.Mapped[bool]


def orm_loop(engine: sa.Engine) -> float:
    with orm.Session(engine) as session:
        query = sa.select(Book).where(
            Book.id <= ORM_ROWS,
            sa.or_(Book.description.is_(None), Book.price.is_(None), Book.page_count.is_(None)),
        )
        for book in session.scalars(query):
            missing = {n: getattr(book, n) is None for n in FILLED}
            session.add(Filled(book_id=book.id, **missing))
            if book.description is None:
                book.description = f'A book titled "{book.title}" by {book.author}'
            if book.price is None:
                book.price = 19.99
            if book.page_count is None:
                book.page_count = 300
        session.commit()
    return 0.0


def timed(engine: sa.Engine, run: Callable[[sa.Engine], float]) -> tuple[float, float]:
    reset(engine)
    start = time.perf_counter()
    longest = run(engine)
    return time.perf_counter() - start, longest


@contextmanager
def sqlite_engine() -> Iterator[sa.Engine]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{Path(tmp) / 'books.db'}")
        yield engine
        engine.dispose()


@contextmanager
def postgresql_engine(url: str) -> Iterator[sa.Engine]:
    name = f"migrasafe_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(sa.make_url(url).set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def run(label: str, engine: sa.Engine, rows: int) -> None:
    create(engine, rows)
    s, _ = timed(engine, single)
    h, longest = timed(engine, helper)
    o, _ = timed(engine, orm_loop)
    scale = rows / ORM_ROWS
    o_full = o * scale
    print(f"\n{label}, {rows:,} books, batches of {BATCH:,}")
    print(f"{'way':<52}{'seconds':>10}{'vs single':>11}")
    print(f"{'(s) single INSERT ... SELECT + single UPDATE':<52}{s:>10.2f}{1:>10.2f}x")
    print(f"{'(h) migrasafe.backfill (what 0003 runs)':<52}{h:>10.2f}{h / s:>10.2f}x")
    print(f"{f'(o) ORM loop ({ORM_ROWS:,} rows x {scale:g})':<52}{o_full:>10.2f}"
          f"{o_full / s:>10.2f}x")  # fmt: skip
    print(f"helper / single: {h / s:.2f}x (target <= 1.5x); "
          f"ORM loop / helper: {o_full / h:.0f}x (target >= 20x); "
          f"longest batch: {longest * 1000:.0f} ms (target <= 100 ms)")  # fmt: skip


def main() -> None:
    import argparse

    from verify_vs_alembic import conditions

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000,
                        help="books in the table (default: 1,000,000)")  # fmt: skip
    parser.add_argument("--pg", metavar="URL",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server to create a temporary database on")  # fmt: skip
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    print(conditions([] if args.no_pg else [args.pg]))
    with sqlite_engine() as engine:
        run("SQLite", engine, args.rows)
    if not args.no_pg:
        with postgresql_engine(args.pg) as engine:
            run("PostgreSQL", engine, args.rows)


if __name__ == "__main__":
    main()
