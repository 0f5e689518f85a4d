"""Safe operations for revisions: the sequence that keeps the application running, per dialect.

Inside ``upgrade()`` / ``downgrade()`` of any Alembic revision::

    from migrasafe import safe_op

    def upgrade() -> None:
        safe_op.create_index("ix_books_title", "books", ["title"])

    def downgrade() -> None:
        safe_op.drop_index("ix_books_title", "books")

Each function does on PostgreSQL what lint recommends instead of the plain
operation (see :mod:`.postgresql`), the ``ALGORITHM``/``LOCK`` form on MySQL
and MariaDB (:mod:`.mysql`), and the plain Alembic operation elsewhere
(SQLite: in batch mode where it needs one, :mod:`.sqlite`). They run through
``alembic.op``: ``upgrade --sql`` renders them, and lint and verify see the
operations they perform.

Steps that must not run in a transaction (concurrent index builds,
validations, batches of a backfill on PostgreSQL) run in Alembic's
``autocommit_block()``, which first commits what the revision did before
them. If the revision fails after that, its version is not recorded and the
next ``upgrade`` runs it again: each operation then skips what is already
done (online; it reads the catalog) and drops the INVALID index a failed
concurrent build leaves, so a retry completes. Write the rest of such a
revision so that it can run twice too, or keep one safe operation per revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from migrasafe.safe_op.base import SafeOperations, not_null_check_name

__all__ = [
    "add_check",
    "add_column",
    "add_foreign_key",
    "add_unique",
    "create_index",
    "drop_column",
    "drop_constraint",
    "drop_index",
    "drop_not_null",
    "not_null_check_name",
    "rename_column_contract",
    "rename_column_expand",
    "set_not_null",
    "undo_rename_column_contract",
    "undo_rename_column_expand",
]


def _dialect() -> SafeOperations:
    """The current migration's dialect's operations."""
    context = op.get_context()
    name = context.dialect.name
    if name == "postgresql":
        from migrasafe.safe_op.postgresql import PostgreSQLSafeOperations

        return PostgreSQLSafeOperations(context)
    if name in ("mysql", "mariadb"):
        from migrasafe.safe_op.mysql import MySQLSafeOperations

        return MySQLSafeOperations(context)
    if name == "sqlite":
        from migrasafe.safe_op.sqlite import SQLiteSafeOperations

        return SQLiteSafeOperations(context)
    return SafeOperations(context)


def create_index(
    index_name: str,
    table_name: str,
    columns: Sequence[str | Any],
    *,
    schema: str | None = None,
    unique: bool = False,
    **kw: Any,
) -> None:
    """``op.create_index``, built without blocking writes.

    PostgreSQL: ``CREATE [UNIQUE] INDEX CONCURRENTLY`` in an autocommit
    block; an INVALID index of the same name (a failed earlier build) is
    dropped first, a valid one is kept (an earlier run built it).
    MySQL/MariaDB: ``... ALGORITHM=INPLACE LOCK=NONE``. ``kw`` as for
    ``op.create_index`` (``postgresql_where=``, ``postgresql_using=`` ...).
    Reverse: :func:`drop_index`.
    """
    _dialect().create_index(index_name, table_name, columns, schema=schema, unique=unique, **kw)


def drop_index(
    index_name: str, table_name: str | None = None, *, schema: str | None = None, **kw: Any
) -> None:
    """``op.drop_index``: ``DROP INDEX CONCURRENTLY`` on PostgreSQL (no ACCESS EXCLUSIVE lock),
    ``ALGORITHM=INPLACE LOCK=NONE`` on MySQL/MariaDB (which need ``table_name``)."""
    _dialect().drop_index(index_name, table_name, schema=schema, **kw)


def add_foreign_key(
    constraint_name: str,
    source_table: str,
    referent_table: str,
    local_cols: list[str],
    remote_cols: list[str],
    *,
    source_schema: str | None = None,
    referent_schema: str | None = None,
    **kw: Any,
) -> None:
    """``op.create_foreign_key``, the existing rows checked without blocking writes.

    PostgreSQL: ``ADD CONSTRAINT ... NOT VALID`` (a brief lock, no scan) in
    the revision's transaction, then ``VALIDATE CONSTRAINT`` in its own.
    SQLite: in batch mode. MySQL/MariaDB: the plain operation (no online form
    checks the rows). ``kw``: ``ondelete=``, ``onupdate=`` ...
    Reverse: ``drop_constraint(name, source_table, "foreignkey")``.
    """
    _dialect().add_foreign_key(
        constraint_name,
        source_table,
        referent_table,
        local_cols,
        remote_cols,
        source_schema=source_schema,
        referent_schema=referent_schema,
        **kw,
    )


def add_check(
    constraint_name: str,
    table_name: str,
    condition: str | sa.ColumnElement[bool],
    *,
    schema: str | None = None,
    **kw: Any,
) -> None:
    """``op.create_check_constraint``: NOT VALID, then VALIDATE, on PostgreSQL (as
    :func:`add_foreign_key`); batch mode on SQLite. Reverse:
    ``drop_constraint(name, table_name, "check")``."""
    _dialect().add_check(constraint_name, table_name, condition, schema=schema, **kw)


def add_unique(
    constraint_name: str, table_name: str, columns: list[str], *, schema: str | None = None
) -> None:
    """``op.create_unique_constraint``, its index built without blocking writes.

    PostgreSQL: :func:`create_index` (unique, concurrently, a failed attempt's
    INVALID index dropped), then ``ADD CONSTRAINT name UNIQUE USING INDEX
    name`` (catalog only). MySQL/MariaDB: a unique index built
    ``ALGORITHM=INPLACE LOCK=NONE``. SQLite: batch mode. Reverse:
    ``drop_constraint(name, table_name, "unique")``.
    """
    _dialect().add_unique(constraint_name, table_name, columns, schema=schema)


def drop_constraint(
    constraint_name: str, table_name: str, type_: str | None = None, *, schema: str | None = None
) -> None:
    """``op.drop_constraint`` (batch mode on SQLite): the reverse of :func:`add_foreign_key`,
    :func:`add_check` and :func:`add_unique`."""
    _dialect().drop_constraint(constraint_name, table_name, type_, schema=schema)


def set_not_null(
    table_name: str,
    column_name: str,
    *,
    schema: str | None = None,
    existing_type: Any = None,
    existing_server_default: Any = None,
) -> None:
    """Make a column NOT NULL without a long lock; fails, changing nothing, on a NULL.

    PostgreSQL: ``CHECK (column IS NOT NULL) NOT VALID``, ``VALIDATE`` in its
    own transaction, ``SET NOT NULL`` (12+ uses the validated check instead
    of scanning), then the check is dropped. MySQL/MariaDB: ``MODIFY ...
    NOT NULL, ALGORITHM=INPLACE, LOCK=NONE`` (the column's type and default
    are read back online; offline give ``existing_type``). SQLite: batch
    mode. Reverse: :func:`drop_not_null`.
    """
    _dialect().set_not_null(
        table_name,
        column_name,
        schema=schema,
        existing_type=existing_type,
        existing_server_default=existing_server_default,
    )


def drop_not_null(
    table_name: str,
    column_name: str,
    *,
    schema: str | None = None,
    existing_type: Any = None,
    existing_server_default: Any = None,
) -> None:
    """The reverse of :func:`set_not_null` (catalog only on PostgreSQL)."""
    _dialect().drop_not_null(
        table_name,
        column_name,
        schema=schema,
        existing_type=existing_type,
        existing_server_default=existing_server_default,
    )


def add_column(
    table_name: str,
    column: sa.Column[Any],
    *,
    schema: str | None = None,
    backfill_with: Any = None,
    key: str = "id",
    batch_size: int = 10_000,
) -> None:
    """``op.add_column`` for a column whose default must be computed for every existing row.

    Adds the column nullable and without a default (catalog only), sets its
    ``server_default`` (rows inserted from then on get it), fills the
    existing rows in batches of ``key`` with :func:`migrasafe.backfill.backfill`
    (``backfill_with``, a value or SQL expression, defaults to the server
    default's expression; on PostgreSQL and MySQL each batch commits on its
    own), then, for a ``nullable=False`` column, :func:`set_not_null`. A
    column with neither default nor ``backfill_with`` is added plainly.
    Reverse: :func:`drop_column`.
    """
    _dialect().add_column(
        table_name,
        column,
        schema=schema,
        backfill_with=backfill_with,
        key=key,
        batch_size=batch_size,
    )


def drop_column(table_name: str, column_name: str, *, schema: str | None = None) -> None:
    """``op.drop_column``: the reverse of :func:`add_column`."""
    _dialect().drop_column(table_name, column_name, schema=schema)


# -- a rename in two phases ------------------------------------------------------------------


def rename_column_expand(
    table_name: str,
    column_name: str,
    new_column_name: str,
    type_: Any,
    *,
    schema: str | None = None,
    to_new: str = "{value}",
    to_old: str = "{value}",
    key: str = "id",
    batch_size: int = 10_000,
) -> None:
    """The expand half of renaming ``column_name`` to ``new_column_name`` (or changing its
    type: ``type_`` is the new column's, ``to_new``/``to_old`` SQL that converts ``{value}``).

    Adds the new column (nullable), installs triggers that copy each write of
    either column into the other, so the release still running (old name) and
    the new one (new name) both work, then fills the new column for the
    existing rows in batches of ``key``. Declare the revision
    ``phase = "expand"``; the rename ends with :func:`rename_column_contract`.
    Reverse: :func:`undo_rename_column_expand`.
    """
    _add_synced(table_name, column_name, new_column_name, type_, schema=schema, to_new=to_new,
                to_old=to_old, key=key, batch_size=batch_size, filling=new_column_name)  # fmt: skip


def undo_rename_column_expand(
    table_name: str, column_name: str, new_column_name: str, *, schema: str | None = None
) -> None:
    """The reverse of :func:`rename_column_expand`: the triggers and the new column gone."""
    from migrasafe.safe_op import rename

    operations = _dialect()
    rename.unsync(operations, table_name, column_name, new_column_name, schema=schema)
    operations.drop_column(table_name, new_column_name, schema=schema)


def rename_column_contract(
    table_name: str, column_name: str, new_column_name: str, *, schema: str | None = None
) -> None:
    """The contract half: once no release uses ``column_name``, the triggers and the old
    column go. Declare the revision ``phase = "contract"``. Reverse:
    :func:`undo_rename_column_contract`."""
    from migrasafe.safe_op import rename

    operations = _dialect()
    rename.unsync(operations, table_name, column_name, new_column_name, schema=schema)
    operations.drop_column(table_name, column_name, schema=schema)


def undo_rename_column_contract(
    table_name: str,
    column_name: str,
    new_column_name: str,
    type_: Any,
    *,
    schema: str | None = None,
    to_new: str = "{value}",
    to_old: str = "{value}",
    key: str = "id",
    batch_size: int = 10_000,
) -> None:
    """The reverse of :func:`rename_column_contract`: the old column back (``type_``, nullable),
    filled from the new one, and the triggers again, as after the expand half."""
    _add_synced(table_name, column_name, new_column_name, type_, schema=schema, to_new=to_new,
                to_old=to_old, key=key, batch_size=batch_size, filling=column_name)  # fmt: skip


def _add_synced(
    table_name: str, old: str, new: str, type_: Any, *, schema: str | None, to_new: str,
    to_old: str, key: str, batch_size: int, filling: str,
) -> None:  # fmt: skip
    """The column ``filling`` (the new one on expand, the old one on undoing contract) added
    if it is not there yet (a retry), the triggers installed, then it filled from the other."""
    from migrasafe.safe_op import rename

    operations = _dialect()
    if not operations.column_exists(table_name, filling, schema):
        operations.add_nullable_column(table_name, sa.Column(filling, type_), schema=schema)
    rename.sync(operations, table_name, old, new, schema=schema, to_new=to_new, to_old=to_old)
    source, convert = (old, to_new) if filling == new else (new, to_old)
    rename.fill(operations, table_name, source, filling, schema=schema, convert=convert,
                key=key, batch_size=batch_size)  # fmt: skip
