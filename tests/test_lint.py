"""lint: dangerous operations found per dialect, without a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_project, run_cli

PROJECT = "lint_dangerous"


@pytest.fixture
def dangerous(tmp_path: Path) -> Path:
    ini = make_project(tmp_path / "p", "generic", PROJECT)
    (ini.parent / "pyproject.toml").write_text(DEPLOYED_WITH_LOCK_TIMEOUT)
    return ini


# The dangerous project deploys with a lock_timeout: missing-lock-timeout has its own tests.
DEPLOYED_WITH_LOCK_TIMEOUT = '[tool.migrasafe]\ndb-lock-timeout = "2s"\n\n'


def _lint(ini: Path, *args: str) -> tuple[int, dict[str, object]]:
    result = run_cli("-c", str(ini), "lint", "--json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)


def _found(report: dict[str, object]) -> set[tuple[str, str]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {(f["revision"], f["rule"]) for f in findings}


def test_postgresql_dangers_each_have_their_rule_and_revision(dangerous: Path) -> None:
    code, report = _lint(dangerous, "--dialect", "postgresql")
    assert code == 1
    assert _found(report) == {
        ("0002", "add-not-null-column-without-default"),
        ("0003", "create-index-without-concurrently"),
        ("0004", "drop-column"),
        ("0005", "change-column-type"),
        ("0006", "rename-column"),
        ("0008", "add-foreign-key-without-not-valid"),
        ("0008", "add-check-constraint-without-not-valid"),
        ("0008", "add-unique-constraint"),
        ("0008", "set-not-null"),
        ("0008", "rename-table"),
        ("0009", "mixed-schema-and-data"),
    }  # 0001 only creates tables, 0007 does it the safe way: nothing for them


def test_findings_say_where_why_and_what_instead(dangerous: Path) -> None:
    result = run_cli("-c", str(dangerous), "lint", "--dialect", "postgresql")
    assert result.exit_code == 1
    line = next(x for x in result.stdout.splitlines() if "create-index-without-concurrently" in x)
    assert "0003_index.py:10" in line and "[authors]" in line
    assert "blocks every write" in line and "postgresql_concurrently=True" in line
    assert "10 error(s), 1 warning(s) in 9 revision files." in result.stdout
    assert "1 finding(s) suppressed" in result.stdout


def test_sqlite_flags_alters_outside_batch_mode(dangerous: Path) -> None:
    _, report = _lint(dangerous, "--dialect", "sqlite")
    found = _found(report)
    assert ("0005", "sqlite-alter-outside-batch") in found
    assert ("0008", "sqlite-alter-outside-batch") in found
    assert ("0006", "sqlite-alter-outside-batch") not in found  # RENAME COLUMN works in place
    assert ("0009", "sqlite-alter-outside-batch") not in found  # inside batch_alter_table
    assert not {rule for _, rule in found if "concurrently" in rule or "not-valid" in rule}


def test_mysql_flags_table_rebuilds(dangerous: Path) -> None:
    _, report = _lint(dangerous, "--dialect", "mysql")
    assert ("0008", "mysql-table-rebuild") in _found(report)
    assert ("0007", "change-column-type") in _found(report)  # MySQL copies even to widen


def test_dialect_defaults_to_the_configured_url(dangerous: Path, db_url: str) -> None:
    result = run_cli("-c", str(dangerous), "--url", db_url, "lint", "--json")
    dialect = json.loads(result.stdout)["dialect"]
    assert dialect == ("sqlite" if db_url.startswith("sqlite") else "postgresql")


def test_reference_project_is_clean_on_every_dialect_but_for_its_lock_timeout(
    library: Path,
) -> None:
    for dialect in ("sqlite", "mysql"):
        code, report = _lint(library, "--dialect", dialect)
        assert code == 0 and report["findings"] == [], (dialect, report["findings"])
    code, report = _lint(library, "--dialect", "postgresql")
    found = [(f["rule"], f["revision"], f["severity"]) for f in report["findings"]]  # type: ignore[attr-defined]
    assert code == 0 and found == [("missing-lock-timeout", "0002", "warning")]
    (library.parent / "pyproject.toml").write_text(DEPLOYED_WITH_LOCK_TIMEOUT)
    assert _lint(library, "--dialect", "postgresql")[1]["findings"] == []


def test_an_ignore_comment_suppresses_only_its_rule(dangerous: Path) -> None:
    versions = dangerous.parent / "migrations" / "versions"
    script = versions / "0004_drop.py"
    script.write_text(script.read_text().replace(
        'op.drop_column("books", "legacy")',
        'op.drop_column("books", "legacy")  # migrasafe: ignore[rename-column]',
    ))  # fmt: skip
    assert ("0004", "drop-column") in _found(_lint(dangerous, "--dialect", "postgresql")[1])
    script.write_text(script.read_text().replace("ignore[rename-column]", "ignore[drop-column]"))
    _, report = _lint(dangerous, "--dialect", "postgresql")
    assert ("0004", "drop-column") not in _found(report) and report["suppressed"] == 2


def test_pyproject_ignores_rules_everywhere_or_per_revision(dangerous: Path) -> None:
    (dangerous.parent / "pyproject.toml").write_text(
        DEPLOYED_WITH_LOCK_TIMEOUT + "[tool.migrasafe.lint]\n"
        'ignore = ["mixed-schema-and-data"]\n'
        'per-revision-ignore = { "0008" = ["rename-table", "set-not-null"] }\n'
    )
    found = _found(_lint(dangerous, "--dialect", "postgresql")[1])
    assert ("0009", "mixed-schema-and-data") not in found
    assert ("0008", "rename-table") not in found and ("0008", "set-not-null") not in found
    assert ("0008", "add-unique-constraint") in found


def test_unknown_rule_in_a_suppression_is_an_error(dangerous: Path) -> None:
    script = dangerous.parent / "migrations" / "versions" / "0004_drop.py"
    script.write_text(script.read_text().replace(
        'op.drop_column("books", "legacy")',
        'op.drop_column("books", "legacy")  # migrasafe: ignore[drop-colum]',
    ))  # fmt: skip
    result = run_cli("-c", str(dangerous), "lint", "--dialect", "postgresql")
    assert result.exit_code == 2
    assert "0004_drop.py:10" in result.stderr and "unknown lint rule(s) drop-colum" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_rule_in_pyproject_is_an_error(dangerous: Path) -> None:
    (dangerous.parent / "pyproject.toml").write_text('[tool.migrasafe.lint]\nignore = ["nope"]\n')
    result = run_cli("-c", str(dangerous), "lint", "--dialect", "postgresql")
    assert result.exit_code == 2 and "unknown lint rule(s) nope" in result.stderr


def test_a_revision_that_cannot_be_imported_is_an_error(dangerous: Path) -> None:
    script = dangerous.parent / "migrations" / "versions" / "0003_index.py"
    script.write_text("import not_installed_anywhere\n" + script.read_text())
    result = run_cli("-c", str(dangerous), "lint", "--dialect", "postgresql")
    assert result.exit_code == 2
    assert "0003_index.py" in result.stderr and "Traceback" not in result.stderr


def test_a_script_that_needs_a_database_is_linted_as_far_as_it_goes(dangerous: Path) -> None:
    script = dangerous.parent / "migrations" / "versions" / "0004_drop.py"
    script.write_text(script.read_text().replace(
        '    op.drop_column("books", "legacy")',
        '    op.drop_column("books", "legacy")\n'
        '    op.get_bind().execute(sa.text("SELECT 1")).scalar()',
    ))  # fmt: skip
    _, report = _lint(dangerous, "--dialect", "postgresql")
    found = _found(report)
    assert ("0004", "drop-column") in found and ("0004", "lint-incomplete") in found


def test_list_rules(tmp_path: Path) -> None:
    result = run_cli("lint", "--list-rules", "--json")
    rules = {r["rule"] for r in json.loads(result.stdout)}
    assert {"drop-column", "create-index-without-concurrently", "sqlite-alter-outside-batch",
            "mysql-table-rebuild", "mixed-schema-and-data"} <= rules  # fmt: skip


CONCURRENT = '''"""indexes built concurrently"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_a", "authors", ["name"], postgresql_concurrently=True)
    op.execute("CREATE INDEX CONCURRENTLY ix_b ON authors (name)")
    with op.get_context().autocommit_block():
        op.create_index("ix_c", "authors", ["name"], postgresql_concurrently=True)
        op.execute("CREATE INDEX CONCURRENTLY ix_d ON authors (name)")


