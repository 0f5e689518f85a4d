"""The commands that change the database: upgrade, downgrade, accept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from migrasafe.cli.app import Options, _emit, complete_revisions, json_option, main, pass_options
from migrasafe.errors import Interrupted, MigrationFailed

if TYPE_CHECKING:
    from migrasafe.project.config import Project
    from migrasafe.project.settings import DeploySettings


# ignore_unknown_options: a relative target such as -1 is an argument, not an option.
RELATIVE_TARGETS = {"ignore_unknown_options": True}


if TYPE_CHECKING:  # generic from click 8.2; the requirement allows 8.1
    _ParamType = click.ParamType[float, Any]
else:
    _ParamType = click.ParamType


class Seconds(_ParamType):
    """A finite number of seconds from 0 to a week: NaN and 1e400 (infinity) are refused."""

    name = "seconds"
    LONGEST = 7 * 24 * 3600.0

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 <= seconds <= self.LONGEST:  # NaN fails both comparisons
            self.fail(f"{value!r} is not between 0 and {self.LONGEST:g} seconds", param, ctx)
        return seconds


lock_timeout_option = click.option(
    "--lock-timeout", type=Seconds(), default=600.0, show_default=True,
    metavar="SECONDS", help="How long to wait while another migrasafe run holds the migration "
    "lock (migrasafe's own lock; see --db-lock-timeout for the database's table locks).",
)  # fmt: skip


def deploy_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--db-lock-timeout, --statement-timeout, --retries (defaults: [tool.migrasafe])."""
    for option in reversed((
        click.option("--db-lock-timeout", metavar="DURATION",
                     help="Longest wait of any statement for a table lock, e.g. 2s: the "
                     "application's queries never queue behind a blocked migration for longer."),
        click.option("--statement-timeout", metavar="DURATION",
                     help="Longest run of any statement, e.g. 5m."),
        click.option("--retries", type=click.IntRange(min=0), metavar="N",
                     help="Retry a revision that hit --db-lock-timeout or a deadlock N times, "
                     "after a growing pause; never any other error."),
    )):  # fmt: skip
        command = option(command)
    return command


@contextmanager
def _partial_results(as_json: bool) -> Iterator[None]:
    """A failed run still reports what it did before failing (or the SQL rendered), then
    fails; under --json the error object carries it (see ``migrasafe.cli.app._fail``)."""
    try:
        yield
    except (MigrationFailed, Interrupted) as exc:
        import migrasafe.cli.render as render
        from migrasafe.deploy.migrate import MigrationResult

        if isinstance(exc.result, MigrationResult) and not as_json:
            render.migration_result(exc.result, partial=True)
        raise


def _deploy(
    project: Project, lock: str | None, statement: str | None, retries: int | None
) -> DeploySettings:
    from migrasafe.project.settings import load_deploy_settings

    return load_deploy_settings(project.config_path.parent.resolve(), db_lock_timeout=lock,
                                statement_timeout=statement, retries=retries)  # fmt: skip


def _migrate(
    direction: str,
    options: Options,
    target: str,
    sql: bool,
    lock_timeout: float,
    db_lock_timeout: str | None,
    statement_timeout: str | None,
    retries: int | None,
    as_json: bool,
    phase: str | None = None,
    resume: bool = False,
) -> None:
    import functools

    import migrasafe.cli.render as render
    import migrasafe.deploy.migrate as migrate

    chosen_run = migrate.upgrade if direction == "upgrade" else migrate.downgrade
    run: Any = functools.partial(chosen_run, resume=resume)
    plan = None
    with _partial_results(as_json), render.progress(direction, enabled=not sql) as report:
        project = options.project()
        deploy = _deploy(project, db_lock_timeout, statement_timeout, retries)
        targets: tuple[str, ...] = (target,)
        if phase is not None:
            from migrasafe.commands.phases import plan as plan_phase

            if target != "head" or sql:
                raise click.UsageError("--phase chooses the target itself: give no TARGET "
                                       "and no --sql")  # fmt: skip
            plan = plan_phase(project, phase)
            targets = plan.targets
        chosen: str | tuple[str, ...] = targets[0] if len(targets) == 1 else targets
        result = None
        if targets:
            result = run(project, chosen, sql=sql, lock_timeout=lock_timeout,
                         waiting=_say_waiting, deploy=deploy, retrying=_say_waiting,
                         progress=report)  # fmt: skip
    if result is None:  # --phase with nothing to apply now
        current = plan.current if plan is not None else ()
        result = migrate.MigrationResult(direction, target, "", current, current)  # type: ignore[arg-type]
    data = result.to_dict() | ({"phase": plan.to_dict()} if plan is not None else {})

    def text() -> None:
        if targets:
            render.migration_result(result)
        if plan is not None:
            render.phase_plan(plan)

    _emit(as_json, data, text)


