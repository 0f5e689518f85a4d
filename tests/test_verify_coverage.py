"""verify on histories as real projects have them: it checks all of it, with data it can hold.

Each scenario is one way verify used to check little or say "clean" without
data: cyclic foreign keys, a cast to an enum, CHECK/ARRAY/Numeric columns,
a table without a primary key, a data migration that needs specific rows,
and a 50-revision history whose revisions fail on generated rows. Each runs
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_project, run_cli


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> list[str]:
    """Where verify makes its scratch database: a temporary SQLite file, or a PostgreSQL server."""
    if request.param == "sqlite":
        return []
    return ["--url", str(request.getfixturevalue("pg_url"))]


def _verify(ini: Path, server: list[str]) -> tuple[int, dict[str, object]]:
    result = run_cli("-c", str(ini), "verify", *server, "--json")
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


def _findings(report: dict[str, object]) -> set[tuple[str, str, str | None, str]]:
    return {(f["rule"], f["revision"], f["table"], f["severity"])  # type: ignore[index]
            for f in report["findings"]}  # type: ignore[attr-defined]  # fmt: skip


def _clean_with_data(report: dict[str, object], revisions: list[str]) -> None:
    assert report["findings"] == [], report["findings"]
    assert report["refused_rows"] == {}
    assert report["coverage"] == {  # type: ignore[comparison-overlap]
        "with_data": revisions, "schema_only": {}, "upgrade_only": {}, "not_checked": {}
    }  # fmt: skip
    assert report["fully_checked"] is True


@pytest.mark.parametrize(
    "scenario",
    [
        "verify_cyclic_fk",  # users.team_id <-> teams.captain_id: NULL first, linked afterwards
        "verify_enum_cast",  # status text cast to an enum: rows shaped by the enum survive it
        "verify_no_primary_key",  # compared as a multiset: a dropped added column loses no row
    ],
)
def test_scenario_is_verified_with_rows_it_can_hold(
    tmp_path: Path, server: list[str], scenario: str
) -> None:
    ini = make_project(tmp_path / "p", "generic", scenario)
    code, report = _verify(ini, server)
    assert code == 0
    _clean_with_data(report, ["0001", "0002"])


def test_check_array_and_numeric_columns_get_rows_and_a_deleting_downgrade_is_data_lost(
    tmp_path: Path, server: list[str]
) -> None:
    ini = make_project(tmp_path / "p", "generic", "verify_check_array_numeric")
    code, report = _verify(ini, server)
    assert code == 1
    assert _findings(report) == {("data-lost", "0002", "prices", "error")}
    assert report["refused_rows"] == {}
    lost = report["findings"][0]["message"]  # type: ignore[index]
    assert lost.startswith("20 of 20 rows of prices")


def test_declared_rows_let_a_data_migration_that_needs_them_be_checked(
    tmp_path: Path, server: list[str]
) -> None:
    ini = make_project(tmp_path / "p", "generic", "verify_fixture_rows")
    code, report = _verify(ini, server)
    assert code == 1  # the setting it needs is not among generated rows, nor in empty tables
    assert ("upgrade-failed", "0002", None, "error") in _findings(report)
    assert report["coverage"]["not_checked"] == {  # type: ignore[index]
        "0002": "its upgrade failed, even on empty tables"
    }
    (ini.parent / "pyproject.toml").write_text(
        "[tool.migrasafe.verify.before_revision_data]\n"
        '"0002" = { settings = [{ key = "theme", value = "dark" }] }\n'
    )
    code, report = _verify(ini, server)
    assert code == 0
    _clean_with_data(report, ["0001", "0002"])


def test_a_revision_declared_irreversible_is_a_note_and_verify_goes_on(
    tmp_path: Path, server: list[str]
) -> None:
    ini = make_project(tmp_path / "p", "generic", "verify_no_primary_key")
    (ini.parent / "pyproject.toml").write_text('[tool.migrasafe.verify]\nirreversible = ["0001"]\n')
    code, report = _verify(ini, server)
    assert code == 0
    assert _findings(report) == {("irreversible", "0001", None, "info")}
    coverage = report["coverage"]
    assert coverage["upgrade_only"] == {  # type: ignore[index]
        "0001": "declared irreversible: only its upgrade ran"
    }
    assert coverage["with_data"] == ["0002"]  # type: ignore[index]
    assert report["fully_checked"] is False


_ITEMS = '''"""items"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("note", sa.String(30), nullable=True),
        sa.Column("code", sa.String(10), nullable=False),
    )


def downgrade():
    op.drop_table("items")
