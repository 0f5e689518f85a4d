"""Bad input: one clear line on stderr, exit 2, no traceback, nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import query, run_cli, tables


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("migrasafe: error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("-c", str(tmp_path / "nope.ini"), "status")
    assert result.exit_code == 2
    assert "nope.ini not found" in _one_error_line(result.stderr)


def test_config_with_unescaped_percent(tmp_path: Path, library: Path) -> None:
    library.write_text(
        library.read_text().replace("[alembic]", "[alembic]\nversion_num_format = %04d")
    )
    result = run_cli("-c", str(library), "status")
    assert result.exit_code == 2
    assert "cannot read" in _one_error_line(result.stderr)


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_unknown_revision_changes_nothing(library: Path, db_url: str, command: str) -> None:
    run_cli("-c", str(library), "--url", db_url, "upgrade", "0001")
    result = run_cli("-c", str(library), "--url", db_url, command, "nosuchrev")
    assert result.exit_code == 2
    assert "nosuchrev" in _one_error_line(result.stderr)
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    assert tables(db_url) == {"alembic_version", "migrasafe_checksums", "books"}


def test_unreachable_database_never_shows_the_password(library: Path) -> None:
    url = "postgresql+psycopg://admin:hunter2@127.0.0.1:1/app"
    result = run_cli("-c", str(library), "--url", url, "upgrade")
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert "cannot connect" in line and "admin:***@127.0.0.1:1/app" in line
    assert "hunter2" not in result.stderr + result.stdout


def test_malformed_url(library: Path) -> None:
    result = run_cli("-c", str(library), "--url", "not a url:pw@", "status")
    assert result.exit_code == 2
    assert "malformed database URL" in _one_error_line(result.stderr)


def test_missing_driver_says_what_to_install(library: Path) -> None:
    result = run_cli("-c", str(library), "--url", "postgresql+nosuchdriver://x/y", "status")
    assert result.exit_code == 2
    assert "no driver" in _one_error_line(result.stderr)


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("init", str(tmp_path))
    assert result.exit_code == 2
    assert "not an empty directory" in _one_error_line(result.stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli("--debug", "-c", str(tmp_path / "nope.ini"), "status")
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_failing_migration_names_the_revision(library: Path, db_url: str) -> None:
    versions = library.parent / "migrations" / "versions"
    path = versions / "0002_add_book_fields_and_reviews.py"
    anchor = '    op.create_index(op.f("ix_reviews_book_id")'
    failing = '    op.execute("SELECT * FROM no_such_table")\n'
    path.write_text(path.read_text().replace(anchor, failing + anchor))
    result = run_cli("-c", str(library), "--url", db_url, "upgrade")
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert "upgrade failed at revision 0002" in line and "no_such_table" in line
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0001",)]


def test_the_package_exports_the_command_functions() -> None:
    """`from migrasafe import history` is the function, not the module of the same name."""
    from migrasafe import history, status, validate

    assert callable(history) and callable(status) and callable(validate)


@pytest.mark.parametrize(("url", "hint"), [
    ("mysql+mysqldb://u:secret@127.0.0.1/x",
     "install the mysqldb driver the URL names, or pip install 'migrasafe[mysql]' for "
     "mysql+pymysql://"),
    ("mysql://u:secret@127.0.0.1/x",
     "pip install 'migrasafe[mysql]', and name its driver in the URL: mysql+pymysql://"),
    ("postgresql+pg8000://u:secret@127.0.0.1/x",
     "or pip install 'migrasafe[postgres]' for postgresql+psycopg://"),
])  # fmt: skip
def test_a_missing_driver_is_named_with_what_to_install_for_that_database(
    library: Path, url: str, hint: str
) -> None:
    result = run_cli("-c", str(library), "--url", url, "status")
    assert result.exit_code == 2
    assert hint in result.stderr and "secret" not in result.stderr
