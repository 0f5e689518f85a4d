"""``migrasafe fleet status|upgrade|downgrade|verify|lint``: one command over many targets.

Arguments only; the work is :func:`migrasafe.fleet.run_fleet`. On a terminal a
live table; piped, one line per target as it finishes; ``--json`` one record
per target. Exit 1 when any target failed (or, for status, is behind).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from migrasafe.cli.app import EXIT_FOUND, EXIT_OK, Options, _emit, json_option, main, pass_options
from migrasafe.cli.deploy import RELATIVE_TARGETS, _deploy, deploy_options, lock_timeout_option

if TYPE_CHECKING:
    from migrasafe.fleet import FleetReport, Job, Record, Target


@main.group()
def fleet() -> None:
    """Run a command on every database (or tenant schema) of a fleet.

    The fleet is declared in pyproject.toml's [tool.migrasafe.fleet] (urls, file,
    command or schemas), or given with --targets FILE or --schemas PATTERN.
    Each target runs in a worker process, through the project's env.py, under
    migrasafe's lock on that target.
    """


def fleet_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Which targets, how many at a time, how to report."""
    for option in reversed((
        click.option("--targets", "targets_file", metavar="FILE",
                     help="A file of targets, one a line: URL or NAME URL (instead of "
                     "[tool.migrasafe.fleet]); ${VAR} is read from the environment."),
        click.option("--schemas", metavar="PATTERN",
                     help="Every PostgreSQL schema matching PATTERN (e.g. 'tenant_*') in "
                     "--database, passed to env.py as -x tenant=NAME."),
        click.option("--database", metavar="URL",
                     help="The database holding the schemas (default: the project's URL)."),
        click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
                     metavar="N", help="Worker processes: targets run N at a time."),
        click.option("--shard", metavar="K/N",
                     help="Only shard K of N (e.g. a CI matrix job): shards 1..N cover every "
                     "target exactly once."),
        json_option,
    )):  # fmt: skip
        command = option(command)
    return command


def migrate_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
        click.option("--canary", type=click.IntRange(min=0), default=0, show_default=True,
                     metavar="K", help="Run the first K targets first; stop if any fails."),
        click.option("--keep-going", is_flag=True,
                     help="Go on after a target fails (default: start no more targets; "
                     "those not started are reported skipped)."),
        lock_timeout_option,
    )):  # fmt: skip
        command = option(command)
    return deploy_options(command)


def _targets(options: Options, targets_file: str | None, schemas: str | None,
             database: str | None, shard_spec: str | None) -> list[Target]:  # fmt: skip
    from migrasafe.fleet import fleet_source, load_targets, parse_shard, shard

    split = parse_shard(shard_spec) if shard_spec is not None else None
    project = options.project()
    source = fleet_source(project.config_path.parent.resolve(), targets_file=targets_file,
                          schemas=schemas, database=database)  # fmt: skip
    targets = load_targets(source, project.configured_url)
    if split is not None:
        targets = shard(targets, *split)
    return targets


def _run(
    options: Options,
    job: Job,
    targets: list[Target],
    parallel: int,
    as_json: bool,
    canary: int = 0,
    keep_going: bool = True,
) -> None:
    from migrasafe.fleet import run_fleet

    with _display(job, targets, as_json) as on_event:
        report = run_fleet(job, targets, parallel=parallel, canary=canary,
                           keep_going=keep_going, on_event=on_event)  # fmt: skip
    code = EXIT_OK if report.ok else EXIT_FOUND
    _emit(as_json, report.to_dict, lambda: _summary(report), code)


def _job(options: Options, action: str, **fields: Any) -> Job:
    from migrasafe.fleet import Job

    return Job(action, config=options.config, name=options.name, app=options.app,
               x_args=options.x_args, quiet=not options.verbose, **fields)  # fmt: skip


@fleet.command("status")
@fleet_options
@pass_options
def status_command(options: Options, targets_file: str | None, schemas: str | None,
                   database: str | None, parallel: int, shard: str | None,
                   as_json: bool) -> None:  # fmt: skip
    """Where each target stands: ok, pending, attention (edited or unknown scripts), failed."""
    targets = _targets(options, targets_file, schemas, database, shard)
    _run(options, _job(options, "status"), targets, parallel, as_json)


def _migrate(direction: str, options: Options, goal: str, targets_file: str | None,
             schemas: str | None, database: str | None, parallel: int, shard: str | None,
             as_json: bool, canary: int, keep_going: bool, lock_timeout: float,
             db_lock_timeout: str | None, statement_timeout: str | None,
             retries: int | None) -> None:  # fmt: skip
    project = options.project()
    deploy = _deploy(project, db_lock_timeout, statement_timeout, retries)
    targets = _targets(options, targets_file, schemas, database, shard)
    job = _job(options, direction, goal=goal, lock_timeout=lock_timeout, deploy=deploy)
    _run(options, job, targets, parallel, as_json, canary, keep_going)


