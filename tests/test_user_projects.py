"""migrasafe on projects written the way users write them, not by migrasafe.

Each project under ``tests/envs/`` has an ``env.py`` of one common style:
Alembic's own templates (``generic``, ``async``, ``pyproject``, ``multidb``),
Flask-Migrate's, and ``env.py`` files that set ``version_table``, take an
Engine or a Connection from ``config.attributes``, read ``$DATABASE_URL``, or
hard-code their URL. The commands run from the project's directory with no
``-c``, as a user runs them, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from click.testing import Result

from conftest import make_user_project, query, run_cli, table_names

REVISIONS = ("1a2b3c4d5e6f", "2b3c4d5e6f7a", "3c4d5e6f7a8b")
HEAD = REVISIONS[-1]
STYLES = (
    "generic",
    "async",
    "pyproject",
    "version_table",
    "engine_attribute",
    "connection_attribute",
    "database_url",
    "hardcoded",
    "flask",
)
# Where the project's URL lives: in its files, or in $DATABASE_URL.
FROM_ENVIRONMENT = {"database_url", "flask"}


@pytest.fixture
def in_project(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> Callable[[str], Path]:
    """Make a project of a style, point its URL at the test database, and cd into it."""

    def make(style: str) -> Path:
        directory = make_user_project(style, tmp_path / style, db_url)
        monkeypatch.chdir(directory)
        monkeypatch.delenv("ALEMBIC_CONFIG", raising=False)
        monkeypatch.delenv("FLASK_APP", raising=False)
        monkeypatch.delenv("MIGRASAFE_URL", raising=False)
        if style in FROM_ENVIRONMENT:
            monkeypatch.setenv("DATABASE_URL", db_url)
        # The project's own modules (models, app) are imported fresh per project.
        for name in ("models", "app"):
            monkeypatch.delitem(sys.modules, name, raising=False)
        return directory

    return make


def cli_json(*args: str) -> tuple[Result, dict[str, object]]:
    result = run_cli(*args, "--json")
    return result, json.loads(result.stdout) if result.stdout.strip() else {}


def _steps(data: dict[str, object]) -> list[str]:
    steps = data["steps"]
    assert isinstance(steps, list)
    return [s["revision"] for s in steps]


@pytest.mark.parametrize("style", STYLES)
def test_every_command_works_on_a_users_project(
    style: str, in_project: Callable[[str], Path], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = None
    if style == "version_table" and db_url.startswith("postgresql"):
        schema = "meta"  # the version table in a schema of its own, as env.py says
        query(db_url, "CREATE SCHEMA meta")
        monkeypatch.setenv("APP_VERSION_SCHEMA", schema)
    project = in_project(style)
    version_table = "app_version" if style == "version_table" else "alembic_version"

    result, data = cli_json("status")
    assert result.exit_code == 1, result.stderr
    assert data["current"] == [] and data["pending"] == list(REVISIONS)
    assert data["version_table"] == (f"{schema}.{version_table}" if schema else version_table)

    result = run_cli("history")
    assert result.exit_code == 0, result.stderr
    assert [line.split(" ")[2].rstrip(",") for line in result.stdout.splitlines()] == list(
        REVISIONS
    )

    result, data = cli_json("upgrade")
    assert result.exit_code == 0, result.stderr
    assert _steps(data) == list(REVISIONS) and data["after"] == [HEAD]
    assert {"authors", "books"} <= table_names(db_url)
    assert version_table in table_names(db_url, schema)
    assert query(
        db_url, f"SELECT version_num FROM {schema + '.' if schema else ''}{version_table}"
    ) == [(HEAD,)]

    result, data = cli_json("status")
    assert result.exit_code == 0, result.stderr
    assert data["current"] == [HEAD] and data["up_to_date"] is True

    # An applied script edited afterwards is reported, then accepted.
    edited = next((project / "migrations" / "versions").glob("2b3c*.py"))
    edited.write_text(edited.read_text() + "\n# reviewed\n")
    result, data = cli_json("status")
    assert result.exit_code == 1 and [m["revision"] for m in data["modified"]] == [REVISIONS[1]]
    result, data = cli_json("accept")
    assert result.exit_code == 0 and data["accepted"] == [REVISIONS[1]], result.stderr
    assert run_cli("status").exit_code == 0

    result, data = cli_json("downgrade", "base")
    assert result.exit_code == 0, result.stderr
    assert _steps(data) == list(reversed(REVISIONS)) and data["after"] == []
    assert not {"authors", "books"} & table_names(db_url)

    result, data = cli_json("upgrade", "head")
    assert result.exit_code == 0 and data["after"] == [HEAD], result.stderr
    query(db_url, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    tables_before = table_names(db_url)

    result, data = cli_json("verify")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert data["checked"] == 3 and data["revisions"] == 3
    scratch = str(data["database"])
    assert scratch.split("://")[0] == db_url.split("://")[0].replace("+asyncpg", "+psycopg")
    # the project's own database is untouched
    assert table_names(db_url) == tables_before
    assert query(db_url, "SELECT id, name FROM authors") == [(1, "Ann")]

    result, data = cli_json("lint")
    assert result.exit_code in (0, 1), result.stderr
    assert data["revisions"] == 3 and data["dialect"] == sa.make_url(db_url).get_backend_name()


ALEMBIC_STYLES = [s for s in STYLES if s != "flask"]


@pytest.mark.parametrize("style", ["generic", "async", "version_table", "database_url"])
def test_alembic_check_passes_after_migrasafe_upgrade(
    style: str, in_project: Callable[[str], Path], db_url: str
) -> None:
    """migrasafe's checksum table is invisible to autogenerate, env.py unchanged."""
    project = in_project(style)
    assert run_cli("upgrade").exit_code == 0
    assert "migrasafe_checksums" in table_names(db_url)
    if style == "database_url":  # a table its include_object leaves out
        query(db_url, "CREATE TABLE report_daily (id integer primary key)")
    check = subprocess.run(
        [sys.executable, "-m", "alembic", "check"], cwd=project, capture_output=True, text=True,
        env={**os.environ}, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    # migrasafe's own revision command: an empty migration, an id like Alembic's
    result, data = cli_json("revision", "-m", "nothing new", "--autogenerate")
    assert result.exit_code == 0, result.stderr
    assert len(str(data["revision"])) == 12 and data["down_revision"] == [HEAD]
    written = Path(str(data["path"])).read_text()
    assert "drop_table" not in written and "pass" in written


def test_flask_db_check_passes_after_migrasafe_upgrade(
    in_project: Callable[[str], Path], db_url: str
) -> None:
    project = in_project("flask")
    assert run_cli("upgrade").exit_code == 0
    check = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "check"], cwd=project,
        capture_output=True, text=True, env={**os.environ}, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


