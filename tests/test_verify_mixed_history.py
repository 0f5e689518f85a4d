"""A 43-revision history of the operations real projects mix, verified end to end.

verify reads back only what a step's SQL named. It infers the tables that exist from
CREATE, DROP and RENAME statements, keeps the rows of a table touched only by index
DDL, and skips Alembic's walk of the history on the way down. This history exercises
all of that: tables created with a foreign key to a renamed one, columns with server
defaults, indexes, tables renamed, raw SQL tables made and dropped, and data migrations
that change every row and undo it. Every revision must reverse cleanly with data, on
SQLite, PostgreSQL and MariaDB, but the last, whose downgrade deletes rows behind an index
drop: each of those shortcuts, if wrong, turns up here as a finding too many, one
missing, or a revision left unchecked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_project, run_cli

HEADER = '''"""{message}"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down!r}


def upgrade() -> None:
{up}


def downgrade() -> None:
{down_body}
'''


def _history(versions: Path, cycles: int) -> list[str]:
    """Six kinds of revision, ``cycles`` times; returns the revision ids in order."""
    revisions: list[str] = []
    latest: str | None = None  # the newest application table, under its current name
    for cycle in range(cycles):
        parent = latest
        table = f"item{cycle}"
        foreign = (f", sa.Column('parent_id', sa.Integer(), sa.ForeignKey('{parent}.id'),"
                   " nullable=True)") if parent else ""  # fmt: skip
        renamed = f"{table}_r"
        kinds = [
            (f"create {table}",
             f"    op.create_table('{table}', sa.Column('id', sa.Integer(), primary_key=True),"
             f" sa.Column('name', sa.String(60), nullable=False){foreign})",
             f"    op.drop_table('{table}')"),
            (f"score on {table}",
             f"    op.add_column('{table}', sa.Column('score', sa.Integer(), nullable=False,"
             " server_default='0'))",
             f"    with op.batch_alter_table('{table}') as batch:\n"
             "        batch.drop_column('score')"),
            (f"index {table}.name",
             f"    op.create_index('ix_{table}_name', '{table}', ['name'])",
             f"    op.drop_index('ix_{table}_name', table_name='{table}')"),
            (f"rename {table}",
             f"    op.rename_table('{table}', '{renamed}')",
             f"    op.rename_table('{renamed}', '{table}')"),
            (f"raw notes {cycle}",
             f"    op.execute('CREATE TABLE notes{cycle} (id INTEGER PRIMARY KEY, note TEXT)')",
             f"    op.execute('DROP TABLE notes{cycle}')"),
            (f"mark names in {renamed}",
             f"    mark = 'CONCAT(name, \\'!\\')' if op.get_bind().dialect.name == 'mysql' "
             "else \"name || '!'\"\n"
             f"    op.execute(f'UPDATE {renamed} SET name = {{mark}}')",
             f"    op.execute('UPDATE {renamed} SET name = substr(name, 1, length(name) - 1)')"),
        ]  # fmt: skip
        for message, up, back in kinds:
            rev = f"{len(revisions) + 1:04d}"
            down = revisions[-1] if revisions else None
            (versions / f"{rev}_r.py").write_text(
                HEADER.format(message=message, rev=rev, down=down, up=up, down_body=back)
            )
            revisions.append(rev)
        latest = renamed
    rev, down = f"{len(revisions) + 1:04d}", revisions[-1]
    (versions / f"{rev}_r.py").write_text(HEADER.format(  # the one wrong downgrade
        message=f"index {latest}.score; the downgrade also deletes half its rows", rev=rev,
        down=down, up=f"    op.create_index('ix_score', '{latest}', ['score'])",
        down_body=f"    op.drop_index('ix_score', table_name='{latest}')\n"
                  f"    op.execute('DELETE FROM {latest} WHERE id % 2 = 0')",
    ))  # fmt: skip
    return [*revisions, rev]


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mariadb"])
def test_a_mixed_history_reverses_cleanly_with_data(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    ini = make_project(tmp_path / "p", "generic")
    revisions = _history(ini.parent / "migrations" / "versions", cycles=7)
    fixture = {"postgresql": "pg_url", "mariadb": "mariadb_url"}.get(database)
    server = ["--url", str(request.getfixturevalue(fixture))] if fixture else []
    result = run_cli("-c", str(ini), "verify", *server, "--json")
    report = json.loads(result.stdout)
    found = [(f["rule"], f["revision"], f["table"]) for f in report["findings"]]
    assert found == [("data-lost", revisions[-1], "item6_r")], report["findings"]
    assert result.exit_code == 1
    assert report["coverage"]["with_data"] == revisions
    assert report["refused_rows"] == {}
