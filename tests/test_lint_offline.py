"""lint runs revisions as `alembic upgrade --sql` does: alembic.context set up, offline.

Revisions that read ``context.get_context()``, ``context.is_offline_mode()`` or
``context.config`` (at import or in ``upgrade()``) are linted, and the schema
they build is known to the revisions after them. No revision reaches a
database: what needs one is reported, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project, query, run_cli

HEADER = '''"""{doc}"""
from alembic import context, op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {down}
'''

# A squashed base, as tools write them: the dialect read at import and in upgrade().
SQUASHED_BASE = (
    HEADER.format(doc="squashed base", revision="0001", down=None)
    + """
DIALECT = context.get_context().dialect.name


def upgrade():
    if context.get_context().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("legacy", sa.Text(), nullable=True),
    )
    op.create_index("ix_books_title", "books", ["title"])


def downgrade():
    op.drop_table("books")
"""
)

OFFLINE_AWARE = (
    HEADER.format(doc="fills pages", revision="0002", down='"0001"')
    + """

def upgrade():
    if context.is_offline_mode():
        op.execute("UPDATE books SET pages = 0 WHERE pages IS NULL")
    else:
        for (book_id,) in op.get_bind().execute(sa.text("SELECT id FROM books")):
            op.execute(f"UPDATE books SET pages = 0 WHERE id = {book_id}")
    op.alter_column("books", "title", nullable=False)
    op.alter_column("books", "pages", nullable=False)


def downgrade():
    pass
"""
)

# existing_type restated wrongly, as an old autogenerate run or a copy left it.
STALE_EXISTING_TYPE = (
    HEADER.format(doc="types", revision="0003", down='"0002"')
    + """

def upgrade():
    if context.config.get_main_option("script_location"):
        op.alter_column("books", "title", type_=sa.String(300), existing_type=sa.Text())
        op.alter_column("books", "pages", type_=sa.BigInteger(), existing_type=sa.SmallInteger())


def downgrade():
    pass
"""
)


def _project(tmp_path: Path, *revisions: str) -> Path:
    ini = make_project(tmp_path / "p", "generic")
    versions = ini.parent / "migrations" / "versions"
    for n, source in enumerate(revisions, 1):
        (versions / f"{n:04d}_r.py").write_text(source)
    return ini


def _lint(ini: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    result = run_cli("-c", str(ini), "lint", "--json", "--db-lock-timeout", "2s", *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)["findings"], result.stderr


def test_revisions_reading_alembic_context_are_linted_with_the_schema_they_build(
    tmp_path: Path,
) -> None:
    ini = _project(tmp_path, SQUASHED_BASE, OFFLINE_AWARE, STALE_EXISTING_TYPE)
    for dialect in ("postgresql", "sqlite"):
        _, findings, _ = _lint(ini, "--dialect", dialect, "--skip", "sqlite-alter-outside-batch")
        found = [(f["revision"], f["rule"], f["column"]) for f in findings]
        assert not [f for f in found if f[1] == "lint-incomplete"], findings
        # The offline branch ran: its UPDATE beside the schema change; title was NOT NULL
        # in the base already (no set-not-null for it), pages was not.
        assert ("0002", "mixed-schema-and-data", None) in found
        assert ("0002", "set-not-null", "pages") in found
        assert ("0002", "set-not-null", "title") not in found
        # The base's types, not the stale existing_type: title varchar(200) -> (300) is a
        # widening (free on both), pages is an INTEGER made BIGINT.
        types = [f for f in findings if f["rule"] == "change-column-type"]
        assert [(f["revision"], f["column"]) for f in types] == [("0003", "pages")], findings
        assert "to BIGINT (from INTEGER)" in str(types[0]["message"])


def test_the_squashed_base_is_recorded_for_its_dialect(tmp_path: Path) -> None:
    """The base's `context.get_context().dialect.name == "postgresql"` branch ran."""
    ini = _project(
        tmp_path,
        SQUASHED_BASE,
        HEADER.format(doc="d", revision="0002", down='"0001"')
        + '\n\ndef upgrade():\n    op.drop_index("ix_books_title", "books")\n',
    )
    _, findings, _ = _lint(ini, "--dialect", "postgresql")
    assert [(f["revision"], f["rule"]) for f in findings] == [
        ("0002", "drop-index-without-concurrently")
    ]


