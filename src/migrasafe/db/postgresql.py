"""PostgreSQL: describe in one catalog query, scratch databases on the server, a session
advisory lock, lock and statement timeouts, and who blocks a waiting migration."""

from __future__ import annotations

import functools
import weakref
import zlib
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from migrasafe.db.catalog import Catalog, Described
from migrasafe.db.locks import Lock, ServerLocks
from migrasafe.db.scratch import ServerScratch
from migrasafe.db.sessions import Sessions

# One query for everything verify compares of the tables named: columns (type, nullability,
# default, identity, generated), constraints as pg_get_constraintdef renders them, indexes
# key by key (expressions included) with their predicate.
_PG_DESCRIBE = """
SELECT n.nspname, c.relname, current_schema(),
  (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                   NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                   a.attgenerated) ORDER BY a.attnum)
     FROM pg_catalog.pg_attribute a
     LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT json_agg(json_build_array(k.conname, k.contype,
            (SELECT json_agg(a.attname ORDER BY u.ord)
               FROM unnest(k.conkey) WITH ORDINALITY u(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num),
            fn.nspname, fc.relname,
            (SELECT json_agg(a.attname ORDER BY u.ord)
               FROM unnest(k.confkey) WITH ORDINALITY u(num, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num),
            k.confdeltype, pg_get_constraintdef(k.oid, true)) ORDER BY k.conname)
     FROM pg_catalog.pg_constraint k
     LEFT JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid
     LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
    WHERE k.conrelid = c.oid),
  (SELECT json_agg(json_build_array(ic.relname, i.indisunique, i.indisprimary,
            (SELECT json_agg(pg_get_indexdef(i.indexrelid, s, true) ORDER BY s)
               FROM generate_series(1, i.indnkeyatts) s),
            pg_get_expr(i.indpred, i.indrelid, true), am.amname) ORDER BY ic.relname)
     FROM pg_catalog.pg_index i
     JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
     JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    WHERE i.indrelid = c.oid)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = ANY(%s) AND c.relkind IN ('r', 'p')
"""

# Every table of every user schema (as the inspector lists them: plain and partitioned).
_PG_ALL_TABLES = """
SELECT current_schema(), n.nspname, c.relname
  FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class c
       ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
 WHERE n.nspname <> 'information_schema' AND left(n.nspname, 3) <> 'pg_'
"""

# describe's query as a function of the scratch session (pg_temp: it ends with the session),
# where PL/pgSQL keeps its plan. Planning the query took 0.5-1 ms of its 0.7-1.2 ms, each
# time: psycopg's own prepared statements are deallocated after every DROP and ROLLBACK,
# which downgrades send. A function, not PREPARE, as psycopg's DEALLOCATE ALL spares it.
_PG_DESCRIBE_FUNCTION = (
    "CREATE FUNCTION pg_temp.migrasafe_describe(names text[]) RETURNS TABLE(o_schema name, "
    "o_table name, o_default name, o_columns json, o_constraints json, o_indexes json) "
    "LANGUAGE plpgsql STABLE AS $f$ BEGIN RETURN QUERY"
    + _PG_DESCRIBE.replace("%s", "names")
    + "; END $f$"
)

# The scratch sessions (psycopg's connections) that hold that function.
_DESCRIBE_FUNCTION_ON: weakref.WeakSet[Any] = weakref.WeakSet()

