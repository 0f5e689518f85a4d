"""A column renamed in two phases: both names kept in step by triggers while both releases run.

Expand adds the new column, installs triggers that copy every write to
either column into the other (inserts and updates, from the old release or
the new), and fills the new column for the rows already there in batches.
Contract, deployed once no release uses the old name, drops the triggers
and the old column. Each has its reverse for ``downgrade()``.

The triggers are per dialect: a PL/pgSQL ``BEFORE`` trigger on PostgreSQL,
``BEFORE INSERT``/``BEFORE UPDATE`` triggers on MySQL and MariaDB, and
``AFTER`` triggers that update the row on SQLite (whose triggers cannot
assign ``NEW``). An insert that sets both columns takes the old one's value
for both (only a tool that knows both names writes both; each release writes
its own), so the two never disagree; an update of both keeps what it set.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from migrasafe.safe_op.base import SafeOperations, short_name


def trigger_name(table: str, old: str, new: str) -> str:
    return short_name(f"migrasafe_sync_{table}_{old}_{new}")


def _sql(statement: str) -> None:
    op.execute(sa.text(statement))


def _postgresql(ops: SafeOperations, table: str, old: str, new: str, schema: str | None,
                to_new: str, to_old: str) -> None:  # fmt: skip
    name = trigger_name(table, old, new)
    q = ops.quote
    o, n = q(old), q(new)
    function = f"{q(schema)}.{q(name)}" if schema else q(name)
    _sql(f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.{o} IS NOT NULL THEN NEW.{n} := {to_new.format(value=f"NEW.{o}")};
    ELSIF NEW.{n} IS NOT NULL THEN NEW.{o} := {to_old.format(value=f"NEW.{n}")};
    END IF;
  ELSIF NEW.{o} IS DISTINCT FROM OLD.{o} AND NEW.{n} IS NOT DISTINCT FROM OLD.{n} THEN
    NEW.{n} := {to_new.format(value=f"NEW.{o}")};
  ELSIF NEW.{n} IS DISTINCT FROM OLD.{n} AND NEW.{o} IS NOT DISTINCT FROM OLD.{o} THEN
    NEW.{o} := {to_old.format(value=f"NEW.{n}")};
  END IF;
  RETURN NEW;
END
$body$""")
    _sql(f"DROP TRIGGER IF EXISTS {q(name)} ON {ops.table_sql(table, schema)}")
    _sql(f"CREATE TRIGGER {q(name)} BEFORE INSERT OR UPDATE ON {ops.table_sql(table, schema)} "
         f"FOR EACH ROW EXECUTE PROCEDURE {function}()")  # fmt: skip


def _mysql(ops: SafeOperations, table: str, old: str, new: str, schema: str | None,
           to_new: str, to_old: str) -> None:  # fmt: skip
    name = trigger_name(table, old, new)
    q = ops.quote
    o, n = q(old), q(new)
    target = ops.table_sql(table, schema)
    for suffix in ("ins", "upd"):
        _sql(f"DROP TRIGGER IF EXISTS {q(short_name(f'{name}_{suffix}'))}")
    _sql(f"CREATE TRIGGER {q(short_name(f'{name}_ins'))} BEFORE INSERT ON {target} FOR EACH ROW "
         f"BEGIN IF NEW.{o} IS NOT NULL THEN "
         f"SET NEW.{n} = {to_new.format(value=f'NEW.{o}')}; "
         f"ELSEIF NEW.{n} IS NOT NULL THEN "
         f"SET NEW.{o} = {to_old.format(value=f'NEW.{n}')}; END IF; END")  # fmt: skip
    _sql(f"CREATE TRIGGER {q(short_name(f'{name}_upd'))} BEFORE UPDATE ON {target} FOR EACH ROW "
         f"BEGIN IF NOT (NEW.{o} <=> OLD.{o}) AND (NEW.{n} <=> OLD.{n}) THEN "
         f"SET NEW.{n} = {to_new.format(value=f'NEW.{o}')}; "
         f"ELSEIF NOT (NEW.{n} <=> OLD.{n}) AND (NEW.{o} <=> OLD.{o}) THEN "
         f"SET NEW.{o} = {to_old.format(value=f'NEW.{n}')}; END IF; END")  # fmt: skip


