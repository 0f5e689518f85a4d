"""The pytest plugin gives a project migration tests with `pytest --migrasafe`, and a
fixture for the migration tests users write; merely installed, it does nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import make_project, make_user_project


def _pytest(
    project: Path, *ini_lines: str, args: tuple[str, ...] = ("--migrasafe",)
) -> subprocess.CompletedProcess[str]:
    (project / "pytest.ini").write_text("\n".join(["[pytest]", *ini_lines]) + "\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *args],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_reference_project_passes_every_migration_test(library: Path) -> None:
    result = _pytest(library.parent, "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    for name in ("single_head", "upgrade", "roundtrip", "model_match"):
        assert f"::migrasafe::{name} PASSED" in result.stdout


def test_roundtrip_fails_with_the_findings(tmp_path: Path) -> None:
    make_project(tmp_path / "p", "library", "verify_clearing_downgrade")
    result = _pytest(tmp_path / "p", "migrasafe_config = alembic.ini")
    assert result.returncode == 1
    assert "::migrasafe::roundtrip FAILED" in result.stdout
    assert "[data-changed] 0003 books: books.description differs" in result.stdout


def test_tests_are_selected_by_name(library: Path) -> None:
    result = _pytest(
        library.parent, "migrasafe_config = alembic.ini", "migrasafe_tests = single_head"
    )
    assert result.returncode == 0
    assert "::migrasafe::single_head PASSED" in result.stdout
    assert "roundtrip" not in result.stdout
    bad = _pytest(library.parent, "migrasafe_config = alembic.ini", "migrasafe_tests = nope")
    assert bad.returncode != 0 and "unknown migrasafe_tests: nope" in bad.stdout + bad.stderr


def test_plugin_runs_nothing_unless_asked(library: Path) -> None:
    """Configured but not asked for (`pytest`, `pytest tests/one.py`): no migration test."""
    (library.parent / "test_one.py").write_text("def test_one():\n    assert True\n")
    for args in ((), ("test_one.py",), ("test_one.py::test_one",)):
        result = _pytest(library.parent, "migrasafe_config = alembic.ini", args=args)
        assert result.returncode == 0, result.stdout
        assert "migrasafe::" not in result.stdout and "1 passed" in result.stdout


def test_the_plugin_imports_nothing_heavy_when_pytest_starts() -> None:
    """pytest loads the plugin at every start: Alembic, SQLAlchemy and rich wait for a
    migrasafe test to run."""
    script = ("import sys, migrasafe.pytest_plugin\n"
              "print(sorted({m.split('.')[0] for m in sys.modules}"
              " & {'alembic', 'sqlalchemy', 'rich', 'mako'}))")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert run.stdout.strip() == "[]"


def test_the_project_is_found_without_configuration(library: Path) -> None:
    """`pytest --migrasafe` with no ini option finds alembic.ini as `migrasafe` does."""
    result = _pytest(library.parent)
    assert result.returncode == 0, result.stdout
    assert "::migrasafe::roundtrip PASSED" in result.stdout


def test_a_project_that_names_no_database_is_tested_on_sqlite(tmp_path: Path) -> None:
    """alembic init's project with sqlalchemy.url removed: env.py gets a temporary SQLite
    database's URL instead of failing with KeyError: 'url'."""
    project = tmp_path / "p"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "alembic", "init", "migrations"], cwd=project,
                   check=True, capture_output=True)  # fmt: skip
    ini = project / "alembic.ini"
    ini.write_text("\n".join(line for line in ini.read_text().splitlines()
                             if not line.startswith("sqlalchemy.url")))  # fmt: skip
    versions = project / "migrations" / "versions"
    (versions / "0001_a.py").write_text(
        '"""a"""\nfrom alembic import op\nimport sqlalchemy as sa\nrevision = "0001"\n'
        "down_revision = None\n\n\ndef upgrade():\n    op.create_table('a', "
        "sa.Column('id', sa.Integer, primary_key=True))\n\n\ndef downgrade():\n"
        "    op.drop_table('a')\n"
    )
    result = _pytest(project)
    assert result.returncode == 0, result.stdout
    assert "::migrasafe::roundtrip PASSED" in result.stdout
    assert "::migrasafe::model_match SKIPPED" in result.stdout  # no target_metadata


def test_each_test_fails_for_its_own_defect(tmp_path: Path) -> None:
    """0002's downgrade drops the wrong index, so its second upgrade fails: the round trip
    fails, and the upgrade test, whose upgrades all pass, passes (verify rebuilds the
    scratch database up to 0002 and checks 0003 too)."""
    make_project(tmp_path / "p", "generic", "verify_wrong_index_dropped")
    result = _pytest(tmp_path / "p", args=("--migrasafe", "-rs"))
    assert "::migrasafe::roundtrip FAILED" in result.stdout
    assert "::migrasafe::upgrade PASSED" in result.stdout
    assert "[reupgrade-failed] 0002" in result.stdout


