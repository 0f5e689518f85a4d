"""Project settings from ``[tool.migrasafe]`` in the nearest pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrasafe.errors import ConfigError

_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|min)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0}


def tool_section(start: Path) -> tuple[dict[str, Any], Path | None]:
    """``[tool.migrasafe]`` of the nearest pyproject.toml at or above ``start``."""
    for directory in [start, *start.parents]:
        path = directory / "pyproject.toml"
        if path.is_file():
            break
    else:
        return {}, None
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    tool = data.get("tool", {})
    section = tool.get("migrasafe", {}) if isinstance(tool, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.migrasafe] must be a table")
    _check_names(section, path)
    return section, path


# Every name [tool.migrasafe] may hold: a typo (db_lock_timeout, retry) would otherwise be
# ignored, and the deploy would run without the timeout the project asked for.
SETTINGS = ("db-lock-timeout", "statement-timeout", "retries", "lint", "verify", "fleet")
TABLES = ("lint", "verify", "fleet")
SUBSETTINGS = {"lint": ("ignore", "per-revision-ignore"),
               "verify": ("irreversible", "before_revision_data")}  # fmt: skip


def _check_names(section: dict[str, Any], path: Path) -> None:
    import difflib

    for name, value in section.items():
        if name not in SETTINGS:
            close = difflib.get_close_matches(name.replace("_", "-"), SETTINGS, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{path} [tool.migrasafe]: unknown setting {name!r}{hint} "
                              f"(known: {', '.join(SETTINGS)})")  # fmt: skip
        if name in TABLES and not isinstance(value, dict | str if name == "fleet" else dict):
            raise ConfigError(f"{path} [tool.migrasafe]: {name} must be a table "
                              f"([tool.migrasafe.{name}]), not {value!r}")  # fmt: skip
        known = SUBSETTINGS.get(name)
        if known is not None and isinstance(value, dict):
            unknown = sorted(set(value) - set(known))
            if unknown:
                close = difflib.get_close_matches(unknown[0].replace("_", "-"), known, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ConfigError(f"{path} [tool.migrasafe.{name}]: unknown setting "
                                  f"{unknown[0]!r}{hint} (known: {', '.join(known)})")  # fmt: skip
    lint = section.get("lint", {})
    ignore, per_revision = lint.get("ignore", []), lint.get("per-revision-ignore", {})
    if (
        not _strings(ignore)
        or not isinstance(per_revision, dict)
        or not all(_strings(rules) for rules in per_revision.values())
    ):
        raise ConfigError(f"{path} [tool.migrasafe.lint] expects ignore = [rule ids] and "
                          'per-revision-ignore = {"<revision>" = [rule ids]}')  # fmt: skip


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# PostgreSQL and MySQL take a timeout in whole milliseconds, and read 0 as "no timeout":
# a shorter one would silently become none. Their largest is 2**31 - 1 ms (24.8 days).
SHORTEST, LONGEST = 0.001, (2**31 - 1) / 1000
MOST_RETRIES = 100


def parse_duration(value: object, what: str) -> float:
    """Seconds from ``2s``, ``500ms``, ``1m`` or a number of seconds, within what a
    database can enforce (at least 1 ms: 0 would mean no timeout at all)."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is not None:
            seconds = float(match["number"]) * _UNITS[match["unit"]]
    if seconds is None or seconds != seconds:  # not a duration, or NaN
        raise ConfigError(f"{what}: expected a duration such as 2s, 500ms or 1m, not {value!r}")
    if not SHORTEST <= seconds <= LONGEST:
        raise ConfigError(
            f"{what}: {value!r} is outside 1ms..{LONGEST:g}s: the database reads a timeout "
            "of 0 as no timeout at all, and cannot hold a longer one; to set no timeout, "
            "leave the setting out"
        )
    return seconds


@dataclass(frozen=True)
class DeploySettings:
    """How upgrade/downgrade behave under live traffic (all off by default).

    ``db_lock_timeout``: the longest any statement waits for a table lock
    (so the application's queries never queue behind a blocked migration for
    longer); ``retries``: how often a revision that hit that limit, or a
    deadlock, is tried again; ``statement_timeout``: the longest a statement runs.
    """

    db_lock_timeout: float | None = None
    statement_timeout: float | None = None
    retries: int = 0


def load_deploy_settings(
    start: Path,
    *,
    db_lock_timeout: object = None,
    statement_timeout: object = None,
    retries: object = None,
) -> DeploySettings:
    """The defaults a project sets in ``[tool.migrasafe]``, overridden by the values given."""
    section, path = tool_section(start)
    where = f"{path} [tool.migrasafe]" if path else "--"
    lock = db_lock_timeout if db_lock_timeout is not None else section.get("db-lock-timeout")
    statement = (
        statement_timeout if statement_timeout is not None else section.get("statement-timeout")
    )
    retries = retries if retries is not None else section.get("retries", 0)
    if (not isinstance(retries, int) or isinstance(retries, bool)
            or not 0 <= retries <= MOST_RETRIES):  # fmt: skip
        raise ConfigError(
            f"{where}: retries must be a whole number from 0 to {MOST_RETRIES}, not {retries!r}"
        )
    return DeploySettings(
        parse_duration(lock, f"{where} db-lock-timeout") if lock is not None else None,
        parse_duration(statement, f"{where} statement-timeout") if statement is not None else None,
        retries,
    )
