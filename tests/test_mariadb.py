"""MySQL-dialect projects on a real MariaDB server the suite starts itself.

MySQL and MariaDB commit DDL at once, so "all or nothing" per revision does
not hold there (see the README); the rest does: status, upgrade, downgrade,
checksums, the migration lock, verify on a scratch database, lock timeouts
and retries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from test_live_traffic import _project

from conftest import make_project, make_user_project, query, run_cli, table_names

REVISIONS = ["1a2b3c4d5e6f", "2b3c4d5e6f7a", "3c4d5e6f7a8b"]


def _migrasafe(ini: Path, url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "migrasafe", "-c", str(ini), "--url", url, *args]


def test_every_command_works_on_mariadb(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_user_project("generic", tmp_path / "g", mariadb_url)
    monkeypatch.chdir(project)
    monkeypatch.delitem(sys.modules, "models", raising=False)

    status = run_cli("status", "--json")
    assert status.exit_code == 1 and json.loads(status.stdout)["pending"] == REVISIONS
    upgraded = run_cli("upgrade", "--json")
    assert upgraded.exit_code == 0, upgraded.stderr
    assert [s["revision"] for s in json.loads(upgraded.stdout)["steps"]] == REVISIONS
    assert {"authors", "books", "alembic_version", "migrasafe_checksums"} <= table_names(
        mariadb_url
    )
    assert run_cli("status").exit_code == 0
    edited = next((project / "migrations" / "versions").glob("2b3c*.py"))
    edited.write_text(edited.read_text() + "\n# reviewed\n")
    assert run_cli("status").exit_code == 1
    assert json.loads(run_cli("accept", "--json").stdout)["accepted"] == [REVISIONS[1]]
    downgraded = run_cli("downgrade", "base", "--json")
    assert downgraded.exit_code == 0, downgraded.stderr
    assert [s["revision"] for s in json.loads(downgraded.stdout)["steps"]] == REVISIONS[::-1]
    assert not {"authors", "books"} & table_names(mariadb_url)

    verified = run_cli("verify", "--json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    data = json.loads(verified.stdout)
    assert data["checked"] == 3 and data["database"].startswith("mysql+pymysql")
    assert not {"authors", "books"} & table_names(mariadb_url)  # untouched
    admin = sa.make_url(mariadb_url).set(database=None).render_as_string(hide_password=False)
    assert not [
        r for r in query(admin, "SHOW DATABASES") if str(r[0]).startswith("migrasafe_scratch")
    ]
    linted = run_cli("lint", "--json")
    assert linted.exit_code in (0, 1) and json.loads(linted.stdout)["dialect"] == "mysql"


def test_eight_concurrent_upgrades_on_mariadb_take_turns(tmp_path: Path, mariadb_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic", "deploy_concurrent")
    command = _migrasafe(ini, mariadb_url, "upgrade", "head", "--json")
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        outcomes.append((process.returncode, out, err))
    assert [code for code, _, _ in outcomes] == [0] * 8, [err for _, _, err in outcomes]
    steps = sorted(len(json.loads(out)["steps"]) for _, out, _ in outcomes)
    assert steps == [0] * 7 + [3]
    assert query(mariadb_url, "SELECT name FROM authors") == [("inserted once by 0002",)]
    assert any("waiting for the migration lock" in err for _, _, err in outcomes)


def test_a_blocked_revision_is_retried_on_mariadb(tmp_path: Path, mariadb_url: str) -> None:
    ini = _project(tmp_path / "p", mariadb_url)
    url = sa.make_url(mariadb_url)
    blocker = pymysql.connect(host=url.host, port=url.port, user=url.username,
                              database=url.database, autocommit=False)  # fmt: skip
    try:
        with blocker.cursor() as cursor:  # a metadata lock until the transaction ends
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT count(*) FROM authors")
        blocker_id = blocker.thread_id()
        process = subprocess.Popen(
            _migrasafe(ini, mariadb_url, "upgrade", "--db-lock-timeout", "1s", "--retries", "20"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(3)
        assert process.poll() is None, process.communicate()
    finally:
        blocker.rollback()
        blocker.close()
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "revision 0002 could not get its lock within 1 s" in err
    assert f"blocked by connection {blocker_id} (" in err  # the session with a transaction open
    assert query(mariadb_url, "SELECT version_num FROM alembic_version") == [("0002",)]


def test_a_revision_that_failed_midway_on_mariadb_is_named_by_status(
    tmp_path: Path, mariadb_url: str
) -> None:
    """MariaDB commits DDL at once: the first statement stays, the version does not move."""
    ini = _project(tmp_path / "p", mariadb_url, body=(
        "op.add_column('authors', sa.Column('country', sa.String(2)))\n"
        "    op.execute('ALTER TABLE no_such_table ADD COLUMN x INT')"
    ))  # fmt: skip
    failed = run_cli("-c", str(ini), "--url", mariadb_url, "upgrade")
    assert failed.exit_code == 2 and "upgrade failed at revision 0002" in failed.stderr
    assert query(mariadb_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    status = run_cli("-c", str(ini), "--url", mariadb_url, "status", "--json")
    assert status.exit_code == 1
    assert json.loads(status.stdout)["half_applied"] == ["0002"]
    assert json.loads(status.stdout)["half_applied_operations"] == [
        {"revision": "0002", "operation": "add_column authors.country", "present": True},
        {"revision": "0002", "operation": "add_column no_such_table.x", "present": False},
    ]  # the raw SQL read as lint reads it
    text = run_cli("-c", str(ini), "--url", mariadb_url, "status")
    assert "Half-applied: 0002 stopped midway" in text.stdout
    assert "present      add_column authors.country" in text.stdout
    again = run_cli("-c", str(ini), "--url", mariadb_url, "upgrade")
    assert again.exit_code == 2 and "upgrade --resume" in again.stderr, again.stderr
    assert "nothing was migrated" in again.stderr


HALF_APPLIED = (
    "op.add_column('authors', sa.Column('country', sa.String(2)))\n"
    "    op.execute('ALTER TABLE no_such_table ADD COLUMN x INT')"
)


def _half_applied(tmp_path: Path, url: str) -> tuple[Path, Path]:
    """A project whose 0002 failed on MariaDB after its first statement committed."""
    ini = _project(tmp_path / "p", url, body=HALF_APPLIED)
    assert run_cli("-c", str(ini), "--url", url, "upgrade").exit_code == 2
    status = json.loads(run_cli("-c", str(ini), "--url", url, "status", "--json").stdout)
    assert status["half_applied"] == ["0002"]
    return ini, next((ini.parent / "migrations" / "versions").glob("0002_*.py"))


def _upgrade_leaves_no_note(ini: Path, url: str, *args: str) -> None:
    done = run_cli("-c", str(ini), "--url", url, "upgrade", *args)
    assert done.exit_code == 0, done.stderr
    status = run_cli("-c", str(ini), "--url", url, "status", "--json")
    assert status.exit_code == 0, status.stdout
    assert json.loads(status.stdout)["half_applied"] == []


def test_a_revision_that_failed_before_sending_sql_on_mariadb_is_not_half_applied(
    tmp_path: Path, mariadb_url: str
) -> None:
    ini = _project(tmp_path / "p", mariadb_url, body="raise RuntimeError('not yet')")
    failed = run_cli("-c", str(ini), "--url", mariadb_url, "upgrade")
    assert failed.exit_code == 2 and "not yet" in failed.stderr
    status = run_cli("-c", str(ini), "--url", mariadb_url, "status", "--json")
    assert json.loads(status.stdout)["half_applied"] == []
    assert "Half-applied" not in run_cli("-c", str(ini), "--url", mariadb_url, "status").stdout


def test_the_half_applied_note_on_mariadb_goes_when_the_revision_is_applied(
    tmp_path: Path, mariadb_url: str
) -> None:
    ini, broken = _half_applied(tmp_path, mariadb_url)
    broken.write_text(broken.read_text().replace(
        "\n    op.execute('ALTER TABLE no_such_table ADD COLUMN x INT')", ""
    ))  # fmt: skip
    resumed = run_cli("-c", str(ini), "--url", mariadb_url, "upgrade", "--resume", "--json")
    assert resumed.exit_code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["skipped"] == [
        {"revision": "0002", "operation": "add_column authors.country"}
    ]
    _upgrade_leaves_no_note(ini, mariadb_url)


def test_status_on_mariadb_is_not_up_to_date_while_a_half_applied_note_stands_until_accept(
    tmp_path: Path, mariadb_url: str
) -> None:
    """The broken file deleted: nothing is pending, but the column 0002 added stayed."""
    ini, broken = _half_applied(tmp_path, mariadb_url)
    broken.unlink()
    text = run_cli("-c", str(ini), "--url", mariadb_url, "status")
    assert text.exit_code == 1
    assert "Half-applied: 0002" in text.stdout and "migrasafe accept 0002" in text.stdout
    assert "Up to date" not in text.stdout
    assert "Not up to date: 1 half-applied or half-reverted revision(s)" in text.stdout
    accepted = run_cli("-c", str(ini), "--url", mariadb_url, "accept", "--json")
    assert accepted.exit_code == 0, accepted.stderr
    assert json.loads(accepted.stdout)["cleared"] == ["0002"]
    text = run_cli("-c", str(ini), "--url", mariadb_url, "status")
    assert text.exit_code == 0, text.stdout
    assert "Half-applied" not in text.stdout and "Up to date." in text.stdout


def test_the_half_applied_note_on_mariadb_goes_when_the_database_moves_past_it(
    tmp_path: Path, mariadb_url: str
) -> None:
    """0002 replaced by a fixed revision with another id: upgrading to it settles the note."""
    ini, broken = _half_applied(tmp_path, mariadb_url)
    fixed = broken.read_text().replace("revision = '0002'", "revision = '0003'").replace(
        "op.add_column('authors', sa.Column('country', sa.String(2)))\n", ""
    ).replace("op.execute('ALTER TABLE no_such_table ADD COLUMN x INT')",
              "op.execute('ALTER TABLE authors MODIFY country VARCHAR(3)')")  # fmt: skip
    broken.unlink()
    (broken.parent / "0003_fixed.py").write_text(fixed)
    _upgrade_leaves_no_note(ini, mariadb_url)


def test_when_retries_run_out_on_mariadb_the_error_names_the_blocking_session(
    tmp_path: Path, mariadb_url: str
) -> None:
    ini = _project(tmp_path / "p", mariadb_url)
    url = sa.make_url(mariadb_url)
    blocker = pymysql.connect(host=url.host, port=url.port, user=url.username,
                              database=url.database, autocommit=False)  # fmt: skip
    try:
        with blocker.cursor() as cursor:
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT count(*) FROM authors")
        result = subprocess.run(
            _migrasafe(ini, mariadb_url, "upgrade", "--db-lock-timeout", "1s", "--retries", "1"),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        blocker.rollback()
        blocker.close()
    assert result.returncode == 2, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("migrasafe: error")]
    assert len(ours) == 1 and "upgrade failed at revision 0002" in ours[0]
    assert "(after 2 attempts)" in ours[0] and "blocked by connection" in ours[0]
    assert "the database is now at 0001" in ours[0]


def test_verify_builds_no_tls_context_per_connection_to_a_server_without_tls(
    tmp_path: Path, mariadb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyMySQL tries TLS by default and loads the system's certificates for it on every
    connection (18 ms); verify connects once a step on MySQL. The suite's MariaDB has no
    TLS, so the scratch sessions are told not to try, and verify's findings are the same."""
    import ssl

    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    made: list[object] = []
    original = ssl.create_default_context

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(args)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    project = make_user_project("generic", tmp_path / "g", mariadb_url)
    monkeypatch.chdir(project)
    monkeypatch.delitem(sys.modules, "models", raising=False)
    monkeypatch.setattr(ssl, "create_default_context", counted)
    report = verify(load_project(project / "alembic.ini"), url=mariadb_url)
    assert report.ok and list(report.coverage.with_data) == REVISIONS
    assert report.steps == 9
    assert len(made) <= 2, f"{len(made)} TLS contexts for 9 steps"  # creating, dropping it


