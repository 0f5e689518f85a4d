"""Benchmark: `migrasafe verify` on real, long Alembic histories (a corpus on disk).

The corpus is a directory (argument, default $MIGRASAFE_CORPUS or /work/corpus) of
projects, one directory each, holding an `alembic.ini`, an `env.py` and a
`corpus.toml` that says which databases the project supports, e.g.:

    name = "warehouse"
    repo = "pypi/warehouse"
    path = "warehouse/migrations/versions"
    databases = ["postgresql"]          # any of postgresql, sqlite, mysql
    x_args = []                         # extra -x KEY=VALUE for env.py
    notes = "..."

The project's env.py must take its URL from `-x url=...` (plain Alembic's runs here
pass the fresh database that way). For each project and each database it supports
and this run has (PostgreSQL with --pg URL or $MIGRASAFE_BENCH_PG, MySQL/MariaDB with
--mysql URL, SQLite unless --no-sqlite), it runs, each in a subprocess of this
Python's environment:

  (a) plain `alembic upgrade head` then `alembic downgrade base`, timed, on a fresh
      database created for it and dropped after (a temporary file on SQLite);
  (v) `migrasafe verify --json`, with `--url` naming the server, so verify makes
      its own scratch database there (SQLite: a temporary file URL).

It prints a table: revisions, how many verify checked with data / schema only /
upgrade only / not checked (verify's JSON `coverage`), findings per rule id, verify's
time against Alembic's, and whether verify ended with a traceback or exit 2.
--json-out FILE saves the raw per-project results (verify's whole JSON included).

Run: python bench/real_histories.py [CORPUS] [--pg URL] [--mysql URL] [--no-sqlite]
[--only NAME] [--seed S] [--rows N] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DATABASES = ("postgresql", "sqlite", "mysql")
ERROR_TAIL = 600
STDERR_TAIL = 6000


@dataclass
class Step:
    """One subprocess: its command, exit code, time and the end of its output."""

    argv: list[str]
    returncode: int
    seconds: float
    traceback: bool
    error: str
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Result:
    """One project on one database."""

    project: str
    database: str
    revisions: int | None = None
    alembic_upgrade: Step | None = None
    alembic_downgrade: Step | None = None
    verify: Step | None = None
    verify_json: dict[str, Any] | None = None
    findings: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _bin(name: str) -> str:
    """The console script next to this Python (the venv's), else from $PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"real_histories: no `{name}` next to {sys.executable} or on $PATH")
    return found


def _last_error(text: str) -> str:
    """The last line that looks like an exception or error, else the output's end."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("migrasafe: error", "FAILED", "ERROR")) or (
            ":" in line
            and not line.startswith((" ", "INFO", "WARNI"))
            and line.split(":", 1)[0].rsplit(".", 1)[-1].endswith(("Error", "Exception"))
        ):
            return line[:ERROR_TAIL]
    return (lines[-1] if lines else "")[:ERROR_TAIL]


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[Step, str]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = -1
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        stderr += f"\nTIMEOUT after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    step = Step(
        argv=argv,
        returncode=returncode,
        seconds=round(seconds, 3),
        traceback="Traceback (most recent call last)" in stderr,
        error="" if returncode == 0 else _last_error(stderr or stdout),
        stderr_tail="" if returncode == 0 else stderr[-STDERR_TAIL:],
    )
    return step, stdout


class Server:
    """Creates and drops databases on one server (or temporary SQLite files)."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind = kind
        self.url = url
        self._tmp = Path(tempfile.mkdtemp(prefix=f"real-histories-{kind}-"))

    def version(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        assert self.url is not None
        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        try:
            with engine.connect() as conn:
                return str(conn.exec_driver_sql("SELECT version()").scalar())
        finally:
            engine.dispose()

    def verify_url(self) -> str:
        """What `verify --url` gets: the server (verify makes its scratch database)."""
        if self.kind == "sqlite":
            return f"sqlite:///{self._tmp / f'verify-{uuid.uuid4().hex[:8]}.db'}"
        assert self.url is not None
        return self.url

    def create(self, project: str) -> str:
        name = f"corpus_{project.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        if self.kind == "sqlite":
            return f"sqlite:///{self._tmp / (name + '.db')}"
        assert self.url is not None
        self._admin(f"CREATE DATABASE {self._quote(name)}")
        return sa.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        parsed = sa.make_url(url)
        if self.kind == "sqlite":
            Path(parsed.database or "").unlink(missing_ok=True)
            return
        if self.kind == "postgresql":
            self._admin(
                f"DROP DATABASE IF EXISTS {self._quote(parsed.database or '')} WITH (FORCE)"
            )
        else:
            self._admin(f"DROP DATABASE IF EXISTS {self._quote(parsed.database or '')}")

    def cleanup(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _quote(self, name: str) -> str:
        return f"`{name}`" if self.kind == "mysql" else f'"{name}"'

    def _admin(self, sql: str) -> None:
        assert self.url is not None
        engine = sa.create_engine(self.url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()


def load_projects(corpus: Path, only: list[str]) -> list[tuple[Path, dict[str, Any]]]:
    projects = []
    for toml_path in sorted(corpus.glob("*/corpus.toml")):
        with toml_path.open("rb") as fh:
            spec = tomllib.load(fh)
        spec.setdefault("name", toml_path.parent.name)
        if only and spec["name"] not in only and toml_path.parent.name not in only:
            continue
        projects.append((toml_path.parent, spec))
    return projects


def count_revisions(project_dir: Path, env: dict[str, str], x_args: list[str]) -> int | None:
    argv = [_bin("alembic"), "-c", "alembic.ini", *_x(x_args), "history"]
    step, stdout = _run(argv, project_dir, env, timeout=300)
    if not step.ok:
        return None
    return sum(1 for line in stdout.splitlines() if " -> " in line)


def _x(x_args: list[str]) -> list[str]:
    out: list[str] = []
    for arg in x_args:
        out += ["-x", arg]
    return out


def run_one(
    project_dir: Path,
    spec: dict[str, Any],
    server: Server,
    args: argparse.Namespace,
    env: dict[str, str],
) -> Result:
    name = spec["name"]
    result = Result(project=name, database=server.kind)
    x_args = list(spec.get("x_args", []))
    result.revisions = count_revisions(project_dir, env, x_args)
    alembic = _bin("alembic")

    url = server.create(name)
    try:
        base = [alembic, "-c", "alembic.ini", *_x(x_args), "-x", f"url={url}"]
        result.alembic_upgrade, _ = _run([*base, "upgrade", "head"], project_dir, env, args.timeout)
        if result.alembic_upgrade.ok:
            result.alembic_downgrade, _ = _run(
                [*base, "downgrade", "base"], project_dir, env, args.timeout
            )
    finally:
        server.drop(url)

    argv = [
        _bin("migrasafe"),
        "-c",
        "alembic.ini",
        *_x(x_args),
        "verify",
        "--url",
        server.verify_url(),
        "--json",
        "--seed",
        str(args.seed),
        "--rows",
        str(args.rows),
    ]
    result.verify, stdout = _run(argv, project_dir, env, args.timeout)
    try:
        report = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        report = None
        result.notes.append("verify printed no JSON")
    if isinstance(report, dict):
        result.verify_json = report
        result.findings = dict(Counter(str(f.get("rule")) for f in report.get("findings", [])))
        coverage = report.get("coverage") or {}
        result.coverage = {
            key: len(coverage.get(key) or ())
            for key in ("with_data", "schema_only", "upgrade_only", "not_checked")
        }
    return result


def _fmt_findings(findings: dict[str, int]) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in sorted(findings.items())) or "-"


def _alembic_cell(result: Result) -> str:
    up, down = result.alembic_upgrade, result.alembic_downgrade
    if up is None:
        return "-"
    if not up.ok:
        return f"up FAIL {up.seconds:.1f}s"
    assert down is not None
    state = "ok" if down.ok else "down FAIL"
    return f"{state} {up.seconds + down.seconds:.1f}s"


def print_table(results: list[Result]) -> None:
    header = (
        "project",
        "database",
        "revs",
        "data",
        "schema",
        "upg-only",
        "not-chk",
        "alembic up+down",
        "verify",
        "v/a",
        "verify end",
    )
    rows: list[tuple[str, ...]] = []
    for r in results:
        v = r.verify
        a_time = None
        if r.alembic_upgrade is not None:
            a_time = r.alembic_upgrade.seconds + (
                r.alembic_downgrade.seconds if r.alembic_downgrade else 0.0
            )
        ratio = f"{v.seconds / a_time:.1f}x" if v and a_time else "-"
        if v is None:
            end = "-"
        elif v.traceback:
            end = f"TRACEBACK exit {v.returncode}"
        elif v.returncode == 2:
            end = "exit 2"
        else:
            end = f"exit {v.returncode}"
        c = r.coverage
        rows.append(
            (
                r.project,
                r.database,
                str(r.revisions if r.revisions is not None else "?"),
                str(c.get("with_data", "-")),
                str(c.get("schema_only", "-")),
                str(c.get("upgrade_only", "-")),
                str(c.get("not_checked", "-")),
                _alembic_cell(r),
                f"{v.seconds:.1f}s" if v else "-",
                ratio,
                end,
            )
        )
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
        for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print()
    print("Findings per rule id:")
    for r in results:
        print(f"  {r.project} / {r.database}: {_fmt_findings(r.findings)}")
    print()
    print("Failures (first error line):")
    for r in results:
        for label, step in (
            ("alembic upgrade", r.alembic_upgrade),
            ("alembic downgrade", r.alembic_downgrade),
            ("verify", r.verify),
        ):
            if (
                step is not None
                and not step.ok
                and (label != "verify" or step.returncode != 1 or step.traceback)
            ):
                print(
                    f"  {r.project} / {r.database} {label} (exit {step.returncode}): {step.error}"
                )
        for note in r.notes:
            print(f"  {r.project} / {r.database}: {note}")


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The corpus, the servers and --only: what every bench over this corpus takes."""
    parser.add_argument(
        "corpus",
        nargs="?",
        type=Path,
        default=Path(os.environ.get("MIGRASAFE_CORPUS", "/work/corpus")),
        help="the corpus directory (default: $MIGRASAFE_CORPUS or /work/corpus)",
    )
    parser.add_argument(
        "--pg",
        metavar="URL",
        default=os.environ.get("MIGRASAFE_BENCH_PG"),
        help="PostgreSQL server URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    )
    parser.add_argument(
        "--mysql",
        metavar="URL",
        default=os.environ.get("MIGRASAFE_BENCH_MYSQL"),
        help="MySQL/MariaDB server URL, e.g. mysql+pymysql://root@127.0.0.1:3306/",
    )
    parser.add_argument(
        "--sqlite",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run projects that support SQLite on SQLite (default: on)",
    )
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="only this project (repeatable)"
    )


def corpus_and_servers(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[list[tuple[Path, dict[str, Any]]], dict[str, Server]]:
    """The projects the arguments select and a Server for each database given."""
    if not args.corpus.is_dir():
        parser.error(f"no corpus directory at {args.corpus}")
    projects = load_projects(args.corpus, args.only)
    if not projects:
        parser.error(
            f"no project (a */corpus.toml) in {args.corpus}"
            + (f" named {', '.join(args.only)}" if args.only else "")
        )

    servers: dict[str, Server] = {}
    if args.pg:
        servers["postgresql"] = Server("postgresql", args.pg)
    if args.mysql:
        servers["mysql"] = Server("mysql", args.mysql)
    if args.sqlite:
        servers["sqlite"] = Server("sqlite", None)
    return projects, servers


def each_run(
    projects: list[tuple[Path, dict[str, Any]]], servers: dict[str, Server]
) -> Iterator[tuple[Path, dict[str, Any], Server]]:
    """Each project on each database it supports that this run has a server for (the
    others are named on stderr); the servers' temporary files are removed at the end."""
    try:
        for project_dir, spec in projects:
            supported = [db for db in spec.get("databases", []) if db in DATABASES]
            for kind in supported:
                if kind not in servers:
                    print(
                        f"skip {spec['name']} / {kind}: no server for it in this run",
                        file=sys.stderr,
                    )
                    continue
                print(f"... {spec['name']} / {kind}", file=sys.stderr, flush=True)
                yield project_dir, spec, servers[kind]
    finally:
        for server in servers.values():
            server.cleanup()


def save_json(path: Path, conditions: dict[str, Any], results: list[Any]) -> None:
    """The run's conditions and its results (dataclasses) as one JSON file."""
    payload = {"conditions": conditions, "results": [asdict(r) for r in results]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run plain Alembic and `migrasafe verify` on a corpus of real Alembic "
        "histories and compare them."
    )
    add_corpus_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="verify's --seed (default 0)")
    parser.add_argument("--rows", type=int, default=20, help="verify's --rows (default 20)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds allowed to each subprocess (default 1800)",
    )
    parser.add_argument(
        "--json-out", type=Path, metavar="FILE", help="save the raw per-project results as JSON"
    )
    args = parser.parse_args(argv)
    projects, servers = corpus_and_servers(parser, args)

    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    env.pop("MIGRASAFE_URL", None)
    env.pop("ALEMBIC_CONFIG", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"

    conditions = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "alembic": _version("alembic"),
        "sqlalchemy": _version("sqlalchemy"),
        "migrasafe": _version("migrasafe"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "(unset: random)"),
        "seed": args.seed,
        "rows": args.rows,
        "corpus": str(args.corpus),
        "servers": {kind: s.version() for kind, s in servers.items()},
    }
    print(
        f"Python {conditions['python']} ({sys.executable}); alembic {conditions['alembic']}, "
        f"SQLAlchemy {conditions['sqlalchemy']}, migrasafe {conditions['migrasafe']}; "
        f"{conditions['platform']}, {conditions['cpus']} CPUs"
    )
    for kind, version in conditions["servers"].items():
        print(f"  {kind}: {version}")
    print(
        f"verify: --seed {args.seed} --rows {args.rows}; PYTHONHASHSEED="
        f"{conditions['PYTHONHASHSEED']}; corpus {args.corpus}"
    )
    print(flush=True)

    results: list[Result] = []
    for project_dir, spec, server in each_run(projects, servers):
        results.append(run_one(project_dir, spec, server, args, env))

    print_table(results)
    if args.json_out:
        save_json(args.json_out, conditions, results)
        print(f"\nRaw results: {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
