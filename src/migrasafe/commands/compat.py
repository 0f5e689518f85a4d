"""``compat REF``: does the release at REF still work on the schema a deploy leaves?

The models (``target_metadata``) of the release now running are taken from a
git ref, those of the release to come from the working tree. On a scratch
database upgraded as the deploy would (the expand phase when the project
deploys in phases, else head), each release's models are held against the
schema: every table and column they map exists, with a type they can read and
write, no NOT NULL column they do not know of lacks a default, and a row
generated from each model is inserted and read back through that mapping.
The old release is loaded in a process of its own, from a copy of the ref,
so that its modules never mix with the working tree's.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrasafe.checks.findings import Finding
from migrasafe.errors import ConfigError, MigrasafeError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from migrasafe.project.config import Project

URL_VARIABLE = "MIGRASAFE_COMPAT_URL"  # the scratch URL, for the old release's process


@dataclass(frozen=True)
class CompatReport:
    ref: str
    after: str  # "expand" or "head": what was applied to the scratch database
    applied: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "after": self.after,
            "applied": list(self.applied),
            "findings": [f.to_dict() for f in self.findings],
            "ok": self.ok,
        }


def _finding(rule: str, release: str, message: str, table: str | None = None,
             column: str | None = None) -> Finding:  # fmt: skip
    return Finding(rule, "error", None, release, message, table=table, column=column)


# -- the models held against a schema ---------------------------------------------------


def _value(column: sa.Column[Any], index: int) -> tuple[bool, Any]:
    """A value for ``column`` that its type accepts; (False, None) when none is known."""
    import sqlalchemy as sa

    kind = column.type
    if isinstance(kind, sa.Enum) and kind.enums:
        return True, kind.enums[0]
    if isinstance(kind, sa.Boolean):
        return True, True
    if isinstance(kind, sa.Integer):
        return True, index
    if isinstance(kind, sa.Numeric):
        return True, decimal.Decimal("1.5") if kind.asdecimal else 1.5
    if isinstance(kind, sa.DateTime):
        return True, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC if kind.timezone else None)
    if isinstance(kind, sa.Date):
        return True, dt.date(2024, 1, 2)
    if isinstance(kind, sa.Time):
        return True, dt.time(3, 4, 5)
    if isinstance(kind, sa.Uuid):
        return True, uuid.UUID(int=index) if kind.as_uuid else str(uuid.UUID(int=index))
    if isinstance(kind, sa.JSON):
        return True, {"n": index}
    if isinstance(kind, sa.LargeBinary):
        return True, b"x"
    if isinstance(kind, sa.String):
        text = f"v{index}"
        return True, text[: kind.length] if kind.length else text
    return False, None


def check_models(metadata: sa.MetaData, url: str, release: str) -> list[Finding]:
    """``metadata`` held against the database at ``url``; nothing is left behind in it."""
    import sqlalchemy as sa

    found: list[Finding] = []
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = [t for t in metadata.sorted_tables if not t.name.startswith("migrasafe_")]
            usable = []
            for table in tables:
                before = len(found)
                found += _schema_findings(inspector, table, release)
                if len(found) == before:
                    usable.append(table)
            connection.rollback()  # the inspection's own transaction
            found += _round_trip(connection, usable, release)
    finally:
        engine.dispose()
    return found


def _schema_findings(inspector: Any, table: sa.Table, release: str) -> Iterator[Finding]:
    name = table.name
    if not inspector.has_table(name, schema=table.schema):
        yield _finding("compat-missing-table", release,
                       f"its models map table {name}, which the schema does not have",
                       name)  # fmt: skip
        return
    columns = {c["name"]: c for c in inspector.get_columns(name, schema=table.schema)}
    for column in table.columns:
        there = columns.get(column.name)
        if there is None:
            yield _finding("compat-missing-column", release,
                           f"its models map {name}.{column.name}, which the schema does not "
                           "have: every query of that model fails", name, column.name)  # fmt: skip
            continue
        length, wanted = (
            getattr(there["type"], "length", None),
            getattr(column.type, "length", None),
        )
        if length is not None and wanted is not None and length < wanted:
            yield _finding("compat-narrower-column", release,
                           f"its models write up to {wanted} characters to {name}.{column.name}, "
                           f"which now holds {length}", name, column.name)  # fmt: skip
    mapped = {c.name for c in table.columns}
    for column_name, there in columns.items():
        if column_name in mapped:
            continue
        if (
            not there.get("nullable", True)
            and there.get("default") is None
            and not there.get("autoincrement")
        ):
            yield _finding("compat-unknown-not-null", release,
                           f"{name}.{column_name} is NOT NULL without a default and its models "
                           "do not know it: each insert of that model fails", name,
                           column_name)  # fmt: skip


def _round_trip(connection: sa.Connection, tables: list[sa.Table], release: str) -> list[Finding]:
    """A generated row per model inserted and read back, parents first; all rolled back.

    No savepoints (SQLite's driver commits at RELEASE): a table whose row is refused is
    reported, everything is rolled back, and the rest are tried again without it.
    """
    import sqlalchemy as sa

    found: list[Finding] = []
    unreadable: set[str] = set()
    left = list(tables)
    while left:
        refused = None
        transaction = connection.begin()
        try:
            inserted: dict[str, dict[str, Any]] = {}
            for index, table in enumerate(left, start=1):
                try:
                    back = _write_and_read(connection, table, index, inserted)
                except sa.exc.DBAPIError as exc:
                    reason = " ".join(str(exc.orig).split())[:300]
                    refused = table
                    found.append(_finding("compat-write", release,
                                          f"a row written through its {table.name} model is "
                                          f"refused: {reason}", table.name))  # fmt: skip
                    break
                if back is None and table.name not in unreadable:
                    unreadable.add(table.name)
                    found.append(_finding("compat-read", release,
                                          f"a row written through its {table.name} model cannot "
                                          "be read back", table.name))  # fmt: skip
                elif back is not None:
                    inserted[table.name] = back
        finally:
            transaction.rollback()
        if refused is None:
            break
        left.remove(refused)  # the others, afresh (their parents written again first)
    return found


def _write_and_read(connection: sa.Connection, table: sa.Table, index: int,
                    inserted: dict[str, dict[str, Any]]) -> dict[str, Any] | None:  # fmt: skip
    import sqlalchemy as sa

    row: dict[str, Any] = {}
    for column in table.columns:
        reference = next(iter(column.foreign_keys), None)
        if reference is not None:
            parent = inserted.get(reference.column.table.name)
            if parent is not None and reference.column.name in parent:
                row[column.name] = parent[reference.column.name]
                continue
            if column.nullable:
                continue
        if (
            column.primary_key
            and column.autoincrement in (True, "auto")
            and isinstance(column.type, sa.Integer)
            and len(table.primary_key.columns) == 1
        ):
            continue
        known, value = _value(column, index)
        if known:
            row[column.name] = value
    result = connection.execute(table.insert().values(row))
    key = dict(zip([c.name for c in table.primary_key.columns],
                   result.inserted_primary_key or (), strict=False))  # fmt: skip
    where = [table.c[k] == v for k, v in key.items()]
    back = connection.execute(table.select().where(*where)).mappings().first()
    return dict(back) if back is not None else None


# -- the old release, from git, in a process of its own ----------------------------------


def _metadata_of(project: Project) -> sa.MetaData | None:
    """``target_metadata`` as ``env.py`` passes it, learned in offline mode (no connection)."""
    from migrasafe.project.env import run_env

    seen: list[Any] = []

    def look(_heads: tuple[str, ...], context: Any) -> list[Any]:
        seen.append(context.opts.get("target_metadata"))
        return []

    run_env(project, look, as_sql=True, load_scripts=False)
    metadata = seen[0] if seen else None
    if isinstance(metadata, list | tuple):  # several MetaData objects: Alembic accepts a list
        import sqlalchemy as sa

        merged = sa.MetaData()
        for each in metadata:
            for table in each.tables.values():
                table.to_metadata(merged)
        return merged
    return metadata


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise ConfigError(f"git {args[0]} failed: {' '.join(done.stderr.split())}")
    return done.stdout.strip()


def _checkout(project: Project, ref: str, into: Path) -> Path:
    """The project's config file as it is at ``ref``, in a copy of the repository's tree."""
    start = project.config_path.parent.resolve()
    if ref.startswith("-") or not ref.strip():
        raise ConfigError(f"--compat {ref!r} is not a git ref")
    top = Path(_git(start, "rev-parse", "--show-toplevel"))
    commit = subprocess.run(["git", "-C", str(top), "rev-parse", "--verify", "--quiet",
                             "--end-of-options", f"{ref}^{{commit}}"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    if not commit:
        raise ConfigError(f"{ref!r} names no commit in {top}: give a branch, tag or commit")
    archive = into / "ref.tar"
    _git(top, "archive", "--format=tar", f"--output={archive}", commit)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree" / project.config_path.resolve().relative_to(top)


def _old_findings(project: Project, ref: str, url: str) -> list[Finding]:
    with tempfile.TemporaryDirectory(prefix="migrasafe-compat-") as temp:
        config = _checkout(project, ref, Path(temp))
        done = subprocess.run(
            [sys.executable, "-m", "migrasafe.commands.compat", str(config), ref],
            capture_output=True, text=True, check=False, cwd=config.parent,
            env={**os.environ, URL_VARIABLE: url},
        )  # fmt: skip
    if done.returncode != 0:
        from migrasafe.db.urls import scrub

        raise MigrasafeError(f"the release at {ref} cannot be loaded: "
                             f"{scrub(' '.join(done.stderr.split())[-500:], url)}")  # fmt: skip
    try:
        items = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise MigrasafeError(f"the release at {ref} gave no answer: {done.stdout[-300:]!r} "
                             f"{done.stderr[-300:]!r}") from exc  # fmt: skip
    return [Finding(**item) for item in items]


def _worker(config: str, ref: str) -> None:
    """In the old release's process: its models against the scratch database."""
    from migrasafe.project.config import load_project

    project = load_project([config])
    metadata = _metadata_of(project)
    if metadata is None:
        sys.stderr.write(f"env.py at {ref} passes no target_metadata: there are no models to "
                         "hold against the schema\n")  # fmt: skip
        sys.exit(3)
    found = check_models(metadata, os.environ[URL_VARIABLE], f"models at {ref}")
    sys.stdout.write("\n" + json.dumps([f.to_dict() for f in found]) + "\n")


# -- the command ---------------------------------------------------------------------------


def compat(project: Project, ref: str, *, url: str | None = None) -> CompatReport:
    """The release at ``ref`` and the working tree's, each on the schema a deploy leaves."""
    from migrasafe.checks.lint.phases import branch_layout, declared_phase
    from migrasafe.checks.verify import scratch_for
    from migrasafe.commands.phases import plan
    from migrasafe.project.env import run_env

    script = project.script
    layout = branch_layout(script)
    phased = any(declared_phase(s, layout)[0] for s in script.walk_revisions())
    with scratch_for(project, url) as scratch_url:
        if phased:
            chosen = plan(project, "expand")
            targets, applied = chosen.targets, chosen.apply
        else:
            targets = ("heads",)
            applied = tuple(s.revision for s in reversed(list(script.walk_revisions())))
        for target in targets:

            def steps(heads: tuple[str, ...], _context: Any, target: str = target) -> Any:
                return script._upgrade_revs(target, heads)  # type: ignore[arg-type]

            run_env(project, steps)
        found = _old_findings(project, ref, scratch_url)
        new = _metadata_of(project)
        if new is None:
            raise ConfigError(
                "env.py passes no target_metadata to context.configure(), so there are no "
                "models to check: set target_metadata = Base.metadata in env.py"
            )
        found += check_models(new, scratch_url, "models in the working tree")
    return CompatReport(ref, "expand" if phased else "head", applied, tuple(found))


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
