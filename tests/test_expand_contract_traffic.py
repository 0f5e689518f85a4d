"""A column rename deployed under the old release: expand/contract keeps it working, a plain
rename breaks it (the measured version with live traffic: bench/expand_contract_under_load.py).

The expand revision adds the new column, keeps both in sync with triggers (a write of either
sets the other) and backfills; the contract revision drops the triggers and the old column.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import make_project, query, run_cli

CREATE = '''"""accounts"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("accounts", sa.Column("id", sa.Integer(), primary_key=True),
                    sa.Column("email", sa.Text()))
    accounts = sa.table("accounts", sa.column("id", sa.Integer), sa.column("email", sa.Text))
    op.bulk_insert(accounts, [{"id": i, "email": f"user{i}@example.com"} for i in range(1, 301)])


def downgrade() -> None:
    op.drop_table("accounts")
'''
PLAIN = '''"""rename accounts.email to email_address"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.alter_column("accounts", "email", new_column_name="email_address")


def downgrade() -> None:
    op.alter_column("accounts", "email_address", new_column_name="email")
'''
# PostgreSQL: one BEFORE trigger sets the other column; SQLite cannot assign NEW, so AFTER
# triggers update the row (recursive triggers are off by default: no loop).
PG_SYNC = [
    """CREATE FUNCTION accounts_email_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.email_address := coalesce(NEW.email_address, NEW.email);
        NEW.email := coalesce(NEW.email, NEW.email_address);
    ELSIF NEW.email IS DISTINCT FROM OLD.email THEN
        NEW.email_address := NEW.email;
    ELSIF NEW.email_address IS DISTINCT FROM OLD.email_address THEN
        NEW.email := NEW.email_address;
    END IF;
    RETURN NEW;
