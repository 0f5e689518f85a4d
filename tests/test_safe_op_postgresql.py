"""safe_op on PostgreSQL (and its --sql on MySQL): the statements, the locks, the retries."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import op

from migrasafe import safe_op
from test_safe_op import ROWS, books, offline, pg_invalid_or_unvalidated, run, schema

from conftest import query


def test_each_operation_renders_its_safe_sequence_with_sql() -> None:
    sql = offline("postgresql", lambda: safe_op.create_index("ix_t", "books", ["title"]))
    assert sql == ["BEGIN", "COMMIT", "CREATE INDEX CONCURRENTLY ix_t ON books (title)",
                   "BEGIN", "COMMIT"]  # fmt: skip
    sql = offline("postgresql", lambda: safe_op.drop_index("ix_t", "books"))
    assert "DROP INDEX CONCURRENTLY ix_t" in sql
    sql = offline("postgresql", lambda: safe_op.add_unique("uq_t", "books", ["title"]))
    assert sql == ["BEGIN", "COMMIT", "CREATE UNIQUE INDEX CONCURRENTLY uq_t ON books (title)",
                   "BEGIN", "ALTER TABLE books ADD CONSTRAINT uq_t UNIQUE USING INDEX uq_t",
                   "COMMIT"]  # fmt: skip
    fk = lambda: safe_op.add_foreign_key("fk_a", "books", "authors", ["author_id"], ["id"])  # noqa: E731
    assert offline("postgresql", fk) == [
        "BEGIN",
        "ALTER TABLE books ADD CONSTRAINT fk_a FOREIGN KEY(author_id) REFERENCES authors (id) "
        "NOT VALID",
        "COMMIT",  # the ADD's lock is released before the validation's scan
        "ALTER TABLE books VALIDATE CONSTRAINT fk_a",
        "BEGIN", "COMMIT",
    ]  # fmt: skip
    sql = offline("postgresql", lambda: safe_op.add_check("ck_p", "books", "pages > 0"))
    assert sql[1:4] == ["ALTER TABLE books ADD CONSTRAINT ck_p CHECK (pages > 0) NOT VALID",
                        "COMMIT", "ALTER TABLE books VALIDATE CONSTRAINT ck_p"]  # fmt: skip
    sql = offline("postgresql", lambda: safe_op.set_not_null("books", "pages"))
    assert sql == [
        "BEGIN",
        "ALTER TABLE books ADD CONSTRAINT books_pages_not_null CHECK (pages IS NOT NULL) NOT VALID",
        "COMMIT",
        "ALTER TABLE books VALIDATE CONSTRAINT books_pages_not_null",
        "BEGIN",
        "ALTER TABLE books ALTER COLUMN pages SET NOT NULL",
        "ALTER TABLE books DROP CONSTRAINT books_pages_not_null",
        "COMMIT",
    ]
    column = sa.Column("token", sa.String(36), server_default=sa.text("gen_random_uuid()::text"))
    sql = offline("postgresql", lambda: safe_op.add_column("books", column))
    assert sql == [
        "BEGIN",
        "ALTER TABLE books ADD COLUMN token VARCHAR(36)",
        "ALTER TABLE books ALTER COLUMN token SET DEFAULT gen_random_uuid()::text",
        "COMMIT",  # the backfill runs outside the revision's transaction, as it does online
        "UPDATE books SET token=gen_random_uuid()::text WHERE books.token IS NULL",
        "BEGIN", "COMMIT",
    ]  # fmt: skip


def test_mysql_sql_names_the_online_algorithm() -> None:
    sql = offline("mysql", lambda: safe_op.create_index("ix_t", "books", ["title"], unique=True))
    assert sql == ["CREATE UNIQUE INDEX ix_t ON books (title) ALGORITHM=INPLACE LOCK=NONE"]
    sql = offline("mysql", lambda: safe_op.drop_index("ix_t", "books"))
    assert sql == ["ALTER TABLE books DROP INDEX ix_t, ALGORITHM=INPLACE, LOCK=NONE"]
    column = sa.Column("token", sa.String(36), server_default=sa.text("(uuid())"), nullable=False)
    sql = offline("mysql", lambda: safe_op.add_column("books", column))
    assert sql == [
        "ALTER TABLE books ADD COLUMN token VARCHAR(36), ALGORITHM=INSTANT",
        "ALTER TABLE books ALTER COLUMN token SET DEFAULT (uuid())",
        "UPDATE books SET token=(uuid()) WHERE books.token IS NULL",
        "ALTER TABLE books MODIFY token VARCHAR(36) NOT NULL DEFAULT (uuid()), "
        "ALGORITHM=INPLACE, LOCK=NONE",
    ]


# -- retries -------------------------------------------------------------------------


def test_a_failed_concurrent_build_leaves_an_invalid_index_that_the_retry_replaces(
    pg_url: str,
) -> None:
    books(
        pg_url, [*ROWS, {"id": 6, "title": "t1", "author_id": 1, "pages": 1}]
    )  # a duplicate title
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        # what an interrupted run of a concurrent build leaves (a killed process too)
        conn.exec_driver_sql("CREATE UNIQUE INDEX CONCURRENTLY uq_title ON books (title)")
    engine.dispose()
    assert pg_invalid_or_unvalidated(pg_url) == [("uq_title",)]
    query(pg_url, "DELETE FROM books WHERE id = 6")  # the data fixed
    run(pg_url, lambda: safe_op.create_index("uq_title", "books", ["title"], unique=True))
    assert pg_invalid_or_unvalidated(pg_url) == []
    assert ("uq_title", True) in schema(pg_url)["indexes"]


def test_a_failing_safe_operation_leaves_nothing_and_runs_again_once_the_data_is_fixed(
    pg_url: str,
) -> None:
    """Each step after an autocommit_block is committed: a failure is undone by the operation
    itself, as a failed plain operation is rolled back, and the rerun starts afresh."""
    books(pg_url, [*ROWS, {"id": 6, "title": "t1", "author_id": 1, "pages": 1},  # duplicate
                   {"id": 7, "title": "t7", "author_id": 7, "pages": 1},  # no such author
                   {"id": 8, "title": "t8", "author_id": 1, "pages": -1},
                   {"id": 9, "title": None, "author_id": 1, "pages": 1}])  # fmt: skip
    before = schema(pg_url)
    gone = "DELETE FROM books WHERE id = "
    attempts: list[tuple[Any, str]] = [
        (lambda: safe_op.add_unique("uq_title", "books", ["title"]), gone + "6"),
        (lambda: safe_op.add_foreign_key("fk_a", "books", "authors", ["author_id"], ["id"]),
         gone + "7"),
        (lambda: safe_op.add_check("ck_p", "books", "pages > 0"), gone + "8"),
        (lambda: safe_op.set_not_null("books", "title"), "UPDATE books SET title = '9' WHERE id=9"),
    ]  # fmt: skip
    for attempt, fix in attempts:
        books_now = schema(pg_url)
        with pytest.raises(sa.exc.IntegrityError):
            run(pg_url, attempt)
        assert schema(pg_url) == books_now and pg_invalid_or_unvalidated(pg_url) == []
        query(pg_url, fix)
        run(pg_url, attempt)
        assert pg_invalid_or_unvalidated(pg_url) == []
    after = schema(pg_url)
    assert after != before and after["unique"] == ["uq_title"] and after["checks"] == ["ck_p"]
    assert after["foreign_keys"] == ["fk_a"] and ("title", False, None) in after["columns"]


def test_a_rerun_after_a_later_failure_skips_what_is_done(pg_url: str) -> None:
    """The revision's version is not recorded until it completes: the next upgrade runs the
    whole revision again, so each step finds what it had already done and goes on."""
    books(pg_url, ROWS)

    def revision(fail: bool) -> None:
        safe_op.create_index("ix_title", "books", ["title"])
        safe_op.add_foreign_key("fk_a", "books", "authors", ["author_id"], ["id"])
        safe_op.add_unique("uq_title", "books", ["title"])
        safe_op.set_not_null("books", "author_id")
        if fail:
            op.execute("SELECT 1 / 0")

    with pytest.raises(sa.exc.DataError):
        run(pg_url, lambda: revision(True))
    run(pg_url, lambda: revision(False))
    after = schema(pg_url)
    assert ("ix_title", False) in after["indexes"] and after["unique"] == ["uq_title"]
    assert after["foreign_keys"] == ["fk_a"] and ("author_id", False, None) in after["columns"]


# -- locks ---------------------------------------------------------------------------


def _build_while_a_transaction_is_open(pg_url: str, build: Any) -> tuple[str, bool]:
    """Run ``build`` while another session's transaction on books is open (so the build
    waits), and meanwhile insert from a third session with a 1 s lock_timeout.

    Returns the lock the build takes (or waits for) on books, and whether the insert
    got through.
    """
    books(pg_url, ROWS)
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    holder = engine.connect()
    holder.exec_driver_sql("INSERT INTO books (id, title) VALUES (100, 'open')")  # stays open
    failures: list[BaseException] = []

    def migrate() -> None:
        try:
            run(pg_url, build)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=migrate)
    thread.start()
    lock_sql = ("SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.relation = 'books'::regclass AND a.query LIKE 'CREATE INDEX%' "
                "AND l.mode IN ('ShareLock', 'ShareUpdateExclusiveLock')")  # fmt: skip
    mode: list[tuple[object, ...]] = []
    for _ in range(600):  # until the build has asked for its lock on books
        mode = query(pg_url, lock_sql)
        if mode or not thread.is_alive():
            break
        time.sleep(0.05)
    with engine.connect() as writer:
        writer.exec_driver_sql("SET lock_timeout = '1s'")
        try:
            writer.exec_driver_sql("INSERT INTO books (id, title) VALUES (101, 'writer')")
            writer.commit()
            wrote = True
        except sa.exc.OperationalError:
            wrote = False
    holder.commit()
    holder.close()
    thread.join(60)
    engine.dispose()
    assert not failures, failures
    assert mode, "the index build never started"
    return str(mode[0][0]), wrote


def test_create_index_lets_writers_through_while_it_builds(pg_url: str) -> None:
    mode, wrote = _build_while_a_transaction_is_open(
        pg_url, lambda: safe_op.create_index("ix_title", "books", ["title"])
    )
    assert (mode, wrote) == ("ShareUpdateExclusiveLock", True)


def test_a_plain_create_index_blocks_writers_where_the_safe_one_does_not(pg_url: str) -> None:
    """The contrast: the test above can tell the two apart."""
    mode, wrote = _build_while_a_transaction_is_open(
        pg_url, lambda: op.create_index("ix_title", "books", ["title"])
    )
    assert (mode, wrote) == ("ShareLock", False)


def test_operations_find_their_objects_in_the_schema_named(pg_url: str) -> None:
    """The catalog is read in the schema asked for, not the search path's: a rerun there
    skips what is done instead of failing on it."""
    query(pg_url, "CREATE SCHEMA lib")
    query(pg_url, "CREATE TABLE lib.books (id int PRIMARY KEY, title text, pages int)")
    query(pg_url, "INSERT INTO lib.books VALUES (1, 'a', 1), (2, 'b', 2)")
    query(pg_url, "CREATE TABLE books (id int PRIMARY KEY, title text)")  # same names in public

    def revision() -> None:
        safe_op.create_index("ix_title", "books", ["title"], schema="lib")
        safe_op.add_check("ck_pages", "books", "pages > 0", schema="lib")
        safe_op.add_unique("uq_title", "books", ["title"], schema="lib")
        safe_op.set_not_null("books", "pages", schema="lib")

    run(pg_url, revision)
    run(pg_url, revision)  # a rerun: all done already
    assert query(pg_url, "SELECT conname, convalidated FROM pg_constraint "
                 "WHERE conrelid = 'lib.books'::regclass AND contype IN ('c', 'u') "
                 "ORDER BY 1") == [("ck_pages", True), ("uq_title", True)]  # fmt: skip
    assert query(pg_url, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                 "AND tablename = 'books'") == [(1,)]  # only its primary key  # fmt: skip
