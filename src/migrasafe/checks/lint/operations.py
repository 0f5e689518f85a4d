"""The operations a revision performs, recorded without a database.

Revisions are loaded and run in offline mode, as ``alembic upgrade --sql``
runs them: ``alembic.context`` is a real ``EnvironmentContext`` (the
project's config and scripts, ``as_sql=True``) whose ``MigrationContext`` is
configured for the dialect being linted, so ``context.get_context()``,
``context.is_offline_mode()``, ``context.config`` and ``op.get_context()``
answer as under Alembic, at import and in ``upgrade()``. Each revision's
``upgrade()`` runs against an Alembic ``Operations`` whose ``invoke``
records the operation object (``AddColumnOp``, ``CreateIndexOp`` ...)
instead of emitting SQL. Batch blocks are recorded op by op, marked as
batched, without reflecting anything. Each operation keeps the line of the
script that asked for it, for findings and ``# migrasafe: ignore[...]``
comments.

No revision reaches a database: ``op.get_bind()`` is Alembic's offline
connection (what it is sent is recorded as SQL, and reading a result is an
error that says so), and any engine the code makes refuses to connect.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import BatchOperations, Operations
from alembic.operations import ops as alembic_ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine.mock import MockConnection

from migrasafe.checks.lint.sql import Piece, Statement
from migrasafe.db.urls import redact


@dataclass(frozen=True)
class Recorded:
    """One operation, where it was asked for, and whether inside a batch block."""

    operation: alembic_ops.MigrateOperation
    line: int | None
    batch: bool = False
    autocommit: bool = False  # inside ``op.get_context().autocommit_block()``
    # An op.execute() whose SQL was read into the operations that follow it (see sqlops),
    # and those operations: rules judge them as if written with op.*.
    read_sql: bool = False
    from_sql: bool = False


@dataclass
class RevisionOperations:
    """What one migration (a revision, or a .sql file) performs, in order."""

    path: str
    operations: list[Recorded] = field(default_factory=list)
    error: str | None = None  # why recording stopped early (the script needs a database)
    error_line: int | None = None  # where, in the script
    dialect: str = "postgresql"  # what its SQL is read as

    def sql(self, operation: alembic_ops.ExecuteSQLOp, line: int | None, *,
            batch: bool = False, autocommit: bool = False) -> None:  # fmt: skip
        """Record SQL sent to the database, and the operations read from it (see sql/).

        Read operations are never ``batch``: SQL runs as written, not through
        batch mode's table rebuild.
        """
        read = _read_sql(operation, self.dialect)
        self.operations.append(Recorded(operation, line, batch=batch, autocommit=autocommit,
                                        read_sql=read is not None))  # fmt: skip
        self.operations += [Recorded(found, line, autocommit=autocommit, from_sql=True)
                            for found in read or ()]  # fmt: skip


def _caller_line(path: str) -> int | None:
    """The line of ``path`` (the revision file) on the current call stack."""
    frame = sys._getframe(2)
    target = Path(path).resolve()
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == path or Path(filename).resolve() == target:
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


_QUERY = re.compile(r"^\s*(SELECT|SHOW)\b", re.I)


class NeedsDatabase(Exception):
    """Revision code asked for something only a database has (lint runs it offline)."""


class _OfflineResult:
    """What ``op.get_bind().execute()`` returns offline: reading it says why it cannot be read."""

    def __init__(self, line: int | None) -> None:
        self._line = line

    def _refuse(self) -> NeedsDatabase:
        at = f" (line {self._line})" if self._line else ""
        return NeedsDatabase(f"it reads the result of a statement sent with op.get_bind(){at}, "
                             "which needs a database to answer")  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        raise self._refuse()

    def __iter__(self) -> Iterator[Any]:
        raise self._refuse()


class _OfflineConnection(MockConnection):
    """Alembic's offline connection, which also takes ``commit()`` and ``rollback()``."""

    def __init__(self, dialect: Any, execute: Any, ended: Any) -> None:
        super().__init__(dialect, execute)
        self._ended = ended

    def commit(self) -> None:
        self._ended("COMMIT")

    def rollback(self) -> None:
        self._ended("ROLLBACK")

    def close(self) -> None:
        """``Inspector.from_engine(op.get_bind().engine)`` closes what it opened: nothing
        here (inspecting it then says it needs a database)."""


