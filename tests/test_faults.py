"""An operator's bad day: kills, signals, a server that stops, a lock session that ends.

After each fault the version table, the schema and the checksums must agree,
and a re-run must finish the job. Bounded: a handful of kills per database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrasafe import errors
from migrasafe.deploy.migrate import upgrade
from migrasafe.project.config import load_project

from conftest import _OwnPostgres, make_project, query, run_cli, tables

REVISIONS = 12
KILLS = 8


def _slow_history(directory: Path, count: int = REVISIONS, pause: float = 0.03) -> Path:
    """A generic project with ``count`` revisions, each creating a table, then pausing."""
    ini = make_project(directory, "generic")
    versions = directory / "migrations" / "versions"
    for n in range(1, count + 1):
        parent = f"'{n - 1:04d}'" if n > 1 else "None"
        (versions / f"{n:04d}_t{n}.py").write_text(
            f'"""create t{n}"""\n'
            "import time\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n"
            f"revision = '{n:04d}'\ndown_revision = {parent}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n"
            f"    op.create_table('t{n}', sa.Column('id', sa.Integer(), primary_key=True))\n"
            f'    op.execute("INSERT INTO t{n} (id) VALUES (1)")\n'
            f"    time.sleep({pause})\n\n\n"
            "def downgrade() -> None:\n"
            f"    op.drop_table('t{n}')\n"
        )
    return ini


def _popen(argv: list[str], **kw: object) -> subprocess.Popen[str]:
    """The child as a terminal would start it: a test run in the background (where the shell
    sets SIGINT to ignored, which children inherit) still sends it a SIGINT it obeys."""

    def default_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(argv, preexec_fn=default_sigint, **kw)  # type: ignore[call-overload,no-any-return]


def _migrasafe(ini: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "migrasafe", "-c", str(ini), "--url", url, *args]


def _agree(url: str) -> int:
    """Version table, tables and checksums describe the same revisions; returns how many."""
    present = tables(url)
    version = query(url, "SELECT version_num FROM alembic_version") if (
        "alembic_version" in present
    ) else []  # fmt: skip
    applied = int(str(version[0][0])) if version else 0
    assert len(version) <= 1
    made = {t for t in present if t.startswith("t") and t[1:].isdigit()}
    assert made == {f"t{n}" for n in range(1, applied + 1)}, (applied, sorted(made))
    checked: set[str] = set()
    if "migrasafe_checksums" in present:
        checked = {str(r[0]) for r in query(url, "SELECT revision FROM migrasafe_checksums")}
    assert checked == {f"{n:04d}" for n in range(1, applied + 1)}, (applied, sorted(checked))
    return applied


def _wait_for_progress(url: str, process: subprocess.Popen[str], at_least: int) -> None:
    """Until the run has committed ``at_least`` revisions (so it is past start-up)."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the upgrade made no progress"
        try:
            rows = query(url, "SELECT version_num FROM alembic_version")
        except sa.exc.DBAPIError:
            rows = []
        if rows and int(str(rows[0][0])) >= at_least:
            return
        time.sleep(0.01)


