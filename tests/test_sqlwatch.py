"""What verify learns from a step's SQL: which tables it named, created or dropped, and
whose rows it may have changed. A wrong answer here makes verify read too little. And the
step itself: verify's shortcut past Alembic's history walk must move the version table
as Alembic would."""

from __future__ import annotations

from pathlib import Path

from migrasafe.checks.verify.snapshot import Schema, TableSchema
from migrasafe.checks.verify.sqlwatch import SqlWatch


def _watched(*statements: str) -> SqlWatch:
    watch = SqlWatch()
    watch.start()
    for statement in statements:
        watch(None, None, statement)
    return watch


def _schema(*names: str) -> Schema:
    empty = TableSchema({}, (), frozenset(), frozenset(), frozenset(), frozenset())
    return Schema(dict.fromkeys(names, empty))


def test_tables_created_and_dropped_by_name_are_read_from_the_statements() -> None:
    watch = _watched(
        'CREATE TABLE IF NOT EXISTS "Books" (id integer)',
        "DROP TABLE old_one, Other.Two CASCADE",
        "UPDATE alembic_version SET version_num='2'",
    )
    assert watch.table_set
    assert watch.created_dropped == ({(None, "Books")}, {(None, "old_one"), ("other", "two")})


def test_a_batch_copy_drop_and_rename_leaves_the_same_tables() -> None:
    watch = _watched(
        "CREATE TABLE _alembic_tmp_books (id integer, title text)",
        "INSERT INTO _alembic_tmp_books (id, title) SELECT id, title FROM books",
        "DROP TABLE books",
        "ALTER TABLE _alembic_tmp_books RENAME TO books",
        "ALTER TABLE other.old RENAME TO new",
    )
    assert watch.created_dropped == ({("other", "new")}, {("other", "old")})


def test_a_statement_that_changes_the_tables_otherwise_leaves_them_unknown() -> None:
    for statement in (
        "ALTER TABLE a RENAME TO b, c",
        "CREATE TABLE c AS SELECT 1",
        "CREATE TEMPORARY TABLE t (id integer)",
        "DO $$ BEGIN EXECUTE 'DROP TABLE a'; END $$",
        "DROP TABLE a; DELETE FROM b",
    ):
        watch = _watched("CREATE TABLE x (id integer)", statement)
        assert watch.table_set, statement
        assert watch.created_dropped is None, statement


def test_index_statements_change_no_rows_but_every_other_statement_may() -> None:
    schema = _schema("books", "reviews", "authors")
    now = set(schema.tables)
    watch = _watched(
        "CREATE UNIQUE INDEX ix_books_title ON books (title)",
        "DROP INDEX ix_reviews_x",
        "ALTER TABLE authors ADD COLUMN born date",
    )
    assert watch.tables(schema, now) == ({"books", "authors"}, {"authors"})
    hidden = _watched("CREATE INDEX ix ON books (title); DELETE FROM books")
    assert hidden.tables(schema, now) == ({"books"}, {"books"})


def test_verifys_downgrade_step_moves_the_version_table_as_alembics_does(
    tmp_path: Path,
) -> None:
    """verify's step skips Alembic's walk of the whole history going down; on a history
    with branches and a merge, every revision and every set of heads gives Alembic's answer."""
    from alembic.runtime.migration import RevisionStep

    from migrasafe import load_project
    from migrasafe.checks.verify.state import Step

    from conftest import make_project

    script = load_project(make_project(tmp_path / "p", "generic", "branches_and_merge")).script
    revisions = list(script.walk_revisions())
    names = [r.revision for r in revisions]
    head_sets = [{n} for n in names] + [set(names[i : i + 2]) for i in range(len(names) - 1)]
    compared = 0
    for revision in revisions:
        for heads in head_sets:
            if revision.revision not in heads:
                continue
            ours = Step(script.revision_map, revision, False)
            theirs = RevisionStep(script.revision_map, revision, False)
            assert ours._unmerge_to_revisions(heads) == theirs._unmerge_to_revisions(heads)
            assert ours.should_delete_branch(heads) == theirs.should_delete_branch(heads)
            compared += 1
    assert compared >= len(revisions) + 2
