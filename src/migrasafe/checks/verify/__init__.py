"""``verify``: prove that every migration reverses without losing schema or data.

On a scratch database (never the user's) the revision graph is walked once,
base to heads (:mod:`.walk`), with generated rows (:mod:`.seed`) whose
schema and contents are read back (:mod:`.snapshot`) and compared
(:mod:`.compare`) after every step. The models are compared with what the
migrations built (:mod:`.drift`) on the walk's database, or, when a step
failed or left something behind, on a second scratch database upgraded
cleanly to head.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from migrasafe.checks.verify.declarations import Declarations, load_declarations
from migrasafe.checks.verify.report import Coverage, Progress, VerifyReport
from migrasafe.checks.verify.walk import Verifier, model_diffs
from migrasafe.db.dialects import database_for, dialect_named
from migrasafe.db.urls import describe_error, parse_url
from migrasafe.errors import ConfigError, EnvError
from migrasafe.project.config import Project
from migrasafe.project.env import discover_url, redirected_connections, run_env
from migrasafe.project.graph import apply_order

__all__ = ["Coverage", "Declarations", "Progress", "VerifyReport", "scratch_for", "verify"]


def verify(
    project: Project,
    *,
    url: str | None = None,
    rows: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
    trace_locks: bool = False,
) -> VerifyReport:
    """Round-trip every revision on a scratch database created next to the project's.

    The scratch database is created on the server ``url`` names, else the
    project's (``--url``/``$MIGRASAFE_URL``, else the URL ``env.py`` would
    connect to, learned without connecting); a SQLite project gets a
    temporary file. The database a URL names is never written to: while
    ``verify`` runs, every connection is redirected to the scratch database,
    whatever ``env.py`` connects to.
    """
    script = project.script
    declarations = load_declarations(project.config_path.parent.resolve())
    defined = {s.revision for s in script.walk_revisions()}
    unknown = sorted(set(declarations.before_revision_data) - defined)
    if unknown:
        raise ConfigError(
            f"[tool.migrasafe.verify] before_revision_data declares rows for "
            f"{', '.join(unknown)}, which no revision file defines; "
            "`migrasafe history` lists the revisions"
        )
    server, default_note = _server(project, url)
    if trace_locks and server.get_backend_name() != "postgresql":
        raise ConfigError(
            f"--trace-locks reads PostgreSQL's pg_locks; the scratch database would be "
            f"{server.get_backend_name()}: pass a PostgreSQL server with --url"
        )
    with _scratch(project, server) as scratch_url:
        verifier = Verifier(project, script, scratch_url, rows, seed, progress, declarations)
        verifier.trace_locks = trace_locks
        report = verifier.run()
    if not verifier.models_compared:  # the walk left things behind, or never reached head
        report = _drift_on_a_clean_database(project, server, verifier, report)
    if default_note:
        report = dataclasses.replace(report, notes=(*report.notes, default_note))
    return report


def _server(project: Project, url: str | None) -> tuple[URL, str | None]:
    """Where the scratch database goes: ``url``, the project's, or the server ``env.py``
    would connect to. A project that names no database anywhere (alembic.ini, pyproject,
    --url, $MIGRASAFE_URL, env.py) is verified on a temporary SQLite database, and says so:
    its env.py is handed that database's URL as sqlalchemy.url."""
    given = url or project.url
    if given:
        return parse_url(given), None
    configured = project.configured_url
    placeholder = bool(configured) and str(configured).startswith(_PLACEHOLDER)
    try:
        found = discover_url(project)
        if found.drivername != "driver":
            return found, None
    except EnvError:
        if configured and not placeholder:
            raise
    where = ("sqlalchemy.url is still alembic init's placeholder (driver://...)" if placeholder
             else "no database URL is configured anywhere (sqlalchemy.url, --url, "
                  "$MIGRASAFE_URL, env.py)")  # fmt: skip
    note = (f"{where}: verified on a temporary SQLite database; pass --url to verify on your "
            "database's server")  # fmt: skip
    return parse_url("sqlite+aiosqlite://" if _async_env(project) else "sqlite://"), note


def _async_env(project: Project) -> bool:
    """Whether env.py builds an async engine (Alembic's async template): it then needs an
    async driver in the URL it is handed."""
    try:
        text = (Path(project.script_directory.dir) / "env.py").read_text(errors="replace")
    except OSError:
        return False
    return "async_engine_from_config" in text or "create_async_engine" in text


# What `alembic init` writes as sqlalchemy.url, for the user to replace.
_PLACEHOLDER = "driver://"


@contextmanager
def scratch_for(project: Project, url: str | None = None) -> Iterator[str]:
    """A scratch database for ``project``, made where verify would make it (on ``url``'s
    server, the project's, or a temporary SQLite file), every connection of its env.py
    redirected to it while inside; removed afterwards. Yields its URL."""
    server, _ = _server(project, url)
    with _scratch(project, server) as scratch_url:
        yield scratch_url


@contextmanager
def _scratch(project: Project, server: URL) -> Iterator[str]:
    """A scratch database on ``server``, every connection of env.py redirected to it."""
    with database_for(server).scratch.create() as scratch_url:
        scratch = sa.make_url(scratch_url)
        with _pointed_at(project, server, scratch), redirected_connections(scratch), \
                dialect_named("sqlite").sessions.transactional_ddl():  # fmt: skip
            yield scratch_url


def _drift_on_a_clean_database(
    project: Project, server: URL, verifier: Verifier, report: VerifyReport
) -> VerifyReport:
    """Models against a database upgraded straight to head: not against verify's leftovers."""
    script = verifier.script
    order = apply_order(script)
    if not order:
        return report
    with _scratch(project, server):
        try:
            run_env(project, lambda rev, _ctx: script._upgrade_revs("heads", rev))  # type: ignore[arg-type]
            diffs = model_diffs(lambda fn: run_env(project, fn), verifier)
        except Exception as exc:  # the upgrade itself failed: said already by the walk
            reached = "" if report.complete else "verify could not reach head, and "
            note = f"{reached}a clean upgrade to head failed: {describe_error(exc, server)}"
            return dataclasses.replace(report, models_not_compared=note)
    added = verifier.drift_findings(diffs, order)
    return dataclasses.replace(report, findings=report.findings + tuple(added),
                               models_not_compared=verifier.models_note)  # fmt: skip


@contextmanager
def _pointed_at(project: Project, server: URL, scratch: URL) -> Iterator[None]:
    """``sqlalchemy.url`` names the scratch database, with the driver ``env.py`` expects.

    An ``env.py`` that reads the config then connects there directly; one that
    does not is redirected anyway (:func:`redirected_connections`).
    """
    config = project.config
    configured = project.configured_url
    driver = scratch.drivername
    mine = sa.make_url(configured) if configured else None
    if mine is not None and mine.get_backend_name() == scratch.get_backend_name():
        driver = mine.drivername
    elif server.get_backend_name() == scratch.get_backend_name():
        driver = server.drivername  # also where the configured URL is alembic's placeholder
    saved = dict(config.attributes)
    old = config.get_main_option("sqlalchemy.url")
    url = scratch.set(drivername=driver).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False  # migrasafe's template: no logging setup per step
    try:
        yield
    finally:
        config.attributes.clear()
        config.attributes.update(saved)
        if old is None:
            config.remove_main_option("sqlalchemy.url")
        else:
            config.set_main_option("sqlalchemy.url", old.replace("%", "%%"))