# pg_constraint.confdeltype -> the ON DELETE rule; "a" (NO ACTION) is the default, as None.
_PG_ON_DELETE = {"r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _pg_described(row: Any) -> Described:
    _schema, _name, default_schema, columns, constraints, indexes = row
    described_columns = {}
    for name, kind, nullable, default, identity, generated in columns or ():
        if identity:
            default = f"identity {'always' if identity == 'a' else 'by default'}"
        elif generated:
            default = f"generated always as {default} stored"
        described_columns[name] = (kind, nullable, default)
    primary: tuple[str, ...] = ()
    uniques, foreign_keys, checks = set(), set(), set()
    for name, kind, keys, fschema, ftable, fkeys, on_delete, text in constraints or ():
        if kind == "p":
            primary = tuple(keys)
        elif kind == "u":
            uniques.add((name, tuple(keys)))
        elif kind == "f":
            where = None if fschema == default_schema else fschema
            rule = _PG_ON_DELETE.get(on_delete)
            foreign_keys.add((name, tuple(keys), (where, ftable), tuple(fkeys), rule))
        elif kind == "c":
            checks.add((name, text.removeprefix("CHECK ")))
        else:  # exclusion and trigger constraints: compared as the database renders them
            checks.add((name, text))
    described_indexes = set()
    for name, unique, is_primary, keys, predicate, method in indexes or ():
        if is_primary:
            continue
        parts = tuple(keys) + ((f"USING {method}",) if method != "btree" else ())
        parts += (f"WHERE {predicate}",) if predicate else ()
        described_indexes.add((name, parts, bool(unique)))
    return Described(described_columns, primary, frozenset(described_indexes),
                     frozenset(uniques), frozenset(foreign_keys), frozenset(checks))  # fmt: skip


_BLOCKERS = sa.text(
    "SELECT pid, application_name, state, now() - xact_start AS open_for, "
    "left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS query "
    "FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(:pid))"
)


def _describe_blocker(row: Any) -> str:
    opened = f", transaction open {row.open_for.total_seconds():.1f} s" if row.open_for else ""
    return (f"server process {row.pid} ({row.application_name or 'no application name'}"
            f"{opened}, {row.state}, query: {row.query!r})")  # fmt: skip


# One key for "migrating", the same for every migrasafe and every database name
# (advisory locks are per database): crc32 of a fixed string.
_LOCK_NAME = "migrasafe migration lock"
_LOCK_KEY = zlib.crc32(_LOCK_NAME.encode())


class PostgreSQLSessions(Sessions):
    name = "postgresql"
    sync_drivers: ClassVar[dict[str, str]] = {"asyncpg": "psycopg", "psycopg_async": "psycopg"}
    self_sufficient = frozenset({"asyncpg", "psycopg_async"})
    install = "postgres"
    driver = "psycopg"

    @classmethod
    def sync_url(cls, url: URL) -> URL:
        """psycopg beside asyncpg where it is installed; else asyncpg itself (:mod:`.bridge`)."""
        if url.drivername.partition("+")[2] == "asyncpg" and not _has_psycopg():
            from migrasafe.db.bridge import DRIVER

            return url.set(drivername=f"postgresql+{DRIVER}")
        return super().sync_url(url)

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        if driver == "asyncpg":
            settings = dict(cparams.get("server_settings") or {})
            settings["default_transaction_read_only"] = "on"
            cparams["server_settings"] = settings
        else:  # libpq drivers: psycopg, psycopg2, pg8000 ignores it
            option = "-c default_transaction_read_only=on"
            cparams["options"] = f"{cparams.get('options', '')} {option}".strip()
        return None

    def readonly_engine(self) -> Engine:
        engine = self.engine()

        @sa.event.listens_for(engine, "begin")
        def _read_only(connection: Connection) -> None:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

        return engine


@functools.cache
def _has_psycopg() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


class PostgreSQLCatalog(Catalog):
    @classmethod
    def all_tables(cls, connection: Connection) -> tuple[str, list[tuple[str, str]]] | None:
        rows = connection.exec_driver_sql(_PG_ALL_TABLES).all()  # every schema, tables or not
        default = (rows[0][0] if rows else None) or ""  # no schema on the search_path: ""
        return str(default), [(schema, name) for _, schema, name in rows if name is not None]

    @classmethod
    def describe(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], Described] | None:
        if (connection.dialect.server_version_info or (0,)) < (12,):
            return None  # pg_attribute.attgenerated is 12's: reflect there
        if not tables:
            return {}
        names = ([n for _, n in tables],)
        raw = getattr(connection.connection, "dbapi_connection", None)
        if raw is not None and raw in _DESCRIBE_FUNCTION_ON:  # a scratch session's function
            if not connection.in_transaction():
                # The driver begins a transaction for this query, which SQLAlchemy would not
                # know to commit: it stayed open while a migration ran, and CREATE INDEX
                # CONCURRENTLY waited for it until its lock timeout (pypi/warehouse).
                connection.begin()
            rows = raw.execute("SELECT * FROM pg_temp.migrasafe_describe(%s)", names).fetchall()
        else:
            describe = _PG_DESCRIBE
            if connection.dialect.paramstyle == "numeric_dollar":  # asyncpg (see .bridge)
                describe = describe.replace("%s", "$1")
            rows = connection.exec_driver_sql(describe, names).all()
        wanted = set(tables)
        found = {}
        for row in rows:
            key = (None if row[0] == row[2] else row[0], row[1])
            if key in wanted:
                found[key] = _pg_described(row)
        return found

    @classmethod
    def session_facts(cls, connection: Connection) -> dict[str, str]:
        return {"search_path": str(connection.exec_driver_sql("SHOW search_path").scalar())}


