"""`migrasafe fleet`: many databases or tenant schemas in one command (tests/envs/tenants).

The project's 0002 adds a unique index on accounts.email, so a tenant holding a
duplicate email fails it; 0003 kills its worker (SIGKILL) for the tenant named by
$FLEET_TEST_KILL_TENANT.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrasafe import load_project, upgrade
from migrasafe.fleet import Target, shard

from conftest import ENVS, query, run_cli


def _project(tmp_path: Path, url: str) -> Path:
    directory = tmp_path / "project"
    shutil.copytree(ENVS / "tenants", directory)
    ini = directory / "alembic.ini"
    ini.write_text(ini.read_text().replace("@@URL@@", url))
    return ini


def _fleet(ini: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = run_cli("-c", str(ini), "fleet", *args, "--json", env=env)
    return result.exit_code, json.loads(result.stdout)


def _states(report: dict) -> dict[str, str]:
    return {r["target"]: r["state"] for r in report["targets"]}


def _seed(url: str, schema: str | None = None, duplicate: bool = False) -> None:
    table = f'"{schema}".accounts' if schema else "accounts"
    emails = ["a@example.com", "b@example.com"] + (["a@example.com"] if duplicate else [])
    for email in emails:
        query(url, f"INSERT INTO {table} (email) VALUES (:e)", e=email)


def _at_0001(ini: Path, url: str, tenant: str | None = None) -> None:
    """Set a tenant up in-process (cheaper than a fleet run): at 0001, with its accounts."""
    project = load_project(str(ini), url, x_args=(f"tenant={tenant}",) if tenant else ())
    upgrade(project, "0001")


def _version(url: str, schema: str | None = None) -> str | None:
    table = f'"{schema}".alembic_version' if schema else "alembic_version"
    rows = query(url, f"SELECT version_num FROM {table}")
    return str(rows[0][0]) if rows else None


def _indexes(url: str, schema: str | None = None) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return {str(i["name"]) for i in sa.inspect(conn).get_indexes("accounts", schema)}
    finally:
        engine.dispose()


# -- a database per tenant: SQLite files, PostgreSQL databases ----------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def tenant_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Four tenant databases, name -> URL."""
    names = ["acme", "globex", "initech", "umbrella"]
    if request.param == "sqlite":
        (tmp_path / "tenants").mkdir()
        yield {n: f"sqlite:///{tmp_path / 'tenants' / n}.db" for n in names}
        return
    admin_url = request.getfixturevalue("pg_admin_url")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    prefix = f"fleet_{uuid.uuid4().hex[:8]}"
    urls = {}
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'CREATE DATABASE "{prefix}_{name}"')
            urls[name] = (
                sa.make_url(admin_url)
                .set(database=f"{prefix}_{name}")
                .render_as_string(hide_password=False)
            )
    try:
        yield urls
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{prefix}_{name}" WITH (FORCE)')
        admin.dispose()


def _targets_file(tmp_path: Path, urls: dict[str, str]) -> Path:
    path = tmp_path / "fleet.txt"
    path.write_text("# tenant databases\n" + "".join(f"{n} {u}\n" for n, u in urls.items()))
    return path