class Offline:
    """Revisions loaded and run as ``alembic upgrade --sql`` does, each upgrade() recorded.

    Use it as a context manager: while inside, ``alembic.context`` is the
    offline environment, and no engine connects (:class:`NeedsDatabase`).
    """

    def __init__(self, config: Config, script: ScriptDirectory, dialect: str) -> None:
        self.dialect = dialect
        self.environment = EnvironmentContext(config, script, as_sql=True)
        self._record: RevisionOperations | None = None
        self._stack = ExitStack()

    def __enter__(self) -> Offline:
        with ExitStack() as stack:
            stack.enter_context(self.environment)
            stack.enter_context(_no_connections())
            self._configure()
            self._stack = stack.pop_all()
        return self

    def _configure(self) -> None:
        self.environment.configure(dialect_name=self.dialect, output_buffer=io.StringIO(),
                                   literal_binds=True)  # fmt: skip
        context = self.environment.get_context()
        # op.get_bind() and context.execute() send to this: what is sent is recorded as SQL.
        bind = _OfflineConnection(context.dialect, self._sent, self._ended)
        context.connection = context.impl.connection = bind  # type: ignore[assignment]
        context.execute = lambda sql, execution_options=None: self._sent(sql)  # type: ignore[method-assign,assignment]
        self.context = context

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _sent(self, statement: Any, *_args: Any, **_kw: Any) -> _OfflineResult:
        record = self._record
        line = _caller_line(record.path) if record is not None else None
        text = statement if isinstance(statement, str) else getattr(statement, "text", "")
        if isinstance(statement, sa.Select) or _QUERY.match(str(text)):
            return _OfflineResult(line)  # a query, to read its rows: nothing is changed
        if record is not None:
            if isinstance(statement, sa.schema.ExecutableDDLElement):
                # metadata.create_all(op.get_bind()), Enum.create(...): its SQL, to be read
                try:
                    statement = str(statement.compile(dialect=self.context.dialect))
                except Exception:  # a construct the dialect cannot render: judged as it is
                    logging.getLogger(__name__).debug("cannot compile %r", statement)
            record.sql(alembic_ops.ExecuteSQLOp(statement), line)
        return _OfflineResult(line)

    def _ended(self, how: str) -> None:
        """``op.get_bind().commit()`` / ``.rollback()``: sent, as COMMIT or ROLLBACK."""
        record = self._record
        if record is not None:
            line = _caller_line(record.path)
            record.operations.append(Recorded(Statement("transaction", how), line))

    def record(self, script: Script, function: str = "upgrade") -> RevisionOperations:
        """The operations ``script.upgrade()`` (or ``function``) performs, in order."""
        record = RevisionOperations(str(script.path), dialect=self.dialect)
        upgrade = getattr(script.module, function, None)
        if upgrade is None:
            return record
        recorder = _recorder(self.context, record)
        recorder._install_proxy()  # what Operations.context() does
        self._record = record
        try:
            upgrade()
        except Exception as exc:  # a script that reads the database cannot run offline
            if isinstance(exc, sa.exc.NoInspectionAvailable):
                exc = NeedsDatabase(
                    "it inspects the database (sqlalchemy.inspect(op.get_bind())),"
                    " which needs one to answer"
                ).with_traceback(exc.__traceback__)
            record.error = str(exc) if isinstance(exc, NeedsDatabase) else (
                f"{type(exc).__name__}: {exc}")  # fmt: skip
            record.error_line = _failing_line(exc, record.path)
        finally:
            self._record = None
            recorder._remove_proxy()
        return record