class PostgreSQLScratch(ServerScratch):
    admin_database = "postgres"  # the maintenance database, as createdb uses

    def quote(self, name: str) -> str:
        return f'"{name}"'

    def drop(self, name: str) -> str:
        return f"{super().drop(name)} WITH (FORCE)"

    def settings(self, name: str, version: tuple[int, ...]) -> list[str]:
        # The database is dropped afterwards: a commit need not wait for its WAL to reach disk.
        settings = [f"ALTER DATABASE {self.quote(name)} SET synchronous_commit = off"]
        if version >= (12,):
            # Only what asks for it is prepared on a scratch session (tune_session):
            # describe's catalog query, whose custom plan took 0.5 ms of its 0.7 ms per run, as
            # PostgreSQL's cost estimate keeps re-planning it (the generic plan runs in 0.2 ms).
            settings.append(
                f"ALTER DATABASE {self.quote(name)} SET plan_cache_mode = force_generic_plan"
            )
        return settings

    @classmethod
    def tune_session(cls, dbapi_connection: Any) -> None:
        # psycopg prepares a statement run five times, and every executemany; verify reads the
        # same table before and after a migration changes a column's type ("cached plan must
        # not change result type"), and psycopg deallocates what it prepared after every DROP,
        # ALTER and ROLLBACK (one more round trip). So nothing is prepared on a scratch.
        if hasattr(dbapi_connection, "prepare_threshold"):
            dbapi_connection.prepare_threshold = None
            if dbapi_connection.info.server_version >= 120000:  # describe's query: see there
                try:
                    dbapi_connection.execute(_PG_DESCRIBE_FUNCTION)
                    dbapi_connection.commit()
                    _DESCRIBE_FUNCTION_ON.add(dbapi_connection)
                except Exception:  # no TEMP privilege, say: describe runs the query as it is
                    dbapi_connection.rollback()

    @classmethod
    def empty(cls, connection: Connection, keep: set[str]) -> None:
        # Every user schema, with what is in it (tables, types, sequences, functions,
        # extensions); public and those asked for come back empty.
        schemas = (
            connection.exec_driver_sql(
                "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname <> 'information_schema' "
                "AND left(nspname, 3) <> 'pg_' ORDER BY nspname"
            )
            .scalars()
            .all()
        )
        for name in schemas:
            connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        for name in sorted(keep | {"public"}):
            connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{name}"')


def _quiet(connection: Connection) -> bool:
    """Nothing to read on the session's socket (psycopg, psycopg2); False when unknown."""
    import select

    try:
        raw: Any = connection.connection.dbapi_connection
        pgconn = getattr(raw, "pgconn", None)
        fd = pgconn.socket if pgconn is not None else raw.fileno()
        if getattr(raw, "closed", False):
            return False
        return not select.select([fd], [], [], 0)[0]
    except Exception:
        return False


class PostgreSQLLocks(ServerLocks):
    def session_id(self, connection: Connection) -> object:
        return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()

    def blockers(self, watcher: Connection, session: object) -> list[str]:
        return [_describe_blocker(row) for row in watcher.execute(_BLOCKERS, {"pid": session})]

    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        for setting, seconds in (("lock_timeout", lock_timeout),
                                 ("statement_timeout", statement_timeout)):  # fmt: skip
            if seconds is not None:
                connection.exec_driver_sql(f"SET {setting} = '{int(seconds * 1000)}ms'")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        # 55P03 lock_not_available (lock_timeout), 40P01 deadlock_detected
        return getattr(getattr(exc, "orig", exc), "sqlstate", None) in {"55P03", "40P01"}

    def _key(self) -> int:
        return (
            _LOCK_KEY if self.scope is None else zlib.crc32(f"{_LOCK_NAME} {self.scope}".encode())
        )

    def held(self, connection: Connection) -> bool | None:
        key = self._key()
        return bool(connection.scalar(
            sa.text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                    "AND granted AND classid = :hi AND objid = :lo AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()))"),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
        ))  # fmt: skip

    def lock(self) -> Lock | None:
        """A session-level advisory lock, as Flyway takes one; one per version table schema
        when ``env.py`` names one (a schema per tenant: tenants migrate side by side).

        It lives on its own connection: the server drops it when that session
        ends, including when the process holding it is killed.
        """
        key = self._key()
        engine, connection = self.sessions.own_session(isolation_level="AUTOCOMMIT")

        def try_acquire() -> bool:
            return bool(connection.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))

        def holder() -> str:
            row = connection.execute(
                sa.text(
                    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :hi AND l.objid = :lo"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            ).first()
            if row is None:
                return "another session"
            return (
                f"server process {row.pid} (client {row.client_addr or 'local'}, "
                f"connected {row.backend_start:%Y-%m-%d %H:%M:%S})"
            )

        def release(acquired: bool) -> None:
            try:
                if acquired:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                connection.close()
                engine.dispose()

        def alive() -> bool:
            # Asked before each revision's commit: a round trip each time would cost a
            # 500-revision upgrade a tenth of its time. A session that ends (terminated,
            # timed out, the server stopping) says so on its socket, so a quiet socket
            # is a live session; anything there is read by the query.
            if _quiet(connection):
                return True
            try:
                return bool(connection.scalar(sa.text("SELECT pg_backend_pid() > 0")))
            except sa_exc.DBAPIError:
                return False

        return Lock(try_acquire, holder, release, alive)
