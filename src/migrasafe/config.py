"""Loading an Alembic project: its ini file, its script directory, its database URL."""

from __future__ import annotations

import configparser
import sys
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TextIO

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError as AlembicRevisionError
from alembic.util import CommandError

from .database import read_current_heads
from .errors import ConfigError, MigrasafeError, ProjectError, RevisionError
from .scriptfiles import fast_script_directory

DEFAULT_CONFIG = "alembic.ini"
CHECKSUM_TABLE = "migrasafe_checksums"
URL_ENV_VAR = "MIGRASAFE_URL"


@dataclass
class Project:
    """An Alembic project as migrasafe sees it: the config plus what it points to."""

    config: Config
    config_path: Path

    @property
    def url(self) -> str:
        url = self.config.get_main_option("sqlalchemy.url")
        if not url:
            raise ConfigError(
                f"no database URL: {self.config_path} has no sqlalchemy.url; "
                f"pass --url or set {URL_ENV_VAR}"
            )
        return url

    @property
    def version_table(self) -> str:
        return self.config.get_main_option("version_table") or "alembic_version"

    @property
    def version_table_schema(self) -> str | None:
        return self.config.get_main_option("version_table_schema")

    @property
    def bookkeeping_tables(self) -> tuple[str, str]:
        """Tables that record migrations rather than hold the application's data."""
        return (self.version_table, CHECKSUM_TABLE)

    def current_heads(self) -> tuple[str, ...]:
        """The revisions the database records, read without writing anything."""
        return read_current_heads(self.url, self.version_table, self.version_table_schema)

    @cached_property
    def script_directory(self) -> ScriptDirectory:
        """The script directory; its revision files are not loaded yet."""
        with alembic_errors():
            return ScriptDirectory.from_config(self.config)

    @cached_property
    def graph(self) -> ScriptDirectory:
        """The revision graph for commands that only read it: parsed, not imported.

        Alembic's RevisionMap over what :mod:`migrasafe.scriptfiles` parsed, so
        hundreds of revisions cost a parse each (or a cache hit), not an
        import. A project that cannot be read that way gets :attr:`script`,
        which reports its problem.
        """
        fast = fast_script_directory(self.script_directory)
        if fast is None:
            return self.script
        try:
            fast.revision_map.heads  # noqa: B018 - links the graph; a broken one is reported below
        except Exception:
            return self.script
        return fast

    @cached_property
    def script(self) -> ScriptDirectory:
        """The script directory with every revision file loaded and linked.

        Loading imports each file: one that does not import stops here with a
        message that points to ``validate``, which reports every such file.
        """
        script = self.script_directory
        try:
            script.revision_map.heads  # noqa: B018 - loads and links every revision file
        except (CommandError, AlembicRevisionError) as exc:
            raise ProjectError(
                f"cannot load the revision files in {script.dir}: {exc}. "
                "Run `migrasafe validate` to see every problem."
            ) from exc
        except Exception as exc:  # a revision file's own code failed
            where = _failing_file(exc, script.dir) or script.dir
            raise ProjectError(
                f"cannot import the revision file {where}: "
                f"{type(exc).__name__}: {exc}. Run `migrasafe validate` for details."
            ) from exc
        return script


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


def load_project(
    config_path: str | Path = DEFAULT_CONFIG,
    url: str | None = None,
    *,
    stdout: TextIO | None = None,
) -> Project:
    """Read an Alembic ini file; ``url`` (e.g. from --url) overrides sqlalchemy.url.

    Alembic's own console output goes to ``stdout`` (stderr by default) so that
    migrasafe's stdout holds only what the command reports.
    """
    path = Path(config_path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found; pass -c PATH to an alembic.ini "
            "or create a project with `migrasafe init DIR`"
        )
    config = Config(
        str(path),
        stdout=stdout if stdout is not None else sys.stderr,
        # quiet: Alembic's "Generating ... done" lines go straight to sys.stdout.
        cmd_opts=Namespace(quiet=True, x=None),
    )
    try:
        # Read every option now: a bad one (e.g. an unescaped "%") is reported
        # here, naming the file, not as a traceback from somewhere inside Alembic.
        section = config.config_ini_section
        for option in config.file_config.options(section):
            config.file_config.get(section, option)
        script_location = config.get_main_option("script_location")
    except configparser.Error as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"cannot read {path}: {message}") from exc
    if not script_location:
        raise ConfigError(
            f"{path} has no script_location in its [alembic] section; "
            "it should name the directory that holds env.py"
        )
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    project = Project(config=config, config_path=path)
    location = Path(project.script_directory.dir)
    if not (location / "env.py").is_file():
        raise ConfigError(f"script_location {location} (from {path}) has no env.py")
    return project