NEEDS_ITS_RESULT = (
    HEADER.format(doc="counts", revision="0002", down='"0001"')
    + """

def upgrade():
    op.drop_column("books", "legacy")
    connection = op.get_bind()
    connection.execute(sa.text("INSERT INTO marker (n) VALUES (1)"))
    count = connection.execute(sa.text("SELECT count(*) FROM marker")).scalar()
    op.add_column("books", sa.Column("copies", sa.Integer(), server_default=str(count)))


def downgrade():
    pass
"""
)

OWN_ENGINE = (
    HEADER.format(doc="its own engine", revision="0003", down='"0002"')
    + """

def upgrade():
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO marker (n) VALUES (2)"))
    op.drop_column("books", "pages")


def downgrade():
    pass
"""
)


def test_revision_code_never_reaches_the_database(tmp_path: Path, db_url: str) -> None:
    ini = _project(tmp_path, SQUASHED_BASE, NEEDS_ITS_RESULT, OWN_ENGINE)
    query(db_url, "CREATE TABLE marker (n INTEGER)")
    result = run_cli("-c", str(ini), "--url", db_url, "lint", "--json")
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    incomplete = {f["revision"]: f for f in findings if f["rule"] == "lint-incomplete"}
    assert set(incomplete) == {"0002", "0003"}
    assert "reads the result of a statement sent with op.get_bind() (line 13)" in str(
        incomplete["0002"]["message"]
    )
    assert incomplete["0002"]["line"] == 13
    assert "it connects to" in str(incomplete["0003"]["message"])
    assert "lint never connects to a database" in str(incomplete["0003"]["message"])
    # What ran before the point of failure is linted, the statement sent included.
    found = {(f["revision"], f["rule"]) for f in findings}
    assert {("0002", "drop-column"), ("0002", "mixed-schema-and-data")} <= found
    assert ("0003", "drop-column") not in found  # after the refused connection
    assert query(db_url, "SELECT count(*) FROM marker") == [(0,)]


BATCH_EXECUTE = (
    HEADER.format(doc="batch", revision="0002", down='"0001"')
    + """

def upgrade():
    with op.batch_alter_table("books") as batch_op:
        batch_op.add_column(sa.Column("isbn", sa.String(20), nullable=True))
        batch_op.execute("ALTER TABLE books DROP COLUMN legacy")


def downgrade():
    pass
"""
)


def test_sql_given_to_batch_op_execute_is_read_like_op_execute(tmp_path: Path) -> None:
    ini = _project(tmp_path, SQUASHED_BASE, BATCH_EXECUTE)
    for dialect in ("postgresql", "sqlite"):
        _, findings, _ = _lint(ini, "--dialect", dialect)
        found = [(f["revision"], f["rule"], f["line"]) for f in findings]
        assert found == [("0002", "drop-column", 12)], (dialect, findings)


DROP_INDEX_THEN_TABLE = (
    HEADER.format(doc="drops", revision="0002", down='"0001"')
    + """

def upgrade():
    {drops}


def downgrade():
    pass
"""
)


def test_no_drop_index_warning_for_a_table_the_revision_drops(tmp_path: Path) -> None:
    for drops in ('op.drop_index("ix_books_title", table_name="books")\n'
                  '    op.drop_table("books")',
                  'op.execute("DROP INDEX ix_books_title")\n    op.execute("DROP TABLE books")',
                  'op.execute("DROP INDEX ix_books_title; DROP TABLE books")'):  # fmt: skip
        ini = _project(tmp_path / str(len(drops)), SQUASHED_BASE,
                       DROP_INDEX_THEN_TABLE.replace("{drops}", drops))  # fmt: skip
        _, findings, _ = _lint(ini, "--dialect", "postgresql")
        assert [(f["revision"], f["rule"]) for f in findings] == [("0002", "drop-table")], drops
    # Dropping the index alone still warns, op.* and raw SQL alike.
    for drops in ('op.drop_index("ix_books_title", table_name="books")',
                  'op.execute("DROP INDEX ix_books_title")'):  # fmt: skip
        ini = _project(tmp_path / f"alone{len(drops)}", SQUASHED_BASE,
                       DROP_INDEX_THEN_TABLE.replace("{drops}", drops))  # fmt: skip
        _, findings, _ = _lint(ini, "--dialect", "postgresql")
        assert [(f["rule"], f["table"]) for f in findings] == [
            ("drop-index-without-concurrently", "books")
        ], drops