_REVISION = '''"""{rev}"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down!r}


def upgrade():
{up}


def downgrade():
{back}
'''


def test_verify_reports_a_revision_that_fails_midway_on_mariadb_by_its_own_error(
    tmp_path: Path, mariadb_url: str
) -> None:
    """Revisions share a run of env.py on MySQL too, but its DDL commits at once: the
    column 0002 added before failing stays. verify must name 0002's own error (not a
    "duplicate column" from running it again: the scratch database is rebuilt to 0001
    before 0002 is retried on empty tables), say why it could not check it, and that
    0003, its child, could not be reached."""
    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    ini = make_project(tmp_path / "p", "generic")
    versions = ini.parent / "migrations" / "versions"
    table = ("    op.create_table('t', sa.Column('id', sa.Integer(), primary_key=True),"
             " sa.Column('name', sa.String(20)))")  # fmt: skip
    for rev, down, up, back in [
        ("0001", None, table, "    op.drop_table('t')"),
        ("0002", "0001", "    op.add_column('t', sa.Column('c', sa.Integer()))\n"
                         "    op.execute('SELECT * FROM no_such_table')",
         "    op.drop_column('t', 'c')"),
        ("0003", "0002", "    op.create_index('ix', 't', ['name'])",
         "    op.drop_index('ix', table_name='t')"),
    ]:  # fmt: skip
        (versions / f"{rev}_r.py").write_text(_REVISION.format(rev=rev, down=down, up=up,
                                                               back=back))  # fmt: skip
    report = verify(load_project(ini), url=mariadb_url)
    assert [(f.rule, f.revision) for f in report.findings] == [("upgrade-failed", "0002")]
    assert "no_such_table" in report.findings[0].message
    assert list(report.coverage.with_data) == ["0001"]
    assert report.coverage.not_checked == {
        "0002": "its upgrade failed, even on empty tables",
        "0003": "its parent 0002 could not be applied",
    }


