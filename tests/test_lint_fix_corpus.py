"""`lint --fix` on the lint corpus (tests/test_lint_raw_sql.py's dangerous cases): each case
with a safe form is rewritten into it, and the fixed revision passes lint and verify on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrasafe.checks.lint.fix import FIXES
from test_lint_raw_sql import BASE, DANGEROUS

from conftest import make_project, run_cli

# each case's downgrade, as a user writes it (the plain reverse where it runs everywhere)
REVERSE = {
    "set-not-null": 'safe_op.drop_not_null("books", "title", existing_type=sa.String(200))',
    "create-index-without-concurrently": 'op.drop_index("ix_books_pages", table_name="books")',
    "drop-index-without-concurrently": 'op.create_index("ix_books_title", "books", ["title"])',
    "add-foreign-key-without-not-valid": 'op.drop_constraint("fk_books_author", "books", '
                                         'type_="foreignkey")',
    "add-check-constraint-without-not-valid": 'op.drop_constraint("ck_books_pages", "books", '
                                              'type_="check")',
    "add-unique-constraint": 'op.drop_constraint("uq_books_title", "books", type_="unique")',
}  # fmt: skip
CASES = sorted(rule for rule in DANGEROUS if rule in FIXES)


def test_every_rule_with_a_safe_form_has_a_case_here() -> None:
    assert sorted(REVERSE) == CASES
    assert len(CASES) >= 6


@pytest.mark.parametrize("rule", CASES)
def test_fix_turns_a_corpus_case_into_its_safe_form(rule: str, tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(
        '"""the change"""\nfrom alembic import op\nimport sqlalchemy as sa\n'
        "from migrasafe import safe_op\n\n"
        'revision = "0002"\ndown_revision = "0001"\n\n\n'
        f"def upgrade():\n    {DANGEROUS[rule][0]}\n\n\ndef downgrade():\n    {REVERSE[rule]}\n"
    )

    def rules() -> set[str]:
        result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
        return {f["rule"] for f in json.loads(result.stdout)["findings"] if f["revision"] == "0002"}

    assert rule in rules()
    fixed = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fix", "--json")
    assert [f["rule"] for fix in json.loads(fixed.stdout)["fixes"] for f in fix["fixed"]] == [rule]
    assert f"safe_op.{FIXES[rule][1]}(" in (versions / "0002_change.py").read_text()
    assert rule not in rules()
    verified = run_cli("-c", str(ini), "-q", "verify", "--url", db_url, "--json")
    report = json.loads(verified.stdout)
    assert verified.exit_code == 0, report["findings"]
    assert report["coverage"]["not_checked"] == {}