def _failing_line(exc: BaseException, path: str) -> int | None:
    """The innermost line of ``path`` in the traceback of ``exc``."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def record_sql(path: str, pieces: Iterable[Piece], dialect: str) -> RevisionOperations:
    """The operations a SQL migration file performs, statement by statement.

    Outside ``BEGIN`` ... ``COMMIT`` a statement runs on its own (autocommit),
    as ``psql -f`` runs a file; the transaction statements themselves are the
    file's to send.
    """
    record = RevisionOperations(path, dialect=dialect)
    inside = False
    for piece in pieces:
        first = len(record.operations)
        record.sql(alembic_ops.ExecuteSQLOp(piece.text), piece.line, autocommit=not inside)
        for n, r in enumerate(record.operations[first:], first):
            op = r.operation
            if isinstance(op, Statement) and op.kind == "transaction":
                inside = op.table_name in ("BEGIN", "START TRANSACTION")
                record.operations[n] = dataclasses.replace(r, autocommit=True)
    return record


@contextmanager
def _no_connections() -> Iterator[None]:
    """While inside, no engine connects: the attempt is a :class:`NeedsDatabase` error."""
    original = sa.engine.Engine.raw_connection

    def refuse(engine: sa.engine.Engine) -> Any:
        raise NeedsDatabase(f"it connects to {redact(engine.url)}, and lint never connects to a "
                            "database")  # fmt: skip

    sa.engine.Engine.raw_connection = refuse  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        sa.engine.Engine.raw_connection = original  # type: ignore[method-assign]


def _recorder(context: MigrationContext, record: RevisionOperations) -> Operations:
    """An ``Operations`` that records instead of running.

    Its methods are replaced on the instance, not in a subclass: Alembic
    installs the ``op`` proxy per class, and only for ``Operations`` itself.
    """
    operations = Operations(context)
    inside = {"autocommit": False}

    def invoke(operation: Any) -> Any:
        line, autocommit = _caller_line(record.path), inside["autocommit"]
        if isinstance(operation, alembic_ops.ExecuteSQLOp):
            record.sql(operation, line, autocommit=autocommit)
        else:
            record.operations.append(Recorded(operation, line, autocommit=autocommit))
        return None

    @contextmanager
    def autocommit_block() -> Iterator[MigrationContext]:
        """Note what runs outside the migration's transaction (e.g. CONCURRENTLY)."""
        inside["autocommit"] = True
        try:
            yield context
        finally:
            inside["autocommit"] = False

    context.autocommit_block = autocommit_block  # type: ignore[method-assign,assignment]

    @contextmanager
    def batch_alter_table(
        table_name: str, schema: str | None = None, **_kw: Any
    ) -> Iterator[BatchOperations]:
        impl = SimpleNamespace(table_name=table_name, schema=schema)
        yield _BatchRecorder(context, impl, record)

    operations.invoke = invoke  # type: ignore[method-assign]
    operations.batch_alter_table = batch_alter_table  # type: ignore[method-assign,assignment]
    return operations


def _read_sql(operation: Any, dialect: str) -> list[alembic_ops.MigrateOperation] | None:
    """The operations an execute of SQL text performs (None: not SQL text, or unread)."""
    if not isinstance(operation, alembic_ops.ExecuteSQLOp):
        return None
    sql = operation.sqltext
    text = sql if isinstance(sql, str) else getattr(sql, "text", None)
    if not isinstance(text, str):
        return None  # a SQLAlchemy construct (update(), insert()): data, judged as such
    from migrasafe.checks.lint.sql import operations_in

    return operations_in(text, dialect)


class _BatchRecorder(BatchOperations):
    def __init__(self, context: MigrationContext, impl: Any, record: RevisionOperations) -> None:
        super().__init__(context, impl=impl)
        self._record = record

    def invoke(self, operation: Any) -> Any:
        line = _caller_line(self._record.path)
        if isinstance(operation, alembic_ops.ExecuteSQLOp):  # batch_op.execute(): runs as is
            self._record.sql(operation, line, batch=True)
        else:
            self._record.operations.append(Recorded(operation, line, batch=True))
        return None
