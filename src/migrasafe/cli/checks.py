"""The checks: validate, lint, verify."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from migrasafe.cli.app import (
    Options,
    _emit,
    _emit_findings,
    fail_on_option,
    format_option,
    found_code,
    json_option,
    main,
    pass_options,
)


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
@fail_on_option
@json_option
@format_option
@pass_options
def validate(
    options: Options,
    rules: Sequence[str],
    skips: Sequence[str],
    list_rules: bool,
    database: bool | None,
    fail_on: str,
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
    code = found_code(result.ok, result.findings, fail_on)
    _emit_findings("json" if as_json else fmt, result.to_dict, result.findings,
                   VALIDATE_CHECKS.select(), "validate",
                   lambda: render.findings(result.findings, result.files), code)  # fmt: skip


@main.command()
@click.argument("paths", nargs=-1, metavar="[SQL_FILE_OR_DIR]...",
                type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option(
    "--dialect", type=click.Choice(("postgresql", "sqlite", "mysql")),
    help="The database to lint for (default: the configured URL's; postgresql for .sql "
    "files outside a project).",
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
@click.option(
    "--db-lock-timeout", metavar="DURATION",
    help="The lock_timeout the deploy sets, as for `upgrade --db-lock-timeout` (e.g. 2s): "
    "missing-lock-timeout is then quiet (default: [tool.migrasafe] db-lock-timeout).",
)  # fmt: skip
@click.option("--fix", is_flag=True,
              help="Rewrite each finding that has a safe form as its migrasafe.safe_op call, "
              "keeping the file's formatting and comments; prints the diff.")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="With --fix: print the diff, change nothing.")
@fail_on_option
@json_option
@format_option
@pass_options
def lint(
    options: Options,
    paths: Sequence[Path],
    dialect: str | None,
    rules: Sequence[str],
    skips: Sequence[str],
    list_rules: bool,
    since: str | None,
    pg_version: int,
    strict: bool,
    git_base: str | None,
    db_lock_timeout: str | None,
    fix: bool,
    dry_run: bool,
    fail_on: str,
    as_json: bool,
    fmt: str,
) -> None:
    """Find dangerous operations in each revision's upgrade, without a database.

    Given .sql files or directories (their *.sql files, in order), lints those
    instead, with or without an Alembic project. Suppress a finding with
    `# migrasafe: ignore[rule-id]` on its line (`-- migrasafe: ignore[...]` in
    SQL), or in pyproject.toml's [tool.migrasafe.lint]. Exits 1 when an error
    remains.
    """
    import migrasafe.cli.render as render
    from migrasafe.checks.lint import RULES as LINT_RULES
    from migrasafe.checks.lint import lint as run_lint
    from migrasafe.checks.lint import lint_sql_files
    from migrasafe.errors import ConfigError

    if list_rules:
        _emit(as_json, LINT_RULES.describe(), lambda: render.rules(LINT_RULES.select()))
    if not paths:
        result = run_lint(options.project(), dialect=dialect, only=rules, skip=skips,
                          since=since, git_base=git_base, strict=strict, pg_version=pg_version,
                          db_lock_timeout=db_lock_timeout)  # fmt: skip
    else:
        if since is not None or git_base is not None:
            raise ConfigError("--since and --git-base choose revisions; with .sql files, name "
                              "the files to lint")  # fmt: skip
        try:
            project = options.project()
        except ConfigError:
            if options.config:
                raise
            project = None  # no Alembic project here: SQL files need none
        result = lint_sql_files(paths, project=project, dialect=dialect, only=rules, skip=skips,
                                strict=strict, pg_version=pg_version,
                                db_lock_timeout=db_lock_timeout)  # fmt: skip
    if dry_run and not fix:
        raise click.UsageError("--dry-run goes with --fix")
    if fix:
        _fix(result, dry_run=dry_run, as_json=as_json, fail_on=fail_on)
    code = found_code(result.ok, result.findings, fail_on)
    _emit_findings("json" if as_json else fmt, result.to_dict, result.findings,
                   LINT_RULES.select(only=rules, skip=skips), "lint",
                   lambda: render.lint_report(result), code)  # fmt: skip


def _fix(result: Any, *, dry_run: bool, as_json: bool, fail_on: str) -> None:
    """Rewrite what has a safe form; report the diffs and the findings that remain."""
    import dataclasses

    import migrasafe.cli.render as render
    from migrasafe.checks.lint.fix import fix as run_fix

    fixes = run_fix(result.findings, write=not dry_run)
    done = {(f.path, line, rule) for f in fixes for line, rule in f.fixed}
    remaining = tuple(f for f in result.findings if (f.path, f.line, f.rule) not in done)
    left = dataclasses.replace(result, findings=remaining)
    code = found_code(left.ok, remaining, fail_on) if not dry_run else found_code(
        result.ok, result.findings, fail_on)  # fmt: skip
    data = left.to_dict() | {"fixes": [f.to_dict() for f in fixes], "dry_run": dry_run}
    _emit(as_json, data, lambda: render.fixes(fixes, left, dry_run), code)


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
    "--rows",
    type=click.IntRange(0, 100_000),
    default=20,
    show_default=True,
    help="Generated rows per table per revision (0: schema only).",
)
@click.option("--seed", default=0, show_default=True, help="Seed for the generated rows.")
@click.option(
    "--trace-locks", is_flag=True,
    help="PostgreSQL: record the locks and table rewrites each revision really causes, "
    "and hold them against lint's findings.",
)  # fmt: skip
@fail_on_option
@json_option
@pass_options
def verify(
    options: Options,
    scratch_url: str | None,
    rows: int,
    seed: int,
    trace_locks: bool,
    fail_on: str,
    as_json: bool,
) -> None:
    """Prove every migration reverses: schema and data, on a scratch database.

    Exits 0 when every revision round-trips cleanly, 1 with findings.
    """
    import migrasafe.cli.render as render
    from migrasafe.checks.verify import verify as run_verify

    with render.progress("verify") as advance:
        result = run_verify(options.project(), url=scratch_url, rows=rows, seed=seed,
                            progress=advance, trace_locks=trace_locks)  # fmt: skip
    code = found_code(result.ok, result.findings, fail_on)
    _emit(as_json, result.to_dict(), lambda: render.verify(result), code)


@main.command()
@click.argument("ref")
@click.option("--url", "scratch_url", metavar="URL",
              help="Create the scratch database on this server (default: as verify).")  # fmt: skip
@json_option
@pass_options
def compat(options: Options, ref: str, scratch_url: str | None, as_json: bool) -> None:
    """Prove the release at git REF (the one running) works on the schema a deploy leaves.

    On a scratch database upgraded as the deploy would (the expand phase when the
    project deploys in phases, else head), the models at REF and the working tree's are
    each held against the schema, and a row from each model is written and read back.
    Exits 1 when either release would break.
    """
    import migrasafe.cli.render as render
    from migrasafe.commands.compat import compat as run_compat

    result = run_compat(options.project(), ref, url=scratch_url)
    code = found_code(result.ok, result.findings, "error")
    _emit(as_json, result.to_dict(), lambda: render.compat(result), code)