def test_a_failing_tenant_is_reported_unchanged_the_others_reach_head_and_a_rerun_finishes_it(
    tmp_path: Path, tenant_databases: dict[str, str]
) -> None:
    urls = tenant_databases
    ini = _project(tmp_path, urls["acme"])
    targets = str(_targets_file(tmp_path, urls))
    for name, url in urls.items():
        _at_0001(ini, url)
        _seed(url, duplicate=name == "initech")

    code, report = _fleet(ini, "upgrade", "--targets", targets, "--parallel", "2", "--keep-going")

    assert code == 1
    assert _states(report) == {"acme": "done", "globex": "done", "initech": "failed",
                               "umbrella": "done"}  # fmt: skip
    failed = next(r for r in report["targets"] if r["target"] == "initech")
    assert (failed["from"], failed["to"]) == ("0001", "0001")
    assert "0002" in failed["error"]
    assert report["summary"] == {"total": 4, "done": 3, "failed": 1}
    assert {n: _version(u) for n, u in urls.items()} == {
        "acme": "0003", "globex": "0003", "initech": "0001", "umbrella": "0003"
    }  # fmt: skip
    assert "uq_accounts_email" not in _indexes(urls["initech"])

    query(urls["initech"], "DELETE FROM accounts WHERE id = 3")
    code, report = _fleet(ini, "upgrade", "--targets", targets, "--parallel", "2")

    assert code == 0, report
    assert _states(report) == {"acme": "unchanged", "globex": "unchanged", "initech": "done",
                               "umbrella": "unchanged"}  # fmt: skip
    assert _version(urls["initech"]) == "0003"
    recorded = query(urls["initech"], "SELECT revision FROM migrasafe_checksums ORDER BY 1")
    assert recorded == [("0001",), ("0002",), ("0003",)]  # kept as for a single database


def test_a_tenant_whose_worker_is_killed_is_reported_failed_and_a_rerun_resumes_it(
    tmp_path: Path, tenant_databases: dict[str, str]
) -> None:
    urls = tenant_databases
    ini = _project(tmp_path, urls["acme"])
    targets = str(_targets_file(tmp_path, urls))
    victim = sa.make_url(urls["globex"]).database or ""

    code, report = _fleet(ini, "upgrade", "--targets", targets, "--keep-going",
                          env={"FLEET_TEST_KILL_TENANT": Path(victim).name})  # fmt: skip

    assert code == 1
    assert _states(report) == {"acme": "done", "globex": "failed", "initech": "done",
                               "umbrella": "done"}  # fmt: skip
    failed = next(r for r in report["targets"] if r["target"] == "globex")
    assert "killed by SIGKILL" in failed["error"]
    assert _version(urls["globex"]) == "0002"  # 0003 was under way: rolled back whole

    code, report = _fleet(ini, "upgrade", "--targets", targets)

    assert code == 0, report
    assert _states(report)["globex"] == "done"
    assert [r["state"] for r in report["targets"] if r["target"] != "globex"] == ["unchanged"] * 3
    assert _version(urls["globex"]) == "0003"


def test_without_keep_going_the_first_failure_stops_the_run_and_the_rest_are_skipped(
    tmp_path: Path,
) -> None:
    urls = {n: f"sqlite:///{tmp_path / n}.db" for n in ("a", "b", "c", "d")}
    ini = _project(tmp_path, urls["a"])
    targets = str(_targets_file(tmp_path, urls))
    for name, url in urls.items():
        _at_0001(ini, url)
        _seed(url, duplicate=name == "b")

    code, report = _fleet(ini, "upgrade", "--targets", targets)

    assert code == 1
    assert _states(report) == {"a": "done", "b": "failed", "c": "skipped", "d": "skipped"}
    assert report["stopped"] == "target b failed"
    assert [_version(u) for u in urls.values()] == ["0003", "0001", "0001", "0001"]


# -- a schema per tenant in one PostgreSQL database -----------------------------------------

TENANTS = [f"tenant_{i:02d}" for i in range(1, 13)]
BAD = "tenant_05"


@pytest.fixture
def schema_tenants(tmp_path: Path, pg_url: str) -> Path:
    """12 tenant schemas at 0001 with accounts; tenant_05 holds a duplicate email.
    The fleet is declared in the project's pyproject.toml."""
    for tenant in [*TENANTS, "other"]:
        query(pg_url, f'CREATE SCHEMA "{tenant}"')
    ini = _project(tmp_path, pg_url)
    (ini.parent / "pyproject.toml").write_text('[tool.migrasafe.fleet]\nschemas = "tenant_*"\n')
    for tenant in TENANTS:
        _at_0001(ini, pg_url, tenant)
        _seed(pg_url, tenant, duplicate=tenant == BAD)
    return ini