def test_revisions_an_upgrade_failure_left_unreached_are_a_skip_of_the_round_trip(
    tmp_path: Path,
) -> None:
    """0002's upgrade fails (it needs a row nobody declared): the upgrade test fails; the
    round trip, which found nothing wrong with what it reached, says what it did not."""
    make_project(tmp_path / "p", "generic", "verify_fixture_rows")
    result = _pytest(tmp_path / "p", args=("--migrasafe", "-rs"))
    assert "::migrasafe::upgrade FAILED" in result.stdout
    assert "::migrasafe::roundtrip SKIPPED" in result.stdout
    assert "1 of 2 revisions not reached (first: 0002" in result.stdout


def test_the_runner_fixture_migrates_step_by_step_on_a_scratch_database(library: Path) -> None:
    """A migration test written by the user: up to 0002, rows in, up one, look."""
    (library.parent / "test_backfill.py").write_text(
        "def test_backfill(migrasafe_runner):\n"
        "    migrasafe_runner.migrate_up_to('0002')\n"
        "    assert migrasafe_runner.heads == ('0002',)\n"
        "    migrasafe_runner.insert_into('books', [{'id': 1, 'title': 'Dune', 'author': 'Herbert',"
        " 'isbn': '9780441013593'}])\n"
        "    migrasafe_runner.migrate_up_one()\n"
        "    assert migrasafe_runner.heads == ('0003',)\n"
        "    assert migrasafe_runner.rows('SELECT title FROM books') == [('Dune',)]\n"
        "    migrasafe_runner.migrate_down_to('base')\n"
        "    assert migrasafe_runner.heads == ()\n"
    )
    result = _pytest(library.parent, "migrasafe_config = alembic.ini", args=("test_backfill.py",))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_backfill.py::test_backfill PASSED" in result.stdout
    assert not (library.parent / "library.db").exists()  # the project's database: untouched


def test_an_env_py_that_expects_an_engine_is_really_checked(tmp_path: Path) -> None:
    """pytest-alembic's convention (an Engine in config.attributes) is verified, not skipped."""
    project = make_user_project("engine_attribute", tmp_path / "e", f"sqlite:///{tmp_path}/e.db")
    result = _pytest(project, "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    for name in ("single_head", "upgrade", "roundtrip", "model_match"):
        assert f"::migrasafe::{name} PASSED" in result.stdout
    assert not (tmp_path / "e.db").exists()


def test_models_not_compared_is_a_skip_not_a_pass(tmp_path: Path) -> None:
    project = make_user_project("generic", tmp_path / "g", f"sqlite:///{tmp_path}/g.db")
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    assert "from models import metadata as target_metadata" in text
    env_py.write_text(text.replace("from models import metadata as target_metadata",
                                   "target_metadata = None"))  # fmt: skip
    result = _pytest(project, "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    assert "::migrasafe::roundtrip PASSED" in result.stdout
    assert "::migrasafe::model_match SKIPPED" in result.stdout


def test_roundtrip_whose_data_was_not_checked_is_a_skip_not_a_pass(tmp_path: Path) -> None:
    """Rows refused by a CHECK verify cannot read: the schema came back, the data is unproven."""
    make_project(tmp_path / "p", "generic", "verify_unchecked")
    result = _pytest(tmp_path / "p", "migrasafe_config = alembic.ini")
    assert result.returncode == 0, result.stdout
    assert "::migrasafe::roundtrip SKIPPED" in result.stdout
    assert "data not checked: 0002 (orders)" in result.stdout


def test_the_migration_tests_run_from_a_subdirectory_too(tmp_path: Path) -> None:
    """`cd tests && pytest --migrasafe` in an `alembic init` project, whose alembic.ini names
    its script location relative to the project's root and still holds alembic init's
    placeholder URL (driver://user:pass@localhost/dbname): a temporary SQLite database."""
    project = tmp_path / "p"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "alembic", "init", "migrations"], cwd=project,
                   check=True, capture_output=True)  # fmt: skip
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("script_location = %(here)s/migrations",
                                           "script_location = migrations"))  # fmt: skip
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "tests").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--migrasafe"],
        cwd=project / "tests", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "::migrasafe::single_head PASSED" in result.stdout, result.stdout
    assert "::migrasafe::upgrade SKIPPED" in result.stdout  # no revision yet: nothing checked
