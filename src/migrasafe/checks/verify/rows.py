"""Generated rows that the application could hold, for a reflected schema.

Values respect what the database declares: each column's type (length,
``Numeric`` precision and scale, enum labels, ARRAY, JSON, UUID, date and
time types), NOT NULL, UNIQUE (composite and partial ones too), foreign keys
and CHECK constraints (read by :mod:`.allowed`; values by :mod:`.values`). Tables are filled parents
first; a foreign key in a cycle (``users.team_id`` <-> ``teams.captain_id``)
is inserted NULL and set once both tables have rows, and set NULL again
before the tables are emptied.

``hints`` are the same tables as a later revision leaves them: a column that
revision casts to an enum, or makes NOT NULL, or constrains, gets values that
will survive it (see ``verify``'s retry of a revision that refused the rows).

A row the database still refuses is retried with new values, then left out
and counted: ``verify`` reports it, never silently.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql.ddl import sort_tables_and_constraints
from sqlalchemy.types import TypeEngine

from migrasafe.checks.verify.allowed import Allowed, allowed_values
from migrasafe.checks.verify.snapshot import DEFAULT, Namespaces, Schema
from migrasafe.checks.verify.tables import catalog_tables
from migrasafe.checks.verify.values import Values, python_type

_RETRIES = 3


@dataclass
class SeedReport:
    inserted: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)  # table -> the database's last refusal
    # table -> whose that refusal is: "check" (a CHECK verify cannot read), "function" (a
    # default or expression calling a function this database lacks), "verify" (a key, a
    # type's range, a length: what verify knows of, so its own failure)
    cause: dict[str, str] = field(default_factory=dict)


@dataclass
class _Plan:
    """What to generate for one table."""

    table: sa.Table
    allowed: dict[str, Allowed]
    unique: set[str]
    parents: dict[str, list[Any]]
    deferred: set[str]  # foreign-key columns of a cycle: NULL first, set afterwards
    hint: sa.Table | None = None
    key: str = ""  # the table's name in verify's reports (schema.name outside the default)
    # composite foreign keys: (the child's columns, the parent rows' values for them)
    composites: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]] = field(default_factory=list)
    # single-column foreign keys whose values must differ (the key, or unique): drawn from
    # the parents without replacement, the pool refilled for each seeding
    distinct: set[str] = field(default_factory=set)
    pools: dict[str, list[Any]] = field(default_factory=dict)
    seen: set[tuple[Any, ...]] = field(default_factory=set)  # primary keys given so far
    limits: dict[str, int] = field(default_factory=dict)  # column -> a child's shorter length

    def refill(self, rng: random.Random) -> None:
        self.pools = {name: rng.sample(self.parents[name], len(self.parents[name]))
                      for name in sorted(self.distinct) if name in self.parents}  # fmt: skip
        self.seen = set()


@contextmanager
def _undoable(connection: Connection) -> Iterator[None]:
    """A savepoint that the block's failure rolls back to.

    Not released when the block succeeds: it ends with the transaction, and
    releasing it would cost a round trip per table seeded.
    """
    connection.exec_driver_sql("SAVEPOINT migrasafe_seed")
    try:
        yield
    except sa_exc.DBAPIError:
        connection.exec_driver_sql("ROLLBACK TO SAVEPOINT migrasafe_seed")
        raise


def allowed_by_checks(table: sa.Table, dialect: str) -> dict[str, Allowed]:
    texts = sorted(
        str(c.sqltext) for c in table.constraints if isinstance(c, sa.CheckConstraint)
    )  # sorted: a table's constraints are a set, and the rows must not depend on its order
    return allowed_values(texts, dialect) if texts else {}


class Seeder(Values):
    """Fills tables with deterministic rows for a given seed."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows = rows
        self.rng = random.Random(seed)
        self.serial = 0
        self.types: dict[str, TypeEngine[Any]] = {}  # see catalog_tables

    def fill(
        self,
        connection: Connection,
        exclude: set[str],
        only: set[str] | None = None,
        hints: dict[str, sa.Table] | None = None,
        rows: int | None = None,
        where: Namespaces = DEFAULT,
        schema: Schema | None = None,
        empty: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> SeedReport:
        """Empty the tables (children first), then insert fresh rows (parents first).

        ``only`` limits this to some tables; the caller includes their
        foreign-key children, whose rows would otherwise point at deleted keys.
        ``rows=0`` only empties them. ``schema``: the tables as verify read
        them from the catalog, which saves reflecting them (see :mod:`.tables`).
        ``empty``: tables known to hold no row (just created): nothing to delete.
        """
        metadata = None
        if schema is not None:  # what verify read of them: no reflection, one query
            wanted = only if only is not None else schema.tables.keys()
            metadata = catalog_tables(connection, wanted, schema, where, self.types)
        if metadata is None:
            metadata = reflect(connection, exclude, only, where)
        # sorted: the same rows for a seed, whatever order the tables were asked for in
        chosen = sorted((t for t in metadata.tables.values()
                         if only is None or where.key(t.schema, t.name) in only),
                        key=lambda t: (t.schema or "", t.name))  # fmt: skip
        ordered, cyclic = _order(chosen)
        for table, columns in cyclic.items():  # break the cycles, then delete children first
            if where.key(table.schema, table.name) not in empty:
                connection.execute(table.update().values({c: None for c in columns}))
        for table in reversed(ordered):
            if where.key(table.schema, table.name) not in empty:
                connection.execute(table.delete())
        report = SeedReport()
        count = self.rows if rows is None else rows
        if count == 0:
            return report
        dialect = connection.dialect.name
        keys = {where.key(t.schema, t.name) for t in ordered}
        narrowest = _narrowest_children(schema, keys) if schema is not None else {}
        plans = []
        for table in ordered:
            key = where.key(table.schema, table.name)
            plan = self._plan(connection, table, cyclic.get(table, set()), dialect, hints, key)
            plan.limits = {c: n for (t, c), n in narrowest.items() if t == key}
            self._fill_table(connection, plan, count, report)
            plans.append(plan)
        for plan in plans:
            if plan.deferred:
                self._link(connection, plan)
        return report

    def _plan(
        self,
        connection: Connection,
        table: sa.Table,
        deferred: set[str],
        dialect: str,
        hints: dict[str, sa.Table] | None,
        key: str,
    ) -> _Plan:
        hint = (hints or {}).get(key)
        allowed = allowed_by_checks(table, dialect)
        if hint is not None:
            for column, rule in allowed_by_checks(hint, dialect).items():
                allowed.setdefault(column, Allowed()).merge(rule)
        unique = _unique_columns(table) | (_unique_columns(hint) if hint is not None else set())
        composites: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]] = []
        in_composite: set[str] = set()
        for constraint in sorted(table.foreign_key_constraints, key=lambda c: list(c.column_keys)):
            names = tuple(e.parent.name for e in constraint.elements)
            if len(names) > 1 and not set(names) & deferred:  # one parent row for them all
                referred = [e.column for e in constraint.elements]
                rows = connection.execute(sa.select(*referred)).all()
                composites.append((names, [tuple(r) for r in rows]))
                in_composite.update(names)
        parents = {
            fk.parent.name: _fitting(self._keys(connection, fk.column), fk.parent)
            for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name)
            if fk.parent.name not in deferred and fk.parent.name not in in_composite
        }
        key_columns = [c.name for c in table.primary_key.columns]
        alone = {next(iter(c.columns)).name for c in table.constraints
                 if isinstance(c, sa.UniqueConstraint) and len(c.columns) == 1}  # fmt: skip
        distinct = {
            name
            for name in parents
            if key_columns == [name] or table.c[name].unique or name in alone
        }
        plan = _Plan(table, allowed, unique, parents, deferred, hint, key, composites, distinct)
        plan.refill(self.rng)
        return plan

    def _fill_table(
        self, connection: Connection, plan: _Plan, count: int, report: SeedReport
    ) -> None:
        table = plan.table
        rows = [self._row(plan) for _ in range(count)]
        ready = [row for row in rows if row is not None]
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in ready:
            groups.setdefault(frozenset(row), []).append(row)
        try:
            with _undoable(connection):
                for group in groups.values():
                    connection.execute(table.insert(), group)
            inserted, refused = len(ready), len(rows) - len(ready)
        except sa_exc.DBAPIError:
            inserted, refused = self._one_by_one(connection, plan, count, report)
        report.inserted[plan.key] = inserted
        if refused:
            report.refused[plan.key] = refused
            report.why.setdefault(plan.key, "no parent row to point at (NOT NULL foreign key)")
            report.cause.setdefault(plan.key, "verify")  # its parent's rows were refused

    def _one_by_one(
        self, connection: Connection, plan: _Plan, count: int, report: SeedReport
    ) -> tuple[int, int]:
        """Row by row, each retried with new values: some constraint was not understood."""
        inserted = refused = 0
        plan.refill(self.rng)  # the batch's rows were not inserted: their parents are free
        for _ in range(count):
            for _attempt in range(_RETRIES):
                row = self._row(plan)
                if row is None:
                    break
                try:
                    with connection.begin_nested():
                        connection.execute(plan.table.insert().values(row))
                except sa_exc.DBAPIError as exc:
                    report.why[plan.key] = " ".join(str(exc.orig).split())[:200]
                    report.cause[plan.key] = refusal_cause(exc)
                    continue
                inserted += 1
                break
            else:
                refused += 1
        return inserted, refused

    def _link(self, connection: Connection, plan: _Plan) -> None:
        """Point the cycle's foreign keys at rows that now exist (each row, its own try)."""
        table = plan.table
        keys = [c for c in table.primary_key.columns]
        if not keys:
            return
        targets = {
            fk.parent.name: self._keys(connection, fk.column)
            for fk in sorted(table.foreign_keys, key=lambda fk: fk.parent.name)
            if fk.parent.name in plan.deferred
        }
        for row in connection.execute(sa.select(*keys)).all():
            values = {c: self.rng.choice(k) for c, k in targets.items() if k}
            if not values:
                continue
            condition = sa.and_(*(k == v for k, v in zip(keys, row, strict=True)))
            try:
                with connection.begin_nested():
                    connection.execute(table.update().where(condition).values(values))
            except sa_exc.DBAPIError:
                continue  # the row keeps NULL there: still a row the application could hold

    @staticmethod
    def _keys(connection: Connection, column: sa.Column[Any]) -> list[Any]:
        return list(connection.execute(sa.select(column)).scalars())

    def _row(self, plan: _Plan) -> dict[str, Any] | None:
        """One row, or None when it cannot be made (no parent row left to point at)."""
        for _attempt in range(_RETRIES * 3):
            row = self._one_row(plan)
            if row is None:
                return None
            key = tuple(row.get(c.name) for c in plan.table.primary_key.columns)
            if not key or any(v is None for v in key) or key not in plan.seen:
                plan.seen.add(key)
                return row
        return None  # every try repeated a key: the parents allow no more distinct rows

    def _one_row(self, plan: _Plan) -> dict[str, Any] | None:
        self.serial += 1
        row: dict[str, Any] = {}
        table = plan.table
        hint_columns = plan.hint.c if plan.hint is not None else None
        for names, candidates in plan.composites:
            if candidates:
                row.update(zip(names, self.rng.choice(candidates), strict=True))
            elif all(table.c[n].nullable for n in names):
                row.update(dict.fromkeys(names))
            else:
                return None  # no parent row to point at
        for column in table.columns:
            name = column.name
            hinted = hint_columns.get(name) if hint_columns is not None else None
            if name in row:
                continue  # a composite foreign key's
            if column.computed is not None or (column.identity is not None
                                               and column.identity.always):  # fmt: skip
                continue  # the database computes it; it refuses a value
            if _numbered(column):
                continue  # the database numbers it (not a composite key's, nor a foreign key)
            if name in plan.deferred:
                row[name] = None
                continue
            if name in plan.parents:
                keys = plan.pools.get(name, plan.parents[name])
                if not keys:
                    if not column.nullable:
                        return None  # no parent row (left) to point at
                    row[name] = None
                elif name in plan.pools:
                    row[name] = keys.pop()
                else:
                    row[name] = self.rng.choice(keys)
                continue
            allowed = plan.allowed.get(name.lower())
            may_be_null = (
                column.nullable
                and not (hinted is not None and not hinted.nullable)
                and not (allowed is not None and allowed.not_null)
            )
            if may_be_null and self.rng.random() < 0.25:
                row[name] = None
                continue
            if column.server_default is not None and self.rng.random() < 0.5:
                continue  # let the database's default fill it
            value = self._for_column(column, hinted, allowed, name in plan.unique)
            if isinstance(value, str) and name in plan.limits:
                value = value[: plan.limits[name]]  # a child's narrower column must hold it
            row[name] = value
        return row