# A sitecustomize that makes every import of psycopg fail, as in a venv without it.
HIDE_PSYCOPG = """
import sys


class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_binary", "psycopg_c", "psycopg2"):
            raise ImportError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
"""


def test_an_async_project_with_asyncpg_alone_upgrades_and_verifies_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """No psycopg: migrasafe's own sessions (lock, scratch, verify, checksums) use asyncpg."""
    directory = make_user_project("async", tmp_path / "a", pg_url)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_PSYCOPG)
    env = {**os.environ, "PYTHONPATH": str(hide)}
    env.pop("MIGRASAFE_URL", None)

    def migrasafe(*args: str) -> tuple[int, dict[str, object], str]:
        ran = subprocess.run(
            [sys.executable, "-m", "migrasafe", *args, "--json"], cwd=directory, env=env,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        return ran.returncode, json.loads(ran.stdout) if ran.stdout.strip() else {}, ran.stderr

    hidden = subprocess.run([sys.executable, "-c", "import psycopg"], env=env, capture_output=True)
    assert hidden.returncode != 0
    code, data, err = migrasafe("upgrade", "--db-lock-timeout", "5s")
    assert code == 0, err
    assert _steps(data) == list(REVISIONS)
    assert query(pg_url, "SELECT revision FROM migrasafe_checksums ORDER BY revision") == [
        (r,) for r in REVISIONS
    ]
    code, data, err = migrasafe("status")
    assert code == 0 and data["up_to_date"] is True, err
    code, data, err = migrasafe("verify")
    assert code == 0, err
    assert data["checked"] == 3 and "migrasafe_scratch_" in str(data["database"])
    code, data, err = migrasafe("downgrade", "base")
    assert code == 0 and data["after"] == [], err
    assert "No module named" not in err


def test_verify_never_connects_to_the_database_env_py_hard_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    """No connection reaches the hard-coded database: not one session is opened there."""
    directory = make_user_project("hardcoded", tmp_path / "hc", pg_url)
    monkeypatch.chdir(directory)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    url = sa.make_url(pg_url)
    seen: set[int] = set()
    # A plain psycopg session (not SQLAlchemy's, which verify redirects) on the
    # maintenance database, watching every session of the hard-coded one.
    watcher_conn = psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    )
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            rows = watcher_conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (url.database,)
            ).fetchall()
            seen.update(r[0] for r in rows)
            done.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_cli("verify", "--json")
    finally:
        done.set()
        watcher.join()
        watcher_conn.close()
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["checked"] == 3
    assert not seen, f"verify opened sessions on the hard-coded database: {seen}"
    assert table_names(pg_url) == set()