END $$""",
    "CREATE TRIGGER accounts_email_sync BEFORE INSERT OR UPDATE ON accounts "
    "FOR EACH ROW EXECUTE FUNCTION accounts_email_sync()",
]
PG_UNSYNC = ["DROP TRIGGER accounts_email_sync ON accounts",
             "DROP FUNCTION accounts_email_sync()"]  # fmt: skip
SQLITE_SYNC = [
    "CREATE TRIGGER accounts_email_sync_insert AFTER INSERT ON accounts BEGIN UPDATE accounts "
    "SET email_address = coalesce(NEW.email_address, NEW.email), email = coalesce(NEW.email, "
    "NEW.email_address) WHERE id = NEW.id; END",
    "CREATE TRIGGER accounts_email_sync_old AFTER UPDATE OF email ON accounts "
    "WHEN NEW.email IS NOT OLD.email "
    "BEGIN UPDATE accounts SET email_address = NEW.email WHERE id = NEW.id; END",
    "CREATE TRIGGER accounts_email_sync_new AFTER UPDATE OF email_address ON accounts "
    "WHEN NEW.email_address IS NOT OLD.email_address "
    "BEGIN UPDATE accounts SET email = NEW.email_address WHERE id = NEW.id; END",
]
SQLITE_UNSYNC = [f"DROP TRIGGER accounts_email_sync_{name}" for name in ("insert", "old", "new")]
PHASES = '''"""{doc}"""
import sqlalchemy as sa
from alembic import op
from migrasafe.backfill import backfill

revision = "{rev}"
down_revision = "{down}"
phase = "{phase}"
SYNC = {{"postgresql": {pg_sync!r}, "sqlite": {sqlite_sync!r}}}
UNSYNC = {{"postgresql": {pg_unsync!r}, "sqlite": {sqlite_unsync!r}}}
accounts = sa.table("accounts", sa.column("id", sa.Integer), sa.column("email", sa.Text),
                    sa.column("email_address", sa.Text))


def sync(on: bool) -> None:
    for statement in (SYNC if on else UNSYNC)[op.get_context().dialect.name]:
        op.execute(statement)


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''
SQL = {"pg_sync": PG_SYNC, "sqlite_sync": SQLITE_SYNC, "pg_unsync": PG_UNSYNC,
       "sqlite_unsync": SQLITE_UNSYNC}  # fmt: skip
EXPAND = PHASES.format(
    doc="expand: add email_address, kept in sync with email, backfilled", rev="0002",
    down="0001", phase="expand", **SQL,
    upgrade='    op.add_column("accounts", sa.Column("email_address", sa.Text()))\n'
    "    sync(True)\n"
    '    backfill(accounts, {"email_address": accounts.c.email}, batch_size=100,\n'
    "             where=accounts.c.email_address.is_(None) & accounts.c.email.is_not(None))",
    downgrade="    sync(False)\n"
    '    with op.batch_alter_table("accounts") as batch:\n'
    '        batch.drop_column("email_address")',
)  # fmt: skip
CONTRACT = PHASES.format(
    doc="contract: drop the sync and accounts.email", rev="0003", down="0002",
    phase="contract", **SQL,
    upgrade="    sync(False)\n"
    '    with op.batch_alter_table("accounts") as batch:\n'
    '        batch.drop_column("email")',
    downgrade='    op.add_column("accounts", sa.Column("email", sa.Text()))\n'
    "    sync(True)\n"
    '    backfill(accounts, {"email": accounts.c.email_address}, batch_size=100,\n'
    "             where=accounts.c.email.is_(None) & accounts.c.email_address.is_not(None))",
)  # fmt: skip


def _project(directory: Path, revisions: dict[str, str]) -> Path:
    ini = make_project(directory, "generic")
    versions = directory / "migrations" / "versions"
    for name, text in {"0001_accounts.py": CREATE, **revisions}.items():
        (versions / name).write_text(text)
    return ini


def _release(url: str, column: str, key: int) -> str:
    """The queries of the release that uses ``accounts.<column>``: an insert, an update of the
    column, a read by id. Returns what the read saw."""
    query(url, f"INSERT INTO accounts (id, {column}) VALUES (:key, :value)", key=key,
          value=f"new{key}@example.com")  # fmt: skip
    query(url, f"UPDATE accounts SET {column} = :value WHERE id = 7", value=f"{column}@7")
    return str(query(url, f"SELECT {column} FROM accounts WHERE id = :key", key=key)[0][0])


def _upgrade(ini: Path, url: str, *args: str) -> None:
    run = run_cli("-c", str(ini), "--url", url, "upgrade", *args)
    assert run.exit_code == 0, run.stderr


def _column(url: str, column: str, key: int) -> object:
    return query(url, f"SELECT {column} FROM accounts WHERE id = :key", key=key)[0][0]


def test_the_old_release_keeps_working_through_an_expand_contract_rename(
    tmp_path: Path, db_url: str
) -> None:
    ini = _project(tmp_path / "p", {"0002_expand.py": EXPAND, "0003_contract.py": CONTRACT})
    _upgrade(ini, db_url, "0001")
    assert _release(db_url, "email", 1001) == "new1001@example.com"

    _upgrade(ini, db_url, "--phase", "expand")
    # The old release still runs, and the new one rolls out beside it: each sees the other's
    # writes, and the backfill left no row without the new column.
    assert _release(db_url, "email", 1002) == "new1002@example.com"
    assert _column(db_url, "email_address", 1002) == "new1002@example.com"
    assert _column(db_url, "email_address", 7) == "email@7"
    assert _release(db_url, "email_address", 1003) == "new1003@example.com"
    assert _column(db_url, "email", 1003) == "new1003@example.com"
    assert _column(db_url, "email", 7) == "email_address@7"
    assert query(db_url, "SELECT count(*) FROM accounts WHERE email_address IS NULL "
                 "OR email_address <> email") == [(0,)]  # fmt: skip

    _upgrade(ini, db_url, "--phase", "contract")
    assert _release(db_url, "email_address", 1004) == "new1004@example.com"
    assert _column(db_url, "email_address", 1002) == "new1002@example.com"
    with pytest.raises(sa.exc.OperationalError if "sqlite" in db_url else sa.exc.ProgrammingError):
        _release(db_url, "email", 1005)  # after the rollout, the old release is gone


def test_a_plain_rename_breaks_the_old_release(tmp_path: Path, db_url: str) -> None:
    ini = _project(tmp_path / "p", {"0002_rename.py": PLAIN})
    _upgrade(ini, db_url, "0001")
    assert _release(db_url, "email", 1001) == "new1001@example.com"
    _upgrade(ini, db_url, "head")
    with pytest.raises(sa.exc.DBAPIError, match="email"):
        _release(db_url, "email", 1002)
