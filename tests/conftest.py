"""Fixtures: example projects, the real CLI, and databases (SQLite and a real PostgreSQL).

PostgreSQL: with MIGRASAFE_TEST_PG_URL set (an admin URL such as
postgresql+psycopg://postgres@127.0.0.1:5432/postgres) the tests use that
server; otherwise they start their own with initdb/pg_ctl in a temporary
directory on a free loopback port (as the ``postgres`` OS user when run as
root). With CI=true a server that cannot start fails the run instead of
skipping the PostgreSQL tests. Every test gets a database of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from migrasafe.cli import main

sys.path.insert(0, str(Path(__file__).parent / "projects"))
from make import make_project as _make_scenario  # tests/projects/make.py

PROJECTS = Path(__file__).parent / "projects"
# Projects written the way users write them (see tests/test_user_projects.py).
ENVS = Path(__file__).parent / "envs"
SHARED = ENVS / "_shared"


@pytest.fixture(autouse=True)
def _revision_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parsed-revision cache goes to the test run's temp dir, not the user's home."""
    monkeypatch.setenv("MIGRASAFE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def _pg_bin() -> Path:
    """Where initdb and pg_ctl are: $MIGRASAFE_PG_BIN, Debian's newest, or the PATH."""
    if os.environ.get("MIGRASAFE_PG_BIN"):
        return Path(os.environ["MIGRASAFE_PG_BIN"])
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()


# -- the command line --------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the real `migrasafe` entry point in-process; stdout and stderr apart."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


# -- example projects --------------------------------------------------------


def make_project(directory: Path, template: str = "library", scenario: str | None = None) -> Path:
    """A fresh project in ``directory`` with a scenario's revision files (tests/projects/make.py).

    On the generic template the scenario's files are the whole history; on the
    library template each replaces the revision with the same number.
    """
    return _make_scenario(directory, template, scenario)


def _async(url: str) -> str:
    parsed = sa.make_url(url)
    driver = "aiosqlite" if parsed.get_backend_name() == "sqlite" else "asyncpg"
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}").render_as_string(
        hide_password=False
    )


def make_user_project(style: str, directory: Path, url: str) -> Path:
    """Copy ``tests/envs/<style>`` with the shared revisions and models; returns its directory."""
    shutil.copytree(ENVS / style, directory)
    if style != "multidb":
        shutil.copytree(SHARED / "versions", directory / "migrations" / "versions")
    if style not in ("flask", "multidb"):
        shutil.copy(SHARED / "models.py", directory / "models.py")
    if style == "async":
        url = _async(url)
    for path in directory.rglob("*"):
        if path.suffix in (".ini", ".toml", ".py") and path.is_file():
            text = path.read_text()
            if "@@URL" in text:
                path.write_text(text.replace("@@URL@@", url))
    return directory


def table_names(url: str, schema: str | None = None) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names(schema=schema))
    finally:
        engine.dispose()


# -- PostgreSQL ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _OwnPostgres:
    """A throwaway PostgreSQL cluster for this test session."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="migrasafe-pg-"))
        self.port = _free_port()
        self.as_user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.as_user, timeout=120)

    def start(self) -> str:
        if self.as_user:
            shutil.chown(self.directory, self.as_user, self.as_user)
        data = self.directory / "data"
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.directory / "log"),
                  "-o", options, "-w", "-t", "60", "start")  # fmt: skip
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def halt(self) -> None:
        """Stop the server at once, as a crash would, keeping its files."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m",
                  "immediate", "stop")  # fmt: skip

    def stop(self) -> None:
        """Stop it (if it still runs) and remove its files."""
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m",
                      "immediate", "stop")  # fmt: skip
        except subprocess.CalledProcessError:
            pass  # already stopped (halt)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL to a running PostgreSQL server (see the module docstring)."""
    yield from _session_server("MIGRASAFE_TEST_PG_URL", _OwnPostgres, f"PostgreSQL from {PG_BIN}")


def _session_server(
    variable: str, make: Callable[[], _OwnPostgres | _OwnMariaDB], what: str
) -> Iterator[str]:
    """The server $variable names, else one ``make`` gives, started for the session.

    With CI=true a server that cannot start fails the run; otherwise its
    tests are skipped, saying why.
    """
    given = os.environ.get(variable)
    if given:
        yield given
        return
    server = make()
    try:
        url = server.start()
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = f"cannot start {what}: {exc} {detail.decode(errors='replace')}"
        server.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    name = f"migrasafe_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# -- MariaDB -------------------------------------------------------------------------


class _OwnMariaDB:
    """A throwaway MariaDB server for this test session (Debian's mariadb-server)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="migrasafe-mariadb-"))
        self.port = _free_port()
        self.as_user = "mysql" if os.geteuid() == 0 else None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        if self.as_user:
            shutil.chown(self.directory, self.as_user, self.as_user)
        user = [f"--user={self.as_user}"] if self.as_user else []
        data = self.directory / "data"
        subprocess.run([install, "--no-defaults", f"--datadir={data}", *user, "--skip-test-db",
                        "--auth-root-authentication-method=normal"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        self.process = subprocess.Popen(
            [server, "--no-defaults", f"--datadir={data}", *user, f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.directory / 'sock'}",
             "--skip-grant-tables", "--innodb-buffer-pool-size=32M", "--skip-log-bin",
             f"--log-error={self.directory / 'error.log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"mysql+pymysql://root@127.0.0.1:{self.port}/"
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        deadline = time.monotonic() + 60
        while True:
            try:
                with engine.connect():
                    break
            except sa.exc.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise OSError("mariadbd did not start: " + self._log()) from None
                time.sleep(0.1)
        engine.dispose()
        return url

    def _log(self) -> str:
        try:
            return (self.directory / "error.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_admin_url() -> Iterator[str]:
    """A URL to a MariaDB server: $MIGRASAFE_TEST_MYSQL_URL, else one started for the session."""
    yield from _session_server("MIGRASAFE_TEST_MYSQL_URL", _OwnMariaDB, "MariaDB")


@pytest.fixture
def mariadb_url(mariadb_admin_url: str) -> Iterator[str]:
    """A new, empty MariaDB database, dropped after the test."""
    name = f"migrasafe_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(mariadb_admin_url, poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield (
            sa.make_url(mariadb_admin_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A fresh `init --template library` project; returns its alembic.ini."""
    return make_project(tmp_path / "project")


def query(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """env.py's prepend_sys_path and Flask's app discovery add to sys.path: undo it per test."""
    monkeypatch.setattr(sys, "path", sys.path[:])
