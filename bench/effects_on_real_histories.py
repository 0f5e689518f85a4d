"""Benchmark: is `migrasafe.deploy.effects.present()` right on real Alembic histories?

When a revision stops midway where DDL commits at once, `migrasafe status` judges each
of its operations against the live schema (present / absent / cannot tell), and
`upgrade --resume` skips an operation only when it is judged present. A "present" for
an operation that has not taken effect would be skipped wrongly; an "absent" for one
that has is a wrong status. This measures both on real histories.

It reads the corpus `bench/real_histories.py` reads (its docstring says the layout: a
directory per project with `alembic.ini`, an `env.py` taking its URL from `-x url=`
or sqlalchemy.url, and `corpus.toml`; `commit = "..."` there is printed with the
conditions). For each project and each database it supports and this run has, on a
fresh database created for it and dropped after:

  - every revision's upgrade() is recorded offline, as `lint` and `status` record it
    (`Offline(config, script_directory, dialect).record(script, "upgrade")`), and the
    operations `status` would list are kept (as `status._found`: SQL that lint reads
    into operations is judged by those; COMMIT and SET are left out);
  - for each revision R in upgrade order: with the database at R's parents (and every
    revision before R in that order), each operation of R is judged with `present()`
    ("before": expected False or None); then plain Alembic's `command.upgrade(config,
    R)` runs it in this process, through the project's env.py, and each operation is
    judged again ("after": expected True or None).

A True before R runs is either an object that already exists (the revision's "create
... if not exists", a no-op alter, an operation undone later in R) or a judge error
that `--resume` would act on; a False after R is an operation R itself undid later (add
then drop), or a judge error. Each such verdict is listed with the revision, the line
of the revision file and the other operations of R on the same object (a hint for the
reader: `touches`). A judge that raises is counted as "error".

Run: python bench/effects_on_real_histories.py [CORPUS] [--pg URL] [--mysql URL]
[--no-sqlite] [--only NAME] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.operations import ops
from real_histories import (
    Server,
    _version,
    add_corpus_arguments,
    corpus_and_servers,
    each_run,
    save_json,
)

from migrasafe.checks.lint.operations import Offline, Recorded
from migrasafe.commands.status import judged
from migrasafe.deploy.effects import describe, present
from migrasafe.project.config import load_project
from migrasafe.project.graph import apply_order

DIALECTS = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}
TABLE_VERBS = ("create_table", "drop_table", "rename_table")


@dataclass
class Verdict:
    """One operation of one revision, judged before and after the revision ran."""

    revision: str
    path: str
    line: int | None
    operation: str
    verb: str
    from_sql: bool
    before: bool | str | None = None  # "error: ..." when present() raised
    after: bool | str | None = None
    asks: str = ""  # what an alter_column changes; "unnamed" for a constraint without a name
    touches: list[str] = field(default_factory=list)  # R's other operations on its object


@dataclass
class ProjectResult:
    """One project on one database."""

    project: str
    database: str
    commit: str
    revisions: int = 0
    not_recorded: list[str] = field(default_factory=list)  # revision: why recording stopped
    upgrade_error: str = ""
    seconds: float = 0.0
    verdicts: list[Verdict] = field(default_factory=list)

    def counts(self, when: str) -> Counter[str]:
        return Counter(_cell(getattr(v, when)) for v in self.verdicts)

    def suspicious(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.before is True or v.after is False
                or isinstance(v.before, str) or isinstance(v.after, str)]  # fmt: skip


def _cell(verdict: bool | str | None) -> str:
    if isinstance(verdict, str):
        return "error"
    return {True: "True", False: "False", None: "None"}[verdict]


def _kept(done: list[Recorded]) -> list[Recorded]:
    """The operations `status` lists for a revision."""
    return judged(done)


def _object(operation: Any) -> tuple[str, str]:
    """(the object an operation acts on, its table), casefolded: for the `touches` hint."""
    said = describe(operation)
    table = getattr(operation, "table_name", None) or getattr(operation, "source_table", None)
    return said.split(" ", 1)[-1].casefold(), str(table or "").casefold()


def _asks(operation: Any) -> str:
    """What an alter_column changes (``nullable type server_default``); ``unnamed`` for a
    constraint or index created without a name (the database names it)."""
    if isinstance(operation, ops.AlterColumnOp):
        changes = [("name", operation.modify_name), ("nullable", operation.modify_nullable),
                   ("type", operation.modify_type)]  # fmt: skip
        asked = [what for what, value in changes if value is not None]
        asked += [what for what in ("server_default", "comment")
                  if getattr(operation, f"modify_{what}", False) is not False]  # fmt: skip
        return " ".join(asked) or "nothing"
    name = getattr(operation, "constraint_name", getattr(operation, "index_name", ""))
    return "unnamed" if name is None else ""


def _touches(kept: list[Recorded], index: int) -> list[str]:
    """The other operations of the revision on the same object, creating, dropping or
    renaming its table, or creating an unnamed constraint on it (the database may give it
    the same name), each with its line: ``L12 drop_column t.c``."""
    target, table = _object(kept[index].operation)
    out = []
    for other_index, other in enumerate(kept):
        if other_index == index:
            continue
        other_target, other_table = _object(other.operation)
        said = describe(other.operation)
        same_table = said.startswith(TABLE_VERBS) and table and other_target.split(" ")[0] == table
        unnamed = _asks(other.operation) == "unnamed" and table and other_table == table
        if other_target == target or same_table or unnamed:
            out.append(f"L{other.line} {said}")
    return out


def _judge(engine: sa.Engine, kept: list[Recorded]) -> list[bool | str | None]:
    """present() of each operation, on one connection closed after (MariaDB's DDL waits for
    an open transaction's metadata locks)."""
    verdicts: list[bool | str | None] = []
    with engine.connect() as connection:
        for each in kept:
            try:
                verdicts.append(present(each.operation, connection))
            except Exception as exc:
                verdicts.append(f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                connection.rollback()
    return verdicts


def run_one(project_dir: Path, spec: dict[str, Any], server: Server) -> ProjectResult:
    name = spec["name"]
    result = ProjectResult(project=name, database=server.kind, commit=str(spec.get("commit", "?")))
    url = server.create(name)
    start = time.perf_counter()
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        x_args = [*spec.get("x_args", []), f"url={url}"]
        project = load_project(project_dir / "alembic.ini", url=url, x_args=x_args)
        order = apply_order(project.script_directory)
        result.revisions = len(order)
        recorded: dict[str, list[Recorded]] = {}
        with Offline(project.config, project.script_directory, DIALECTS[server.kind]) as offline:
            for script in order:
                done = offline.record(script, "upgrade")
                if done.error:
                    result.not_recorded.append(f"{script.revision} (line {done.error_line}): "
                                               f"{done.error[:160]}")  # fmt: skip
                recorded[script.revision] = _kept(done.operations)
        for script in order:
            kept = recorded[script.revision]
            before = _judge(engine, kept)
            try:
                command.upgrade(project.config, script.revision)
            except Exception as exc:
                result.upgrade_error = f"{script.revision}: {type(exc).__name__}: {exc}"[:400]
                break
            after = _judge(engine, kept)
            for index, (each, was, now) in enumerate(zip(kept, before, after, strict=True)):
                said = describe(each.operation)
                verdict = Verdict(
                    revision=script.revision,
                    path=Path(str(script.path)).name,
                    line=each.line,
                    operation=said,
                    verb=said.split(" ", 1)[0],
                    from_sql=each.from_sql,
                    asks=_asks(each.operation),
                    before=was,
                    after=now,
                )
                if was is True or now is False or isinstance(was, str) or isinstance(now, str):
                    verdict.touches = _touches(kept, index)
                result.verdicts.append(verdict)
    finally:
        engine.dispose()
        server.drop(url)
    result.seconds = round(time.perf_counter() - start, 1)
    return result


def print_results(results: list[ProjectResult]) -> None:
    header = ("project", "database", "revs", "ops", "before T/F/None/err", "after T/F/None/err",
              "suspicious")  # fmt: skip
    rows = []
    for r in results:
        b, a = r.counts("before"), r.counts("after")
        rows.append((
            r.project, r.database, str(r.revisions), str(len(r.verdicts)),
            f"{b['True']}/{b['False']}/{b['None']}/{b['error']}",
            f"{a['True']}/{a['False']}/{a['None']}/{a['error']}",
            str(len(r.suspicious())),
        ))  # fmt: skip
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in results:
        print(f"\n== {r.project} / {r.database} ({r.seconds} s)")
        if r.upgrade_error:
            print(f"  upgrade stopped: {r.upgrade_error}")
        for note in r.not_recorded:
            print(f"  recorded only in part: {note}")
        print("  suspicious (True before, False after, or the judge raised):")
        for v in r.suspicious():
            print(f"    {v.revision} {v.path}:{v.line} {v.operation}"
                  f"{f' [{v.asks}]' if v.asks else ''}"
                  f"{' (from SQL)' if v.from_sql else ''}: before {_cell(v.before)}, "
                  f"after {_cell(v.after)}"
                  + (f"; touches {'; '.join(v.touches)}" if v.touches else ""))  # fmt: skip
            for verdict in (v.before, v.after):
                if isinstance(verdict, str):
                    print(f"      {verdict}")
        for when in ("before", "after"):
            nones = Counter(v.verb + (f" [{v.asks}]" if v.asks else "")
                            + (" (SQL)" if v.from_sql else "")
                            for v in r.verdicts if getattr(v, when) is None)  # fmt: skip
            listed = ", ".join(f"{verb} {n}" for verb, n in nones.most_common())
            print(f"  None {when}, by operation: {listed or '-'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Judge each operation of real Alembic histories with migrasafe's "
        "deploy.effects.present(), before and after its revision runs, and count the verdicts."
    )
    add_corpus_arguments(parser)
    parser.add_argument("--json-out", type=Path, metavar="FILE", help="save every verdict as JSON")
    args = parser.parse_args(argv)

    projects, servers = corpus_and_servers(parser, args)

    conditions: dict[str, Any] = {
        "python": platform.python_version(),
        "alembic": _version("alembic"),
        "sqlalchemy": _version("sqlalchemy"),
        "migrasafe": _version("migrasafe"),
        "platform": platform.platform(),
        "corpus": str(args.corpus),
        "commits": {spec["name"]: spec.get("commit", "?") for _, spec in projects},
        "servers": {kind: s.version() for kind, s in servers.items()},
    }
    print(f"Python {conditions['python']}; alembic {conditions['alembic']}, SQLAlchemy "
          f"{conditions['sqlalchemy']}, migrasafe {conditions['migrasafe']}; "
          f"{conditions['platform']}; corpus {args.corpus}")  # fmt: skip
    for kind, version in conditions["servers"].items():
        print(f"  {kind}: {version}")
    for _, spec in projects:
        print(f"  {spec['name']}: {spec.get('repo', '?')} at {spec.get('commit', '?')}, "
              f"{spec.get('path', '?')}")  # fmt: skip
    print("Each revision's operations judged at its parents, then after plain Alembic's "
          "upgrade to it, on a fresh database.\n", flush=True)  # fmt: skip

    results: list[ProjectResult] = []
    for project_dir, spec, server in each_run(projects, servers):
        results.append(run_one(project_dir, spec, server))

    print_results(results)
    if args.json_out:
        save_json(args.json_out, conditions, results)
        print(f"\nEvery verdict: {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