@fleet.command("upgrade", context_settings=RELATIVE_TARGETS)
@click.argument("goal", metavar="[TARGET]", default="head")
@fleet_options
@migrate_options
@pass_options
def upgrade_command(options: Options, /, goal: str, **kwargs: Any) -> None:
    """Upgrade every target to TARGET (default: head); a target already there is unchanged,
    so a rerun resumes where a failed or interrupted run stopped."""
    _migrate("upgrade", options, goal, **kwargs)


@fleet.command("downgrade", context_settings=RELATIVE_TARGETS)
@click.argument("goal", metavar="TARGET")
@fleet_options
@migrate_options
@pass_options
def downgrade_command(options: Options, /, goal: str, **kwargs: Any) -> None:
    """Downgrade every target to TARGET (a revision id, base, or relative like -1)."""
    _migrate("downgrade", options, goal, **kwargs)


@fleet.command("verify")
@click.option("--rows", type=click.IntRange(min=0), default=20, show_default=True,
              help="Rows seeded per table.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="The rows' random seed.")
@fleet_options
@pass_options
def verify_command(options: Options, rows: int, seed: int, targets_file: str | None,
                   schemas: str | None, database: str | None, parallel: int,
                   shard: str | None, as_json: bool) -> None:  # fmt: skip
    """Verify the history as each target's env.py sees it, on a scratch database beside it."""
    targets = _targets(options, targets_file, schemas, database, shard)
    _run(options, _job(options, "verify", rows=rows, seed=seed), targets, parallel, as_json)


@fleet.command("lint")
@click.option("--dialect", type=click.Choice(("postgresql", "sqlite", "mysql")),
              help="Default: each target's database.")  # fmt: skip
@fleet_options
@pass_options
def lint_command(options: Options, dialect: str | None, targets_file: str | None,
                 schemas: str | None, database: str | None, parallel: int,
                 shard: str | None, as_json: bool) -> None:  # fmt: skip
    """Lint the revisions for each target's database."""
    targets = _targets(options, targets_file, schemas, database, shard)
    _run(options, _job(options, "lint", dialect=dialect), targets, parallel, as_json)


# -- output ----------------------------------------------------------------------------


def _revs(record: Record) -> tuple[str, str]:
    """From and to, as the table shows them: blank when not known (not reached, a check)."""
    data = record.to_dict()
    return str(data["from"] or ""), str(data["to"] or "")


def _line(record: Record, index: int, total: int) -> str:
    before, after = _revs(record)
    move = f"  {before or '?'} -> {after or '?'}" if before or after else ""
    error = f"  {record.error}" if record.error else ""
    return (f"[{index}/{total}] {record.target}  {record.state}{move}  "
            f"{record.seconds:.1f}s{error}")  # fmt: skip


@contextmanager
def _display(job: Job, targets: list[Target], as_json: bool) -> Iterator[Any]:
    """A live table on a terminal; else a line per finished target (stderr under --json)."""
    stream = sys.stderr if as_json else sys.stdout
    try:
        live = not as_json and stream.isatty()
    except (AttributeError, ValueError):
        live = False
    if not live:
        finished = [0]

        def line(kind: str, _name: str, data: Any) -> None:
            if kind == "done":
                finished[0] += 1
                stream.write(f"fleet {job.action}: {_line(data, finished[0], len(targets))}\n")
                stream.flush()

        yield line
        return
    from rich.console import Console
    from rich.live import Live

    rows: dict[str, list[str]] = {t.name: ["", "", "waiting", "", ""] for t in targets}
    started: dict[str, float] = {}
    title = f"fleet {job.action}" + (f" {job.goal}" if job.goal else "")

    def table() -> Any:
        now = time.monotonic()
        return _table(title, [[name, *row[:3], f"{now - started[name]:.1f}s"
                               if name in started else row[3], row[4]]
                              for name, row in rows.items()])  # fmt: skip

    with Live(table(), console=Console(file=stream), refresh_per_second=4,
              transient=True) as view:  # fmt: skip

        def event(kind: str, name: str, data: Any) -> None:
            row = rows[name]
            if kind == "start":
                started[name] = time.monotonic()
                row[2] = "running"
            elif kind == "step":
                index, total, revision = data
                row[1:3] = [revision, f"running {index}/{total}"]
            else:
                started.pop(name, None)
                row[:] = [*_revs(data), data.state, f"{data.seconds:.1f}s", data.error or ""]
            view.update(table())

        yield event


def _table(title: str, rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("target", "from", "to", "state", "time", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _summary(report: FleetReport) -> None:
    from rich.console import Console

    out = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    if sys.stdout.isatty():  # the live table was transient: print the final one
        title = f"fleet {report.action}" + (f" {report.goal}" if report.goal else "")
        out.print(_table(title, [[r.target, *_revs(r), r.state, f"{r.seconds:.1f}s",
                                  r.error or ""] for r in report.records]))  # fmt: skip
    counts = ", ".join(f"{n} {state}" for state, n in report.counts.items())
    out.print(f"{len(report.records)} target(s) in {report.seconds:.1f}s: {counts}.", markup=False)
    if report.stopped:
        out.print(f"Stopped: {report.stopped}.", markup=False)