resume_option = click.option(
    "--resume", is_flag=True,
    help="Run a revision that stopped midway (killed, or failed where DDL commits at once) "
    "again, skipping each operation whose effect is already there.",
)  # fmt: skip


def _refuse_resume_with_sql(resume: bool, sql: bool) -> None:
    if resume and sql:
        raise click.UsageError("--resume runs against the database; --sql only prints")


def _say_waiting(message: str) -> None:
    click.echo(f"migrasafe: {message}", err=True)


@main.command(context_settings=RELATIVE_TARGETS)
@click.argument("target", default="head", shell_complete=complete_revisions)
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.option("--phase", type=click.Choice(("expand", "contract")),
              help="expand: the pending revisions the running release tolerates, up to the "
              "first it does not; contract: the rest (after the application rollout).")  # fmt: skip
@resume_option
@lock_timeout_option
@deploy_options
@json_option
@pass_options
def upgrade(
    options: Options,
    target: str,
    sql: bool,
    phase: str | None,
    lock_timeout: float,
    db_lock_timeout: str | None,
    statement_timeout: str | None,
    retries: int | None,
    resume: bool,
    as_json: bool,
) -> None:
    """Apply revisions up to TARGET (default: head).

    Concurrent runs take turns (a lock). Transactions are the ones env.py
    sets up: one for the whole run in Alembic's default env.py, one per
    revision with transaction_per_migration=True; a failing revision rolls
    back its transaction, on SQLite too (migrasafe makes its DDL
    transactional). Each applied script's checksum is recorded with it.

    Where DDL commits at once (MySQL, MariaDB; an autocommit_block
    anywhere), each revision leaves a mark that its version change clears:
    a revision killed midway is named by `status`, and is run again only
    with --resume.
    """
    _refuse_resume_with_sql(resume, sql)
    _migrate("upgrade", options, target, sql, lock_timeout, db_lock_timeout,
             statement_timeout, retries, as_json, phase, resume)  # fmt: skip


@main.command(context_settings=RELATIVE_TARGETS)
@click.argument("target", shell_complete=complete_revisions)
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@resume_option
@lock_timeout_option
@deploy_options
@json_option
@pass_options
def downgrade(
    options: Options,
    target: str,
    sql: bool,
    lock_timeout: float,
    db_lock_timeout: str | None,
    statement_timeout: str | None,
    retries: int | None,
    resume: bool,
    as_json: bool,
) -> None:
    """Revert revisions down to TARGET: a revision id, base, or relative like -1.

    Marked as upgrade's revisions are: one stopped midway is run again only with --resume.
    """
    _refuse_resume_with_sql(resume, sql)
    _migrate("downgrade", options, target, sql, lock_timeout, db_lock_timeout,
             statement_timeout, retries, as_json, resume=resume)  # fmt: skip


@main.command()
@click.argument("revisions", nargs=-1, required=True, shell_complete=complete_revisions)
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (FROM:TO).")
@click.option("--tag", help="An arbitrary tag for env.py's context.get_tag_argument().")
@click.option("--purge", is_flag=True, help="Empty the version table before stamping.")
@lock_timeout_option
@json_option
@pass_options
def stamp(
    options: Options, revisions: tuple[str, ...], sql: bool, tag: str | None, purge: bool,
    lock_timeout: float, as_json: bool,
) -> None:  # fmt: skip
    """Set the version table to REVISIONS without running any migration (as alembic stamp).

    The revisions stamped on are unverified (no checksum) until `accept`;
    those stamped off lose their checksum.
    """
    import migrasafe.cli.render as render
    from migrasafe.deploy.migrate import stamp as run_stamp

    with _partial_results(as_json):
        result = run_stamp(options.project(), revisions, sql=sql, purge=purge, tag=tag,
                           lock_timeout=lock_timeout, waiting=_say_waiting)  # fmt: skip
    _emit(as_json, result.to_dict(), lambda: render.migration_result(result))


@main.command()
@click.argument("revisions", nargs=-1, shell_complete=complete_revisions)
@json_option
@pass_options
def accept(options: Options, revisions: tuple[str, ...], as_json: bool) -> None:
    """Accept the current files of applied REVISIONS (default: all) after review.

    Records their checksums, so that status stops reporting them as modified.
    """
    import migrasafe.cli.render as render
    from migrasafe.deploy.checksums import accept as run_accept

    result = run_accept(options.project(), revisions)
    _emit(as_json, result.to_dict(), lambda: render.accept_result(result))
