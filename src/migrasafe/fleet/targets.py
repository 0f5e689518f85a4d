"""The targets of a fleet: where they are declared, how secrets reach them, how they split.

A fleet is declared in ``[tool.migrasafe.fleet]`` (the project's pyproject.toml)
or given on the command line, in one of four ways:

- ``urls``: a list of URLs, or of ``{name = ..., url = ...}`` tables;
- ``file``: a file with one target a line, ``URL`` or ``NAME URL`` (``#`` comments);
- ``command``: a command that prints such lines (any inventory: a CMDB, ``kubectl``, SQL);
- ``schemas``: every PostgreSQL schema matching a pattern (``tenant_*``) in ``database``
  (default: the project's URL); each schema is a target, passed to ``env.py`` as
  ``-x tenant=NAME`` (the key is ``x-key``), as schema-per-tenant projects read it.

Secrets stay out of the files: ``${VARIABLE}`` in a URL is replaced from the
environment when the fleet is read (or leave the password out and use
``.pgpass``); what migrasafe prints of a URL is redacted.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrasafe.db.urls import parse_url, redact, scrub
from migrasafe.errors import ConfigError
from migrasafe.project.settings import tool_section

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
KINDS = ("urls", "file", "command", "schemas")
COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Target:
    """One database (or tenant schema) of the fleet.

    ``url`` holds the secrets the environment supplied: never print it, print
    :attr:`display_url`. ``x_args`` reach the target's ``env.py`` as ``-x``.
    """

    name: str
    url: str = field(repr=False)
    x_args: tuple[str, ...] = ()

    @property
    def display_url(self) -> str:
        return redact(self.url)


@dataclass(frozen=True)
class FleetSource:
    """Where the targets come from: one of :data:`KINDS`, with its value."""

    kind: str
    value: Any
    where: str  # for messages: the file and section, or the option
    base: Path  # relative paths (files, commands, SQLite URLs) are read from here
    database: str | None = None  # for schemas
    x_key: str = "tenant"


def expand(text: str, where: str) -> str:
    """``${VARIABLE}`` from the environment; an unset one is an error naming it."""

    def value(match: re.Match[str]) -> str:
        name = match["name"]
        found = os.environ.get(name)
        if found is None:
            raise ConfigError(f"{where}: ${{{name}}} is not set in the environment")
        return found

    return _VARIABLE.sub(value, text)


def fleet_source(
    project_dir: Path,
    *,
    targets_file: str | None = None,
    schemas: str | None = None,
    database: str | None = None,
) -> FleetSource:
    """The fleet named on the command line (``--targets``, ``--schemas``), else the project's
    ``[tool.migrasafe.fleet]``."""
    if targets_file is not None and schemas is not None:
        raise ConfigError("--targets and --schemas name two fleets: choose one")
    if targets_file is not None:
        return FleetSource("file", targets_file, "--targets", Path.cwd())
    if schemas is not None:
        return FleetSource("schemas", schemas, "--schemas", Path.cwd(), database)
    section, path = tool_section(project_dir)
    fleet = section.get("fleet")
    where = f"{path} [tool.migrasafe.fleet]"
    if fleet is None:
        raise ConfigError(
            "no fleet declared: add [tool.migrasafe.fleet] to pyproject.toml (urls, file, "
            "command or schemas), or pass --targets FILE or --schemas PATTERN"
        )
    if not isinstance(fleet, dict):
        raise ConfigError(f"{where} must be a table")
    given = [kind for kind in KINDS if kind in fleet]
    unknown = sorted(set(fleet) - {*KINDS, "database", "x-key"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected one of "
                          f"{', '.join(KINDS)}, with database and x-key for schemas")  # fmt: skip
    if len(given) != 1:
        raise ConfigError(f"{where}: expected exactly one of {', '.join(KINDS)}, "
                          f"found {', '.join(given) or 'none'}")  # fmt: skip
    x_key = fleet.get("x-key", "tenant")
    if not isinstance(x_key, str) or not x_key:
        raise ConfigError(f"{where}: x-key must be a string, such as tenant")
    db = fleet.get("database")
    if db is not None and not isinstance(db, str):
        raise ConfigError(f"{where}: database must be a URL string")
    base = path.parent if path is not None else project_dir
    return FleetSource(given[0], fleet[given[0]], where, base, database or db, x_key)


def load_targets(source: FleetSource, project_url: str | None = None) -> list[Target]:
    """Every target of the fleet, in the order declared (schemas: sorted by name)."""
    if source.kind == "urls":
        targets = _from_entries(source.value, source.where, source.base)
    elif source.kind == "file":
        targets = _from_file(source)
    elif source.kind == "command":
        targets = _from_command(source)
    else:
        targets = _schemas(source, project_url)
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            raise ConfigError(f"{source.where}: target {target.name!r} is declared twice")
        seen.add(target.name)
    if not targets:
        raise ConfigError(f"{source.where}: the fleet has no targets")
    return targets


def _target(url: str, where: str, base: Path, name: str | None = None) -> Target:
    url = expand(url, where)
    parsed = parse_url(url)
    default = redact(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        default = path = parsed.database  # a SQLite target is named by its file, as written
        if not Path(path).is_absolute():  # relative to the file that declares it, not the cwd
            url = parsed.set(database=str(base / path)).render_as_string(hide_password=False)
    return Target(name or default, url)


def _from_entries(entries: object, where: str, base: Path) -> list[Target]:
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: urls must be a list of URLs or {{name, url}} tables")
    targets = []
    for entry in entries:
        if isinstance(entry, str):
            targets.append(_target(entry, where, base))
        elif isinstance(entry, dict) and isinstance(entry.get("url"), str):
            name = entry.get("name")
            if name is not None and not isinstance(name, str):
                raise ConfigError(f"{where}: a target's name must be a string")
            targets.append(_target(entry["url"], where, base, name))
        else:
            raise ConfigError(f"{where}: expected a URL or {{name = ..., url = ...}}, "
                              f"found {scrub(repr(entry))}")  # fmt: skip
    return targets


def parse_lines(lines: Iterable[str], where: str, base: Path) -> list[Target]:
    """``URL`` or ``NAME URL`` a line; blank lines and ``#`` comments are ignored."""
    targets = []
    for number, line in enumerate(lines, 1):
        text = re.sub(r"\s+#.*$", "", line.strip())
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        if len(parts) > 2:
            raise ConfigError(f"{where}, line {number}: expected URL or NAME URL, "
                              f"found {len(parts)} words")  # fmt: skip
        name, url = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        targets.append(_target(url, f"{where}, line {number}", base, name))
    return targets


