"""lint judges raw SQL in op.execute() as it judges the same operation written with op.*.

A corpus of dangerous operations as users write them, each in its ``op.*``
form and its raw-SQL form, on a table created by an earlier revision; and
safe rewrites, which must give nothing. Linted for PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_project, run_cli

BASE = '''"""books and authors"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_books_title", "books", ["title"])


def downgrade():
    op.drop_table("books")
    op.drop_table("authors")
'''

REVISION = '''"""the change"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade():
{body}


def downgrade():
    pass
'''

# rule: (the op.* form, the raw SQL form)
DANGEROUS = {
    "change-column-type": (
        'op.alter_column("books", "pages", type_=sa.BigInteger(), existing_type=sa.Integer())',
        "ALTER TABLE books ALTER COLUMN pages TYPE bigint USING pages::bigint",
    ),
    "set-not-null": (
        'op.alter_column("books", "title", nullable=False, existing_type=sa.String(200))',
        "ALTER TABLE books ALTER COLUMN title SET NOT NULL",
    ),
    "add-not-null-column-without-default": (
        'op.add_column("books", sa.Column("isbn", sa.String(20), nullable=False))',
        "ALTER TABLE books ADD COLUMN isbn varchar(20) NOT NULL",
    ),
    "drop-column": ('op.drop_column("books", "pages")', "ALTER TABLE books DROP COLUMN pages"),
    "drop-table": ('op.drop_table("books")', "DROP TABLE books"),
    "rename-column": (
        'op.alter_column("books", "title", new_column_name="name")',
        "ALTER TABLE books RENAME COLUMN title TO name",
    ),
    "rename-table": ('op.rename_table("books", "volumes")', "ALTER TABLE books RENAME TO volumes"),
    "create-index-without-concurrently": (
        'op.create_index("ix_books_pages", "books", ["pages"])',
        "CREATE INDEX ix_books_pages ON books (pages)",
    ),
    "drop-index-without-concurrently": (
        'op.drop_index("ix_books_title", table_name="books")',
        "DROP INDEX ix_books_title",
    ),
    "add-foreign-key-without-not-valid": (
        'op.create_foreign_key("fk_books_author", "books", "authors", ["author_id"], ["id"])',
        "ALTER TABLE books ADD CONSTRAINT fk_books_author FOREIGN KEY (author_id) "
        "REFERENCES authors (id)",
    ),
    "add-check-constraint-without-not-valid": (
        'op.create_check_constraint("ck_books_pages", "books", "pages > 0")',
        "ALTER TABLE books ADD CONSTRAINT ck_books_pages CHECK (pages > 0)",
    ),
    "add-unique-constraint": (
        'op.create_unique_constraint("uq_books_title", "books", ["title"])',
        "ALTER TABLE books ADD CONSTRAINT uq_books_title UNIQUE (title)",
    ),
    "add-column-volatile-default": (
        'op.add_column("books", sa.Column("token", sa.Uuid(), '
        'server_default=sa.text("gen_random_uuid()"), nullable=True))',
        "ALTER TABLE books ADD COLUMN token uuid DEFAULT gen_random_uuid()",
    ),
    # No op.* exists for these three: raw SQL is their only form.
    "truncate-table": ('op.execute("TRUNCATE books CASCADE")', "TRUNCATE books CASCADE"),
    "reindex-without-concurrently": ('op.execute("REINDEX TABLE books")', "REINDEX TABLE books"),
    "drop-database": ('op.execute("DROP DATABASE app")', "DROP DATABASE app"),
    "add-primary-key": (
        'op.create_primary_key("pk_authors2", "books", ["author_id"])',
        "ALTER TABLE books ADD CONSTRAINT pk_authors2 PRIMARY KEY (author_id)",
    ),
    "add-exclusion-constraint": (
        'op.create_exclude_constraint("ex_books_pages", "books", ("pages", "="), using="gist")',
        "ALTER TABLE books ADD CONSTRAINT ex_books_pages EXCLUDE USING gist (pages WITH =)",
    ),
    "drop-not-null": (
        'op.alter_column("authors", "name", nullable=True, existing_type=sa.String(100))',
        "ALTER TABLE authors ALTER COLUMN name DROP NOT NULL",
    ),
    "transaction-nesting": ('op.execute("COMMIT")', "COMMIT"),  # raw SQL is its only form
    "full-table-rewrite": ('op.execute("CLUSTER books USING ix_books_title")', "VACUUM FULL books"),
    "concurrently-inside-transaction": (
        'op.create_index("ix_books_pages", "books", ["pages"], postgresql_concurrently=True)',
        "CREATE INDEX CONCURRENTLY ix_books_pages ON books (pages)",
    ),
}

# The safer way, in both forms: nothing to report.
SAFE = {
    "index built concurrently, outside the transaction": (
        "with op.get_context().autocommit_block():\n        op.create_index("
        '"ix_books_pages", "books", ["pages"], postgresql_concurrently=True)',
        "with op.get_context().autocommit_block():\n        op.execute("
        '"CREATE INDEX CONCURRENTLY ix_books_pages ON books (pages)")',
    ),
    "foreign key NOT VALID": (
        'op.create_foreign_key("fk_books_author", "books", "authors", ["author_id"], ["id"], '
        "postgresql_not_valid=True)",
        'op.execute("ALTER TABLE books ADD CONSTRAINT fk_books_author FOREIGN KEY (author_id) '
        'REFERENCES authors (id) NOT VALID")',
    ),
    "index on a table created in the same revision": (
        'op.create_table("loans", sa.Column("id", sa.Integer(), primary_key=True))\n    '
        'op.create_index("ix_loans_id", "loans", ["id"])',
        'op.execute("CREATE TABLE loans (id integer PRIMARY KEY)")\n    '
        'op.execute("CREATE INDEX ix_loans_id ON loans (id)")',
    ),
    "a constant default on a new column (PostgreSQL 11+)": (
        'op.add_column("books", sa.Column("lang", sa.String(2), server_default="en", '
        "nullable=True))",
        """op.execute("ALTER TABLE books ADD COLUMN lang varchar(2) DEFAULT 'en'")""",
    ),
    "a unique constraint on an index built concurrently": (
        "with op.get_context().autocommit_block():\n        op.create_index("
        '"uq_books_title", "books", ["title"], unique=True, postgresql_concurrently=True)\n    '
        'op.execute("ALTER TABLE books ADD CONSTRAINT uq_books_title UNIQUE USING INDEX '
        'uq_books_title")',
        "with op.get_context().autocommit_block():\n        op.execute("
        '"CREATE UNIQUE INDEX CONCURRENTLY uq_books_title ON books (title)")\n    '
        'op.execute("ALTER TABLE books ADD CONSTRAINT uq_books_title UNIQUE USING INDEX '
        'uq_books_title")',
    ),
    "a nullable column made nullable again (the history knows it)": (
        'op.alter_column("books", "title", nullable=True)',
        'op.execute("ALTER TABLE books ALTER COLUMN title DROP NOT NULL")',
    ),
    "a nullable column": (
        'op.add_column("books", sa.Column("isbn", sa.String(20), nullable=True))',
        'op.execute("ALTER TABLE books ADD COLUMN isbn varchar(20)")',
    ),
}


# The corpus's project deploys with a lock_timeout: missing-lock-timeout has its own tests.
PYPROJECT = '[tool.migrasafe]\ndb-lock-timeout = "2s"\n'


def _rules(tmp_path: Path, body: str, pyproject: str = PYPROJECT) -> set[str]:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(body="    " + body))
    (ini.parent / "pyproject.toml").write_text(pyproject)
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    assert result.exit_code in (0, 1), result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert all(f["line"] == 10 or "\n" in body for f in findings), findings  # the call's line
    return {f["rule"] for f in findings if f["revision"] == "0002"}


@pytest.mark.parametrize("rule", sorted(DANGEROUS))
def test_a_dangerous_operation_is_found_in_its_op_form_and_its_raw_sql_form(
    tmp_path: Path, rule: str
) -> None:
    op_form, sql = DANGEROUS[rule]
    assert _rules(tmp_path / "op", op_form) == {rule}
    assert _rules(tmp_path / "sql", f"op.execute({sql!r})") == {rule}


@pytest.mark.parametrize("case", sorted(SAFE))
def test_a_safe_rewrite_is_not_flagged_in_either_form(tmp_path: Path, case: str) -> None:
    op_form, sql_form = SAFE[case]
    assert _rules(tmp_path / "op", op_form) == set()
    assert _rules(tmp_path / "sql", sql_form) == set()


# The history says what a column is: restating it is no change (issue: false positives).
RESTATED = {
    "a type restated without existing_type": (
        'op.alter_column("books", "title", type_=sa.String(200))', "postgresql"),
    "nullability restated on a NOT NULL column": (
        'op.alter_column("books", "id", nullable=False)', "postgresql"),
    "a varchar widened, known from the history": (
        'op.alter_column("books", "title", type_=sa.String(300))', "postgresql"),
    "a restated type in raw SQL": (
        'op.execute("ALTER TABLE books ALTER COLUMN title TYPE varchar(200)")', "postgresql"),
    "a column made NOT NULL by an earlier revision, restated": (
        'op.alter_column("books", "pages", nullable=False, server_default=None)', "sqlite"),
}  # fmt: skip


def _rules_on(tmp_path: Path, body: str, dialect: str, base: str = BASE) -> set[str]:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(base)
    (versions / "0002_change.py").write_text(REVISION.format(body="    " + body))
    (ini.parent / "pyproject.toml").write_text(PYPROJECT)
    result = run_cli("-c", str(ini), "lint", "--dialect", dialect, "--json")
    assert result.exit_code in (0, 1), result.stderr
    return {f["rule"] for f in json.loads(result.stdout)["findings"] if f["revision"] == "0002"}


@pytest.mark.parametrize("case", sorted(RESTATED))
def test_alter_column_restating_what_the_history_built_is_no_finding(
    tmp_path: Path, case: str
) -> None:
    body, dialect = RESTATED[case]
    base = BASE.replace('sa.Column("pages", sa.Integer(), nullable=True)',
                        'sa.Column("pages", sa.Integer(), nullable=False)')  # fmt: skip
    found = _rules_on(tmp_path, body, dialect, base)
    assert not found & {"change-column-type", "set-not-null"}, found


def test_a_real_change_is_still_found_and_named_from_the_history(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(
        body='    op.alter_column("books", "title", type_=sa.JSON)'
    ))  # fmt: skip
    (ini.parent / "pyproject.toml").write_text(PYPROJECT)
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "change-column-type"
    assert "to JSON (from VARCHAR(200))" in finding["message"]  # not "<class '...JSON'>"


def test_strict_reports_suppressions_that_silence_nothing_in_either_form(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(body=(
        '    op.execute("DROP INDEX ix_books_title")  # migrasafe: ignore[drop-index-without-'
        'concurrently]\n    op.add_column("books", sa.Column("isbn", sa.String(20)))  '
        "# migrasafe: ignore[drop-column]"
    )))  # fmt: skip
    (ini.parent / "pyproject.toml").write_text(
        PYPROJECT + '[tool.migrasafe.lint]\nignore = ["rename-table"]\n'
    )
    plain = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    assert plain.exit_code == 0, plain.stdout  # the raw DROP INDEX is silenced by its comment
    strict = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--strict", "--json")
    assert strict.exit_code == 1
    found = [(f["rule"], f["line"], f["message"]) for f in json.loads(strict.stdout)["findings"]]
    assert [(rule, line) for rule, line, _ in found] == [
        ("unused-suppression", None),
        ("unused-suppression", 11),
    ] or sorted((r, line or 0) for r, line, _ in found) == [
        ("unused-suppression", 0),
        ("unused-suppression", 11),
    ]
    messages = " ".join(m for _, _, m in found)
    assert "ignore[drop-column]" in messages and 'ignore = ["rename-table"]' in messages


def test_pg_version_decides_whether_a_constant_default_rewrites_the_table(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(
        body="""    op.execute("ALTER TABLE books ADD COLUMN lang varchar(2) DEFAULT 'en'")"""
    ))  # fmt: skip
    (ini.parent / "pyproject.toml").write_text(PYPROJECT)
    for version, expected in (("11", set()), ("10", {"add-column-volatile-default"})):
        result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--pg-version",
                         version, "--json")  # fmt: skip
        assert {f["rule"] for f in json.loads(result.stdout)["findings"]} == expected, version


@pytest.mark.parametrize(
    ("op_form", "sql"),
    [
        ('op.add_column("books", sa.Column("n", sa.BigInteger(), sa.Identity()))',
         "ALTER TABLE books ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY"),
        ('op.add_column("books", sa.Column("twice", sa.Integer(), sa.Computed("pages * 2")))',
         "ALTER TABLE books ADD COLUMN twice int GENERATED ALWAYS AS (pages * 2) STORED"),
    ],
    ids=["identity", "stored-generated"],
)  # fmt: skip
def test_a_column_filled_for_every_row_rewrites_the_table_in_both_forms(
    tmp_path: Path, op_form: str, sql: str
) -> None:
    assert _rules(tmp_path / "op", op_form) == {"add-column-volatile-default"}
    assert _rules(tmp_path / "sql", f"op.execute({sql!r})") == {"add-column-volatile-default"}


STYLE = ("prefer-bigint", "prefer-timestamptz", "prefer-text", "prefer-identity")


@pytest.mark.parametrize(
    "body",
    [
        'op.create_table("loans", sa.Column("id", sa.Integer(), primary_key=True), '
        'sa.Column("due", sa.DateTime()), sa.Column("note", sa.String(80)))',
        'op.execute("CREATE TABLE loans (id serial PRIMARY KEY, due timestamp, '
        'note varchar(80))")',
    ],
    ids=["op", "raw SQL"],
)  # fmt: skip
def test_style_rules_are_opt_in_and_judge_both_forms(tmp_path: Path, body: str) -> None:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(body="    " + body))
    plain = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    assert json.loads(plain.stdout)["findings"] == []  # off unless asked for
    asked = [arg for rule in STYLE for arg in ("--rule", rule)]
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", *asked, "--json")
    findings = json.loads(result.stdout)["findings"]
    found = {(f["rule"], f["column"], f["severity"]) for f in findings if f["revision"] == "0002"}
    assert found == {
        ("prefer-bigint", "id", "info"), ("prefer-identity", "id", "info"),
        ("prefer-timestamptz", "due", "info"), ("prefer-text", "note", "info"),
    }  # fmt: skip
    assert result.exit_code == 0  # notes, not errors


NULLABLE_COLUMN = 'op.add_column("books", sa.Column("isbn", sa.String(20), nullable=True))'
NULLABLE_COLUMN_SQL = 'op.execute("ALTER TABLE books ADD COLUMN isbn varchar(20)")'
SET_TIMEOUT = """op.execute("SET lock_timeout = '2s'")\n    """


@pytest.mark.parametrize("body", [NULLABLE_COLUMN, NULLABLE_COLUMN_SQL])
def test_a_lock_taken_without_lock_timeout_is_a_warning_in_both_forms(
    tmp_path: Path, body: str
) -> None:
    """Even a safe ALTER waits behind a long transaction, and the table's queries queue."""
    assert _rules(tmp_path / "none", body, pyproject="") == {"missing-lock-timeout"}
    assert _rules(tmp_path / "set", SET_TIMEOUT + body, pyproject="") == set()
    assert _rules(tmp_path / "project", body) == set()  # db-lock-timeout in [tool.migrasafe]
    off = """op.execute("SET lock_timeout = 0")\n    """
    assert _rules(tmp_path / "off", off + body, pyproject="") == {"missing-lock-timeout"}