CREATE_ALL_BASE = (
    HEADER.format(doc="squashed: the models' tables", revision="0001", down=None)
    + """
metadata = sa.MetaData()
sa.Table(
    "books", metadata,
    sa.Column("id", sa.Integer(), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("pages", sa.Integer(), nullable=True),
    sa.Column("kind", sa.Enum("paper", "ebook", name="book_kind")),  # CREATE TYPE first
    sa.Index("ix_books_title", "title"),
)


def upgrade():
    metadata.create_all(op.get_bind())


def downgrade():
    metadata.drop_all(op.get_bind())
"""
)

ON_THE_CREATED_SCHEMA = (
    HEADER.format(doc="later", revision="0002", down='"0001"')
    + """

def upgrade():
    op.alter_column("books", "title", type_=sa.String(300))
    op.alter_column("books", "pages", type_=sa.BigInteger())
    op.get_bind().commit()
    with op.get_context().autocommit_block():
        op.create_index("ix_books_pages", "books", ["pages"], postgresql_concurrently=True)


def downgrade():
    pass
"""
)


def test_a_base_made_by_create_all_on_the_offline_bind_is_known(tmp_path: Path) -> None:
    """metadata.create_all(op.get_bind()) sends CREATE TABLE: read, and replayed."""
    ini = _project(tmp_path, CREATE_ALL_BASE, ON_THE_CREATED_SCHEMA)
    _, findings, _ = _lint(ini, "--dialect", "postgresql")
    found = [(f["revision"], f["rule"], f["line"]) for f in findings]
    # title widened from varchar(200): free; pages INTEGER -> BIGINT; commit() is sent.
    assert found == [("0002", "change-column-type", 11), ("0002", "transaction-nesting", 12)]
    assert "(from INTEGER)" in str(findings[0]["message"])
    assert "sends COMMIT" in str(findings[1]["message"])


SESSION_SETTINGS_AND_DATA = (
    HEADER.format(doc="data", revision="0002", down='"0001"')
    + """

def upgrade():
    op.execute("SET statement_timeout = 60000")
    connection = op.get_bind()
    connection.execute(sa.text("SET lock_timeout = 60000"))
    connection.execute(sa.text("SELECT id FROM books"))
    op.execute("DELETE FROM books WHERE pages IS NULL")


def downgrade():
    pass
"""
)


def test_session_settings_and_queries_are_not_schema_changes(tmp_path: Path) -> None:
    ini = _project(tmp_path, SQUASHED_BASE, SESSION_SETTINGS_AND_DATA)
    _, findings, _ = _lint(ini, "--dialect", "postgresql")
    assert findings == []  # a data-only revision: not mixed-schema-and-data
    ini = _project(tmp_path / "mixed", SQUASHED_BASE, SESSION_SETTINGS_AND_DATA.replace(
        '    op.execute("DELETE', '    op.drop_column("books", "legacy")\n    op.execute("DELETE'
    ))  # fmt: skip
    _, findings, _ = _lint(ini, "--dialect", "postgresql")
    mixed = [f for f in findings if f["rule"] == "mixed-schema-and-data"]
    assert [f["line"] for f in mixed] == [15] and "(line 14)" in str(mixed[0]["message"])


INSPECTS = (
    HEADER.format(doc="inspects", revision="0002", down='"0001"')
    + """

def upgrade():
    columns = [c["name"] for c in sa.inspect(op.get_bind()).get_columns("books")]
    if "legacy" in columns:
        op.drop_column("books", "legacy")
"""
)


def test_a_revision_that_inspects_the_database_says_so(tmp_path: Path) -> None:
    ini = _project(tmp_path, SQUASHED_BASE, INSPECTS)
    _, findings, _ = _lint(ini, "--dialect", "postgresql")
    assert [(f["rule"], f["line"]) for f in findings] == [("lint-incomplete", 10)]
    assert "it inspects the database (sqlalchemy.inspect(op.get_bind()))" in str(
        findings[0]["message"]
    )
