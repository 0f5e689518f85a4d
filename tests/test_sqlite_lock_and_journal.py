"""SQLite: one migration lock per database file however it is named, a lock file that
cannot be turned against the user, and read-only commands after a killed writer.

SQLite only: what is tested here is how migrasafe names and reads a SQLite file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import make_url

from migrasafe.db.dialects import database_for, same_database
from migrasafe.db.sqlite import database_path
from migrasafe.errors import DatabaseError
from test_faults import _migrasafe, _popen, _slow_history

from conftest import make_project, query

# -- naming the file -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////data/app.db", "/data/app.db"),
        ("sqlite:///rel/app.db", "{cwd}/rel/app.db"),
        ("sqlite:///file:/data/app.db?mode=rwc&uri=true", "/data/app.db"),
        ("sqlite:///file:///data/app.db?uri=1", "/data/app.db"),
        ("sqlite:///file://localhost/data/app.db?uri=true", "/data/app.db"),
        ("sqlite:///file:/data/a%2520b.db?uri=true", "/data/a b.db"),  # %25: make_url's own
        ("sqlite:///file:rel.db?uri=true&cache=shared", "{cwd}/rel.db"),
        ("sqlite:///file:/data/app.db", "{cwd}/file:/data/app.db"),  # no uri=true: a plain name
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file::memory:?uri=true", None),
        ("sqlite:///file:/data/app.db?mode=memory&uri=true", None),
        ("sqlite:///file:?uri=true", None),
    ],
)
def test_database_path_is_the_file_the_driver_opens(url: str, expected: str | None) -> None:
    found = database_path(make_url(url))
    wanted = None if expected is None else Path(expected.format(cwd=os.getcwd()))
    assert found == wanted, f"{url} names {found}, the driver opens {wanted}"


def test_a_uri_naming_a_host_is_refused_in_one_line() -> None:
    with pytest.raises(DatabaseError, match="names a host"):
        database_path(make_url("sqlite:///file://server/data/app.db?uri=true"))


def test_a_hard_link_and_a_uri_name_the_same_database(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    (tmp_path / "elsewhere").mkdir()
    os.link(db, tmp_path / "elsewhere" / "link.db")
    plain = f"sqlite:///{db}"
    assert same_database(plain, f"sqlite:///{tmp_path / 'elsewhere' / 'link.db'}")
    assert same_database(plain, f"sqlite:///file:{db}?mode=rwc&uri=true")
    assert not same_database(plain, f"sqlite:///{tmp_path / 'other.db'}")


# -- one lock per database file ----------------------------------------------------


def _hard_link(db: Path) -> str:
    other = db.parent / "elsewhere"
    other.mkdir()
    os.link(db, other / "link.db")
    return f"sqlite:///{other / 'link.db'}"


def _uri(db: Path) -> str:
    return f"sqlite:///file:{db}?mode=rwc&uri=true"


@pytest.mark.parametrize("other_name", [_hard_link, _uri], ids=["hard link", "file: URI"])
def test_a_run_waits_for_the_lock_taken_through_another_name(
    tmp_path: Path, other_name: Callable[[Path], str]
) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    url = other_name(db)
    with database_for(f"sqlite:///{db}").locks.migration_lock(5):
        run = _popen(_migrasafe(ini, url, "upgrade", "--lock-timeout", "120"), text=True,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        assert run.stderr is not None
        said = []
        for line in run.stderr:  # blocks until the run says it waits (or ends without waiting)
            said.append(line)
            if "waiting for the migration lock" in line:
                break
        assert "waiting for the migration lock" in "".join(said), (
            f"the run through {url} did not wait for the lock held through {db}:\n"
            + "".join(said)
            + run.communicate()[1]
        )
        assert not query(f"sqlite:///{db}", "SELECT name FROM sqlite_master WHERE name = "
                                            "'alembic_version'")  # fmt: skip
    _out, err = run.communicate()
    assert run.returncode == 0, err
    assert query(f"sqlite:///{db}", "SELECT version_num FROM alembic_version") == [("0003",)]


@pytest.mark.parametrize(
    ("first", "second", "exists"),
    [
        (lambda db: f"sqlite:///{db}", _hard_link, True),
        (lambda db: f"sqlite:///{db}", _uri, False),  # the first runs create the file
    ],
    ids=["path and hard link", "path and file: URI, no file yet"],
)
def test_concurrent_upgrades_through_two_names_take_turns(
    tmp_path: Path,
    first: Callable[[Path], str],
    second: Callable[[Path], str],
    exists: bool,
) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    urls = [first(db), second(db)]
    if not exists:
        db.unlink()
    runs = [_popen(_migrasafe(ini, url, "upgrade", "--json"), text=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for url in urls]  # fmt: skip
    outcomes = [(run.communicate(timeout=120), run.returncode) for run in runs]
    for (_out, err), code in outcomes:
        assert code == 0 and "database is locked" not in err, err
    steps = sorted(len(json.loads(out)["steps"]) for (out, _err), _code in outcomes)
    assert steps == [0, 3], f"each run applied {steps} revisions: they did not take turns"
    assert query(f"sqlite:///{db}", "SELECT version_num FROM alembic_version") == [("0003",)]
    assert query(f"sqlite:///{db}", "SELECT name FROM authors") == [("inserted once by 0002",)]


# -- a lock file that is not migrasafe's -------------------------------------------


def _plant_symlink(lock: Path, victim: Path) -> None:
    lock.symlink_to(victim)


def _plant_hard_link(lock: Path, victim: Path) -> None:
    os.link(victim, lock)


@pytest.mark.parametrize(
    ("plant", "reason"),
    [(_plant_symlink, "it is a symbolic link"), (_plant_hard_link, "it is a hard link")],
    ids=["symlink", "hard link"],
)
def test_a_planted_link_at_the_lock_file_is_refused_and_left_whole(
    tmp_path: Path, plant: Callable[[Path, Path], None], reason: str
) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's own file\n")
    plant(tmp_path / "app.db.migrasafe-lock", victim)
    run = subprocess.run(_migrasafe(ini, f"sqlite:///{db}", "upgrade"),
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert f"refusing the migration lock file {tmp_path / 'app.db.migrasafe-lock'}" in line
    assert reason in line and "remove it" in line, line
    assert victim.read_text() == "the user's own file\n"
    assert query(f"sqlite:///{db}", "SELECT name FROM sqlite_master") == []


def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    os.mkfifo(tmp_path / "app.db.migrasafe-lock")
    with (
        pytest.raises(DatabaseError, match="it is not a regular file; remove it"),
        database_for(f"sqlite:///{db}").locks.migration_lock(5),
    ):
        pass


def test_the_lock_by_inode_is_removed_when_released(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    found = db.stat()
    by_inode = Path(f"/tmp/migrasafe-{os.geteuid()}/sqlite-{found.st_dev}-{found.st_ino}.lock")
    with database_for(f"sqlite:///{db}").locks.migration_lock(5):
        assert by_inode.read_text() == f"{os.getpid()}\n"
    assert not by_inode.exists()  # one per database ever migrated would pile up in /tmp


def test_a_refused_lock_by_inode_lets_go_of_the_lock_beside_the_database(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    found = db.stat()
    by_inode = Path(f"/tmp/migrasafe-{os.geteuid()}/sqlite-{found.st_dev}-{found.st_ino}.lock")
    by_inode.parent.mkdir(mode=0o700, exist_ok=True)
    by_inode.symlink_to(tmp_path / "victim")
    try:
        with (
            pytest.raises(DatabaseError, match="it is a symbolic link"),
            database_for(f"sqlite:///{db}").locks.migration_lock(5),
        ):
            pass
    finally:
        by_inode.unlink()
    assert not (tmp_path / "victim").exists()
    beside = os.open(tmp_path / "app.db.migrasafe-lock", os.O_RDWR)
    try:  # not left held by the refused attempt
        fcntl.flock(beside, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(beside)


# -- read-only commands after a killed writer --------------------------------------

_SPILLING = '''"""writes more than the page cache holds, so SQLite writes the database file
mid-transaction, its hot journal holding the pages as they were"""
import os
import time

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute("PRAGMA cache_size = 10")
    op.execute("CREATE TABLE t3 (id INTEGER PRIMARY KEY, b BLOB)")
    op.execute("INSERT INTO t3 (b) SELECT randomblob(4000) FROM (WITH RECURSIVE c(x) AS "
               "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300) SELECT x FROM c)")
    marker = os.environ.get("MIGRASAFE_TEST_MARKER")
    if marker:
        open(marker, "w").close()
        time.sleep(600)  # killed here


def downgrade() -> None:
    op.execute("DROP TABLE t3")
'''


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_status_after_a_killed_writer_reads_past_its_hot_journal(tmp_path: Path) -> None:
    ini = _slow_history(tmp_path / "p", count=2, pause=0)
    (tmp_path / "p" / "migrations" / "versions" / "0003_spills.py").write_text(_SPILLING)
    db = tmp_path / "app.db"
    url = f"sqlite:///{db}"
    marker = tmp_path / "midway"
    run = _popen(_migrasafe(ini, url, "upgrade"), text=True,
                 env={**os.environ, "MIGRASAFE_TEST_MARKER": str(marker)},
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    while not marker.exists():
        assert run.poll() is None, run.communicate()
        time.sleep(0.02)
    run.kill()
    run.communicate()

    journal = tmp_path / "app.db-journal"
    with pytest.raises(sqlite3.OperationalError, match="attempt to write a readonly database"):
        plain = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # the failure issue 25 saw
        try:
            plain.execute("SELECT count(*) FROM sqlite_master").fetchall()
        finally:
            plain.close()
    before = (_digest(db), _digest(journal))

    for attempt in ("first", "second"):  # the second may answer through the lean path's reader
        status = subprocess.run(_migrasafe(ini, url, "status", "--json"),
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert status.returncode == 1, f"{attempt}: {status.stderr}"
        found = json.loads(status.stdout)
        assert (found["current"], found["pending"]) == (["0002"], ["0003"]), attempt
        assert "a killed writer left app.db-journal" in status.stderr, status.stderr
        assert (_digest(db), _digest(journal)) == before, f"{attempt} status wrote the database"

    again = subprocess.run(_migrasafe(ini, url, "upgrade"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert query(url, "SELECT version_num FROM alembic_version") == [("0003",)]
    assert query(url, "SELECT count(*) FROM t3") == [(300,)]
    assert not journal.exists()


def test_status_through_a_uri_url_neither_creates_nor_writes_the_file(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    url = _uri(tmp_path / "app.db")  # mode=rwc: connecting would create it
    status = subprocess.run(_migrasafe(ini, url, "status", "--json"),
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert status.returncode == 1 and json.loads(status.stdout)["current"] == [], status.stderr
    assert not (tmp_path / "app.db").exists()
