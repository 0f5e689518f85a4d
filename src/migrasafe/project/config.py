"""Finding and loading an Alembic project the way ``alembic`` and ``flask db`` do.

Discovery follows Alembic's command line: ``-c`` (an ini file and/or a
``pyproject.toml``, each at most once), else ``$ALEMBIC_CONFIG``, else
``./alembic.ini`` and ``./pyproject.toml``'s ``[tool.alembic]``. A project
laid out by Flask-Migrate (``migrations/alembic.ini`` without a
``script_location``, next to its ``env.py``) is loaded as ``flask db`` loads
it: the application (``--app`` or ``$FLASK_APP``) is imported, and every run
of ``env.py`` happens inside its application context.

Nothing here decides which database, version table or metadata the project
uses: that is ``env.py``'s word, read by :mod:`migrasafe.project.env`.
"""

from __future__ import annotations

import configparser
import importlib
import os
import sys
import tomllib
from argparse import Namespace
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError

from migrasafe.db.urls import parse_url
from migrasafe.errors import (
    ConfigError,
    MigrasafeError,
    ProjectError,
    RevisionError,
    reraise_interrupts,
)
from migrasafe.project.scripts import ScriptFile, fast_script_directory, read_script_files

DEFAULT_CONFIG = "alembic.ini"
DEFAULT_TOML = "pyproject.toml"
FLASK_CONFIG = Path("migrations") / "alembic.ini"
CHECKSUM_TABLE = "migrasafe_checksums"


@dataclass
class Project:
    """An Alembic project as migrasafe sees it: the config plus what it points to.

    ``url`` is the URL asked for on the command line (``--url`` or
    ``$MIGRASAFE_URL``), if any; it replaces ``sqlalchemy.url``, and a run
    whose ``env.py`` connects elsewhere is refused. ``app`` is the Flask
    application of a Flask-Migrate project.
    """

    config: Config
    config_path: Path
    url: str | None = None
    app: Any = None
    layout: str = "alembic.ini"

    @property
    def configured_url(self) -> str | None:
        """``--url``, else ``sqlalchemy.url``: what an ``env.py`` reading the config would use."""
        if self.url:
            return self.url
        try:
            return self.config.get_main_option("sqlalchemy.url") or None
        except configparser.Error:
            return None

    @contextmanager
    def activated(self) -> Iterator[None]:
        """What ``env.py`` expects around it: a Flask-Migrate project's application context."""
        if self.app is None:
            yield
            return
        with self.app.app_context():
            yield

    @cached_property
    def script_directory(self) -> ScriptDirectory:
        """The script directory; its revision files are not loaded yet."""
        with alembic_errors():
            return ScriptDirectory.from_config(self.config)

    @cached_property
    def script_files(self) -> list[ScriptFile]:
        """What each revision file declares, parsed (or from the cache), in Alembic's order."""
        return read_script_files(self.script_directory)

    @cached_property
    def graph(self) -> ScriptDirectory:
        """The revision graph for commands that only read it: parsed, not imported.

        Alembic's RevisionMap over what :mod:`migrasafe.project.scripts` parsed, so
        hundreds of revisions cost a parse each (or a cache hit), not an
        import. A project that cannot be read that way gets :attr:`script`,
        which reports its problem.
        """
        try:
            fast = fast_script_directory(self.script_directory, self.script_files)
            if fast is None:
                return self.script
            _check_graph(fast)
        except Exception:
            return self.script  # which names the problem
        return fast

    @cached_property
    def script(self) -> ScriptDirectory:
        """The script directory with every revision file loaded and linked.

        Loading imports each file: one that does not import stops here with a
        message that points to ``validate``, which reports every such file.
        """
        script = self.script_directory
        try:
            with self.activated():
                _check_graph(script)
        except ProjectError:
            raise
        except (CommandError, AlembicRevisionError) as exc:
            raise ProjectError(
                f"cannot load the revision files in {script.dir}: {exc}. "
                "Run `migrasafe validate` to see every problem."
            ) from exc
        except BaseException as exc:  # a revision file's own code failed, or exited
            reraise_interrupts(exc)
            where = _failing_file(exc, script.dir) or script.dir
            raise ProjectError(
                f"cannot import the revision file {where}: "
                f"{type(exc).__name__}: {exc}. Run `migrasafe validate` for details."
            ) from exc
        return script