def test_a_canary_that_fails_stops_the_release_before_the_other_tenants(
    schema_tenants: Path, pg_url: str
) -> None:
    code, report = _fleet(schema_tenants, "upgrade", "--canary", "6", "--parallel", "2",
                          "--keep-going")  # fmt: skip

    assert code == 1
    states = _states(report)
    assert states[BAD] == "failed"
    assert {states[t] for t in TENANTS[6:]} == {"skipped"}
    assert "canary tenant_05 failed" in report["stopped"]
    assert {_version(pg_url, t) for t in TENANTS[6:]} == {"0001"}  # none moved past the canaries
    assert _version(pg_url, BAD) == "0001"


def test_schema_tenants_with_keep_going_reach_head_but_one_and_the_rerun_finishes_only_it(
    schema_tenants: Path, pg_url: str
) -> None:
    code, report = _fleet(schema_tenants, "upgrade", "--parallel", "2", "--keep-going")

    assert code == 1
    assert report["summary"] == {"total": 12, "done": 11, "failed": 1}
    bad = next(r for r in report["targets"] if r["target"] == BAD)
    assert (bad["state"], bad["from"], bad["to"]) == ("failed", "0001", "0001")
    assert {t: _version(pg_url, t) for t in TENANTS} == {
        t: "0001" if t == BAD else "0003" for t in TENANTS
    }
    assert "uq_accounts_email" not in _indexes(pg_url, BAD)
    assert "plan" not in {c[0] for c in query(
        pg_url, "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = :s AND table_name = 'accounts'", s=BAD)}  # fmt: skip

    query(pg_url, f'DELETE FROM "{BAD}".accounts WHERE id = 3')
    code, report = _fleet(schema_tenants, "upgrade", "--parallel", "2")

    assert code == 0, report
    assert [r["target"] for r in report["targets"] if r["state"] == "done"] == [BAD]
    assert report["summary"] == {"total": 12, "done": 1, "unchanged": 11}


def test_shards_one_two_and_three_of_three_cover_every_target_exactly_once(tmp_path: Path) -> None:
    urls = {f"t{i}": f"sqlite:///{tmp_path / f't{i}'}.db" for i in range(7)}
    ini = _project(tmp_path, urls["t0"])
    targets = str(_targets_file(tmp_path, urls))
    seen: list[str] = []
    for index in (1, 2, 3):
        code, report = _fleet(ini, "upgrade", "--targets", targets, "--shard", f"{index}/3")
        assert code == 0, report
        assert set(_states(report).values()) == {"done"}  # no shard ran another's target
        seen += [r["target"] for r in report["targets"]]
    assert sorted(seen) == sorted(urls)
    assert {_version(u) for u in urls.values()} == {"0003"}


def test_shards_split_any_fleet_into_disjoint_parts_in_the_fleets_order() -> None:
    targets = [Target(f"t{i}", f"sqlite:///t{i}.db") for i in (5, 1, 9, 3, 7, 2, 8)]
    parts = [shard(targets, k, 3) for k in (1, 2, 3)]
    names = [t.name for part in parts for t in part]
    assert sorted(names) == sorted(t.name for t in targets)
    assert len(names) == len(set(names))
    for part in parts:
        assert part == [t for t in targets if t in part]  # the fleet's own order kept


# -- declaring a fleet; secrets; errors ----------------------------------------------------


