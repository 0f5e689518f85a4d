"""Safe deploys: all-or-nothing migrations, a lock against concurrent runs, checksums.

Everything here runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import make_project, query, run_cli, tables

BOOKKEEPING = {"alembic_version", "migrasafe_checksums"}


def _migrasafe(ini: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "migrasafe", "-c", str(ini), "--url", url, *args]


def _version(url: str) -> list[tuple[object, ...]]:
    return query(url, "SELECT version_num FROM alembic_version")


# -- all or nothing -------------------------------------------------------------


def test_failing_migration_leaves_no_trace(tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_failing_midway")
    result = run_cli("-c", str(ini), "--url", db_url, "upgrade")
    assert result.exit_code == 2
    assert "upgrade failed at revision 0002" in result.stderr
    assert "0002 fails after its changes" in result.stderr
    assert "the database is now at 0001" in result.stderr
    assert _version(db_url) == [("0001",)]
    assert tables(db_url) == BOOKKEEPING | {"authors"}  # no audit table
    assert query(db_url, "SELECT * FROM authors") == []  # no row, no born column
    assert "born" not in _columns(db_url, "authors")


def _columns(url: str, table: str) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return {c["name"] for c in sa.inspect(conn).get_columns(table)}
    finally:
        engine.dispose()


def test_killed_migration_leaves_no_trace_and_no_lock(tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_killed_midway")
    marker = tmp_path / "midway"
    process = subprocess.Popen(
        _migrasafe(ini, db_url, "upgrade"),
        env={**os.environ, "MIGRASAFE_TEST_MARKER": str(marker)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the migration never got midway"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()

    status = subprocess.run(_migrasafe(ini, db_url, "status", "--json"),
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert status.returncode == 1, status.stderr
    assert json.loads(status.stdout)["current"] == ["0001"]
    assert "audit" not in tables(db_url)
    assert query(db_url, "SELECT count(*) FROM authors") == [(0,)]

    # the dead process's lock does not block the next deploy
    again = subprocess.run(_migrasafe(ini, db_url, "upgrade", "--lock-timeout", "10"),
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "waiting" not in again.stderr
    assert _version(db_url) == [("0002",)]


# -- the lock -------------------------------------------------------------------


def test_concurrent_upgrades_apply_each_revision_once(tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    command = _migrasafe(ini, db_url, "upgrade", "head", "--json")
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        outcomes.append((process.returncode, out, err))
    assert [code for code, _, _ in outcomes] == [0] * 8, [err for _, _, err in outcomes]
    steps = [json.loads(out)["steps"] for _, out, _ in outcomes]
    assert sorted(len(s) for s in steps) == [0] * 7 + [3]  # one run did it all, 7 found nothing
    assert query(db_url, "SELECT name FROM authors") == [("inserted once by 0002",)]
    assert _version(db_url) == [("0003",)]
    assert any("waiting for the migration lock" in err for _, _, err in outcomes)


def test_lock_timeout_is_a_clear_error(tmp_path: Path, db_url: str) -> None:
    from migrasafe.db.dialects import database_for

    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).touch()
    with database_for(db_url).locks.migration_lock(5):
        result = run_cli("-c", str(ini), "--url", db_url, "upgrade", "--lock-timeout", "0.5")
    assert result.exit_code == 2
    assert "waiting for the migration lock" in result.stderr
    assert "gave up after 0.5 s waiting for the migration lock" in result.stderr
    assert "authors" not in tables(db_url)


# -- checksums ------------------------------------------------------------------


def test_editing_an_applied_script_makes_status_exit_1(library: Path, db_url: str) -> None:
    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    ok = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["modified"] == []

    script = next((library.parent / "migrations" / "versions").glob("0002_*.py"))
    script.write_text(script.read_text().replace("def upgrade", "# edited\ndef upgrade"))
    result = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    assert result.exit_code == 1
    modified = json.loads(result.stdout)["modified"]
    assert [m["revision"] for m in modified] == ["0002"]
    assert modified[0]["path"] == str(script) and modified[0]["recorded"] != modified[0]["current"]
    text = run_cli("-c", str(library), "--url", db_url, "status")
    assert "Modified:" in text.stdout and "0002" in text.stdout and "accept 0002" in text.stdout

    accepted = run_cli("-c", str(library), "--url", db_url, "accept", "--json")
    assert accepted.exit_code == 0 and json.loads(accepted.stdout)["accepted"] == ["0002"]
    assert run_cli("-c", str(library), "--url", db_url, "status").exit_code == 0


def test_line_endings_alone_are_no_edit(library: Path, db_url: str) -> None:
    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    script = next((library.parent / "migrations" / "versions").glob("0001_*.py"))
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))
    assert run_cli("-c", str(library), "--url", db_url, "status").exit_code == 0


def test_reverted_revision_is_no_longer_checked(library: Path, db_url: str) -> None:
    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    assert run_cli("-c", str(library), "--url", db_url, "downgrade", "0002").exit_code == 0
    script = next((library.parent / "migrations" / "versions").glob("0003_*.py"))
    script.write_text(script.read_text() + "\n# fixed before deploying again\n")
    result = run_cli("-c", str(library), "--url", db_url, "status", "--json")
    data = json.loads(result.stdout)
    assert data["modified"] == [] and data["pending"] == ["0003"]


def test_accepting_a_revision_that_is_not_applied_is_an_error(library: Path, db_url: str) -> None:
    assert run_cli("-c", str(library), "--url", db_url, "upgrade", "0001").exit_code == 0
    result = run_cli("-c", str(library), "--url", db_url, "accept", "0003")
    assert result.exit_code == 2
    assert "revision 0003 is not applied" in result.stderr


def test_validate_given_a_database_reports_edited_scripts(library: Path, db_url: str) -> None:
    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    script = next((library.parent / "migrations" / "versions").glob("0001_*.py"))
    script.write_text(script.read_text() + "\n# edited\n")
    result = run_cli("-c", str(library), "--url", db_url, "validate", "--json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["rule"], f["revision"]) for f in findings] == [("modified-after-apply", "0001")]
    without = run_cli("-c", str(library), "--url", db_url, "validate", "--no-database")
    assert without.exit_code == 0


def _plain_alembic(ini: Path, url: str, verb: str, target: str) -> None:
    """What a teammate runs without migrasafe: Alembic's own command."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    getattr(command, verb)(config, target)


