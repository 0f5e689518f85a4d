"""The ``migrasafe`` command line: parse arguments, call the library, render.

No logic lives here: each command calls one library function and hands its
result to :mod:`migrasafe.cli.render` (text) or prints its ``to_dict()`` (--json).
Exit codes: 0 ok, 1 the check found something, 2 error.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

from migrasafe.errors import Interrupted, MigrasafeError, MigrationFailed, Terminated

if TYPE_CHECKING:  # imported by the commands that need them: see migrasafe.commands.lean
    from migrasafe.commands.lean import Invocation
    from migrasafe.project.config import Project
    from migrasafe.project.settings import DeploySettings

URL_ENV_VAR = "MIGRASAFE_URL"

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


@dataclass
class Options:
    config: tuple[str, ...]
    url: str | None
    debug: bool
    x_args: tuple[str, ...] = ()
    name: str = "alembic"
    app: str | None = None

    def invocation(self) -> Invocation:
        from migrasafe.commands.lean import Invocation

        return Invocation(self.config, self.url, self.x_args, self.name, self.app)

    def project(self) -> Project:
        from migrasafe.project.config import load_project

        return load_project(self.config or None, self.url, x_args=self.x_args, name=self.name,
                            app=self.app)  # fmt: skip


def _fail(message: str, debug: bool, url: str | None = None, code: int = EXIT_ERROR) -> NoReturn:
    """One line on stderr (the traceback too with --debug), every password masked."""
    import traceback

    from migrasafe.db.urls import scrub

    if debug:
        click.echo(scrub(traceback.format_exc(), url), err=True, nl=False)
    click.echo(f"migrasafe: error: {scrub(' '.join(message.split()), url)}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns a MigrasafeError into one line on stderr and exit 2 (130/143 when interrupted)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Click's usage errors are one line too, exit 2, with where to find help."""
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:  # --help, --version
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            context = getattr(exc, "ctx", None)
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            _fail(f"{exc.format_message()}{where}", False, None, EXIT_ERROR)
        except click.Abort:
            _fail("interrupted by SIGINT; nothing was left half-done", False, None, 130)
        sys.exit(result if isinstance(result, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            previous = signal.signal(signal.SIGTERM, _terminate)
        except ValueError:  # not the main thread: leave signals to whoever runs us
            previous = None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # outside a migration: nothing was under way
            terminated = isinstance(exc, Terminated)
            name = "SIGTERM" if terminated else "SIGINT"
            _fail(f"interrupted by {name}; nothing was left half-done", False, None,
                  143 if terminated else 130)  # fmt: skip
        except MigrasafeError as exc:
            options = ctx.find_object(Options)
            debug = options.debug if options else "--debug" in sys.argv
            _fail(exc.message, debug, options.url if options else None, exc.exit_code)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so that locks are released and scratch databases dropped."""
    raise Terminated()


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
format_option = click.option(
    "--format", "fmt", type=click.Choice(("text", "json", "github", "gcc", "sarif")),
    default="text", show_default=True,
    help="github: annotations for GitHub Actions; gcc: path:line: lines for editors; "
    "sarif: SARIF 2.1.0 for code scanning; json: as --json.",
)  # fmt: skip


def _emit_findings(
    fmt: str, data: Callable[[], object], findings: Any, checks: Any, tool: str,
    text: Callable[[], None], code: int,
) -> None:  # fmt: skip
    """Findings in the format asked for (text and json as every command prints them)."""
    if fmt in ("text", "json"):
        _emit(fmt == "json", data, text, code)
    import migrasafe.cli.formats as formats

    if fmt == "sarif":
        sys.stdout.write(formats.sarif(findings, checks, tool))
    else:
        sys.stdout.write(formats.github(findings) if fmt == "github" else formats.gcc(findings))
    sys.exit(code)


pass_options = click.make_pass_decorator(Options)


def _emit(
    as_json: bool,
    data: object | Callable[[], object],
    text: Callable[[], None],
    code: int = EXIT_OK,
) -> None:
    """Print ``data`` as JSON (computed only then, when a callable) or render it as text."""
    if as_json:
        value = data() if callable(data) else data
        sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    else:
        text()
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c", "--config", multiple=True, metavar="PATH",
    help="The project's alembic.ini and/or pyproject.toml, as for alembic "
    "(default: $ALEMBIC_CONFIG, ./alembic.ini, ./pyproject.toml, Flask-Migrate's "
    "migrations/alembic.ini).",
)  # fmt: skip
@click.option(
    "--url", envvar=URL_ENV_VAR, metavar="URL",
    help=f"The project's database; replaces sqlalchemy.url (also ${URL_ENV_VAR}).",
)  # fmt: skip
@click.option(
    "-x", "x_args", multiple=True, metavar="KEY=VALUE",
    help="For env.py's context.get_x_argument(), as alembic -x (repeatable).",
)  # fmt: skip
@click.option("-n", "--name", default="alembic", show_default=True, metavar="SECTION",
              help="The ini file's section, as alembic -n.")  # fmt: skip
@click.option("--app", metavar="MODULE:APP",
              help="A Flask-Migrate project's application (default: $FLASK_APP).")  # fmt: skip
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="migrasafe")
@click.pass_context
def main(
    ctx: click.Context,
    config: tuple[str, ...],
    url: str | None,
    x_args: tuple[str, ...],
    name: str,
    app: str | None,
    debug: bool,
) -> None:
    """Alembic migrations that tell the truth about a database."""
    ctx.obj = Options(config=config, url=url, debug=debug, x_args=x_args, name=name, app=app)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--template",
    type=click.Choice(("generic", "library")),
    default="generic",
    show_default=True,
    help="generic: an empty project; library: the reference catalogue with 3 revisions.",
)
@json_option
def init(directory: str, template: str, as_json: bool) -> None:
    """Write a new Alembic project into DIRECTORY (new or empty)."""
    import migrasafe.cli.render as render
    from migrasafe.commands.scaffold import init as run_init

    result = run_init(directory, template)  # type: ignore[arg-type]
    _emit(as_json, result.to_dict(), lambda: render.init_result(result))


# ignore_unknown_options: a relative target such as -1 is an argument, not an option.
RELATIVE_TARGETS = {"ignore_unknown_options": True}


lock_timeout_option = click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
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
    """A failed run still reports what it did before failing (or the SQL rendered), then fails."""
    try:
        yield
    except (MigrationFailed, Interrupted) as exc:
        import migrasafe.cli.render as render
        from migrasafe.deploy.migrate import MigrationResult

        result = exc.result
        if isinstance(result, MigrationResult):
            if as_json:
                sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
            else:
                render.migration_result(result, partial=True)
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
) -> None:
    import migrasafe.cli.render as render
    import migrasafe.deploy.migrate as migrate

    run = migrate.upgrade if direction == "upgrade" else migrate.downgrade
    with _partial_results(as_json):
        project = options.project()
        deploy = _deploy(project, db_lock_timeout, statement_timeout, retries)
        result = run(project, target, sql=sql, lock_timeout=lock_timeout, waiting=_say_waiting,
                     deploy=deploy, retrying=_say_waiting)  # fmt: skip
    _emit(as_json, result.to_dict(), lambda: render.migration_result(result))


def _say_waiting(message: str) -> None:
    click.echo(f"migrasafe: {message}", err=True)


@main.command(context_settings=RELATIVE_TARGETS)
@click.argument("target", default="head")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@lock_timeout_option
@deploy_options
@json_option
@pass_options
def upgrade(
    options: Options,
    target: str,
    sql: bool,
    lock_timeout: float,
    db_lock_timeout: str | None,
    statement_timeout: str | None,
    retries: int | None,
    as_json: bool,
) -> None:
    """Apply revisions up to TARGET (default: head).

    Concurrent runs take turns (a lock); each revision runs in its own
    transaction, so a failing one leaves no trace, on SQLite too.
    """
    _migrate("upgrade", options, target, sql, lock_timeout, db_lock_timeout,
             statement_timeout, retries, as_json)  # fmt: skip


@main.command(context_settings=RELATIVE_TARGETS)
@click.argument("target")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
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
    as_json: bool,
) -> None:
    """Revert revisions down to TARGET: a revision id, base, or relative like -1."""
    _migrate("downgrade", options, target, sql, lock_timeout, db_lock_timeout,
             statement_timeout, retries, as_json)  # fmt: skip


@main.command()
@click.argument("revisions", nargs=-1)
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


@main.command()
@json_option
@pass_options
def status(options: Options, as_json: bool) -> None:
    """Show applied, pending, unknown and modified revisions, read from the database.

    Exits 0 when the database is at the head(s) and no applied script was
    edited since it was applied; 1 otherwise.
    """
    import migrasafe.cli.render as render
    import migrasafe.commands.lean as lean
    from migrasafe.commands.status import status as run_status

    result = lean.answer(options.invocation(), lean.status, run_status, options.project)
    code = EXIT_OK if result.ok else EXIT_FOUND
    _emit(as_json, result.to_dict(), lambda: render.status(result), code)


@main.command()
@json_option
@pass_options
def history(options: Options, as_json: bool) -> None:
    """List revisions from base to head(s), following the revision graph."""
    import migrasafe.cli.render as render
    import migrasafe.commands.lean as lean
    from migrasafe.commands.history import history as run_history

    result = lean.answer(options.invocation(), lean.history, run_history, options.project,
                         keep=lambda found: found.warning is None)  # fmt: skip
    if result.warning:
        click.echo(f"migrasafe: warning: {result.warning}", err=True)
    _emit(as_json, lambda: [e.to_dict() for e in result.entries],
          lambda: render.history(result))  # fmt: skip


@main.command()
@click.option(
    "--rule", "rules", multiple=True, metavar="RULE", help="Run only this rule (repeatable)."
)
@click.option("--skip", "skips", multiple=True, metavar="RULE", help="Skip this rule (repeatable).")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option(
    "--database/--no-database", default=None,
    help="Also read the database (read-only) for applied scripts edited since; "
    "default: on when --url or $MIGRASAFE_URL is given.",
)  # fmt: skip
@json_option
@format_option
@pass_options
def validate(
    options: Options,
    rules: Sequence[str],
    skips: Sequence[str],
    list_rules: bool,
    database: bool | None,
    as_json: bool,
    fmt: str,
) -> None:
    """Check the revision files' structure, without a database unless given one.

    Exits 0 when no error-level finding remains, 1 otherwise.
    """
    import migrasafe.cli.render as render
    import migrasafe.commands.lean as lean
    from migrasafe.checks.validate import CHECKS as VALIDATE_CHECKS
    from migrasafe.checks.validate import validate as run_validate

    if list_rules:
        _emit(as_json, VALIDATE_CHECKS.describe(), lambda: render.rules(VALIDATE_CHECKS.select()))
    use_database = options.url is not None if database is None else database
    result = lean.answer(
        options.invocation(),
        lambda invocation: lean.validate(invocation, rules, skips, use_database),
        lambda project: run_validate(project, only=rules, skip=skips, database=use_database),
        options.project,
    )
    code = EXIT_OK if result.ok else EXIT_FOUND
    _emit_findings("json" if as_json else fmt, result.to_dict, result.findings,
                   VALIDATE_CHECKS.select(), "validate",
                   lambda: render.findings(result.findings, result.files), code)  # fmt: skip


@main.command()
@click.option(
    "--dialect", type=click.Choice(("postgresql", "sqlite", "mysql")),
    help="The database to lint for (default: the configured URL's).",
)  # fmt: skip
@click.option(
    "--rule", "rules", multiple=True, metavar="RULE", help="Run only this rule (repeatable)."
)
@click.option("--skip", "skips", multiple=True, metavar="RULE", help="Skip this rule (repeatable).")
@click.option("--list-rules", is_flag=True, help="List the rules and exit.")
@click.option("--since", metavar="REV", help="Lint only the revisions after REV.")
@click.option(
    "--pg-version", type=click.IntRange(9, 99), default=15, show_default=True, metavar="N",
    help="The PostgreSQL major version to judge for (what is safe changed over versions, "
    "e.g. a constant default on a new column from 11).",
)  # fmt: skip
@click.option("--strict", is_flag=True,
              help="A suppression (ignore comment or pyproject entry) that silences nothing "
              "is an error.")  # fmt: skip
@click.option(
    "--git-base", metavar="REF",
    help="Lint only the revision files added or changed since git REF (e.g. origin/main).",
)  # fmt: skip
@json_option
@format_option
@pass_options
def lint(
    options: Options,
    dialect: str | None,
    rules: Sequence[str],
    skips: Sequence[str],
    list_rules: bool,
    since: str | None,
    pg_version: int,
    strict: bool,
    git_base: str | None,
    as_json: bool,
    fmt: str,
) -> None:
    """Find dangerous operations in each revision's upgrade, without a database.

    Suppress one with `# migrasafe: ignore[rule-id]` on its line, or in
    pyproject.toml's [tool.migrasafe.lint]. Exits 1 when an error remains.
    """
    import migrasafe.cli.render as render
    from migrasafe.checks.lint import RULES as LINT_RULES
    from migrasafe.checks.lint import lint as run_lint
    from migrasafe.checks.lint import select_revisions

    if list_rules:
        _emit(as_json, LINT_RULES.describe(), lambda: render.rules(LINT_RULES.select()))
    project = options.project()
    chosen = select_revisions(project, since, git_base)
    result = run_lint(project, dialect=dialect, only=rules, skip=skips, revisions=chosen,
                      strict=strict, pg_version=pg_version)  # fmt: skip
    code = EXIT_OK if result.ok else EXIT_FOUND
    _emit_findings("json" if as_json else fmt, result.to_dict, result.findings,
                   LINT_RULES.select(only=rules, skip=skips), "lint",
                   lambda: render.lint_report(result), code)  # fmt: skip


@main.command()
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("--autogenerate", is_flag=True, help="Compare models with the database.")
@json_option
@pass_options
def revision(options: Options, message: str, autogenerate: bool, as_json: bool) -> None:
    """Write a new revision file with the next sequential id (0004 after 0003)."""
    import migrasafe.cli.render as render
    from migrasafe.commands.scaffold import revision as run_revision

    result = run_revision(options.project(), message, autogenerate=autogenerate)
    _emit(as_json, result.to_dict(), lambda: render.revision_result(result))


@main.command()
@click.option("--url", "demo_url", metavar="URL",
              help="An empty database to run on (default: a temporary SQLite file).")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the generated project directory.")
@json_option
def demo(demo_url: str | None, keep: bool, as_json: bool) -> None:
    """Run the reference project's whole workflow for real and check each step."""
    import migrasafe.cli.render as render
    from migrasafe.commands.demo import demo as run_demo

    result = run_demo(demo_url, keep=keep)
    code = EXIT_OK if result.ok else EXIT_FOUND
    _emit(as_json, result.to_dict(), lambda: render.demo(result), code)


@main.command()
@click.option(
    "--url",
    "scratch_url",
    metavar="URL",
    help="Create the scratch database on this server (default: the project's database "
    "server, from the global --url, $MIGRASAFE_URL or env.py; the database itself is "
    "never written to).",
)
@click.option(
    "--rows", default=20, show_default=True, help="Generated rows per table per revision."
)
@click.option("--seed", default=0, show_default=True, help="Seed for the generated rows.")
@click.option(
    "--trace-locks", is_flag=True,
    help="PostgreSQL: record the locks and table rewrites each revision really causes, "
    "and hold them against lint's findings.",
)  # fmt: skip
@json_option
@pass_options
def verify(
    options: Options,
    scratch_url: str | None,
    rows: int,
    seed: int,
    trace_locks: bool,
    as_json: bool,
) -> None:
    """Prove every migration reverses: schema and data, on a scratch database.

    Exits 0 when every revision round-trips cleanly, 1 with findings.
    """
    import migrasafe.cli.render as render
    from migrasafe.checks.verify import verify as run_verify

    with render.progress("verify", enabled=not as_json) as advance:
        result = run_verify(options.project(), url=scratch_url, rows=rows, seed=seed,
                            progress=advance, trace_locks=trace_locks)  # fmt: skip
    code = EXIT_OK if result.ok else EXIT_FOUND
    _emit(as_json, result.to_dict(), lambda: render.verify(result), code)
