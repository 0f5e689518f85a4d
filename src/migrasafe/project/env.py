"""The one place that runs a project's ``env.py``, exactly as Alembic's commands do.

migrasafe never guesses what ``env.py`` decides (its URL, connection, version
table and schema, ``target_metadata``, ``transaction_per_migration``): it
runs ``env.py`` inside an :class:`~alembic.runtime.environment.EnvironmentContext`
and reads the answers from the :class:`MigrationContext` that ``env.py``
configured, the way ``alembic current`` or ``alembic upgrade`` would. What
migrasafe adds (the migration lock, checksums, watching SQL) hooks into that
context, so it works whatever ``env.py`` does: builds its own engine, takes one
from ``config.attributes``, runs async with ``run_sync``, or needs a Flask
application context.

Three guards wrap a run, each over every connection SQLAlchemy opens meanwhile:

- :func:`readonly_connections` for the read-only commands: SQLite files are
  opened read-only (a missing file is not created), server sessions are
  ``READ ONLY``;
- :func:`redirected_connections` for ``verify``: every connection goes to the
  scratch database, whatever URL ``env.py`` connects to;
- :func:`intercepted_connections`: no connection is made at all; the first
  attempt reports the URL ``env.py`` would have used.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL, Engine

from migrasafe.db.dialects import dialect_named, driver_hint, same_database
from migrasafe.db.scratch import DATABASE_KEYS, ScratchOnly
from migrasafe.db.urls import describe_error, redact
from migrasafe.errors import (
    ConfigError,
    EnvError,
    MigrasafeError,
    check_interrupted,
    reraise_interrupts,
)
from migrasafe.project.config import Project, alembic_errors

T = TypeVar("T")
StepsFn = Callable[[tuple[str, ...], MigrationContext], Iterable[Any]]
ConfigureHook = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class EnvContext:
    """What ``env.py`` configured: read from its MigrationContext, not from the config."""

    url: URL
    version_table: str
    version_table_schema: str | None
    transaction_per_migration: bool
    target_metadata: Any
    heads: tuple[str, ...]
    exists: bool = True
    # What the lean path needs to reach the same database without SQLAlchemy (see
    # migrasafe.commands.lean): the driver's connect arguments as env.py's engine made them
    # (before migrasafe's read-only changes), and session settings that decide
    # which table an unqualified name is (PostgreSQL's search_path).
    connected: tuple[str, str, tuple[Any, ...], dict[str, Any]] | None = None
    session: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def qualified_version_table(self) -> str:
        """``schema.table`` as the user knows it, or the bare table name."""
        schema = self.version_table_schema
        return f"{schema}.{self.version_table}" if schema else self.version_table

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @classmethod
    def of(cls, context: MigrationContext, heads: tuple[str, ...]) -> EnvContext:
        connection = context.connection
        url = connection.engine.url if connection is not None else sa.make_url("sqlite://")
        return cls(
            url=url,
            version_table=context.version_table,
            version_table_schema=context.version_table_schema,
            transaction_per_migration=bool(context.opts.get("transaction_per_migration")),
            target_metadata=context.opts.get("target_metadata"),
            heads=heads,
        )


class _Environment(EnvironmentContext):
    """Alembic's EnvironmentContext, with a hook on what ``env.py`` passes to configure()."""

    def __init__(self, *args: Any, on_configure: ConfigureHook | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._on_configure = on_configure
        self.configured = 0

    def configure(self, **kw: Any) -> None:  # type: ignore[override]
        self.configured += 1
        if self.configured > 1:
            raise ConfigError(
                "env.py configures more than one database in one run (as Alembic's multidb "
                "template does); migrasafe works on one database at a time: list a single "
                "database in the `databases` option, or give each its own ini section (-n)"
            )
        if self._on_configure is not None:
            kw = self._on_configure(kw)
        super().configure(**kw)


# `alembic.context` proxies to the EnvironmentContext in use, found by its class.
EnvironmentContext._setups[_Environment] = EnvironmentContext._setups[EnvironmentContext]


@dataclass
class Run:
    """What one run of ``env.py`` got to: the contexts, the step under way."""

    called: bool = False
    context: MigrationContext | None = None
    heads: tuple[str, ...] = ()
    running: Any = None


def run_env(
    project: Project,
    fn: StepsFn,
    *,
    run: Run | None = None,
    as_sql: bool = False,
    load_scripts: bool = True,
    on_configure: ConfigureHook | None = None,
    **opts: Any,
) -> Run:
    """Run ``env.py`` with ``fn`` as the work function, as Alembic's commands do.

    ``fn(heads, context)`` gets the heads read by the context ``env.py``
    configured and returns the migration steps to run (none, to only read).
    An error before ``fn`` was reached is ``env.py``'s, a setup problem, and
    becomes an :class:`EnvError`; later errors are raised as they are, with
    ``run.running`` naming the step under way.
    """
    run = run if run is not None else Run()
    # Reading the database needs no revision file: only a migration loads them.
    script = project.script if load_scripts else project.script_directory

    def steps(heads: tuple[str, ...], context: MigrationContext) -> Iterator[Any]:
        run.called, run.context, run.heads = True, context, tuple(heads)
        for step in fn(tuple(heads), context):
            check_interrupted()  # a signal swallowed by a destructor stops the run here
            run.running = step
            yield step
            run.running = None

    env = _Environment(project.config, script, fn=steps, as_sql=as_sql,
                       on_configure=on_configure, **opts)  # fmt: skip
    _register_safe_operations()
    try:
        with project.activated(), _guarded(None), env:
            try:
                script.run_env()
            except Exception:
                if run.running is not None:  # the revision under way failed, even by
                    raise  # Alembic's CommandError: the caller names it, with what ran before
                with alembic_errors():
                    raise
    except MigrasafeError:
        raise
    except BaseException as exc:
        reraise_interrupts(exc)
        if not run.called:
            raise EnvError(_setup_failure(project, exc)) from exc
        raise
    if not run.called:
        raise EnvError(
            f"{_env_py(project)} ran without calling context.run_migrations(), so migrasafe "
            "cannot see its database; run it the way Alembic's templates do"
        )
    return run


def _register_safe_operations() -> None:
    """``op.safe_create_index(...)`` and the others, in every revision migrasafe runs (Alembic's
    plugin hook runs too early to register operations: see migrasafe.safe_op.plugin)."""
    from migrasafe.safe_op.plugin import register

    register()


def _env_py(project: Project) -> str:
    return str(Path(project.script_directory.dir) / "env.py")


# Each driver module, and the URL that names it (None: no database of its own).
_DRIVERS = {"psycopg": "postgresql+psycopg", "psycopg2": "postgresql+psycopg2",
            "asyncpg": "postgresql+asyncpg", "pg8000": "postgresql+pg8000",
            "aiosqlite": "sqlite+aiosqlite", "pymysql": "mysql+pymysql",
            "MySQLdb": "mysql+mysqldb", "asyncmy": "mysql+asyncmy", "aiomysql": "mysql+aiomysql",
            "greenlet": None}  # fmt: skip


def _missing_driver_url(exc: BaseException) -> str:
    """The ``dialect+driver://`` of the driver that failed to load, from the error alone
    (an ``env.py`` that hard-codes its URL tells migrasafe nothing else)."""
    if isinstance(exc, sa.exc.NoSuchModuleError):  # "Can't load plugin: sqlalchemy.dialects:x.y"
        backend, _, driver = str(exc).rpartition(":")[2].strip().partition(".")
        return f"{backend}+{driver}://" if backend and driver else ""
    found = _DRIVERS.get((getattr(exc, "name", None) or "").split(".")[0])
    return f"{found}://" if found else ""


def _setup_failure(project: Project, exc: BaseException) -> str:
    """env.py failed before any revision: say so, and why, in one line."""
    url = project.configured_url or ""
    shown = redact(url) if url else "its database"
    if isinstance(exc, SystemExit):
        what = f"it called sys.exit({exc.code!r})"
    elif (
        not url
        and isinstance(exc, sa.exc.ArgumentError | KeyError)
        and str(exc) in ("'url'", "Could not parse SQLAlchemy URL from given URL string")
    ):  # engine_from_config() of a section without sqlalchemy.url, or with it empty
        what = f"no database URL: {_where_to_set_the_url(project)}"
    elif isinstance(exc, sa.exc.NoSuchModuleError) or (
        isinstance(exc, ImportError) and (exc.name or "").split(".")[0] in _DRIVERS
    ):
        named = url or _missing_driver_url(exc)
        what = f"no driver for {shown}: {describe_error(exc, url)}. " + (
            driver_hint(named) if named else "pip install 'migrasafe[postgres]' or '[mysql]'"
        )
    elif isinstance(exc, ImportError):
        what = (
            f"cannot import {exc.name or 'a module'} ({exc}); run migrasafe where alembic "
            "runs (prepend_sys_path is relative to the current directory)"
        )
    elif isinstance(exc, sa.exc.ArgumentError):
        what = f"malformed database URL {shown}: {describe_error(exc, url)}"
    elif isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        what = f"cannot connect to {shown}: {describe_error(exc, url)}"
    else:
        what = describe_error(exc, url)
    hint = ""
    text = str(exc)
    if "greenlet" in text or "MissingGreenlet" in type(exc).__name__ or "is not async" in text:
        hint = "; an async env.py needs an async driver in its URL (sqlite+aiosqlite, asyncpg)"
    elif "application context" in text or "current_app" in text:
        hint = "; it needs the Flask application: pass --app or set $FLASK_APP, as for `flask db`"
    return f"env.py ({_env_py(project)}) failed before any revision ran: {what}{hint}"


def _where_to_set_the_url(project: Project) -> str:
    """Where an ``env.py`` reading ``sqlalchemy.url`` finds it, for a project that has none."""
    ini = project.config.config_file_name
    if ini is None:  # pyproject.toml alone: Alembic reads sqlalchemy.url from an ini file only
        where = (
            f"create an alembic.ini beside {project.config_path} with "
            "`[alembic]` and `sqlalchemy.url = ...` (as `alembic init -t pyproject` writes it)"
        )
    else:
        where = f"set sqlalchemy.url in the [{project.config.config_ini_section}] section of {ini}"
    return f"{where}, or pass --url URL (or set $MIGRASAFE_URL)"


def probe(
    project: Project, read: Callable[[MigrationContext], T] | None = None
) -> tuple[EnvContext, T | None]:
    """Run ``env.py`` as ``alembic current`` does, read-only: what it configures, and ``read``.

    ``read(context)`` runs on ``env.py``'s own connection, inside its
    transaction (inside ``run_sync`` for an async ``env.py``). A SQLite
    database that does not exist yet is not created: it is reported as
    ``exists=False`` at base.
    """
    found: list[Any] = []
    session: dict[str, str] = {}
    seen: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = []

    def look(heads: tuple[str, ...], context: MigrationContext) -> list[Any]:
        if context.connection is not None:
            session.update(
                dialect_named(context.dialect.name).catalog.session_facts(context.connection)
            )
        found.append(read(context) if read is not None and not missing else None)
        return []

    with readonly_connections(seen) as missing:
        run = run_env(project, look, dont_mutate=True, load_scripts=False,
                      on_configure=expect_url(project))  # fmt: skip
    assert run.context is not None
    context = dataclasses.replace(EnvContext.of(run.context, run.heads),
                                  connected=seen[0] if seen else None, session=session)  # fmt: skip
    if missing:
        context = dataclasses.replace(context, exists=False)
    for observe in _probe_observers:
        observe(context)
    return context, found[0] if found else None


_probe_observers: list[Callable[[EnvContext], None]] = []


@contextmanager
def observe_probes() -> Iterator[list[EnvContext]]:
    """Every EnvContext that :func:`probe` learns while inside (the lean path caches it)."""
    seen: list[EnvContext] = []
    _probe_observers.append(seen.append)
    try:
        yield seen
    finally:
        _probe_observers.remove(seen.append)


def expect_url(project: Project) -> ConfigureHook | None:
    """When --url was given, refuse an env.py that connects elsewhere (it ignores the config)."""
    if not project.url:
        return None
    wanted = sa.make_url(project.url)

    def check(kw: dict[str, Any]) -> dict[str, Any]:
        connection = kw.get("connection")
        if connection is not None and not same_database(connection.engine.url, wanted):
            raise ConfigError(
                f"env.py connected to {redact(connection.engine.url)}, not to the URL given "
                f"({redact(wanted)}): it does not read sqlalchemy.url. Set the database the way "
                "that env.py reads it (e.g. its environment variable) instead of --url"
            )
        return kw

    return check


# -- guards over every connection opened during a run -----------------------------


@contextmanager
def _guarded(on_do_connect: Callable[..., None] | None,
             on_connect: Callable[[Any], None] | None = None) -> Iterator[None]:  # fmt: skip
    """Every DBAPI connection used while inside is one made under ``on_do_connect``.

    A pool may hold connections made before (say, by a Flask app's engine):
    handing one out while inside would bypass the guard, so it is refused and
    the pool connects anew. Connections made inside are closed on the way
    out, so none of them is reused by code that runs later (nor left for the
    garbage collector by an ``env.py`` that never disposes of its engine).
    """
    # id -> pool record, weakly: a record holds its pool, whose engine holds a cache of
    # compiled statements; verify makes an engine per run of env.py, and keeping them all
    # alive made Python's garbage collector slower at every step.
    made: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()

    def on_pool_connect(dbapi_connection: Any, record: Any) -> None:
        made[id(record)] = record
        if on_connect is not None:
            on_connect(dbapi_connection)

    def on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if made.get(id(record)) is not record:
            raise sa.exc.DisconnectionError("made before migrasafe's guard: connect anew")

    listeners: list[tuple[Any, str, Callable[..., Any]]] = [
        (sa.pool.Pool, "connect", on_pool_connect)
    ]
    if on_do_connect is not None:
        listeners += [
            (Engine, "do_connect", on_do_connect),
            (sa.pool.Pool, "checkout", on_checkout),
        ]
    for target, name, fn in listeners:
        sa.event.listen(target, name, fn)
    try:
        yield
    finally:
        for target, name, fn in listeners:
            sa.event.remove(target, name, fn)
        for record in list(made.values()):  # those in use (migrasafe's own lock) are left alone
            try:
                if record.dbapi_connection is not None and not record.in_use:
                    record.invalidate()
            except Exception:  # cleaning up never replaces the error on its way out
                logging.getLogger(__name__).debug("closing a connection failed", exc_info=True)


@contextmanager
def readonly_connections(
    seen: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] | None = None,
) -> Iterator[list[str]]:
    """While inside, connections cannot change a database (nor create a SQLite file).

    Yields the list of databases found missing (SQLite files: the connection
    went to an empty in-memory database instead of creating them). ``seen``
    gets each connection's driver arguments as the engine made them.
    """
    missing: list[str] = []

    def on_do_connect(dialect: Any, _rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if seen is not None:
            seen.append((dialect.name, dialect.driver, tuple(cargs), dict(cparams)))
        sessions = dialect_named(dialect.name).sessions
        absent = sessions.make_readonly_args(dialect.driver, cargs, cparams)
        if absent is not None:
            missing.append(absent)

    with _guarded(on_do_connect):
        yield missing


@contextmanager
def redirected_connections(scratch: URL) -> Iterator[None]:
    """While inside, every connection goes to ``scratch``, whatever URL its engine was given.

    The database name (SQLite: the file) is replaced at the last moment,
    in the arguments handed to the driver, so an ``env.py`` that hard-codes
    its URL, reads ``$DATABASE_URL`` or takes the Flask app's engine still
    migrates the scratch database, with its own driver and options. What
    does not pass through SQLAlchemy's URL (an engine with ``creator=``, a
    revision calling the driver itself) cannot be redirected: any connection
    to another database is refused (:class:`~migrasafe.db.scratch.ScratchOnly`).
    """
    backend = scratch.get_backend_name()
    databases = dialect_named(backend).scratch
    only = ScratchOnly(scratch)

    def on_do_connect(dialect: Any, _rec: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        if dialect.name != backend:
            raise ConfigError(
                f"env.py connects to a {dialect.name} database, but the scratch database is "
                f"{backend}: pass a {dialect.name} server with --url"
            )
        target = scratch.set(drivername=f"{dialect.name}+{dialect.driver}")
        new_args, new_params = dialect.create_connect_args(target)
        cargs[:] = list(new_args)
        for key in DATABASE_KEYS:  # from the URL's query string: they would win
            cparams.pop(key, None)
        cparams.update(new_params)
        databases.connect_args(dialect.driver, target, cparams)

    def on_connect(dbapi_connection: Any) -> None:
        only.check(dbapi_connection)  # an engine with creator= made it: do_connect never ran
        databases.tune_session(dbapi_connection)

    with only.enforced(), _guarded(on_do_connect, on_connect):
        yield


class _Intercepted(Exception):
    def __init__(self, url: URL) -> None:
        super().__init__(redact(url))
        self.url = url


@contextmanager
def intercepted_connections() -> Iterator[None]:
    """While inside, no connection is opened: the first attempt raises with its engine's URL."""
    original = Engine.raw_connection

    def refuse(self: Engine) -> Any:
        raise _Intercepted(self.url)

    Engine.raw_connection = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        Engine.raw_connection = original  # type: ignore[method-assign]


def discover_url(project: Project) -> URL:
    """The URL ``env.py`` connects to, learned without connecting to it."""
    try:
        with intercepted_connections():
            run_env(project, lambda _heads, _ctx: [], dont_mutate=True, load_scripts=False)
    except EnvError as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, _Intercepted):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, _Intercepted):
            return cause.url
        raise
    except _Intercepted as exc:
        return exc.url
    raise EnvError(f"{_env_py(project)} ran without connecting to a database")
