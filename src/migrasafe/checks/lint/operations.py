"""The operations a revision performs, recorded without a database.

Each revision's ``upgrade()`` runs against an Alembic ``Operations`` whose
``invoke`` records the operation object (``AddColumnOp``, ``CreateIndexOp``
...) instead of emitting SQL, in an offline ``MigrationContext`` for the
dialect being linted. Batch blocks are recorded op by op, marked as batched,
without reflecting anything. Each operation keeps the line of the script
that asked for it, for findings and ``# migrasafe: ignore[...]`` comments.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from alembic.operations import BatchOperations, Operations
from alembic.operations import ops as alembic_ops
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import Script


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
    script: Script
    operations: list[Recorded] = field(default_factory=list)
    error: str | None = None  # why recording stopped early (the script needs a database)

    @property
    def path(self) -> str:
        return str(self.script.path)


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


def _recorder(context: MigrationContext, record: RevisionOperations) -> Operations:
    """An ``Operations`` that records instead of running.

    Its methods are replaced on the instance, not in a subclass: Alembic
    installs the ``op`` proxy per class, and only for ``Operations`` itself.
    """
    operations = Operations(context)
    inside = {"autocommit": False}

    def invoke(operation: Any) -> Any:
        line, autocommit = _caller_line(record.path), inside["autocommit"]
        read = _read_sql(operation, context.dialect.name)
        record.operations.append(
            Recorded(operation, line, autocommit=autocommit, read_sql=read is not None)
        )
        record.operations += [Recorded(found, line, autocommit=autocommit, from_sql=True)
                              for found in read or ()]  # fmt: skip
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
    """The operations an ``op.execute`` of SQL text performs (None: not SQL text, or unread)."""
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
        self._record.operations.append(Recorded(operation, line, batch=True))
        return None


def record_upgrade(
    script: Script, dialect: str, environment: EnvironmentContext | None = None
) -> RevisionOperations:
    """The operations ``script.upgrade()`` performs on ``dialect``, in order.

    ``environment`` (the project's config and scripts) lets a script read
    ``op.get_context().config``, as many do, as it would under Alembic.
    """
    record = RevisionOperations(script)
    context = MigrationContext.configure(
        dialect_name=dialect, environment_context=environment,
        opts={"as_sql": True, "output_buffer": io.StringIO()},
    )  # fmt: skip
    upgrade = getattr(script.module, "upgrade", None)
    if upgrade is None:
        return record
    recorder = _recorder(context, record)
    recorder._install_proxy()  # what Operations.context() does
    try:
        upgrade()
    except Exception as exc:  # a script that reads the database cannot run offline
        record.error = f"{type(exc).__name__}: {exc}"
    finally:
        recorder._remove_proxy()
    return record
