"""Benchmark: `migrasafe upgrade head` against `alembic upgrade head`, each a new process.

For each size (default 500 generated revisions: tables created, columns
added, indexes created, alternately), each database (SQLite; PostgreSQL with
--pg URL) and each env.py style (``per-migration``: migrasafe's template,
``transaction_per_migration=True``; ``one-transaction``: the same env.py
without it, as Alembic's own templates run on PostgreSQL), a fresh database
is migrated from base to head by ``alembic upgrade head`` and by ``migrasafe
upgrade head``, alternately, --repeat times (default 3); the fastest of each
counts (what the machine's other load added least to). migrasafe writes a
checksum of every revision in that revision's transaction and holds its
migration lock. Target: migrasafe <= 1.05x Alembic.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from verify_vs_alembic import bench_parser, conditions, generate

BIN = Path(sys.executable).parent


def _fresh_database(server: str | None, root: Path, name: str) -> tuple[str, object]:
    """A new, empty database: (its URL, what drops it)."""
    if server is None:
        path = root / f"{name}.sqlite"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    database = f"msbench_{os.getpid()}_{name}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}"')
        connection.exec_driver_sql(f'CREATE DATABASE "{database}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()

    return sa.make_url(server).set(database=database).render_as_string(False), drop


def _project(root: Path, count: int, style: str) -> Path:
    ini = generate(root / f"project{count}-{style}", count)
    if style == "one-transaction":
        env = ini.parent / "migrations" / "env.py"
        text = env.read_text()
        env.write_text(text.replace('"transaction_per_migration": True,', ""))
    return ini


def _seconds(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed: {done.stderr[-800:]}")
    return seconds


def measure(
    count: int, root: Path, server: str | None, style: str, repeat: int
) -> tuple[float, float]:
    """Fastest (alembic, migrasafe) seconds for ``count`` revisions from base to head."""
    ini = _project(root / ("pg" if server else "sqlite"), count, style)
    best = {"alembic": math.inf, "migrasafe": math.inf}
    for attempt in range(repeat):
        for tool in ("alembic", "migrasafe"):
            url, drop = _fresh_database(server, root, f"{tool}{count}{attempt}")
            try:
                _set_url(ini, url)  # both read sqlalchemy.url, as a deploy would
                argv = [str(BIN / tool), "-c", str(ini), "upgrade", "head"]
                best[tool] = min(best[tool], _seconds(argv, ini.parent))
            finally:
                drop()  # type: ignore[operator]
    return best["alembic"], best["migrasafe"]


def _set_url(ini: Path, url: str) -> None:
    lines = [
        f"sqlalchemy.url = {url}" if line.startswith("sqlalchemy.url") else line
        for line in ini.read_text().splitlines()
    ]
    ini.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = bench_parser(__doc__, "500")
    parser.add_argument("--style", action="append", choices=("per-migration", "one-transaction"),
                        help="env.py styles to run (default: both)")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    styles = args.style or ["per-migration", "one-transaction"]
    databases: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.pg:
        databases.append(("PostgreSQL", args.pg))
    print(conditions([url for _, url in databases if url]))
    print(f"each command a new process; fastest of {args.repeat} alternate runs; "
          "a fresh database each run")  # fmt: skip
    print(f"{'database':<11}{'revisions':>9}  {'env.py':<16}{'alembic':>9}{'migrasafe':>11}"
          f"{'ratio':>8}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in databases:
            for count in sizes:
                for style in styles:
                    a, m = measure(count, Path(tmp), url, style, args.repeat)
                    print(f"{name:<11}{count:>9}  {style:<16}{a:>8.2f}s{m:>10.2f}s{m / a:>7.2f}x",
                          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
