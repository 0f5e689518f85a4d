"""migrasafe.backfill: batched, resumable data migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrasafe.backfill import backfill, backfill_insert

from conftest import query, run_cli

items = sa.table("items", sa.column("id", sa.Integer), sa.column("label", sa.String),
                 sa.column("size", sa.Integer))  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, label VARCHAR(20), "
                             "size INTEGER)"))  # fmt: skip
        conn.execute(items.insert(), [
            {"id": n, "label": None if n % 3 == 0 else f"item {n}", "size": n}
            for n in range(1, 2501)
        ])  # fmt: skip
    return engine


def test_backfill_updates_only_matching_rows_in_batches(engine: sa.Engine) -> None:
    lines: list[str] = []
    with engine.begin() as conn:
        result = backfill(items, {"label": sa.literal("size ") + sa.cast(items.c.size, sa.String)},
                          where=items.c.label.is_(None), batch_size=1000, connection=conn,
                          progress=False, log=lines.append, log_every=1)  # fmt: skip
    assert (result.rows, result.batches) == (833, 3)
    assert len(lines) == 4 and "batch 3/3, 833 rows" in lines[2] and "done" in lines[3]
    with engine.connect() as conn:
        labels = dict(conn.execute(sa.select(items.c.id, items.c.label)).all())
    assert labels[3] == "size 3" and labels[2499] == "size 2499" and labels[4] == "item 4"
    assert None not in labels.values()


def test_interrupted_backfill_continues_where_it_stopped(engine: sa.Engine) -> None:
    class Stop(Exception):
        pass

    def stop_after_two(line: str) -> None:
        if "batch 2/" in line:
            raise Stop

    with engine.connect() as conn, pytest.raises(Stop):
        backfill(items, {"label": "filled"}, where=items.c.label.is_(None), batch_size=500,
                 commit_each_batch=True, connection=conn, progress=False, log=stop_after_two,
                 log_every=1)  # fmt: skip
    with engine.connect() as conn:
        done = conn.scalar(sa.select(sa.func.count()).where(items.c.label == "filled"))
    assert done == 333  # batches 1 and 2 (ids 1-1000) were committed

    with engine.connect() as conn:
        again = backfill(items, {"label": "filled"}, where=items.c.label.is_(None),
                         batch_size=500, commit_each_batch=True, connection=conn,
                         progress=False, log=lambda _line: None)  # fmt: skip
    assert again.rows == 833 - 333
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).where(items.c.label.is_(None))) == 0


def test_backfill_insert_copies_in_batches(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE big (id INTEGER PRIMARY KEY)"))
        big = sa.table("big", sa.column("id", sa.Integer))
        result = backfill_insert(big, ["id"], sa.select(items.c.id).where(items.c.size > 100),
                                 source=items, batch_size=700, connection=conn,
                                 log=lambda _line: None)  # fmt: skip
        assert result.batches == 4 and result.rows == 2400
        assert conn.scalar(sa.select(sa.func.count()).select_from(big)) == 2400


def test_empty_table_is_no_work(db_url: str) -> None:
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE items (id INTEGER PRIMARY KEY, label VARCHAR(20), "
                             "size INTEGER)"))  # fmt: skip
        result = backfill(items, {"label": "x"}, where=items.c.label.is_(None), connection=conn)
    assert (result.rows, result.batches) == (0, 0)


# -- the reference project's 0003, interrupted and run again ---------------------

DIE = '''
import os as _os
import signal as _signal

_lines = []


def _die_midway(line):
    """Test hook: kill this process after a few batches of the update pass."""
    _lines.append(line)
    if _os.environ.get("MIGRASAFE_TEST_DIE") and "backfill books: batch 2/" in line:
        _os.kill(_os.getpid(), _signal.SIGKILL)
'''


def test_interrupted_0003_completes_when_run_again(library: Path, db_url: str) -> None:
    script = next((library.parent / "migrations" / "versions").glob("0003_*.py"))
    text = script.read_text().replace("BATCH_SIZE = 5_000", "BATCH_SIZE = 4")
    text = text.replace("COMMIT_EACH_BATCH = False", "COMMIT_EACH_BATCH = True")
    text = text.replace("        commit_each_batch=COMMIT_EACH_BATCH,\n    )\n\n\ndef downgrade",
                        "        commit_each_batch=COMMIT_EACH_BATCH,\n        log=_die_midway,\n"
                        "        log_every=1,\n    )\n\n\ndef downgrade")  # fmt: skip
    script.write_text(text + DIE)
    assert run_cli("-c", str(library), "--url", db_url, "upgrade", "0002").exit_code == 0
    for n in range(1, 21):
        query(db_url, "INSERT INTO books (title, author, isbn, description, price) "
                      "VALUES (:t, :a, :i, :d, :p)", t=f"Book {n}", a="Someone", i=f"isbn-{n}",
              d=None if n % 2 else f"curated {n}", p=None if n % 4 else 5.0)  # fmt: skip
    before = query(db_url, "SELECT id, description, price, page_count FROM books ORDER BY id")

    command = [sys.executable, "-m", "migrasafe", "-c", str(library), "--url", db_url, "upgrade"]
    killed = subprocess.run(command, env={**os.environ, "MIGRASAFE_TEST_DIE": "1"},
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0002",)]
    partial = query(db_url, "SELECT count(*) FROM books WHERE page_count IS NOT NULL")
    assert partial == [(8,)]  # batches 1 and 2 (ids 1-8) committed, then the process died

    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    rows = query(db_url, "SELECT id, description, price, page_count FROM books ORDER BY id")
    assert all(r[1] is not None and r[2] is not None and r[3] == 300 for r in rows)
    assert rows[1][1] == "curated 2" and rows[3][2] == 5.0  # existing values kept

    # and the round trip is still lossless
    assert run_cli("-c", str(library), "--url", db_url, "downgrade", "0002").exit_code == 0
    assert query(db_url, "SELECT id, description, price, page_count FROM books ORDER BY id") == (
        before
    )


def test_offline_batches_that_commit_on_their_own_render_outside_the_transaction(
    tmp_path: Path,
) -> None:
    """upgrade --sql shows them after the COMMIT that ends the revision's DDL, as they run
    online; and lint does not count them as data in the schema change's transaction."""
    from conftest import make_project

    ini = make_project(tmp_path / "p", "generic")
    (tmp_path / "p" / "migrations" / "versions" / "0001_t.py").write_text(
        '"""t"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        "from migrasafe.backfill import backfill\n\n"
        'revision = "0001"\ndown_revision = None\n\n\ndef upgrade() -> None:\n'
        '    op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.add_column("t", sa.Column("b", sa.Integer()))\n'
        '    t = sa.table("t", sa.column("id"), sa.column("b"))\n'
        '    backfill(t, {"b": 1}, where=t.c.b.is_(None), commit_each_batch=True)\n\n\n'
        'def downgrade() -> None:\n    op.drop_table("t")\n'
    )
    rendered = run_cli("-c", str(ini), "--url", "postgresql+psycopg://u@localhost/db",
                       "upgrade", "--sql")  # fmt: skip
    assert rendered.exit_code == 0, rendered.stderr
    sql = " ".join(rendered.stdout.split())
    assert sql.index("ADD COLUMN b") < sql.index("COMMIT") < sql.index("UPDATE t SET b=")
    linted = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    import json

    assert "mixed-schema-and-data" not in {f["rule"] for f in json.loads(linted.stdout)["findings"]}
