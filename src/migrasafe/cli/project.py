"""The commands that read and write the project: init, revision, status, history, demo."""

from __future__ import annotations

import click

from migrasafe.cli.app import (
    EXIT_FOUND,
    EXIT_OK,
    Options,
    _emit,
    json_option,
    main,
    pass_options,
)


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


@main.command()
@click.option(
    "--strict", is_flag=True, help="Fail (exit 1) on revisions applied without a checksum too."
)
@json_option
@pass_options
def status(options: Options, strict: bool, as_json: bool) -> None:
    """Show applied, pending, unknown and modified revisions, read from the database.

    Exits 0 when the database is at the head(s) and no applied script was
    edited since it was applied; 1 otherwise. Revisions applied without a
    recorded checksum (by plain Alembic) are a note, until `migrasafe accept`
    records them; with --strict they fail the status too.
    """
    import migrasafe.cli.render as render
    import migrasafe.commands.lean as lean
    from migrasafe.commands.status import status as run_status

    result = lean.answer(options.invocation(), lambda found: lean.status(found, strict),
                         lambda project: run_status(project, strict=strict),
                         options.project)  # fmt: skip
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
