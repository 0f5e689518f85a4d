"""`lint --fix`: dangerous op.* calls rewritten as their safe_op forms, file otherwise untouched.

The fixed revisions then pass lint (none of the fixed rules fire) and verify
(every revision reverses with data) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_project, run_cli

FIXABLE = {
    "0002_index.py": (
        "def upgrade() -> None:\n"
        "    # an index the dashboard needs (a comment --fix must keep)\n"
        '    op.create_index("ix_books_title", "books", ["title"])\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_index("ix_books_title", table_name="books")\n'
    ),
    "0003_constraints.py": (
        "def upgrade() -> None:\n"
        '    op.create_foreign_key("fk_books_author", "books", "authors",\n'
        '                          ["author_id"], ["id"])  # keeps its layout\n'
        '    op.create_check_constraint("ck_books_pages", "books", "pages >= 0")\n'
        '    op.create_unique_constraint("uq_books_isbn", "books", ["isbn"])\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_constraint("uq_books_isbn", "books", type_="unique")\n'
        '    op.drop_constraint("ck_books_pages", "books", type_="check")\n'
        '    op.drop_constraint("fk_books_author", "books", type_="foreignkey")\n'
    ),
    "0004_drop_index.py": (
        "def upgrade() -> None:\n"
        '    op.drop_index("ix_books_title", table_name="books")\n\n\n'
        "def downgrade() -> None:\n"
        '    op.create_index("ix_books_title", "books", ["title"])\n'
    ),
}
FIXED_RULES = {"create-index-without-concurrently", "add-foreign-key-without-not-valid",
               "add-check-constraint-without-not-valid", "add-unique-constraint",
               "drop-index-without-concurrently"}  # fmt: skip


def _project(directory: Path) -> Path:
    ini = make_project(directory, "generic")
    versions = directory / "migrations" / "versions"
    (versions / "0001_tables.py").write_text(
        '"""tables"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        'revision = "0001"\ndown_revision = None\n\n\ndef upgrade() -> None:\n'
        '    op.create_table("authors", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.create_table("books", sa.Column("id", sa.Integer, primary_key=True),\n'
        '                    sa.Column("title", sa.String(100)), sa.Column("pages", sa.Integer),\n'
        '                    sa.Column("isbn", sa.String(20)),\n'
        '                    sa.Column("author_id", sa.Integer))\n\n\n'
        'def downgrade() -> None:\n    op.drop_table("books")\n    op.drop_table("authors")\n'
    )
    parent = "0001"
    for name, body in FIXABLE.items():
        rev = name[:4]
        (versions / name).write_text(
            f'"""{name}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f"revision = {rev!r}\ndown_revision = {parent!r}\n\n\n{body}"
        )
        parent = rev
    return ini


def _rules(ini: Path) -> set[str]:
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    return {f["rule"] for f in json.loads(result.stdout)["findings"]}


def test_fix_rewrites_each_finding_with_a_safe_form_and_keeps_the_rest(tmp_path: Path) -> None:
    ini = _project(tmp_path / "p")
    assert _rules(ini) >= FIXED_RULES
    versions = tmp_path / "p" / "migrations" / "versions"
    before = {p.name: p.read_text() for p in versions.glob("*.py")}

    dry = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fix", "--dry-run")
    assert "+    safe_op.create_index(" in dry.stdout
    assert "Would rewrite 5 call(s) (and 4 reverse(s) in downgrade()) in 3 file(s)" in dry.stdout
    assert {p.name: p.read_text() for p in versions.glob("*.py")} == before  # nothing written

    fixed = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fix", "--json")
    data = json.loads(fixed.stdout)
    assert sorted(f["rule"] for fix in data["fixes"] for f in fix["fixed"]) == sorted(FIXED_RULES)
    assert fixed.exit_code == 0, data["findings"]
    text = (versions / "0003_constraints.py").read_text()
    assert 'safe_op.add_foreign_key("fk_books_author", "books", "authors",\n' in text
    assert '["author_id"], ["id"])  # keeps its layout' in text
    assert "from migrasafe import safe_op" in text
    assert "# an index the dashboard needs" in (versions / "0002_index.py").read_text()
    index = (versions / "0002_index.py").read_text()
    assert 'safe_op.drop_index("ix_books_title", table_name="books")' in index  # its reverse
    assert 'safe_op.drop_constraint("uq_books_isbn", "books", type_="unique")' in text
    assert not (FIXED_RULES & _rules(ini))


def test_fix_leaves_what_safe_op_cannot_take(tmp_path: Path) -> None:
    """An unnamed constraint (safe_op validates it by name), and a reverse named by op.f()."""
    ini = _project(tmp_path / "p")
    versions = tmp_path / "p" / "migrations" / "versions"
    path = versions / "0003_constraints.py"
    path.write_text(path.read_text().replace('op.create_check_constraint("ck_books_pages"',
                                             "op.create_check_constraint(None", 1)
                    .replace('op.create_unique_constraint("uq_books_isbn"',
                             'op.create_unique_constraint(op.f("uq_books_isbn")', 1))  # fmt: skip
    run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fix")
    text = path.read_text()
    assert "op.create_check_constraint(None" in text  # left for a person
    assert 'safe_op.add_unique(op.f("uq_books_isbn")' in text
    assert 'safe_op.drop_constraint("uq_books_isbn", "books", type_="unique")' in text


def test_the_fixed_revisions_pass_verify(tmp_path: Path, db_url: str) -> None:
    ini = _project(tmp_path / "p")
    assert run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fix").exit_code == 0
    result = run_cli("-c", str(ini), "-q", "verify", "--url", db_url, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["findings"]
    assert report["coverage"]["not_checked"] == {}


def test_a_finding_says_when_fix_can_rewrite_it(tmp_path: Path) -> None:
    ini = _project(tmp_path / "p")
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    messages = [f["message"] for f in json.loads(result.stdout)["findings"]
                if f["rule"] == "create-index-without-concurrently"]  # fmt: skip
    assert messages and "`migrasafe lint --fix` rewrites it as safe_op.create_index" in messages[0]


def test_fix_leaves_a_unique_constraint_with_options_the_safe_form_cannot_take(
    tmp_path: Path,
) -> None:
    ini = _project(tmp_path / "p")
    path = tmp_path / "p" / "migrations" / "versions" / "0003_constraints.py"
    path.write_text(path.read_text().replace('["isbn"])\n', '["isbn"], deferrable=True)\n', 1))
    run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fix")
    assert 'op.create_unique_constraint("uq_books_isbn", "books", ["isbn"], deferrable=True)' in (
        path.read_text()
    )