def test_sigkill_at_random_points_never_leaves_a_revision_without_its_checksum(
    tmp_path: Path, db_url: str
) -> None:
    ini = _slow_history(tmp_path / "p")
    chance = random.Random(2026)
    seen = []
    for _ in range(KILLS):
        process = _popen(_migrasafe(ini, db_url, "upgrade"), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        current = _agree(db_url)
        if current < REVISIONS - 1:  # past start-up, then anywhere in the next revisions
            _wait_for_progress(db_url, process, chance.randint(current + 1, REVISIONS - 1))
        time.sleep(chance.uniform(0, 0.06))  # a revision takes ~30 ms
        process.kill()
        process.communicate()
        seen.append(_agree(db_url))
        if seen[-1] >= REVISIONS - 1:  # start over, keeping the kills mid-run
            done = subprocess.run(_migrasafe(ini, db_url, "downgrade", "base"),
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr
    done = subprocess.run(_migrasafe(ini, db_url, "upgrade"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _agree(db_url) == REVISIONS
    status = subprocess.run(_migrasafe(ini, db_url, "status"), capture_output=True, text=True)
    assert status.returncode == 0, status.stdout + status.stderr
    assert len(set(seen)) > 1, f"every kill landed at the same point: {seen}"


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"),
                                                   (signal.SIGTERM, 143, "SIGTERM")])  # fmt: skip
def test_a_signal_stops_the_upgrade_cleanly_and_says_where_it_stopped(
    tmp_path: Path, db_url: str, sig: int, code: int, name: str
) -> None:
    ini = _slow_history(tmp_path / "p", pause=0.2)
    process = _popen(_migrasafe(ini, db_url, "upgrade"), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_progress(db_url, process, 2)
    process.send_signal(sig)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    ours = [line for line in err.splitlines() if line.startswith("migrasafe:")]
    assert len(ours) == 1 and f"interrupted by {name}" in ours[0], err
    assert "Traceback" not in err
    applied = _agree(db_url)
    assert 2 <= applied < REVISIONS
    assert f"the database is now at {applied:04d}" in ours[0]
    # the lock went with the process: the next run finishes at once
    again = subprocess.run(_migrasafe(ini, db_url, "upgrade", "--lock-timeout", "5"),
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0 and "waiting" not in again.stderr, again.stderr
    assert _agree(db_url) == REVISIONS


def _verify_under_way(
    tmp_path: Path, pg_url: str
) -> tuple[subprocess.Popen[str], Callable[[], list[tuple[object, ...]]]]:
    """A verify on PostgreSQL half a second into its scratch database, and a look at it."""
    ini = _slow_history(tmp_path / "p", pause=0.2)
    process = _popen(_migrasafe(ini, pg_url, "verify"), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    admin = sa.make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)

    def scratch() -> list[tuple[object, ...]]:
        return query(
            admin, "SELECT datname FROM pg_database WHERE datname LIKE 'migrasafe_scratch%'"
        )

    deadline = time.monotonic() + 60
    while not scratch():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    time.sleep(0.5)
    return process, scratch


def test_sigterm_during_verify_removes_its_scratch_database(tmp_path: Path, pg_url: str) -> None:
    process, scratch = _verify_under_way(tmp_path, pg_url)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "Traceback" not in err and "interrupted by SIGTERM" in err
    assert scratch() == []
    assert tables(pg_url) == set()  # and the project's database was never touched


@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT),
                                     (signal.SIGTERM, signal.SIGTERM)])  # fmt: skip
def test_a_second_signal_does_not_cut_verifys_cleanup_short(
    tmp_path: Path, pg_url: str, signals: tuple[signal.Signals, signal.Signals]
) -> None:
    """Ctrl-C pressed twice, or a supervisor's TERM then TERM: the scratch database still goes."""
    process, scratch = _verify_under_way(tmp_path, pg_url)
    first, second = signals
    process.send_signal(first)
    time.sleep(0.002)
    if process.poll() is None:
        process.send_signal(second)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == (143 if first == signal.SIGTERM else 130), err
    assert "Traceback" not in err
    assert scratch() == []


def test_the_signal_handler_obeys_the_first_signal_and_reports_the_second() -> None:
    from migrasafe.cli import app

    app._SIGNALLED.clear()
    with pytest.raises(KeyboardInterrupt):
        app._interrupt(signal.SIGINT, None)
    app._interrupt(signal.SIGINT, None)  # says so on stderr, raises nothing
    app._interrupt(signal.SIGTERM, None)
    assert app._SIGNALLED == [signal.SIGINT, signal.SIGINT, signal.SIGTERM]
    app._SIGNALLED.clear()
    errors.caught()


def test_a_signal_swallowed_by_a_destructor_still_stops_the_run_at_the_next_revision(
    tmp_path: Path,
) -> None:
    """Python raises a handler's exception wherever the main thread is; in a weakref callback
    or a __del__ it is printed and lost. The upgrade must stop at the next revision anyway."""
    from migrasafe.cli import app

    ini = _slow_history(tmp_path / "p", count=3, pause=0)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    app._SIGNALLED.clear()
    with suppress(KeyboardInterrupt):  # raised as if inside a destructor, and swallowed there
        app._interrupt(signal.SIGINT, None)
    try:
        result = run_cli("-c", str(ini), "--url", url, "upgrade")
    finally:
        app._SIGNALLED.clear()
        errors.caught()
    assert result.exit_code == 0  # the command line starts afresh: an old signal is not news
    other = f"sqlite:///{tmp_path / 'other.db'}"
    errors.interrupt(KeyboardInterrupt())  # swallowed during this run, before its first step
    try:
        with pytest.raises(errors.Interrupted) as stopped:
            upgrade(load_project(ini, url=other), "head")
    finally:
        errors.caught()
    assert "interrupted by SIGINT" in str(stopped.value)
    assert "0 revision(s) completed" in str(stopped.value)


def test_sigterm_while_the_command_line_is_still_importing_exits_143(tmp_path: Path) -> None:
    """The entry point handles SIGTERM before click and the commands are imported."""
    script = tmp_path / "early.py"
    script.write_text(
        "import os, signal, sys\n"
        "class KillOnImport:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'migrasafe.cli':\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "        return None\n"
        "sys.meta_path.insert(0, KillOnImport())\n"
        "from migrasafe._entry import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 143, done.stderr
    assert "interrupted by SIGTERM before it started; nothing was done" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_server_stopping_midway_is_one_line_and_no_traceback(tmp_path: Path) -> None:
    server = _OwnPostgres()
    try:
        url = server.start()
    except (OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot start PostgreSQL: {exc}")
        pytest.skip(f"cannot start PostgreSQL: {exc}")
    try:
        ini = _slow_history(tmp_path / "p", pause=0.2)
        process = _popen(_migrasafe(ini, url, "upgrade"), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        _wait_for_progress(url, process, 2)
        server.halt()
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 2, err
        ours = [line for line in err.splitlines() if line.startswith("migrasafe:")]
        assert len(ours) == 1 and "upgrade failed at revision" in ours[0], err
        assert "Traceback" not in err
    finally:
        server.stop()


def test_losing_the_lock_session_stops_the_run_and_the_waiting_one_takes_over(
    tmp_path: Path, pg_url: str
) -> None:
    ini = _slow_history(tmp_path / "p", pause=0.3)
    first = _popen(_migrasafe(ini, pg_url, "upgrade"), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_progress(pg_url, first, 1)
    second = _popen(_migrasafe(ini, pg_url, "upgrade"), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    time.sleep(1.0)  # the second is waiting for the lock
    assert second.poll() is None
    killed = query(
        pg_url,
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    )
    assert killed == [(True,)]
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 2, err
    assert "lost the migration lock" in err and "Traceback" not in err
    _out, err2 = second.communicate(timeout=120)
    assert second.returncode == 0, err2
    assert _agree(pg_url) == REVISIONS


def test_a_keyboardinterrupt_raised_by_a_revision_is_its_failure_not_ctrl_c(
    tmp_path: Path,
) -> None:
    ini = _slow_history(tmp_path / "p", count=2, pause=0)
    second = next((tmp_path / "p" / "migrations" / "versions").glob("0002_*.py"))
    second.write_text(second.read_text().replace(
        "    time.sleep(0)\n", "    raise KeyboardInterrupt('the revision gave up')\n"
    ))  # fmt: skip
    url = f"sqlite:///{tmp_path / 'app.db'}"
    result = run_cli("-c", str(ini), "--url", url, "upgrade")
    assert result.exit_code == 2, result.stderr
    assert "upgrade failed at revision 0002" in result.stderr
    assert "the revision gave up" in result.stderr and "interrupted" not in result.stderr
    assert query(url, "SELECT version_num FROM alembic_version") == [("0001",)]
