"""Benchmark: `migrasafe verify` against `alembic upgrade head` + `alembic downgrade base`.

Generates a project of N revisions (default 200: tables created, columns
added, indexes created, alternately), then times, in one run on one machine:

  (a) Alembic's upgrade head + downgrade base on a fresh SQLite file;
  (v) migrasafe verify (3 steps per revision, generated rows, schema and data
      compared after each step).

Prints the times and the ratio v/a. Target: <= 4x, while checking data that
(a) does not. Run: python bench/verify_vs_alembic.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from alembic import command

from migrasafe import init, load_project
from migrasafe.verify import verify

TEMPLATE = '''"""Revision {n}"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down!r}


def upgrade() -> None:
{up}


def downgrade() -> None:
{down_body}
'''


def generate(directory: Path, count: int) -> Path:
    init(directory, "generic")
    versions = directory / "migrations" / "versions"
    table = None
    for n in range(1, count + 1):
        rev, down = f"{n:04d}", (f"{n - 1:04d}" if n > 1 else None)
        kind = n % 3
        if kind == 1 or table is None:
            table = f"t{n:04d}"
            up = (f"    op.create_table('{table}', sa.Column('id', sa.Integer(), primary_key=True),"
                  " sa.Column('name', sa.String(50), nullable=False))")  # fmt: skip
            back = f"    op.drop_table('{table}')"
        elif kind == 2:
            up = f"    op.add_column('{table}', sa.Column('c{n}', sa.Integer(), nullable=True))"
            back = (f"    with op.batch_alter_table('{table}') as b:\n"
                    f"        b.drop_column('c{n}')")  # fmt: skip
        else:
            up = f"    op.create_index('ix_{n}', '{table}', ['name'])"
            back = f"    op.drop_index('ix_{n}', table_name='{table}')"
        text = TEMPLATE.format(n=n, rev=rev, down=down, up=up, down_body=back)
        (versions / f"{rev}_r.py").write_text(text)
    return directory / "alembic.ini"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        ini = generate(Path(tmp) / "project", count)
        project = load_project(ini, url=f"sqlite:///{tmp}/alembic.db")
        project.config.attributes["configure_logger"] = False
        project.script  # noqa: B018 - load the scripts once for both, outside the timings

        start = time.perf_counter()
        command.upgrade(project.config, "head")
        command.downgrade(project.config, "base")
        alembic_seconds = time.perf_counter() - start

        start = time.perf_counter()
        report = verify(project)
        verify_seconds = time.perf_counter() - start

    assert report.ok, report.findings
    print(f"{count} revisions, SQLite")
    print(f"{'command':<45}{'seconds':>10}{'steps':>8}")
    print(
        f"{'(a) alembic upgrade head + downgrade base':<45}{alembic_seconds:>10.2f}{2 * count:>8}"
    )
    print(f"{'(v) migrasafe verify (rows=20, data checked)':<45}{verify_seconds:>10.2f}"
          f"{report.steps:>8}")  # fmt: skip
    print(f"ratio v/a: {verify_seconds / alembic_seconds:.2f}x (target <= 4x)")


if __name__ == "__main__":
    main()