def downgrade() -> None:
    pass
'''


def test_concurrently_outside_autocommit_block_is_an_error(tmp_path: Path) -> None:
    """PostgreSQL refuses CONCURRENTLY inside a transaction: the migration would fail."""
    ini = make_project(tmp_path / "p", "generic", "lint_dangerous")
    versions = ini.parent / "migrations" / "versions"
    for path in versions.glob("000[2-9]_*.py"):
        path.unlink()
    (versions / "0002_concurrent.py").write_text(CONCURRENT)
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    found = [(f["rule"], f["line"]) for f in json.loads(result.stdout)["findings"]]
    assert sorted(found) == [("concurrently-inside-transaction", 9),
                             ("concurrently-inside-transaction", 10)], found  # fmt: skip
    assert result.exit_code == 1


READS_CONFIG = '''"""a revision that reads the config, as many do"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    if op.get_context().config.get_main_option("sqlalchemy.url"):
        op.add_column("authors", sa.Column("country", sa.String(2), nullable=False))


def downgrade() -> None:
    op.drop_column("authors", "country")
'''


def test_a_revision_reading_the_config_is_linted(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "lint_dangerous")
    versions = ini.parent / "migrations" / "versions"
    for path in versions.glob("000[2-9]_*.py"):
        path.unlink()
    (versions / "0002_reads_config.py").write_text(READS_CONFIG)
    (ini.parent / "pyproject.toml").write_text(DEPLOYED_WITH_LOCK_TIMEOUT)
    data = json.loads(run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json").stdout)
    assert [f["rule"] for f in data["findings"]] == ["add-not-null-column-without-default"]
