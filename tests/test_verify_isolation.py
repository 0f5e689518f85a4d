"""verify never reaches a database it did not create, however env.py and revisions connect.

Each case makes a project of one env.py style pointing at a real database at the
shared revisions' head with rows, checksums that database (SQLite: its bytes;
servers: information_schema and every table's rows), runs verify, and checks the
checksum again: byte-identical, and verify either ran on its scratch database or
refused with one line. The styles: tests/envs/* and three of these tests' own:
``creator`` (the cloud-connector pattern, ``create_engine(..., creator=lambda:
driver.connect(REAL))``), ``side_engine`` (a revision opening an engine from
``op.get_bind().engine.url``) and ``side_driver`` (a revision calling the driver
on ``$DATABASE_URL``). Every style on SQLite; on PostgreSQL and MariaDB the styles
that differ in how they connect (hard-coded, $DATABASE_URL, Flask's app engine,
async on PostgreSQL, and the three above).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
from pathlib import Path

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from migrasafe import MigrasafeError, load_project, verify
from migrasafe.db.scratch import ScratchOnly
from migrasafe.errors import DatabaseError

from conftest import make_user_project, query, run_cli

SHARED_HEAD = "3c4d5e6f7a8b"
# They connect past the URL: refused, one line (also when the revision catches the refusal).
REFUSED = {"creator", "side_driver", "side_caught"}
STYLES = {
    "sqlite": ("generic", "async", "pyproject", "version_table", "engine_attribute",
               "connection_attribute", "database_url", "hardcoded", "flask", "creator",
               "creator_config", "side_engine", "side_driver", "side_caught"),
    "postgresql": ("hardcoded", "database_url", "flask", "async", "creator", "creator_config",
                   "side_engine", "side_driver"),
    "mariadb": ("hardcoded", "database_url", "creator", "creator_config", "side_engine",
                "side_driver"),
}  # fmt: skip
FROM_ENVIRONMENT = {"database_url", "flask", "side_driver", "side_caught"}

_SIDE_REVISION = '''"""a data migration with a connection of its own"""
import os

import sqlalchemy as sa
from alembic import op

revision = "4d5e6f7a8b9c"
down_revision = "3c4d5e6f7a8b"
branch_labels = None
depends_on = None


def upgrade():
    @@SIDE@@


def downgrade():
    op.execute("DELETE FROM authors WHERE id = 9001")
    op.execute("DROP TABLE IF EXISTS side_effect")
'''

# A side engine from the migration's own URL: verify redirects it to the scratch database.
# It makes a table of its own (the migration's tables are locked by its transaction; on
# SQLite the whole file is: there it gives up at once).
_SIDE_ENGINE = """url = op.get_bind().engine.url
    wait = {"connect_args": {"timeout": 0}} if url.get_backend_name() == "sqlite" else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, **wait)
    with engine.begin() as side:
        side.execute(sa.text("CREATE TABLE side_effect (id integer)"))
        side.execute(sa.text("INSERT INTO side_effect (id) VALUES (9001)"))
    engine.dispose()"""

# The driver itself, on the real database's URL: past anything SQLAlchemy can redirect.
_SIDE_DRIVER = """url = sa.make_url(os.environ["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        import sqlite3
        connection = sqlite3.connect(url.database)
    elif url.get_backend_name() == "postgresql":
        import psycopg
        connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
    else:
        import pymysql
        connection = pymysql.connect(host=url.host, port=url.port, user=url.username,
                                     database=url.database)
    cursor = connection.cursor()
    cursor.execute("INSERT INTO authors (id, name) VALUES (9001, 'side')")
    connection.commit()
    connection.close()"""


# A creator that connects where sqlalchemy.url says, as the README advises: verify runs.
_CREATOR_FROM_CONFIG = """

def _connect():
    import sqlalchemy as sa
    url = sa.make_url(config.get_main_option("sqlalchemy.url"))
    if url.get_backend_name() == "sqlite":
        import sqlite3
        return sqlite3.connect(url.database)
    if url.get_backend_name() == "postgresql":
        import psycopg
        return psycopg.connect(url.set(drivername="postgresql").render_as_string(False))
    import pymysql
    return pymysql.connect(host=url.host, port=url.port, user=url.username,
                           database=url.database)


def run_migrations_online"""


def _creator(url: sa.URL) -> tuple[str, str]:
    """The URL without a database, and a creator connecting to ``url`` with the driver."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return "sqlite://", f"__import__('sqlite3').connect({url.database!r})"
    if backend == "postgresql":
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return "postgresql+psycopg://", f"__import__('psycopg').connect({libpq!r})"
    return "mysql+pymysql://", (
        f"__import__('pymysql').connect(host={url.host!r}, port={url.port!r}, "
        f"user={url.username!r}, database={url.database!r})"
    )


def _make(style: str, directory: Path, url: str) -> Path:
    base = {"creator_config": "generic", "creator": "hardcoded", "side_engine": "hardcoded",
            "side_driver": "hardcoded", "side_caught": "hardcoded"}.get(style, style)  # fmt: skip
    project = make_user_project(base, directory, url)
    env_py = project / "migrations" / "env.py"
    if style == "creator_config":
        text = env_py.read_text()
        pooled = "poolclass=pool.NullPool,\n    )"
        assert pooled in text
        text = text.replace(pooled, "poolclass=pool.NullPool,\n        creator=_connect,\n    )")
        env_py.write_text(text.replace("\n\ndef run_migrations_online", _CREATOR_FROM_CONFIG, 1))
    if style == "creator":
        bare, creator = _creator(sa.make_url(url))
        text = env_py.read_text()
        assert "create_engine(DATABASE)" in text
        env_py.write_text(
            text.replace(
                "create_engine(DATABASE)", f"create_engine({bare!r}, creator=lambda: {creator})"
            )
        )
    elif style.startswith("side_"):
        side = _SIDE_ENGINE if style == "side_engine" else _SIDE_DRIVER
        if style == "side_caught":  # "best effort": a failure to connect is ignored
            side = (
                "try:\n        "
                + side.replace("\n", "\n    ")
                + "\n    except Exception:\n        pass"
            )
        (project / "migrations" / "versions" / "4d5e6f7a8b9c_side.py").write_text(
            _SIDE_REVISION.replace("@@SIDE@@", side)
        )
    return project


_SCHEMA_VIEWS = (
    ("tables", "table_name, table_type"),
    ("columns", "table_name, column_name, ordinal_position, column_default, is_nullable, "
                "data_type, character_maximum_length"),
    ("table_constraints", "table_name, constraint_name, constraint_type"),
    ("key_column_usage", "table_name, constraint_name, column_name, ordinal_position"),
)  # fmt: skip


def checksum(url: str) -> str:
    """SQLite: the file's bytes; a server: its information_schema and every table's rows."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        extra = sorted(p.name for p in path.parent.iterdir() if p.name != path.name)
        return hashlib.sha256(path.read_bytes() + repr(extra).encode()).hexdigest()
    schema = "table_schema = current_schema()" if parsed.get_backend_name() == "postgresql" \
        else "table_schema = DATABASE()"  # fmt: skip
    parts: list[object] = []
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            for view, columns in _SCHEMA_VIEWS:  # what does not move by itself (not sizes)
                rows = conn.execute(sa.text(f"SELECT {columns} FROM information_schema.{view} "
                                            f"WHERE {schema}")).all()  # fmt: skip
                parts.append(sorted(repr(tuple(r)) for r in rows))
            inspector = sa.inspect(conn)
            for name in sorted(inspector.get_table_names()):
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                rows = sorted(repr(tuple(r)) for r in conn.execute(table.select()))
                parts.append((name, repr(inspector.get_indexes(name)), rows))
    finally:
        engine.dispose()
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _cases() -> list[tuple[str, str]]:
    return [(database, style) for database, styles in STYLES.items() for style in styles]


@pytest.mark.parametrize(("database", "style"), _cases())
def test_verify_leaves_the_real_database_byte_identical(
    database: str, style: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    if database == "sqlite":
        (tmp_path / "real").mkdir()
        url = f"sqlite:///{tmp_path / 'real' / 'app.db'}"
    else:
        url = str(request.getfixturevalue("pg_url" if database == "postgresql" else "mariadb_url"))
    project = _make(style, tmp_path / style, url)
    monkeypatch.chdir(project)
    for key in ("ALEMBIC_CONFIG", "FLASK_APP", "MIGRASAFE_URL", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    if style in FROM_ENVIRONMENT:
        monkeypatch.setenv("DATABASE_URL", url)
    for name in ("models", "app"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    upgraded = run_cli("upgrade", SHARED_HEAD)
    assert upgraded.exit_code == 0, upgraded.stdout + upgraded.stderr
    query(url, "INSERT INTO authors (id, name, country) VALUES (1, 'Ann', 'NO'), (2, 'Bo', NULL)")
    before = checksum(url)

    result = run_cli("verify", "--json")

    assert checksum(url) == before, f"verify changed the real database: {result.stdout}"
    if style in REFUSED:
        lines = [line for line in result.stderr.splitlines() if line.startswith("migrasafe: ")]
        assert result.exit_code == 2 and len(lines) == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "verify refused a" in lines[0] and "scratch database" in lines[0], lines[0]
    else:
        data = json.loads(result.stdout)
        assert "migrasafe_scratch_" in data["database"] or "migrasafe-scratch-" in data["database"]
        if style == "side_engine":  # it ran there (on SQLite, found locked by the migration)
            assert result.exit_code in (0, 1), result.stdout + result.stderr
            assert data["checked"] >= 3
        else:
            assert result.exit_code == 0, result.stdout + result.stderr
            assert data["checked"] == (4 if style == "side_engine" else 3)


@pytest.mark.parametrize("database", ["postgresql", "mariadb"])
def test_a_database_named_in_the_query_string_is_not_migrated_by_verify(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """``?dbname=`` / ``?database=`` wins over the URL's path: the scratch database's URL
    (and the admin session's) must not keep it."""
    url = sa.make_url(
        str(request.getfixturevalue("pg_url" if database == "postgresql" else "mariadb_url"))
    )
    key = "dbname" if database == "postgresql" else "database"
    in_query = url.set(database=None).update_query_dict({key: url.database})
    project = make_user_project("generic", tmp_path / "p", in_query.render_as_string(False))
    monkeypatch.chdir(project)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    plain = url.render_as_string(hide_password=False)
    assert run_cli("upgrade", SHARED_HEAD).exit_code == 0
    query(plain, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    before = checksum(plain)

    result = run_cli("verify", "--json")

    assert checksum(plain) == before
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["checked"] == 3


def test_the_mariadb_admin_session_never_opens_the_projects_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mariadb_url: str
) -> None:
    """An option file naming the database ([client] database=) is what PyMySQL uses when
    the URL names none: the session that creates the scratch database must not be there."""
    url = sa.make_url(mariadb_url)
    option_file = tmp_path / "my.cnf"
    option_file.write_text(f"[client]\ndatabase={url.database}\n")
    with_file = url.update_query_dict({"read_default_file": str(option_file)})
    ini_url = with_file.render_as_string(False).replace("%", "%%")
    project = make_user_project("generic", tmp_path / "p", ini_url)
    monkeypatch.chdir(project)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    watcher = pymysql.connect(host=url.host, port=url.port, user=url.username)
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        with watcher.cursor() as cursor:
            while not done.is_set():
                cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
                               "AND ID <> CONNECTION_ID()", (url.database,))  # fmt: skip
                seen.update(row[0] for row in cursor.fetchall())
                done.wait(0.002)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        result = run_cli("verify", "--json")
    finally:
        done.set()
        thread.join()
        watcher.close()
    assert result.exit_code == 0, result.stdout + result.stderr
    assert not seen, f"verify opened sessions on {url.database}: {seen}"


# Bound before verify starts, as an application's engine is: past any wrapped `connect`.
_SQLITE_CONNECT = sqlite3.connect
_PSYCOPG_CONNECT = psycopg.Connection.connect


def test_an_engine_made_before_verify_with_a_creator_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    """A Flask-style engine handed to env.py, made before verify with its own creator: the
    connection it makes is asked which database it is on, and refused."""
    project_dir = make_user_project("engine_attribute", tmp_path / "p", db_url)
    monkeypatch.chdir(project_dir)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    assert run_cli("upgrade", SHARED_HEAD).exit_code == 0
    query(db_url, "INSERT INTO authors (id, name) VALUES (1, 'Ann')")
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine("sqlite://", creator=lambda: _SQLITE_CONNECT(url.database))
    else:
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        engine = sa.create_engine("postgresql+psycopg://", creator=lambda: _PSYCOPG_CONNECT(libpq))
    with engine.connect():  # the application has used it already
        pass
    before = checksum(db_url)
    project = load_project(project_dir / "alembic.ini")
    project.config.attributes["connection"] = engine
    try:
        with pytest.raises(MigrasafeError, match="verify refused a"):
            verify(project, url=db_url)
    finally:
        engine.dispose()
    assert checksum(db_url) == before


def test_a_driver_imported_while_verify_runs_is_guarded_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drivers are wrapped as they are imported (a revision importing one in upgrade())."""
    (tmp_path / "pg8000").mkdir()
    (tmp_path / "pg8000" / "__init__.py").write_text(
        "def connect(user=None, host=None, database=None, **kw):\n    return database\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "pg8000", raising=False)
    only = ScratchOnly(sa.make_url("postgresql://u@h/migrasafe_scratch_0123456789ab"))
    refused_afterwards = pytest.raises(DatabaseError, match="verify refused a pg8000 connection")
    with refused_afterwards, only.enforced():
        import pg8000

        assert pg8000.connect("u", "h", "migrasafe_scratch_0123456789ab") == (
            "migrasafe_scratch_0123456789ab"
        )
        with pytest.raises(DatabaseError, match="the database 'app'"):
            pg8000.connect(database="app")
    assert pg8000.connect(database="app") == "app"  # as it was, afterwards