def reflect(
    connection: Connection, exclude: set[str], only: set[str] | None, where: Namespaces
) -> sa.MetaData:
    """The tables (``only`` those keys, their foreign-key parents along) of every schema read."""
    metadata = sa.MetaData()
    for schema in where.listed(sa.inspect(connection)):
        if only is None:
            metadata.reflect(connection, schema=schema, only=lambda name, _m: name not in exclude)
            continue
        for name in sorted(
            n for s, n in map(where.split, only) if s == schema and n not in exclude
        ):
            # One table at a time (its parents come along): MetaData.reflect(only=...) would
            # list every table of the database first, each time.
            sa.Table(name, metadata, schema=schema, autoload_with=connection)
    return metadata


def _order(tables: list[sa.Table]) -> tuple[list[sa.Table], dict[sa.Table, set[str]]]:
    """Parents first; the foreign keys that close a cycle, by table (only nullable ones).

    SQLAlchemy leaves out of its order every foreign key of a table in a cycle, the NOT
    NULL ones to tables outside the cycle too (zou's entity -> project, while entity,
    preview_file and task point at each other): the order is made again with only the
    nullable cycle keys left out, so that every other key still orders the tables.
    """
    chosen = set(tables)
    breakable: set[sa.ForeignKeyConstraint] = set()
    for table, remaining in sort_tables_and_constraints(tables):  # type: ignore[no-untyped-call]
        if table is None:
            breakable.update(c for c in remaining if c.table in chosen
                             and all(column.nullable for column in c.columns))  # fmt: skip
    ordered: list[sa.Table] = []
    cyclic: dict[sa.Table, set[str]] = {}
    for table, remaining in sort_tables_and_constraints(  # type: ignore[no-untyped-call]
        tables,
        filter_fn=lambda c: True if c in breakable else None,  # True: left out
    ):
        if table is not None:
            if table in chosen:
                ordered.append(table)
            continue
        for constraint in remaining:  # the keys left out: broken by NULL, then linked
            owner = constraint.table
            if owner in chosen and all(c.nullable for c in constraint.columns):
                cyclic.setdefault(owner, set()).update(c.name for c in constraint.columns)
    return ordered, cyclic