def test_verify_of_a_sqlite_project_with_a_hard_coded_file_leaves_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "never.db"
    directory = make_user_project("hardcoded", tmp_path / "hc", f"sqlite:///{database}")
    monkeypatch.chdir(directory)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    result = run_cli("verify", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert not database.exists()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_global_url_verifies_on_that_server_and_leaves_the_database_unchanged(
    how: str, library: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query(pg_url, "CREATE TABLE keep (id integer primary key)")
    if how == "option":
        result = run_cli("-c", str(library), "--url", pg_url, "verify", "--json")
    else:
        monkeypatch.setenv("MIGRASAFE_URL", pg_url)
        result = run_cli("-c", str(library), "verify", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["database"].startswith("postgresql") and "migrasafe_scratch_" in data["database"]
    assert data["checked"] == 3
    assert table_names(pg_url) == {"keep"}


def test_multidb_env_py_is_refused_with_a_clear_message_and_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    directory = make_user_project("multidb", tmp_path / "m", f"sqlite:///{one}")
    ini = directory / "alembic.ini"
    ini.write_text(ini.read_text().replace("@@URL2@@", f"sqlite:///{two}"))
    monkeypatch.chdir(directory)
    for command in (("status",), ("upgrade",)):
        result = run_cli(*command)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert "more than one database" in result.stderr and "Traceback" not in result.stderr
    for database in (one, two):
        assert not database.exists() or "notes" not in table_names(f"sqlite:///{database}")


def test_an_async_env_py_on_a_sync_url_is_a_setup_error_not_a_failed_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_user_project("async", tmp_path / "a", f"sqlite:///{tmp_path / 'x.db'}")
    ini = directory / "alembic.ini"
    ini.write_text(ini.read_text().replace("sqlite+aiosqlite:", "sqlite:"))
    monkeypatch.chdir(directory)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    for command in (("upgrade",), ("verify",)):
        result = run_cli(*command)
        assert result.exit_code == 2, result.stdout + result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and "env.py" in line and "before any revision ran" in line
        assert "async driver" in line


@pytest.mark.parametrize(
    ("where", "flask_app"),
    [("environment", "myapp"), ("environment", "myapp:create_app"),
     ("environment", "myapp:create_app()"), (".flaskenv", "myapp:create_app")],
)  # fmt: skip
def test_flask_app_names_the_application_as_flask_db_reads_it(
    where: str, flask_app: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    """$FLASK_APP in each form Flask accepts, or in .flaskenv, with no app.py to fall back on."""
    directory = make_user_project("flask", tmp_path / "f", db_url)
    (directory / "app.py").rename(directory / "myapp.py")
    monkeypatch.chdir(directory)
    for name, value in (("FLASK_APP", flask_app), ("DATABASE_URL", db_url)):
        monkeypatch.setenv(name, value)  # undone after the test, whoever set it
        if where == ".flaskenv":
            monkeypatch.delenv(name)
    if where == ".flaskenv":
        (directory / ".flaskenv").write_text(f"FLASK_APP={flask_app}\nDATABASE_URL={db_url}\n")
    for module in ("app", "myapp"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    result, data = cli_json("upgrade")
    assert result.exit_code == 0, result.stderr
    assert data["after"] == [HEAD]
    assert query(db_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    result, data = cli_json("status")
    assert result.exit_code == 0 and data["up_to_date"] is True, result.stderr
    # and `flask db` reads the same application from the same place
    current = subprocess.run(
        [sys.executable, "-m", "flask", "db", "current"], cwd=directory, capture_output=True,
        text=True, env={**os.environ}, timeout=120,
    )  # fmt: skip
    assert current.returncode == 0 and HEAD in current.stdout, current.stderr


def test_a_missing_driver_for_a_url_env_py_hard_codes_is_named_for_that_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No URL in the config to read: the driver's own error says which database it was."""
    directory = make_user_project("hardcoded", tmp_path / "hc", "mysql+mysqldb://app@127.0.0.1/app")
    monkeypatch.chdir(directory)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    monkeypatch.delitem(sys.modules, "MySQLdb", raising=False)
    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # not installed, wherever it is
    result = run_cli("status")
    assert result.exit_code == 2
    assert "no driver" in result.stderr and "migrasafe[mysql]" in result.stderr
    assert "postgres" not in result.stderr


def test_a_flask_project_without_its_application_says_how_to_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_user_project("flask", tmp_path / "f", "sqlite://")
    (directory / "app.py").rename(directory / "service.py")
    monkeypatch.chdir(directory)
    monkeypatch.delenv("FLASK_APP", raising=False)
    monkeypatch.delitem(sys.modules, "app", raising=False)
    result = run_cli("status")
    assert result.exit_code == 2
    assert "Flask" in result.stderr and "--app" in result.stderr
    assert "Traceback" not in result.stderr


def test_x_arguments_and_the_ini_section_reach_env_py(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-x tenant=... picks the database in env.py; -n picks the ini section."""
    directory = make_user_project("generic", tmp_path / "g", "sqlite:///unused.db")
    env_py = directory / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "    connectable = engine_from_config(",
        "    tenant = context.get_x_argument(as_dictionary=True).get('tenant')\n"
        "    if tenant:\n"
        "        config.set_main_option('sqlalchemy.url', f'sqlite:///{tenant}.db')\n"
        "    connectable = engine_from_config(",
    ))  # fmt: skip
    ini = directory / "alembic.ini"
    staging = (
        "\n[staging]\nscript_location = %(here)s/migrations\nprepend_sys_path = .\n"
        "path_separator = os\nsqlalchemy.url = sqlite:///staging.db\n"
    )
    ini.write_text(ini.read_text() + staging)
    monkeypatch.chdir(directory)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    assert run_cli("-x", "tenant=acme", "upgrade").exit_code == 0
    assert "authors" in table_names("sqlite:///acme.db")
    assert run_cli("-n", "staging", "upgrade", REVISIONS[0]).exit_code == 0
    assert query("sqlite:///staging.db", "SELECT version_num FROM alembic_version") == [
        (REVISIONS[0],)
    ]
    assert not (directory / "unused.db").exists()


def test_alembic_config_environment_variable_and_pyproject_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_user_project("pyproject", tmp_path / "p", f"sqlite:///{tmp_path / 'p.db'}")
    monkeypatch.chdir(tmp_path)  # not the project: $ALEMBIC_CONFIG names it
    monkeypatch.setenv("ALEMBIC_CONFIG", str(directory / "pyproject.toml"))
    monkeypatch.delitem(sys.modules, "models", raising=False)
    monkeypatch.syspath_prepend(str(directory))
    result = run_cli("-c", str(directory / "alembic.ini"), "history")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_a_pyproject_only_project_without_a_url_says_where_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[tool.alembic] and no alembic.ini: no sqlalchemy.url anywhere (env.py's KeyError 'url')."""
    directory = make_user_project("pyproject", tmp_path / "p", "unused")
    (directory / "alembic.ini").unlink()
    monkeypatch.chdir(directory)
    monkeypatch.delenv("ALEMBIC_CONFIG", raising=False)
    monkeypatch.delenv("MIGRASAFE_URL", raising=False)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    for command in ("status", "upgrade"):
        result = run_cli(command)
        assert result.exit_code == 2, result.stderr
        line = result.stderr.strip()
        assert "\n" not in line and "KeyError" not in line
        assert "no database URL" in line and "sqlalchemy.url" in line and "alembic.ini" in line
        assert "--url" in line
    # verify does without one, as on every layout: a temporary SQLite database
    result, data = cli_json("verify")
    assert result.exit_code == 0, result.stderr
    assert data["checked"] == 3 and str(data["database"]).startswith("sqlite")
    # and --url is enough for the rest
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert run_cli("--url", url, "upgrade").exit_code == 0
    assert query(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_a_failed_downgrade_reports_what_it_reverted_before_failing(
    in_project: Callable[[str], Path], db_url: str
) -> None:
    project = in_project("connection_attribute")
    first = next((project / "migrations" / "versions").glob("1a2b*.py"))
    first.write_text(first.read_text().replace(
        '    op.drop_table("authors")', "    raise RuntimeError('cannot drop authors yet')"
    ))  # fmt: skip
    upgraded = run_cli("upgrade")
    assert upgraded.exit_code == 0, upgraded.stderr
    result, data = cli_json("downgrade", "base")
    assert result.exit_code == 2
    assert data["failed"] == REVISIONS[0] and "cannot drop authors yet" in str(data["error"])
    current = [r[0] for r in query(db_url, "SELECT version_num FROM alembic_version")]
    # what is reported as reverted is what the database no longer has
    reverted = _steps(data)
    assert reverted == ([REVISIONS[2], REVISIONS[1]] if current == [REVISIONS[0]] else [])
    assert data["after"] == current
    text = run_cli("downgrade", "base")
    assert f"failed at revision {REVISIONS[0]}" in text.stderr


def test_upgrade_sql_prints_what_rendered_before_a_failing_revision(
    in_project: Callable[[str], Path],
) -> None:
    project = in_project("generic")
    third = next((project / "migrations" / "versions").glob("3c4d*.py"))
    needs_a_database = "    op.get_bind().execute(sa.text('SELECT 1')).scalar()\n"
    third.write_text(
        third.read_text().replace(
            '    op.execute("UPDATE', needs_a_database + '    op.execute("UPDATE'
        )
    )
    result = run_cli("upgrade", "--sql")
    assert result.exit_code == 2
    assert "CREATE TABLE authors" in result.stdout and "CREATE TABLE books" in result.stdout
    assert f"revision {REVISIONS[2]}" in result.stderr