def _check_graph(script: ScriptDirectory) -> None:
    """Load and link every revision; ids that are not strings are named with their file.

    Alembic accepts ``revision = ()`` or a set as ``down_revision`` when it
    loads a file, and fails later, anywhere, on the graph: refuse here.
    """
    for revision in script.revision_map._revision_map.values():
        if revision is None:
            continue
        ids = [revision.revision, *(revision._all_down_revisions or ())]
        bad = [i for i in ids if not isinstance(i, str)]
        if bad or not isinstance(revision.down_revision, str | tuple | list | type(None)):
            shown = bad[0] if bad else revision.down_revision
            raise ProjectError(
                f"{getattr(revision, 'path', revision.revision)}: revision ids must be strings, "
                f"found {shown!r}. Run `migrasafe validate` to see every problem."
            )
    list(script.walk_revisions())  # links every revision: cycles and loops surface here


def _failing_file(exc: BaseException, directory: str) -> str | None:
    """The innermost frame of the traceback that is a file under ``directory``, with its line."""
    found = None
    root = str(Path(directory).resolve())
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if str(Path(filename).resolve()).startswith(root):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


@contextmanager
def alembic_errors() -> Iterator[None]:
    """Turn Alembic's user-facing errors into migrasafe's at one boundary."""
    try:
        yield
    except AlembicRevisionError as exc:
        raise RevisionError(f"{exc}; `migrasafe history` lists the revisions") from exc
    except CommandError as exc:
        raise MigrasafeError(str(exc)) from exc


def _config_files(names: Sequence[str | Path]) -> tuple[Path, Path, bool]:
    """(ini, pyproject.toml, whether -c named any), by the rules of Alembic's command line.

    ``$ALEMBIC_CONFIG`` names the default ini file, or the default toml file
    when it ends in pyproject.toml; ``-c`` (at most one of each) overrides.
    """
    ini, toml = Path(DEFAULT_CONFIG), Path(DEFAULT_TOML)
    env = os.environ.get("ALEMBIC_CONFIG")
    if env:
        if Path(env).name == DEFAULT_TOML:
            toml = Path(env)
        else:
            ini = Path(env)
    named_ini: Path | None = None
    named_toml: Path | None = None
    for name in names:
        path = Path(name)
        if path.name == DEFAULT_TOML:
            if named_toml is not None:
                raise ConfigError("pyproject.toml given more than once with -c")
            named_toml = path
        else:
            if named_ini is not None:
                raise ConfigError("only one ini file may be given with -c")
            named_ini = path
    return named_ini or ini, named_toml or toml, bool(names) or bool(env)


def _has_tool_alembic(toml: Path | None) -> bool:
    if toml is None or not toml.is_file():
        return False
    try:
        with toml.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {toml}: {exc}") from exc
    return isinstance(data.get("tool", {}).get("alembic"), dict)