def _unique_columns(table: sa.Table) -> set[str]:
    """A column per UNIQUE constraint or index (composite or partial) that gets distinct values.

    One distinct column makes every combination distinct; a foreign key is
    a poor choice (few parent keys), so another column is taken when there is one.
    """
    found: set[str] = set()
    groups = [list(c.columns) for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    groups += [list(ix.columns) for ix in table.indexes if ix.unique]
    groups += [[c] for c in table.columns if c.unique]
    for columns in groups:
        free = [c for c in columns if not c.foreign_keys and _can_be_distinct(c.type)]
        if free:
            found.add(free[0].name)
    return found


def _can_be_distinct(kind: Any) -> bool:
    return isinstance(kind, sa.String | sa.Integer | sa.Numeric | sa.Float | sa.DateTime | sa.Date)


# What a database says when a CHECK constraint refused a row, and when a function is missing
# (PostgreSQL's SQLSTATE, MySQL's error numbers, SQLite's words): every other refusal is of
# something verify knows of.
_CHECK_REFUSED = ("23514", 3819, 4025)
_NO_FUNCTION = ("42883", 1305)


def refusal_cause(exc: sa_exc.DBAPIError) -> str:
    """Whose a refused row is: "check", "function" or "verify" (see SeedReport.cause)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or (getattr(orig, "args", None) or [None])[0]
    text = str(orig)
    if code in _CHECK_REFUSED or "CHECK constraint failed" in text:
        return "check"
    if code in _NO_FUNCTION or "no such function" in text or "unknown function" in text:
        return "function"
    return "verify"


_LENGTH = re.compile(
    r"^(?:N?VARCHAR|CHARACTER VARYING|N?CHAR|CHARACTER)\s*\((\d+)\)", re.IGNORECASE
)


def _narrowest_children(schema: Schema, parents: set[str]) -> dict[tuple[str, str], int]:
    """(parent table, column) -> the shortest text column of a foreign key pointing at it,
    where shorter than the parent's: the parent's generated keys are cut to fit (octavia's
    VARCHAR(16) children of VARCHAR(30) lookup tables held no row before)."""
    found: dict[tuple[str, str], int] = {}
    children = {c for p in parents for c in schema.children_of(p)}  # not every table: a fill
    for table in (schema.tables[c] for c in sorted(children) if c in schema.tables):
        for _name, columns, parent, referred, _rule in table.foreign_keys:
            for column, target in zip(columns, referred, strict=False):
                kind = table.columns.get(column, ("", True, None))[0]
                match = _LENGTH.match(kind)
                if match:
                    key = (parent, target)
                    found[key] = min(found.get(key, 10**9), int(match.group(1)))
    return found


def _fitting(keys: list[Any], column: sa.Column[Any]) -> list[Any]:
    """The parent keys a child column can hold: a shorter VARCHAR than its parent's takes
    only the values that fit (MySQL refuses the others: "Data too long")."""
    length = getattr(column.type, "length", None)
    if not length:
        return keys
    return [k for k in keys if not isinstance(k, str) or len(k) <= length]


def _numbered(column: sa.Column[Any]) -> bool:
    """A key the database numbers: the table's only key column, an integer, no foreign key."""
    table = column.table
    return (column.primary_key and column.autoincrement is not False and _is_integer(column)
            and len(table.primary_key.columns) == 1 and not column.foreign_keys)  # fmt: skip


def _is_integer(column: sa.Column[Any]) -> bool:
    return python_type(column.type) is int