def _from_file(source: FleetSource) -> list[Target]:
    path = source.base / str(source.value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source.where}: cannot read the fleet file {path}: {exc}") from exc
    return parse_lines(text.splitlines(), str(path), path.parent)


def _from_command(source: FleetSource) -> list[Target]:
    value = source.value
    if isinstance(value, str):
        argv = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        argv = list(value)
    else:
        raise ConfigError(f"{source.where}: command must be a string or a list of strings")
    if not argv:
        raise ConfigError(f"{source.where}: command is empty")
    shown = shlex.join(argv)
    try:
        done = subprocess.run(argv, cwd=source.base, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"{source.where}: cannot run `{shown}`: {exc}") from exc
    if done.returncode != 0:
        tail = " ".join(done.stderr.split())[-300:]
        raise ConfigError(f"{source.where}: `{shown}` exited {done.returncode}: "
                          f"{scrub(tail) or 'no message'}")  # fmt: skip
    return parse_lines(done.stdout.splitlines(), f"the output of `{shown}`", source.base)


def _schemas(source: FleetSource, project_url: str | None) -> list[Target]:
    pattern = source.value
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{source.where}: schemas must be a pattern such as tenant_*")
    raw = source.database or project_url
    if raw is None:
        raise ConfigError(f"{source.where}: schemas needs a database: set database (or --url, "
                          "or the project's sqlalchemy.url)")  # fmt: skip
    url = expand(raw, source.where)
    parsed = parse_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"{source.where}: schemas needs a PostgreSQL database, "
                          f"not {redact(url)}")  # fmt: skip
    names = [n for n in list_schemas(url) if fnmatch.fnmatchcase(n, pattern)]
    return [Target(name, url, (f"{source.x_key}={name}",)) for name in sorted(names)]


def list_schemas(url: str) -> list[str]:
    """The schemas of a PostgreSQL database (not the server's own)."""
    import sqlalchemy as sa

    from migrasafe.db.urls import describe_error

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname <> 'information_schema' ORDER BY nspname"
            ))  # fmt: skip
            return [str(row[0]) for row in rows]
    except sa.exc.DBAPIError as exc:
        raise ConfigError(f"cannot list the schemas of {redact(url)}: "
                          f"{describe_error(exc, url)}") from exc  # fmt: skip
    finally:
        engine.dispose()


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N), as a CI matrix or a Kubernetes indexed Job numbers its runs."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise ConfigError(f"--shard {text!r}: expected K/N with 1 <= K <= N, such as 2/3")
    return int(match[1]), int(match[2])


def shard(targets: Sequence[Target], index: int, count: int) -> list[Target]:
    """Shard ``index`` of ``count``: every ``count``-th target of the fleet sorted by name,
    starting at ``index``; shards 1..count cover each target exactly once, whatever the
    order the inventory printed them in. The fleet's own order is kept within a shard."""
    ranked = sorted(range(len(targets)), key=lambda i: targets[i].name)
    mine = set(ranked[index - 1 :: count])
    return [t for i, t in enumerate(targets) if i in mine]