def _checksummed(url: str) -> list[str]:
    return sorted(str(r[0]) for r in query(url, "SELECT revision FROM migrasafe_checksums"))


def test_a_plain_downgrade_leaves_no_checksum_to_vouch_for_a_plain_reapply(
    library: Path, db_url: str
) -> None:
    """Rows of revisions plain Alembic reverted are stale: the next migrasafe write drops them,
    so when plain Alembic applies those revisions again, status calls them unverified."""
    cli = ("-c", str(library), "--url", db_url)
    assert run_cli(*cli, "upgrade").exit_code == 0
    _plain_alembic(library, db_url, "downgrade", "0001")
    stale = json.loads(run_cli(*cli, "status", "--json").stdout)
    assert stale["unverified"] == [] and stale["modified"] == []  # stale rows are ignored
    assert run_cli(*cli, "accept").exit_code == 0  # a migrasafe write
    assert _checksummed(db_url) == ["0001"]
    _plain_alembic(library, db_url, "upgrade", "head")
    data = json.loads(run_cli(*cli, "status", "--json").stdout)
    assert data["unverified"] == ["0002", "0003"]


def test_upgrade_forgets_the_checksums_a_plain_downgrade_left(library: Path, db_url: str) -> None:
    cli = ("-c", str(library), "--url", db_url)
    assert run_cli(*cli, "upgrade").exit_code == 0
    _plain_alembic(library, db_url, "downgrade", "0001")
    assert _checksummed(db_url) == ["0001", "0002", "0003"]
    assert run_cli(*cli, "upgrade", "0002").exit_code == 0
    assert _checksummed(db_url) == ["0001", "0002"]


def test_reconcile_forgets_the_checksums_of_revisions_a_plain_stamp_left(
    library: Path, db_url: str
) -> None:
    """The library function a stamp calls: rows of revisions no longer applied go."""
    import sqlalchemy as sa

    from migrasafe import load_project
    from migrasafe.deploy.checksums import reconcile

    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    _plain_alembic(library, db_url, "stamp", "0001")
    project = load_project(library, url=db_url)
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            assert reconcile(connection, project.script) == ("0002", "0003")
            assert reconcile(connection, project.script) == ()
            assert reconcile(connection, project.script, heads=()) == ("0001",)
    finally:
        engine.dispose()
    assert _checksummed(db_url) == []


def test_checksums_cost_no_statement_per_revision_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """psycopg sends each checksum with Alembic's version statement: as many per revision."""
    import sqlalchemy as sa
    from alembic import command

    import migrasafe

    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    for n in range(1, 7):
        down = f"'{n - 1:04d}'" if n > 1 else "None"
        (versions / f"{n:04d}_t.py").write_text(
            f'"""t{n}"""\nfrom alembic import op\n\nrevision = "{n:04d}"\n'
            f"down_revision = {down}\n\n\ndef upgrade() -> None:\n"
            f'    op.execute("CREATE TABLE t{n} (id int)")\n\n\n'
            f'def downgrade() -> None:\n    op.execute("DROP TABLE t{n}")\n'
        )
    project = migrasafe.load_project(ini, url=pg_url)
    project.config.attributes["configure_logger"] = False
    sent: list[str] = []

    def count(*args: object) -> None:
        sent.append(str(args[2]))

    def statements(run: object, target: str) -> int:
        sent.clear()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
        try:
            run(target)  # type: ignore[operator]
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)
        return len(sent)

    per_revision = {}
    for name, up, down in (
        ("alembic", lambda t: command.upgrade(project.config, t),
         lambda: command.downgrade(project.config, "base")),
        ("migrasafe", lambda t: migrasafe.upgrade(project, t),
         lambda: migrasafe.downgrade(project, "base")),
    ):  # fmt: skip
        statements(up, "0001")  # the first run makes the bookkeeping tables
        down()
        two = statements(up, "0002")
        down()
        six = statements(up, "0006")
        down()
        per_revision[name] = (six - two) / 4
    assert per_revision["migrasafe"] == per_revision["alembic"], per_revision
    assert sorted(r[0] for r in query(pg_url, "SELECT revision FROM migrasafe_checksums")) == []