def test_a_command_that_prints_urls_declares_the_fleet(tmp_path: Path) -> None:
    ini = _project(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    (ini.parent / "inventory.py").write_text(
        "for name in ('north', 'south'):\n    print(name, f'sqlite:///{name}.db')\n"
    )
    (ini.parent / "pyproject.toml").write_text(
        '[tool.migrasafe.fleet]\ncommand = ["python3", "inventory.py"]\n'
    )
    code, report = _fleet(ini, "upgrade")
    assert code == 0, report
    assert _states(report) == {"north": "done", "south": "done"}
    assert _version(f"sqlite:///{ini.parent / 'south.db'}") == "0003"


def test_a_password_from_the_environment_reaches_the_target_and_is_never_printed(
    tmp_path: Path, pg_url: str
) -> None:
    secret = "s3cr3t-Tenant-pw"
    parsed = sa.make_url(pg_url)
    declared = (f"{parsed.drivername}://{parsed.username}:${{TENANT_DB_PASSWORD}}@{parsed.host}:"
                f"{parsed.port}/{parsed.database}")  # fmt: skip
    ini = _project(tmp_path, pg_url)
    (ini.parent / "pyproject.toml").write_text(
        f'[tool.migrasafe.fleet]\nurls = [{{name = "main", url = "{declared}"}}]\n'
    )
    env = {"TENANT_DB_PASSWORD": secret}
    result = run_cli("-c", str(ini), "fleet", "upgrade", "--json", env=env)
    assert result.exit_code == 0, result.stdout
    assert secret not in result.stdout + result.stderr
    assert json.loads(result.stdout)["targets"][0]["url"].count("***") == 1
    assert _version(pg_url) == "0003"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no fleet declared"),
        (("--shard", "4/3"), "expected K/N with 1 <= K <= N"),
        (("--targets", "missing.txt"), "cannot read the fleet file"),
        (("--targets", "fleet.txt", "--schemas", "t_*"), "choose one"),
    ],
)
def test_a_bad_fleet_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = _project(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.chdir(tmp_path)
    result = run_cli("-c", str(ini), "fleet", "status", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unset_variable_in_a_declared_url_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = _project(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv("FLEET_NO_SUCH_PASSWORD", raising=False)
    (tmp_path / "fleet.txt").write_text("main postgresql://app:${FLEET_NO_SUCH_PASSWORD}@h/db\n")
    result = run_cli("-c", str(ini), "fleet", "upgrade", "--targets", str(tmp_path / "fleet.txt"))
    assert result.exit_code == 2
    assert "${FLEET_NO_SUCH_PASSWORD} is not set in the environment" in result.stderr


def test_piped_output_is_a_line_per_target_and_a_summary(tmp_path: Path) -> None:
    urls = {n: f"sqlite:///{tmp_path / n}.db" for n in ("a", "b")}
    ini = _project(tmp_path, urls["a"])
    result = run_cli("-c", str(ini), "fleet", "upgrade", "--targets",
                     str(_targets_file(tmp_path, urls)))  # fmt: skip
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fleet upgrade: [1/2] a  done  base -> 0003  ")
    assert lines[-1].startswith("2 target(s) in ") and lines[-1].endswith(": 2 done.")


def test_every_fleet_command_and_option_is_in_the_readme() -> None:
    from migrasafe.cli import main

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    group = main.commands["fleet"]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"migrasafe fleet {name}" in readme
        assert command.help
        missing = [o for p in command.params for o in p.opts
                   if o.startswith("--") and o not in readme]  # fmt: skip
        assert not missing, f"README lacks `migrasafe fleet {name}`'s {', '.join(missing)}"


def test_the_lock_is_per_tenant_schema_so_a_held_tenant_never_blocks_the_others(
    tmp_path: Path, pg_url: str
) -> None:
    import zlib

    for tenant in ("tenant_a", "tenant_b"):
        query(pg_url, f'CREATE SCHEMA "{tenant}"')
    ini = _project(tmp_path, pg_url)
    key = zlib.crc32(b"migrasafe migration lock tenant_a")  # another run migrating tenant_a
    holder = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with holder.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        code, report = _fleet(ini, "upgrade", "--schemas", "tenant_*", "--lock-timeout", "0",
                              "--keep-going")  # fmt: skip
    holder.dispose()

    assert code == 1
    assert _states(report) == {"tenant_a": "failed", "tenant_b": "done"}
    assert "waiting for the migration lock" in report["targets"][0]["error"]
    assert _version(pg_url, "tenant_b") == "0003"
