"""The commands that read and write the project: init, revision, status, history, demo."""

from __future__ import annotations

import click

from migrasafe.cli.app import (
    EXIT_FOUND,
    EXIT_OK,
    Options,
    _emit,
    complete_revisions,
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
@click.option("--phases", is_flag=True,
              help="Also list the pending revisions by phase.")  # fmt: skip
@json_option
@pass_options
def status(options: Options, strict: bool, phases: bool, as_json: bool) -> None:
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
    if not phases:
        _emit(as_json, result.to_dict(), lambda: render.status(result), code)
    from migrasafe.commands.phases import pending_by_phase

    by_phase = pending_by_phase(options.project(), result.pending)

    def text() -> None:
        render.status(result)
        render.pending_phases(by_phase)

    _emit(as_json, result.to_dict() | {"pending_phases": by_phase}, text, code)


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
@click.option("--rev-id", help="The new revision's id (default: the next number when the "
              "project numbers its revisions, else Alembic's random id).")  # fmt: skip
@click.option("--head", default="head", show_default=True,
              help="The revision to build on (a head, or BRANCH@head).")  # fmt: skip
@click.option("--splice", is_flag=True, help="Allow a --head that is not a head (a new branch).")
@click.option("--branch-label", help="A branch label for the new revision.")
@click.option("--depends-on", "depends_on", multiple=True, metavar="REV",
              help="A revision the new one depends on (repeatable).")  # fmt: skip
@click.option("--version-path", type=click.Path(file_okay=False),
              help="Which of version_locations to write the file into.")  # fmt: skip
@json_option
@pass_options
def revision(
    options: Options, message: str, autogenerate: bool, rev_id: str | None, head: str,
    splice: bool, branch_label: str | None, depends_on: tuple[str, ...],
    version_path: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Write a new revision file, as alembic revision (ids: the next number in a numbered
    project, else Alembic's random hex)."""
    import migrasafe.cli.render as render
    from migrasafe.commands.scaffold import revision as run_revision

    result = run_revision(
        options.project(), message, autogenerate=autogenerate, rev_id=rev_id, head=head,
        splice=splice, branch_label=branch_label, depends_on=list(depends_on) or None,
        version_path=version_path,
    )  # fmt: skip
    _emit(as_json, result.to_dict(), lambda: render.revision_result(result))


@main.command()
@click.argument("revisions", nargs=-1, shell_complete=complete_revisions)
@click.option("-m", "--message", help="What the merge revision says.")
@click.option("--branch-label", help="A branch label for the merge revision.")
@click.option("--rev-id", help="The merge revision's id (default as for revision).")
@json_option
@pass_options
def merge(
    options: Options, revisions: tuple[str, ...], message: str | None,
    branch_label: str | None, rev_id: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Write a revision that merges REVISIONS (default: every head) into one, as alembic merge."""
    import migrasafe.cli.render as render
    from migrasafe.commands.scaffold import merge as run_merge

    result = run_merge(options.project(), revisions or ("heads",), message,
                       branch_label=branch_label, rev_id=rev_id)  # fmt: skip
    _emit(as_json, result.to_dict(), lambda: render.revision_result(result))


@main.command()
@click.argument("revision", default="head", shell_complete=complete_revisions)
@json_option
@pass_options
def show(options: Options, revision: str, as_json: bool) -> None:
    """Show REVISION (an id or prefix, head, heads, base, BRANCH@head, current)."""
    import migrasafe.cli.render as render
    from migrasafe.commands.revisions import show as run_show

    found = run_show(options.project(), revision)
    _emit(as_json, lambda: [info.to_dict() for info in found], lambda: render.show(found))


@main.command()
@click.option("--resolve-dependencies", is_flag=True,
              help="Treat revisions that others depend on (depends_on) as not heads.")  # fmt: skip
@json_option
@pass_options
def heads(options: Options, resolve_dependencies: bool, as_json: bool) -> None:
    """List the head revisions, as alembic heads."""
    import migrasafe.cli.render as render
    from migrasafe.commands.revisions import heads as run_heads

    found = run_heads(options.project(), resolve_dependencies=resolve_dependencies)
    _emit(as_json, lambda: [info.to_dict() for info in found],
          lambda: render.revision_lines(found, "No revisions yet."))  # fmt: skip


@main.command()
@json_option
@pass_options
def branches(options: Options, as_json: bool) -> None:
    """List the branch points and the revisions they branch into, as alembic branches."""
    import migrasafe.cli.render as render
    from migrasafe.commands.revisions import branches as run_branches

    found = run_branches(options.project())
    _emit(as_json, lambda: [info.to_dict() for info in found], lambda: render.branches(found))


@main.command()
@click.option("--check-heads", is_flag=True, help="Exit 1 unless the database is at every head.")
@json_option
@pass_options
def current(options: Options, check_heads: bool, as_json: bool) -> None:
    """Show the database's current revision(s), read through env.py, as alembic current."""
    import migrasafe.cli.render as render
    from migrasafe.commands.revisions import current as run_current

    project = options.project()
    result = run_current(project)
    code = EXIT_OK
    heads = set(project.graph.get_heads())
    if check_heads and set(result.heads) != heads:
        click.echo(f"migrasafe: the database is at {', '.join(result.heads) or 'base'}, not at "
                   f"every head ({', '.join(sorted(heads))})", err=True)  # fmt: skip
        code = EXIT_FOUND
    _emit(as_json, result.to_dict(), lambda: render.current(result), code)


@main.command()
@json_option
@pass_options
def check(options: Options, as_json: bool) -> None:
    """Exit 1 if revision --autogenerate would write operations (models and database
    differ), as alembic check; the database must be at head and is only read."""
    import migrasafe.cli.render as render
    from migrasafe.commands.check import check as run_check

    result = run_check(options.project())
    _emit(as_json, result.to_dict(), lambda: render.check(result),
          EXIT_OK if result.ok else EXIT_FOUND)  # fmt: skip


@main.command()
@click.argument("revision", default="head", shell_complete=complete_revisions)
@json_option
@pass_options
def edit(options: Options, revision: str, as_json: bool) -> None:
    """Open REVISION's file in $EDITOR, as alembic edit (default: head)."""
    import migrasafe.cli.render as render
    from migrasafe.commands.scaffold import edit as run_edit

    result = run_edit(options.project(), revision)
    _emit(as_json, result.to_dict(), lambda: render.edited(result))


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
