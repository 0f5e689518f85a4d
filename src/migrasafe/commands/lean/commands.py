"""``history``, ``status`` and ``validate`` from cached answers: the same results, no Alembic.

Each function returns what its cold counterpart returns, or None when the
answers are missing or stale, or the database cannot be read this way; the
caller then runs the cold path, which explains any error and refreshes the
answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from migrasafe.checks.validate import ValidationReport
from migrasafe.commands.history import History, HistoryEntry
from migrasafe.commands.lean.answers import Invocation, load
from migrasafe.commands.lean.reader import read
from migrasafe.commands.status import Status
from migrasafe.deploy.records import Modified, Recorded
from migrasafe.project.scripts import ScriptFile


def _applied(answers: dict[str, Any], current: Iterable[str]) -> set[str]:
    """The current heads and their ancestors, walked as Alembic's iterate_revisions walks them."""
    parents: dict[str, list[str]] = answers["graph"]["parents"]
    done: set[str] = set()
    stack = [rev for rev in current if rev in parents]
    while stack:
        revision = stack.pop()
        if revision not in done:
            done.add(revision)
            stack.extend(parents[revision])
    return done


State = tuple[tuple[str, ...], list[Recorded]]  # the current heads, and migrasafe's records


def _state(answers: dict[str, Any]) -> State | None:
    database = answers.get("database")
    if not database:
        return None
    try:
        return read(database)
    except Exception:  # Unreadable, or the driver's error: the cold path reports it properly
        return None


def _with_state(invocation: Invocation) -> tuple[dict[str, Any], State] | None:
    """Valid answers and the database's state read through them; None: answer cold."""
    answers = load(invocation)
    state = None if answers is None else _state(answers)
    return None if answers is None or state is None else (answers, state)


def history(invocation: Invocation) -> History | None:
    found = _with_state(invocation)
    if found is None:
        return None
    answers, (current, _records) = found
    entries = tuple(
        HistoryEntry(
            **{
                **entry,
                "down_revision": tuple(entry["down_revision"]),
                "branch_labels": tuple(entry["branch_labels"]),
                "depends_on": tuple(entry["depends_on"]),
                "is_current": entry["revision"] in current,
            }
        )
        for entry in answers["graph"]["entries"]
    )
    return History(entries=entries, current=current)


def _modified(
    answers: dict[str, Any], done: set[str], recorded: dict[str, Recorded]
) -> list[Modified]:
    paths = {e["revision"]: e["path"] for e in answers["graph"]["entries"]}
    checksums = {f["declared"]["revision"]: f["checksum"] for f in answers["files"]}
    found = []
    for revision in answers["graph"]["order"]:
        seen = recorded.get(revision)
        if revision in done and seen is not None and seen.checksum != checksums[revision]:
            found.append(Modified(revision, paths[revision], seen.checksum, checksums[revision],
                                  seen.applied_at.isoformat(), seen.applied_by))  # fmt: skip
    return sorted(found, key=lambda m: m.revision)


def status(invocation: Invocation, strict: bool = False) -> Status | None:
    found = _with_state(invocation)
    if found is None:
        return None
    answers, (current, records) = found
    recorded = {r.revision: r for r in records if r.state == "applied"}
    order: list[str] = answers["graph"]["order"]
    done = _applied(answers, current)
    if any(r.state != "applied" for r in records):
        return None  # a revision stopped midway: the cold path says which operations are present
    database = answers["database"]
    table, schema = database["version_table"], database["schema"]
    return Status(
        url=database["display_url"],
        version_table=f"{schema}.{table}" if schema else table,
        current=current,
        heads=tuple(answers["graph"]["heads"]),
        pending=tuple(rev for rev in order if rev not in done),
        unknown=tuple(rev for rev in current if rev not in answers["graph"]["parents"]),
        modified=tuple(_modified(answers, done, recorded)),
        unverified=tuple(rev for rev in order if rev in done and rev not in recorded),
        strict=strict,
    )


def validate(
    invocation: Invocation, only: Sequence[str], skip: Sequence[str], database: bool
) -> ValidationReport | None:
    from pathlib import Path

    from migrasafe.checks.validate import CHECKS, run_checks

    answers = load(invocation)
    if answers is None:
        return None
    checks = CHECKS.select(only, skip)
    files = [
        ScriptFile(
            path=Path(f["path"]),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in f["declared"].items()},  # type: ignore[arg-type]
        )
        for f in answers["files"]
    ]
    edited: list[Modified] = []
    if database and any(c.rule == "modified-after-apply" for c in checks):
        state = _state(answers)
        if state is None:
            return None
        current, records = state
        recorded = {r.revision: r for r in records if r.state == "applied"}
        edited = _modified(answers, _applied(answers, current), recorded)
    return run_checks(checks, files, edited)