'''

_COLUMN = '''"""column c{n}"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = "{down}"


def upgrade():
    op.add_column("items", sa.Column("c{n}", sa.Integer(), nullable=True))
    {extra_up}


def downgrade():
    {extra_down}
    with op.batch_alter_table("items") as batch:
        batch.drop_column("c{n}")
'''

# 0010 makes a column NOT NULL: generated NULLs refuse it, rows shaped by 0010's schema pass.
_NOT_NULL_UP = (
    'with op.batch_alter_table("items") as batch:\n'
    '        batch.alter_column("note", existing_type=sa.String(30), nullable=False)'
)
_NOT_NULL_DOWN = (
    'with op.batch_alter_table("items") as batch:\n'
    '        batch.alter_column("note", existing_type=sa.String(30), nullable=True)'
)
# 0020 reads every code as a number in Python: no generated text survives it.
_PARSE_UP = (
    "for id_, code in op.get_bind().execute(sa.text('SELECT id, code FROM items')).all():\n"
    "        op.execute(sa.text('UPDATE items SET c20 = :n WHERE id = :id')"
    ".bindparams(n=int(code), id=id_))"
)


@pytest.mark.parametrize("per_migration", [True, False], ids=["transaction-per-migration",
                                                               "one-transaction"])  # fmt: skip
def test_a_50_revision_history_is_checked_to_the_end_past_revisions_that_refuse_its_rows(
    tmp_path: Path, server: list[str], per_migration: bool
) -> None:
    """verify runs a revision's three steps in one run of env.py: a failing step must be
    undone and walked again step by step, whether env.py commits each migration or not."""
    ini = make_project(tmp_path / "p", "generic")
    env = ini.parent / "migrations" / "env.py"
    env.write_text(
        env.read_text().replace(
            '"transaction_per_migration": True', f'"transaction_per_migration": {per_migration}'
        )
    )
    versions = ini.parent / "migrations" / "versions"
    (versions / "0001_items.py").write_text(_ITEMS)
    for n in range(2, 51):
        extra_up, extra_down = {10: (_NOT_NULL_UP, _NOT_NULL_DOWN),
                                20: (_PARSE_UP, "pass")}.get(n, ("pass", "pass"))  # fmt: skip
        (versions / f"{n:04d}_c{n}.py").write_text(_COLUMN.format(
            n=n, rev=f"{n:04d}", down=f"{n - 1:04d}", extra_up=extra_up, extra_down=extra_down
        ))  # fmt: skip
    code, report = _verify(ini, server)
    assert code == 0, report["findings"]  # warnings only: nothing is wrong, one thing unchecked
    coverage = report["coverage"]
    assert coverage["with_data"] == [f"{n:04d}" for n in range(1, 51) if n != 20]  # type: ignore[index]
    assert list(coverage["schema_only"]) == ["0020"]  # type: ignore[index,call-overload]
    assert coverage["not_checked"] == {}  # type: ignore[index]
    assert _findings(report) == {("data-not-checked", "0020", None, "warning")}
    assert "invalid literal for int()" in report["findings"][0]["message"]  # type: ignore[index]
    assert report["complete"] is True and report["fully_checked"] is False
    text = run_cli("-c", str(ini), "verify", *server)
    assert "Coverage: 49 with data, 1 schema only (0020), 0 upgrade only, 0 not checked." in (
        text.stdout
    )
    assert "Every revision reverses cleanly" not in text.stdout
    # a window undone at 0020 walks 0001-0019 again: each is still reported once, in order
    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    shown: list[tuple[int, int, str]] = []
    verify(load_project(ini), url=server[1] if server else None,
           progress=lambda n, total, rev: shown.append((n, total, rev)))  # fmt: skip
    assert shown == [(n, 50, f"{n:04d}") for n in range(1, 51)]


def test_tables_of_every_schema_the_migrations_create_are_seeded_and_compared(
    tmp_path: Path, pg_url: str
) -> None:
    """PostgreSQL schemas (SQLite and MySQL have one per database, and nothing to compare).

    Whether or not env.py sets include_schemas: every schema of the scratch
    database was made by the migrations.
    """
    ini = make_project(tmp_path / "p", "generic", "verify_other_schema")
    code, report = _verify(ini, ["--url", pg_url])
    assert code == 1
    assert _findings(report) == {("data-lost", "0002", "other.ledger", "error")}
    assert report["coverage"]["with_data"] == ["0001", "0002"]  # type: ignore[index]


def test_an_index_recreated_without_its_predicate_is_not_restored(
    tmp_path: Path, server: list[str]
) -> None:
    """Same name, same columns, but over every row now: the downgrade changed the index."""
    ini = make_project(tmp_path / "p", "generic", "verify_partial_index")
    code, report = _verify(ini, server)
    assert code == 1
    assert _findings(report) == {("schema-not-restored", "0002", "events", "error")}
    message = report["findings"][0]["message"]  # type: ignore[index]
    assert "ix_events_open" in message and "closed_at is null" in message.lower()


def test_a_failing_downgrade_in_one_transaction_is_walked_again_step_by_step(
    tmp_path: Path, server: list[str]
) -> None:
    """Without transaction_per_migration, the failed downgrade undoes the upgrade too."""
    ini = make_project(tmp_path / "p", "generic", "verify_unchecked")
    env = ini.parent / "migrations" / "env.py"
    env.write_text(env.read_text().replace('"transaction_per_migration": True',
                                           '"transaction_per_migration": False'))  # fmt: skip
    code, report = _verify(ini, server)
    assert code == 0
    assert ("irreversible", "0002", None, "info") in _findings(report)
    assert report["coverage"]["upgrade_only"] == {  # type: ignore[index]
        "0002": "its downgrade raises NotImplementedError (the audit trail is never removed)"
    }
    assert report["coverage"]["with_data"] == ["0001", "0003"]  # type: ignore[index]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_same_seed_gives_the_same_report_whatever_the_hash_seed(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """Rows, refusals and findings depend on --seed only: not on the order Python happens to
    iterate a set of table names in, which PYTHONHASHSEED changes from process to process.
    Six tables are seeded together; the downgrade of 0002 loses one's rows, and the finding
    quotes their generated keys."""
    ini = make_project(tmp_path / "p", "generic", "verify_six_tables")
    url = ["--url", str(request.getfixturevalue("pg_url"))] if database == "postgresql" else []
    reports = []
    for hash_seed in ("1", "2", "3"):
        run = subprocess.run(
            [sys.executable, "-m", "migrasafe", "-c", str(ini), "verify", "--json", "--seed", "7",
             *url],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )  # fmt: skip
        assert run.returncode == 1, run.stderr
        report = json.loads(run.stdout)
        report.pop("database")  # the scratch database's random name
        reports.append(report)
    assert [f["rule"] for f in reports[0]["findings"]] == ["data-lost"]
    assert reports[0] == reports[1] == reports[2]


def test_generated_rows_respect_what_real_schemas_hold(tmp_path: Path, server: list[str]) -> None:
    """A composite foreign key (both columns from one parent row), a primary key that is a
    foreign key (distinct parents), a composite integer key (SQLite numbers none of it), a
    generated column (no value given), a boolean and a SMALLINT: every row is accepted."""
    ini = make_project(tmp_path / "p", "generic", "verify_generator_shapes")
    code, report = _verify(ini, server)
    assert code == 0, report["findings"]
    assert report["refused_rows"] == {}
    assert report["coverage"]["with_data"] == ["0001", "0002"]  # type: ignore[index]
    assert report["fully_checked"] is True


def test_declared_rows_take_the_place_of_generated_rows_with_the_same_key(
    tmp_path: Path, server: list[str]
) -> None:
    """Generated books are numbered 1, 2, ...; a declared book 1 replaces the generated one
    instead of colliding with it (an IntegrityError traceback, and no JSON, before)."""
    ini = make_project(tmp_path / "p", "library")
    (ini.parent / "pyproject.toml").write_text(
        "[tool.migrasafe.verify.before_revision_data]\n"
        '"0002" = { books = [{ id = 1, title = "Dune", author = "Herbert", '
        'isbn = "9780441013593" }] }\n'
    )
    code, report = _verify(ini, server)
    assert code == 0, report["findings"]
    _clean_with_data(report, ["0001", "0002", "0003"])


def test_declared_rows_the_schema_refuses_are_one_line_naming_the_table(
    tmp_path: Path, server: list[str]
) -> None:
    ini = make_project(tmp_path / "p", "library")
    (ini.parent / "pyproject.toml").write_text(
        "[tool.migrasafe.verify.before_revision_data]\n"
        '"0002" = { books = [{ id = 1, title = "no author" }] }\n'
    )
    result = run_cli("-c", str(ini), "verify", *server)
    assert result.exit_code == 2
    assert "the rows declared for books before 0002" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cycle_with_a_not_null_parent_outside_it_is_emptied_children_first(
    tmp_path: Path, server: list[str]
) -> None:
    """teams <-> users is a cycle, and teams.zone_id a NOT NULL key out of it (cgwire/zou's
    entity -> project): reseeding zones must empty teams before zones (a foreign-key
    violation and a traceback before)."""
    ini = make_project(tmp_path / "p", "generic", "verify_cycle_with_parent")
    code, report = _verify(ini, server)
    assert code == 0, report["findings"]
    _clean_with_data(report, ["0001", "0002"])


@pytest.mark.parametrize("template", ["generic", "async", "pyproject"])
def test_alembic_inits_project_is_verified_as_it_comes(tmp_path: Path, template: str) -> None:
    """`alembic init -t TEMPLATE` leaves sqlalchemy.url as a placeholder (driver://...): verify
    runs on a temporary SQLite database (aiosqlite for the async template) and says so."""
    project = tmp_path / "p"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "alembic", "init", "-t", template, "migrations"],
                   cwd=project, check=True, capture_output=True)  # fmt: skip
    (project / "migrations" / "versions" / "0001_a.py").write_text(
        '"""a"""\nfrom alembic import op\nimport sqlalchemy as sa\nrevision = "0001"\n'
        "down_revision = None\n\n\ndef upgrade():\n    op.create_table('a', "
        "sa.Column('id', sa.Integer, primary_key=True))\n\n\ndef downgrade():\n"
        "    op.drop_table('a')\n"
    )
    run = subprocess.run([sys.executable, "-m", "migrasafe", "verify", "--json"], cwd=project,
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["coverage"]["with_data"] == ["0001"]
    assert "placeholder" in report["notes"][0]