def load_project(
    config_path: str | Path | Sequence[str | Path] | None = None,
    url: str | None = None,
    *,
    x_args: Sequence[str] = (),
    name: str = "alembic",
    app: str | None = None,
    stdout: TextIO | None = None,
) -> Project:
    """Find and read an Alembic project's configuration, as ``alembic`` does.

    ``config_path``: what ``-c`` names (an ini file and/or a pyproject.toml;
    default: discovered). ``url`` (``--url``) replaces ``sqlalchemy.url``;
    ``x_args`` reach ``context.get_x_argument()``; ``name`` is the ini
    section (``-n``); ``app`` is a Flask application (``--app``, default
    ``$FLASK_APP``) for a Flask-Migrate project. Alembic's own console output
    goes to ``stdout`` (stderr by default) so that migrasafe's stdout holds
    only what the command reports.
    """
    if config_path is None:
        names: Sequence[str | Path] = ()
    elif isinstance(config_path, str | Path):
        names = (config_path,)
    else:
        names = tuple(config_path)
    ini, toml, explicit = _config_files(names)
    with_toml = _has_tool_alembic(toml)
    if toml in [Path(n) for n in names] and not with_toml:
        raise ConfigError(f"{toml} has no [tool.alembic] section")
    if explicit and ini != Path(DEFAULT_CONFIG) and not ini.is_file() and not with_toml:
        raise ConfigError(f"config file {ini} not found")
    ini_found = ini if ini.is_file() else None
    if ini_found is None and not with_toml:
        if not explicit and FLASK_CONFIG.is_file():
            ini_found = FLASK_CONFIG
        else:
            raise ConfigError(
                f"no Alembic configuration found: no {ini} and no "
                f"[tool.alembic] in {toml} here (nor Flask-Migrate's "
                f"{FLASK_CONFIG}); pass -c PATH, set $ALEMBIC_CONFIG, "
                "or create a project with `migrasafe init DIR`"
            )
    config = Config(
        file_=str(ini_found) if ini_found else None,
        toml_file=str(toml) if with_toml else None,
        ini_section=name,
        stdout=stdout if stdout is not None else sys.stderr,
        # quiet: Alembic's "Generating ... done" lines go straight to sys.stdout.
        cmd_opts=Namespace(quiet=True, x=list(x_args)),
    )
    script_location = _read_options(config, ini_found, name)
    layout = "pyproject.toml" if with_toml else "alembic.ini"
    flask_app = None
    if not script_location and ini_found is not None and (ini_found.parent / "env.py").is_file():
        # Flask-Migrate's layout: the ini sits in the script directory and
        # `flask db` names that directory itself.
        config.set_main_option("script_location", str(ini_found.parent.resolve()))
        script_location = str(ini_found.parent)
        if app or os.environ.get("FLASK_APP") or _mentions_flask(ini_found.parent / "env.py"):
            flask_app = _load_flask_app(app, ini_found)
            layout = "flask-migrate"
    if not script_location:
        where = toml if with_toml else ini_found
        raise ConfigError(
            f"{where} has no script_location (section [{name}] or [tool.alembic]); "
            "it should name the directory that holds env.py"
        )
    if url:
        parse_url(url)  # a malformed URL is reported as such, before env.py runs
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # env.py imports the project's modules through prepend_sys_path, often ".": a
    # long-lived process that changed directory must not see a stale listing.
    importlib.invalidate_caches()
    path = ini_found if ini_found is not None else toml
    assert path is not None
    project = Project(config=config, config_path=path, url=url, app=flask_app, layout=layout)
    location = Path(project.script_directory.dir)
    if not (location / "env.py").is_file():
        raise ConfigError(f"script_location {location} (from {path}) has no env.py")
    return project


def _read_options(config: Config, ini: Path | None, section: str) -> str | None:
    """Read every option now, so a bad one is reported naming the file, not deep in Alembic."""
    try:
        if ini is not None:
            if not config.file_config.has_section(section):
                raise ConfigError(
                    f"{ini} has no [{section}] section"
                    + ("" if section == "alembic" else " (chosen with -n/--name)")
                )
            for option in config.file_config.options(section):
                config.file_config.get(section, option)
        return config.get_alembic_option("script_location")
    except configparser.Error as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"cannot read {ini}: {message}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {ini}: it is not UTF-8 text ({exc.reason})") from exc


def _mentions_flask(env_py: Path) -> bool:
    try:
        return "flask" in env_py.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _load_flask_app(app: str | None, ini: Path) -> Any:
    """The Flask application, found as ``flask`` finds it (``--app``, ``$FLASK_APP``, app.py)."""
    try:
        from flask.cli import NoAppException, ScriptInfo, load_dotenv
        from flask.helpers import get_load_dotenv
    except ImportError as exc:
        raise ConfigError(
            f"{ini} belongs to a Flask-Migrate project, but Flask is not installed here"
        ) from exc
    if get_load_dotenv():  # as `flask` starts: .flaskenv and .env, where python-dotenv is
        load_dotenv()
    # `flask` reads $FLASK_APP as its --app option's default (auto_envvar_prefix "FLASK"):
    # `module`, `module:name`, `module:factory(args)` or a file path, all resolved by Flask.
    try:
        return ScriptInfo(app_import_path=app or os.environ.get("FLASK_APP") or None).load_app()
    except NoAppException as exc:
        raise ConfigError(
            f"{ini} belongs to a Flask-Migrate project and its env.py needs the application: "
            f"{' '.join(str(exc).split())} Pass --app MODULE:APP or set $FLASK_APP, "
            "as for `flask db`"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"cannot load the Flask application for {ini}: {type(exc).__name__}: {exc}"
        ) from exc
