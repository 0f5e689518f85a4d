"""The ``migrasafe`` command line: parse arguments, call the library, render.

No logic lives here: each command calls one library function and hands its
result to :mod:`migrasafe.cli.render` (text) or prints its ``to_dict()`` (--json).
Exit codes: 0 ok, 1 the check found something, 2 error.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from migrasafe._entry import owns_process, started
from migrasafe.errors import (
    MigrasafeError,
    Terminated,
    caught,
    check_interrupted,
    handling_signals,
    interrupt,
    quiet_unraisable,
)

if TYPE_CHECKING:  # imported by the commands that need them: see migrasafe.commands.lean
    from migrasafe.commands.lean import Invocation
    from migrasafe.project.config import Project

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
    quiet: bool = False
    verbose: int = 0

    def invocation(self) -> Invocation:
        from migrasafe.commands.lean import Invocation

        return Invocation(self.config, self.url, self.x_args, self.name, self.app)

    def project(self) -> Project:
        from migrasafe.project.config import load_project

        return load_project(self.config or None, self.url, x_args=self.x_args, name=self.name,
                            app=self.app)  # fmt: skip


def _fail(
    message: str, debug: bool, url: str | None = None, code: int = EXIT_ERROR,
    kind: str = "usage", partial: dict[str, object] | None = None,
) -> NoReturn:  # fmt: skip
    """One line on stderr (the traceback too with --debug), every password masked; under
    --json also ``{"error": {"message", "kind", "exit"}}`` on stdout (with what a failed
    run did before it failed, ``partial``), so that a program reading stdout learns why."""
    import traceback

    from migrasafe.db.urls import scrub

    if debug:
        click.echo(scrub(traceback.format_exc(), url), err=True, nl=False)
    from migrasafe.cli.plain import visible

    line = visible(scrub(" ".join(message.split()), url))
    click.echo(f"migrasafe: error: {line}", err=True)
    if _wants_json():
        data: dict[str, object] = dict(partial or {})
        if "error" in data:
            data["detail"] = data.pop("error")
        data["error"] = {"message": line, "kind": kind, "exit": code}
        with suppress(BrokenPipeError):
            sys.stdout.write(scrub(json.dumps(data, indent=2, default=str), url) + "\n")
            sys.stdout.flush()
    sys.exit(code)


_ARGS: list[list[str]] = []  # the command line being run (click's test runner passes its own)


def _wants_json() -> bool:
    """--json on the command line (parsed or not: a usage error comes before parsing)."""
    args = _ARGS[-1] if _ARGS else sys.argv[1:]
    return (
        "--json" in args
        or "--format=json" in args
        or any(a == "--format" and b == "json" for a, b in itertools.pairwise(args))
    )


def error_kind(exc: BaseException) -> str:
    """A stable name for the error's family: ``MigrationFailed`` -> ``migration-failed``."""
    import re

    name = type(exc).__name__.removesuffix("Error") or type(exc).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class _Group(click.Group):
    """Turns a MigrasafeError into one line on stderr and exit 2 (130/143 when interrupted)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Click's usage errors are one line too, exit 2, with where to find help."""
        kwargs["standalone_mode"] = False
        given = kwargs.get("args", args[0] if args else None)
        _ARGS.append(list(given) if given is not None else sys.argv[1:])
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:  # --help, --version
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            context = getattr(exc, "ctx", None)
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            _fail(f"{exc.format_message()}{where}", False, None, EXIT_ERROR)
        except click.Abort:
            _fail("interrupted by SIGINT; nothing was left half-done", False, None, 130,
                  kind="interrupted")  # fmt: skip
        finally:
            _ARGS.pop()
        sys.exit(result if isinstance(result, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        _SIGNALLED.clear()
        caught()
        handling_signals(False)
        started()
        unraisable = sys.unraisablehook
        sys.unraisablehook = quiet_unraisable(unraisable)
        previous: dict[int, Any] = {}
        try:
            for handled in _HANDLED:
                if signal.getsignal(handled) is not signal.SIG_IGN:  # nohup, `cmd &`: ignored
                    previous[handled] = signal.signal(handled, _interrupt)
                    handling_signals(True)
        except ValueError:  # not the main thread: leave signals to whoever runs us
            pass
        try:
            with machine_output(_machine_format(ctx)):
                done = super().invoke(ctx)
                check_interrupted()  # a signal whose exception was swallowed on its way
                return done
        except KeyboardInterrupt as exc:  # outside a migration: nothing was under way
            caught()
            terminated = isinstance(exc, Terminated)
            name = "SIGTERM" if terminated else "SIGINT"
            _fail(f"interrupted by {name}; nothing was left half-done", False, None,
                  143 if terminated else 130, kind="interrupted")  # fmt: skip
        except MigrasafeError as exc:
            options = ctx.find_object(Options)
            debug = options.debug if options else "--debug" in sys.argv
            to_dict = getattr(getattr(exc, "result", None), "to_dict", None)
            _fail(exc.message, debug, options.url if options else None, exc.exit_code,
                  kind=error_kind(exc), partial=to_dict() if to_dict else None)  # fmt: skip
        finally:
            for sig, handler in previous.items():
                # The command has finished and said so: in its own process a late signal
                # changes nothing (the exit code is the command's); in a caller's, theirs again.
                signal.signal(sig, signal.SIG_IGN if owns_process() else handler)
            handling_signals(False)
            caught()  # nothing of this command's signals reaches a later call in this process
            sys.unraisablehook = unraisable


def _machine_format(ctx: click.Context) -> bool:
    """Whether the command prints a document for a program: --json, or --format other than
    text (the subcommand's arguments, not parsed yet when the group runs)."""
    args: list[str] = [*getattr(ctx, "_protected_args", []), *ctx.args]
    if "--json" in args:
        return True
    for index, arg in enumerate(args):
        if arg.startswith("--format="):
            return arg != "--format=text"
        if arg == "--format" and index + 1 < len(args):
            return args[index + 1] != "text"
    return False


_DOCUMENT: list[TextIO] = []


def document() -> TextIO:
    """Where the command's document goes: stdout as it was before the command ran."""
    return _DOCUMENT[-1] if _DOCUMENT else sys.stdout


@contextmanager
def machine_output(enabled: bool) -> Iterator[None]:
    """Under --json (and the CI formats) stdout carries the document alone: whatever the
    project writes to stdout meanwhile (a print() in a revision, env.py's logging, an
    application's) goes to stderr, at the file descriptor too, where a logging handler
    made before the run still writes."""
    if not enabled:
        yield
        return
    out = sys.stdout
    out.flush()
    try:
        fd, err_fd = out.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (click's test runner)
        fd = err_fd = None
    saved = None
    doc: TextIO = out
    if fd is not None and err_fd is not None:
        saved = os.dup(fd)
        try:
            doc = os.fdopen(os.dup(saved), "w", encoding=out.encoding or "utf-8")
            os.dup2(err_fd, fd)
        except OSError:
            os.close(saved)
            saved, doc = None, out
    _DOCUMENT.append(doc)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        _DOCUMENT.pop()
        try:
            doc.flush()
        except BrokenPipeError:  # `--json | head`: the reader left; nothing more to say
            pass
        finally:
            if saved is not None and fd is not None:
                sys.stdout.flush()
                os.dup2(saved, fd)
                os.close(saved)
                with suppress(BrokenPipeError):
                    doc.close()


_HANDLED = (signal.SIGINT, signal.SIGTERM)
_SIGNALLED: list[int] = []


def _interrupt(signum: int, _frame: object) -> None:
    """The first SIGINT or SIGTERM unwinds the run (SIGTERM like Ctrl-C), so that locks are
    released and scratch databases dropped; a second one (Ctrl-C pressed twice, a
    supervisor's TERM then TERM) does not cut that cleanup short: it is said, not obeyed.
    SIGKILL still ends everything at once."""
    _SIGNALLED.append(signum)
    if len(_SIGNALLED) == 1:
        raise interrupt(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())
    if len(_SIGNALLED) == 2:
        with suppress(OSError):
            os.write(2, b"migrasafe: still cleaning up after the first signal (locks, scratch "
                        b"databases); it ends on its own, or SIGKILL abandons it\n")  # fmt: skip


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
        document().write(formats.sarif(findings, checks, tool))
    else:
        document().write(formats.github(findings) if fmt == "github" else formats.gcc(findings))
    sys.exit(code)


pass_options = click.make_pass_decorator(Options)


def complete_revisions(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of revision arguments: the project's ids, branch labels and the
    symbolic names (head, heads, base), read from the parsed revision graph."""
    from click.shell_completion import CompletionItem

    root = ctx.find_root().params
    names = ["head", "heads", "base"]
    try:
        from migrasafe.project.config import load_project

        project = load_project(root.get("config") or None, root.get("url"),
                               x_args=root.get("x_args") or (), name=root.get("name") or "alembic",
                               app=root.get("app"))  # fmt: skip
        for script in project.graph.walk_revisions():
            names.append(script.revision)
            names.extend(f"{label}@head" for label in script.branch_labels)
    except Exception:  # completion must never fail the shell: offer what is known
        pass
    return [CompletionItem(name) for name in dict.fromkeys(names) if name.startswith(incomplete)]


def fail_on_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--fail-on: the least severe finding that makes the exit code 1."""
    return click.option(
        "--fail-on", type=click.Choice(("error", "warning", "info", "never")), default="error",
        show_default=True,
        help="Exit 1 when a finding of this severity or worse remains (never: exit 0 whatever "
        "was found; errors that stop the check still exit 2).",
    )(command)  # fmt: skip


_SEVERITY = {"error": 3, "warning": 2, "info": 1}


def found_code(ok: bool, findings: Any, fail_on: str) -> int:
    """The exit code for a check's result under ``--fail-on``: the check's own verdict at
    ``error``, stricter or looser as asked."""
    if fail_on == "never":
        return EXIT_OK
    if not ok:
        return EXIT_FOUND
    threshold = _SEVERITY[fail_on]
    worst = max((_SEVERITY.get(f.severity, 1) for f in findings), default=0)
    return EXIT_FOUND if worst >= threshold else EXIT_OK


def _emit(
    as_json: bool,
    data: object | Callable[[], object],
    text: Callable[[], None],
    code: int = EXIT_OK,
) -> None:
    """Print ``data`` as JSON (computed only then, when a callable) or render it as text."""
    if as_json:
        value = data() if callable(data) else data
        document().write(json.dumps(value, indent=2, default=str) + "\n")
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
@click.option("-q", "--quiet", is_flag=True,
              help="Silence Alembic's and env.py's logging below WARNING (progress and results "
              "still show).")  # fmt: skip
@click.option("-v", "--verbose", count=True,
              help="Show Alembic's INFO lines even where env.py configures no logging; "
              "-vv: migrasafe's own DEBUG lines too.")  # fmt: skip
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
    quiet: bool,
    verbose: int,
    debug: bool,
) -> None:
    """Alembic migrations that tell the truth about a database."""
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other: choose one")
    _logging(quiet, verbose)
    ctx.obj = Options(config=config, url=url, debug=debug, x_args=x_args, name=name, app=app,
                      quiet=quiet, verbose=verbose)  # fmt: skip


def _logging(quiet: bool, verbose: int) -> None:
    """-q: nothing below WARNING is logged, whatever env.py's fileConfig() sets up later
    (``logging.disable`` outlives it); -v: Alembic's INFO on stderr (and -vv migrasafe's
    DEBUG), in addition to what env.py configures."""
    import logging

    if quiet:
        logging.disable(logging.INFO)
        return
    logging.disable(logging.NOTSET)
    if not verbose:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s"))
    handler.set_name("migrasafe -v")
    for name, level in (("alembic", logging.INFO), ("migrasafe", logging.DEBUG)):
        if name == "migrasafe" and verbose < 2:
            continue
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = [h for h in logger.handlers if h.get_name() != "migrasafe -v"]
        logger.addHandler(handler)
        logger.propagate = False  # env.py's own handlers would print each line twice
