"""A rename in two phases (safe_op.rename_column_expand / _contract) on SQLite, PostgreSQL and
MariaDB: between the phases, the old release's writes (old name) and the new release's (new
name) both land in both columns; after contract the old column is gone; verify reverses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import make_project, query, run_cli

REVISIONS = {
    "0001_users.py": (None, 'op.create_table("users", sa.Column("id", sa.Integer, '
                      'primary_key=True), sa.Column("name", sa.String(50)))',
                      'op.drop_table("users")', ""),
    "0002_expand.py": ("0001",
                       'safe_op.rename_column_expand("users", "name", "full_name", '
                       "sa.String(50), batch_size=2)",
                       'safe_op.undo_rename_column_expand("users", "name", "full_name")',
                       'phase = "expand"'),
    "0003_contract.py": ("0002",
                         'safe_op.rename_column_contract("users", "name", "full_name")',
                         'safe_op.undo_rename_column_contract("users", "name", "full_name", '
                         "sa.String(50))",
                         'phase = "contract"'),
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("pg_url" if request.param == "postgresql"
                                       else "mariadb_url"))  # fmt: skip


def _project(directory: Path) -> Path:
    ini = make_project(directory, "generic")
    versions = directory / "migrations" / "versions"
    for name, (down, upgrade, downgrade, extra) in REVISIONS.items():
        (versions / name).write_text(
            f'"""{name}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            "from migrasafe import safe_op\n\n"
            f"revision = {name[:4]!r}\ndown_revision = {down!r}\n{extra}\n\n"
            f"def upgrade() -> None:\n    {upgrade}\n\n\n"
            f"def downgrade() -> None:\n    {downgrade}\n"
        )
    return ini


def _run(url: str, sql: str) -> None:
    query(url, sql)


def _users(url: str) -> dict[int, tuple[object, ...]]:
    return {int(str(r[0])): tuple(r[1:]) for r in query(url, "SELECT * FROM users ORDER BY id")}


def test_both_releases_write_through_the_expand_phase(tmp_path: Path, url: str) -> None:
    ini = _project(tmp_path / "p")
    cli = ("-c", str(ini), "--url", url)
    assert run_cli(*cli, "upgrade", "0001").exit_code == 0
    for n in range(1, 6):  # rows that exist before the deploy: backfilled, in batches of 2
        _run(url, f"INSERT INTO users (id, name) VALUES ({n}, 'user{n}')")

    expand = run_cli(*cli, "upgrade", "--phase", "expand")
    assert expand.exit_code == 0, expand.stderr
    assert _users(url)[3] == ("user3", "user3")
    _run(url, "INSERT INTO users (id, name) VALUES (10, 'old release')")  # the old release
    _run(url, "INSERT INTO users (id, full_name) VALUES (11, 'new release')")  # the new one
    _run(url, "UPDATE users SET name = 'renamed by old' WHERE id = 1")
    _run(url, "UPDATE users SET full_name = 'renamed by new' WHERE id = 2")
    rows = _users(url)
    assert rows[10] == ("old release", "old release")
    assert rows[11] == ("new release", "new release")
    assert rows[1] == ("renamed by old", "renamed by old")
    assert rows[2] == ("renamed by new", "renamed by new")

    contract = run_cli(*cli, "upgrade", "--phase", "contract")
    assert contract.exit_code == 0, contract.stderr
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("users")}
    finally:
        engine.dispose()
    assert columns == {"id", "full_name"}
    _run(url, "INSERT INTO users (id, full_name) VALUES (12, 'after contract')")  # no trigger
    assert _users(url)[12] == ("after contract",)

    assert run_cli(*cli, "downgrade", "0002").exit_code == 0  # the old column comes back
    assert _users(url)[11] == ("new release", "new release")
    assert run_cli(*cli, "downgrade", "0001").exit_code == 0
    assert _users(url)[2] == ("renamed by new",)


def test_verify_reverses_the_rename_with_data(tmp_path: Path, url: str) -> None:
    ini = _project(tmp_path / "p")
    server = [] if url.startswith("sqlite") else ["--url", url]
    result = run_cli("-c", str(ini), "-q", "verify", "--json", *server)
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["findings"]
    assert report["coverage"]["with_data"] == ["0001", "0002", "0003"]