def test_an_env_py_that_sets_lock_timeout_satisfies_missing_lock_timeout(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "generic")
    env = ini.parent / "migrations" / "env.py"
    env.write_text(env.read_text().replace(
        "def _migrate(connection: Connection) -> None:\n",
        "def _migrate(connection: Connection) -> None:\n"
        '    if connection.dialect.name == "postgresql":\n'
        "        connection.exec_driver_sql(\"SET lock_timeout = '2s'\")\n",
    ))  # fmt: skip
    assert "lock_timeout" in env.read_text()
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(body="    " + NULLABLE_COLUMN))
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    assert json.loads(result.stdout)["findings"] == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('op.execute("DO $$ BEGIN PERFORM 1; END $$")', {"sql-not-linted"}),
        ('op.execute("ALTER TABL books ADD x int")', {"sql-not-linted"}),  # a typo: no parse
        ('op.execute("ALTER TABLE books VALIDATE CONSTRAINT fk_books_author")', set()),
        ('op.execute("GRANT SELECT ON books TO reader")', set()),
    ],
)
def test_sql_lint_could_not_read_is_a_note_never_silence(
    tmp_path: Path, body: str, expected: set[str]
) -> None:
    """PostgreSQL's own parser reads what the server reads; what it cannot judge is said."""
    assert _rules(tmp_path, body) == expected


