"""MySQL and MariaDB. Their DDL commits at once: a revision that fails midway keeps
the DDL that ran before the failure (Alembic cannot roll it back)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection

from migrasafe.db.locks import Lock, ServerLocks
from migrasafe.db.scratch import ServerScratch
from migrasafe.db.sessions import Sessions

# (host, port) of the MySQL servers where a scratch database's admin session had no TLS.
_NO_TLS: set[tuple[str | None, int | None]] = set()

_MYSQL_WAITING = sa.text(
    "SELECT STATE LIKE 'Waiting for%lock%' FROM information_schema.PROCESSLIST WHERE ID = :pid"
)

_MYSQL_OPEN = sa.text(
    "SELECT p.ID AS id, p.USER AS user, p.HOST AS host, "
    "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS open_for, "
    "LEFT(COALESCE(t.trx_query, p.INFO, ''), 60) AS query "
    "FROM information_schema.INNODB_TRX t "
    "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
    "WHERE p.ID <> :pid ORDER BY t.trx_started"
)


class MySQLSessions(Sessions):
    name = "mysql"
    ddl_is_transactional = False
    sync_drivers: ClassVar[dict[str, str]] = {"aiomysql": "pymysql", "asyncmy": "pymysql"}
    install = "mysql"
    driver = "pymysql"

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        cparams["init_command"] = "SET SESSION TRANSACTION READ ONLY"
        return None


class MySQLScratch(ServerScratch):
    # Not None: with no database named, a driver takes one from an option file
    # (read_default_file's [client] database=); every user may read information_schema.
    admin_database = "information_schema"

    def quote(self, name: str) -> str:
        return f"`{name}`"

    def learn_server(self, admin: Connection) -> None:
        cipher = admin.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").first()
        if admin.dialect.driver == "pymysql" and not (cipher and cipher[1]):
            _NO_TLS.add((self.sessions.engine_url.host, self.sessions.engine_url.port))

    @classmethod
    def connect_args(cls, driver: str, url: URL, cparams: dict[str, Any]) -> None:
        # PyMySQL tries TLS unless told otherwise, and first builds a TLS context with the
        # system's certificates: 18 ms a connection, and verify connects once a step on
        # MySQL. On a server where migrasafe's own session found no TLS, it cannot be used.
        if (driver == "pymysql" and (url.host, url.port) in _NO_TLS
                and not any(key.startswith("ssl") for key in cparams)):  # fmt: skip
            cparams["ssl_disabled"] = True

    @classmethod
    def empty(cls, connection: Connection, keep: set[str]) -> None:
        rows = connection.exec_driver_sql(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_TYPE DESC"
        ).all()  # views first
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        try:
            for name, kind in rows:
                verb = "VIEW" if kind == "VIEW" else "TABLE"
                connection.exec_driver_sql(f"DROP {verb} IF EXISTS `{name}`")
        finally:
            connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


class MySQLLocks(ServerLocks):
    def session_id(self, connection: Connection) -> object:
        return connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()

    def blockers(self, watcher: Connection, session: object) -> list[str]:
        """While the migration waits for a lock, the sessions with a transaction open.

        MySQL and MariaDB do not say who holds a metadata lock (what DDL waits
        for) without extra instrumentation; those sessions are the candidates,
        oldest first.
        """
        if not watcher.execute(_MYSQL_WAITING, {"pid": session}).scalar():
            return []
        return [
            f"connection {r.id} ({r.user}@{r.host}, transaction open {r.open_for} s, "
            f"query: {r.query!r})"
            for r in watcher.execute(_MYSQL_OPEN, {"pid": session})
        ]

    def _key(self) -> str:
        """Lock names are server-wide, so the name carries the database's."""
        return f"migrasafe:{self.url.database or ''}"[:64]

    def held(self, connection: Connection) -> bool | None:
        return bool(connection.scalar(sa.text("SELECT IS_USED_LOCK(:k) IS NOT NULL"),
                                      {"k": self._key()}))  # fmt: skip

    def lock(self) -> Lock | None:
        """``GET_LOCK`` on a connection of its own: the server drops it when that session ends."""
        key = self._key()
        # Autocommit: each check (before each DDL statement: see deploy.migrate) is one
        # round trip, with no COMMIT after it.
        engine, connection = self.sessions.own_session(isolation_level="AUTOCOMMIT")

        def scalar(sql: str) -> Any:
            return connection.scalar(sa.text(sql), {"k": key})

        def holder() -> str:
            row = connection.execute(
                sa.text("SELECT ID, USER, HOST, TIME FROM information_schema.PROCESSLIST "
                        "WHERE ID = IS_USED_LOCK(:k)"), {"k": key},
            ).first()  # fmt: skip
            if row is None:
                return "another session"
            return f"connection {row.ID} ({row.USER}@{row.HOST}, for {row.TIME} s)"

        def release(acquired: bool) -> None:
            try:
                if acquired:
                    scalar("SELECT RELEASE_LOCK(:k)")
            finally:
                connection.close()
                engine.dispose()

        def alive() -> bool:
            try:
                return bool(scalar("SELECT IS_USED_LOCK(:k) = CONNECTION_ID()"))
            except sa_exc.DBAPIError:
                return False

        return Lock(lambda: scalar("SELECT GET_LOCK(:k, 0)") == 1, holder, release, alive)

    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        if lock_timeout is not None:  # metadata locks (DDL) and row locks (InnoDB)
            seconds = max(1, math.ceil(lock_timeout))
            connection.exec_driver_sql(
                f"SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"
            )
        if statement_timeout is not None:
            if getattr(connection.dialect, "is_mariadb", False):
                connection.exec_driver_sql(f"SET SESSION max_statement_time = {statement_timeout}")
            else:
                milliseconds = int(statement_timeout * 1000)
                connection.exec_driver_sql(f"SET SESSION max_execution_time = {milliseconds}")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        # 1205 lock wait timeout exceeded, 1213 deadlock found
        args: tuple[Any, ...] = tuple(getattr(getattr(exc, "orig", exc), "args", ()))
        return bool(args) and args[0] in (1205, 1213)
