"""PostgreSQL: each operation as a sequence that never blocks the application's writes for long.

- Indexes are built and dropped ``CONCURRENTLY``, inside Alembic's
  ``autocommit_block()`` (they cannot run in a transaction). A failed
  concurrent build leaves an INVALID index behind; the next attempt drops it
  first, so a retry works.
- Foreign keys and CHECK constraints are added ``NOT VALID`` (a brief lock,
  no scan) in the revision's transaction, then validated with ``VALIDATE
  CONSTRAINT`` in a transaction of their own, which lets writes through.
- ``SET NOT NULL`` follows a validated ``CHECK (column IS NOT NULL)``:
  PostgreSQL 12+ trusts it and skips the full-table scan; the CHECK is dropped.
- A unique constraint is a unique index built concurrently, then attached with
  ``ADD CONSTRAINT ... UNIQUE USING INDEX`` (catalog only).

Online, each step reads the catalog first and skips what an earlier, interrupted
run already did: the revision's version is not bumped until it completes, so
the next ``upgrade`` runs it again. Offline (``--sql``), every step is rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op

from migrasafe.safe_op.base import SafeOperations, not_null_check_name

_INDEX_VALID = sa.text(
    "SELECT i.indisvalid FROM pg_catalog.pg_index i"
    " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relname = :name AND n.nspname = coalesce(:schema, current_schema())"
)
_CONSTRAINT_VALIDATED = sa.text(
    "SELECT con.convalidated FROM pg_catalog.pg_constraint con"
    " JOIN pg_catalog.pg_class t ON t.oid = con.conrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
    " WHERE con.conname = :name AND t.relname = :table"
    " AND n.nspname = coalesce(:schema, current_schema())"
)
_NOT_NULL = sa.text(
    "SELECT a.attnotnull FROM pg_catalog.pg_attribute a"
    " JOIN pg_catalog.pg_class t ON t.oid = a.attrelid"
    " JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace"
    " WHERE t.relname = :table AND a.attname = :column AND NOT a.attisdropped"
    " AND n.nspname = coalesce(:schema, current_schema())"
)


class PostgreSQLSafeOperations(SafeOperations):
    commit_each_batch = True

    def _scalar(self, query: sa.TextClause, **params: Any) -> Any:
        """One catalog value (None: no such object, or offline, where nothing is known)."""
        if self.offline:
            return None
        return op.get_bind().execute(query, params).scalar()

    @contextmanager
    def _undone_on_failure(self, undo: Callable[[], None]) -> Iterator[None]:
        """Run ``undo`` when the block fails (online), then let the failure through.

        What ran before the block is committed (autocommit_block): without this a
        failed step would leave it in place, unlike a failed plain operation.
        """
        try:
            yield
        except Exception as exc:
            if not self.offline:
                try:
                    undo()
                except Exception as cleanup:  # e.g. the same lock_timeout again
                    exc.add_note(f"migrasafe.safe_op could not undo the step: {cleanup}")
            raise

    # -- indexes ---------------------------------------------------------------------

    def create_index(
        self,
        name: str,
        table: str,
        columns: Sequence[Any],
        *,
        schema: str | None,
        unique: bool,
        **kw: Any,
    ) -> None:
        kw.pop("postgresql_concurrently", None)  # it is, whatever the caller said
        with self.context.autocommit_block():
            valid = self._scalar(_INDEX_VALID, name=name, schema=schema)
            if valid:
                return  # built by an earlier run of this revision that stopped later on
            if valid is False:  # the leftover of a failed concurrent build: unusable
                op.drop_index(name, table_name=table, schema=schema, postgresql_concurrently=True)
            with self._undone_on_failure(
                lambda: op.drop_index(
                    name,
                    table_name=table,
                    schema=schema,
                    postgresql_concurrently=True,
                    if_exists=True,
                )
            ):
                op.create_index(
                    name,
                    table,
                    list(columns),
                    schema=schema,
                    unique=unique,
                    postgresql_concurrently=True,
                    **kw,
                )

    def drop_index(self, name: str, table: str | None, *, schema: str | None, **kw: Any) -> None:
        with self.context.autocommit_block():
            op.drop_index(name, table_name=table, schema=schema, postgresql_concurrently=True, **kw)

    # -- constraints -----------------------------------------------------------------

    def _validated(self, name: str, table: str, schema: str | None) -> bool | None:
        found = self._scalar(_CONSTRAINT_VALIDATED, name=name, table=table, schema=schema)
        return None if found is None else bool(found)

    def _validate(self, name: str, table: str, schema: str | None) -> None:
        """VALIDATE CONSTRAINT in its own transaction: the ADD's lock is released first.

        A row that fails it: the NOT VALID constraint (committed, and enforced on new
        writes) is dropped again, so the failed revision leaves nothing behind.
        """
        with (
            self.context.autocommit_block(),
            self._undone_on_failure(lambda: op.drop_constraint(name, table, schema=schema)),
        ):
            op.execute(
                f"ALTER TABLE {self.table_sql(table, schema)} "
                f"VALIDATE CONSTRAINT {self.quote(name)}"
            )

    def add_foreign_key(
        self,
        name: str,
        source: str,
        referent: str,
        local: list[str],
        remote: list[str],
        *,
        source_schema: str | None,
        referent_schema: str | None,
        **kw: Any,
    ) -> None:
        validated = self._validated(name, source, source_schema)
        if validated is None:
            op.create_foreign_key(
                name,
                source,
                referent,
                local,
                remote,
                source_schema=source_schema,
                referent_schema=referent_schema,
                postgresql_not_valid=True,
                **kw,
            )
        if not validated:
            self._validate(name, source, source_schema)

    def add_check(
        self, name: str, table: str, condition: Any, *, schema: str | None, **kw: Any
    ) -> None:
        validated = self._validated(name, table, schema)
        if validated is None:
            op.create_check_constraint(
                name, table, condition, schema=schema, postgresql_not_valid=True, **kw
            )
        if not validated:
            self._validate(name, table, schema)

    def add_unique(self, name: str, table: str, columns: list[str], *, schema: str | None) -> None:
        if self._validated(name, table, schema) is not None:
            return  # attached by an earlier run
        self.create_index(name, table, columns, schema=schema, unique=True)
        op.execute(
            f"ALTER TABLE {self.table_sql(table, schema)} ADD CONSTRAINT "
            f"{self.quote(name)} UNIQUE USING INDEX {self.quote(name)}"
        )

    # -- columns ---------------------------------------------------------------------

    def set_not_null(
        self,
        table: str,
        column: str,
        *,
        schema: str | None,
        existing_type: Any,
        existing_server_default: Any = None,
    ) -> None:
        if self._scalar(_NOT_NULL, table=table, column=column, schema=schema):
            return  # NOT NULL already: an earlier run got that far
        check = not_null_check_name(table, column)
        self.add_check(check, table, sa.column(column).is_not(None), schema=schema)
        # PostgreSQL 12+ proves NOT NULL from the validated CHECK: no scan, a brief lock
        op.alter_column(
            table,
            column,
            nullable=False,
            existing_type=existing_type,
            existing_nullable=True,
            schema=schema,
        )
        op.drop_constraint(check, table, type_="check", schema=schema)