def test_adding_an_enum_value_in_a_transaction_fails_before_postgresql_12(tmp_path: Path) -> None:
    ini = make_project(tmp_path, "generic")
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    body = """    op.execute("ALTER TYPE mood ADD VALUE 'sad'")"""
    (versions / "0002_change.py").write_text(REVISION.format(body=body))
    for version, expected in (("12", set()), ("11", {"enum-value-in-transaction"})):
        result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--pg-version",
                         version, "--json")  # fmt: skip
        assert {f["rule"] for f in json.loads(result.stdout)["findings"]} == expected, version


# MySQL's own ways of saying it: MODIFY and CHANGE restate the whole column, ADD INDEX, AFTER.
MYSQL_DANGEROUS = {
    "change-column-type": (
        'op.alter_column("books", "pages", type_=sa.BigInteger(), existing_type=sa.Integer())',
        "ALTER TABLE books MODIFY COLUMN pages BIGINT NULL",
    ),
    "set-not-null": (
        'op.alter_column("books", "title", nullable=False, existing_type=sa.String(200))',
        "ALTER TABLE books MODIFY title VARCHAR(200) NOT NULL",
    ),
    "rename-column": (
        'op.alter_column("books", "title", new_column_name="name", existing_type=sa.String(200))',
        "ALTER TABLE books CHANGE COLUMN title name VARCHAR(200) NULL",
    ),
    "mysql-table-rebuild": (
        'op.create_foreign_key("fk_books_author", "books", "authors", ["author_id"], ["id"])',
        "ALTER TABLE books ADD CONSTRAINT fk_books_author FOREIGN KEY (author_id) "
        "REFERENCES authors (id)",
    ),
}


@pytest.mark.parametrize("rule", sorted(MYSQL_DANGEROUS))
def test_mysql_statements_are_judged_like_their_op_form(tmp_path: Path, rule: str) -> None:
    op_form, sql = MYSQL_DANGEROUS[rule]
    assert _rules_on(tmp_path / "op", op_form, "mysql") == {rule}
    assert _rules_on(tmp_path / "sql", f"op.execute({sql!r})", "mysql") == {rule}


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER TABLE books ADD COLUMN isbn VARCHAR(20) AFTER id", {"mysql-table-rebuild"}),
        ("ALTER TABLE books MODIFY title VARCHAR(200) NULL", set()),  # restated as it is
        ("ALTER TABLE books ADD INDEX ix_books_pages (pages)", set()),  # in place, online
    ],
)
def test_mysql_raw_sql_is_read_not_skipped(tmp_path: Path, sql: str, expected: set[str]) -> None:
    assert _rules_on(tmp_path, f"op.execute({sql!r})", "mysql") == expected