def test_generated_rows_fit_mysql_types_and_keys(tmp_path: Path, mariadb_url: str) -> None:
    """MySQL's Boolean is TINYINT(1) (0 or 1), SMALLINT has its range, a composite foreign
    key takes one parent row, a primary key that is a foreign key takes distinct parents, and
    a generated column takes no value: the scratch database accepts every row."""
    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    ini = make_project(tmp_path / "p", "generic", "verify_generator_shapes")
    report = verify(load_project(ini), url=mariadb_url)
    assert report.ok, [f.message for f in report.findings]
    assert report.refused_rows == {} and report.fully_checked


def test_an_upgrade_refusing_the_generated_rows_is_retried_on_mariadb_too(
    tmp_path: Path, mariadb_url: str
) -> None:
    """0002 adds a foreign key the generated rows do not satisfy (octavia's 9bf4d21caaea):
    on MySQL its DDL so far stays, so the scratch database is rebuilt to 0001 and 0002 is
    retried on empty tables, then on rows shaped by the schema it leaves; 0003 is reached."""
    from migrasafe import load_project
    from migrasafe.checks.verify import verify

    ini = make_project(tmp_path / "p", "generic")
    versions = ini.parent / "migrations" / "versions"
    child = ("    op.create_table('t', sa.Column('id', sa.Integer(), primary_key=True),"
             " sa.Column('owner_id', sa.Integer()))")  # fmt: skip
    parent = (
        "    op.create_table('owners', sa.Column('id', sa.Integer(), primary_key=True))\n"
        "    op.create_foreign_key('fk_t_owner', 't', 'owners', ['owner_id'], ['id'])"
    )
    for rev, down, up, back in [
        ("0001", None, child, "    op.drop_table('t')"),
        ("0002", "0001", parent, "    op.drop_constraint('fk_t_owner', 't', type_='foreignkey')"
                                 "\n    op.drop_table('owners')"),
        ("0003", "0002", "    op.create_index('ix', 't', ['owner_id'])",
         "    op.drop_index('ix', table_name='t')"),
    ]:  # fmt: skip
        (versions / f"{rev}_r.py").write_text(_REVISION.format(rev=rev, down=down, up=up,
                                                               back=back))  # fmt: skip
    report = verify(load_project(ini), url=mariadb_url)
    assert report.coverage.not_checked == {}, report.findings
    assert "upgrade-failed" not in {f.rule for f in report.findings}
    assert report.checked == 3