def _sqlite(ops: SafeOperations, table: str, old: str, new: str, schema: str | None,
            to_new: str, to_old: str) -> None:  # fmt: skip
    name = trigger_name(table, old, new)
    q = ops.quote
    o, n, t = q(old), q(new), ops.table_sql(table, schema)
    for suffix in ("ins", "old", "new"):
        _sql(f"DROP TRIGGER IF EXISTS {q(short_name(f'{name}_{suffix}'))}")
    _sql(f"CREATE TRIGGER {q(short_name(f'{name}_ins'))} AFTER INSERT ON {t} BEGIN "
         f"UPDATE {t} SET {n} = CASE WHEN NEW.{o} IS NOT NULL "
         f"THEN {to_new.format(value=f'NEW.{o}')} ELSE NEW.{n} END, "
         f"{o} = COALESCE(NEW.{o}, {to_old.format(value=f'NEW.{n}')}) "
         f"WHERE rowid = NEW.rowid; END")  # fmt: skip
    _sql(f"CREATE TRIGGER {q(short_name(f'{name}_old'))} AFTER UPDATE OF {o} ON {t} "
         f"WHEN NEW.{o} IS NOT OLD.{o} AND NEW.{n} IS OLD.{n} BEGIN "
         f"UPDATE {t} SET {n} = {to_new.format(value=f'NEW.{o}')} "
         "WHERE rowid = NEW.rowid; END")  # fmt: skip
    _sql(f"CREATE TRIGGER {q(short_name(f'{name}_new'))} AFTER UPDATE OF {n} ON {t} "
         f"WHEN NEW.{n} IS NOT OLD.{n} AND NEW.{o} IS OLD.{o} BEGIN "
         f"UPDATE {t} SET {o} = {to_old.format(value=f'NEW.{n}')} "
         "WHERE rowid = NEW.rowid; END")  # fmt: skip


def sync(ops: SafeOperations, table: str, old: str, new: str, *, schema: str | None,
         to_new: str = "{value}", to_old: str = "{value}") -> None:  # fmt: skip
    """Triggers that keep ``old`` and ``new`` in step on every write."""
    dialect = ops.context.dialect.name
    install = {"postgresql": _postgresql, "sqlite": _sqlite}.get(dialect, _mysql)
    if dialect not in ("postgresql", "sqlite", "mysql", "mariadb"):
        raise NotImplementedError(f"safe_op.rename_column_expand: no triggers for {dialect}")
    install(ops, table, old, new, schema, to_new, to_old)


def unsync(ops: SafeOperations, table: str, old: str, new: str, *, schema: str | None) -> None:
    """The triggers of :func:`sync` gone (a no-op for those already gone)."""
    name = trigger_name(table, old, new)
    q = ops.quote
    dialect = ops.context.dialect.name
    if dialect == "postgresql":
        function = f"{q(schema)}.{q(name)}" if schema else q(name)
        _sql(f"DROP TRIGGER IF EXISTS {q(name)} ON {ops.table_sql(table, schema)}")
        _sql(f"DROP FUNCTION IF EXISTS {function}()")
        return
    suffixes = ("ins", "old", "new") if dialect == "sqlite" else ("ins", "upd")
    for suffix in suffixes:
        _sql(f"DROP TRIGGER IF EXISTS {q(short_name(f'{name}_{suffix}'))}")


def fill(ops: SafeOperations, table: str, source: str, target: str, *, schema: str | None,
         convert: str, key: str, batch_size: int) -> None:  # fmt: skip
    """``target`` filled from ``source`` where it is still NULL, in batches of ``key``."""
    clause = sa.table(table, sa.column(key), sa.column(source), sa.column(target), schema=schema)
    value: Any = sa.literal_column(convert.format(value=ops.quote(source)))
    ops.backfill(clause, {target: value}, clause.c[target].is_(None), key, batch_size)
