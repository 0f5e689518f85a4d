"""Generated rows that satisfy a reflected schema.

Values respect each column's type and length, NOT NULL, UNIQUE, foreign keys
(tables are filled parents first) and simple CHECK constraints (BETWEEN,
comparisons with a number, IN lists). A row the database still refuses, for
a constraint too complex to read, is retried with new values, then left out.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

_RETRIES = 3


@dataclass
class _Bounds:
    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None


@dataclass
class SeedReport:
    inserted: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)


def _check_bounds(table: sa.Table) -> dict[str, _Bounds]:
    bounds: dict[str, _Bounds] = {}
    for constraint in table.constraints:
        if not isinstance(constraint, sa.CheckConstraint):
            continue
        text = str(constraint.sqltext)
        for col, low, high in re.findall(
            r"(\w+)\s+BETWEEN\s+(-?[\d.]+)\s+AND\s+(-?[\d.]+)", text, re.I
        ):
            b = bounds.setdefault(col, _Bounds())
            b.low, b.high = float(low), float(high)
        for col, op, num in re.findall(r"(\w+)\s*(>=|<=|>|<)\s*(-?[\d.]+)", text):
            b = bounds.setdefault(col, _Bounds())
            value = float(num)
            if op == ">=":
                b.low = value
            elif op == ">":
                b.low = value + 1
            elif op == "<=":
                b.high = value
            else:
                b.high = value - 1
        for col, items in re.findall(r"(\w+)\s+IN\s*\(([^)]*)\)", text, re.I):
            bounds.setdefault(col, _Bounds()).choices = [
                item.strip().strip("'") for item in items.split(",") if item.strip()
            ]
    return bounds


class Seeder:
    """Fills tables with deterministic rows for a given seed."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows = rows
        self.rng = random.Random(seed)
        self.serial = 0

    def fill(
        self, connection: Connection, exclude: set[str], only: set[str] | None = None
    ) -> SeedReport:
        """Empty the tables (children first), then insert fresh rows (parents first).

        ``only`` limits this to some tables; the caller includes their
        foreign-key children, whose rows would otherwise point at deleted keys.
        """
        metadata = sa.MetaData()
        if only is None:
            metadata.reflect(connection, only=lambda name, _m: name not in exclude)
        else:
            metadata.reflect(connection, only=sorted(only - exclude))  # parents come along
        ordered = [t for t in metadata.sorted_tables if only is None or t.name in only]
        for table in reversed(ordered):
            connection.execute(table.delete())
        report = SeedReport()
        for table in ordered:
            self._fill_table(connection, table, report)
        return report

    def _fill_table(self, connection: Connection, table: sa.Table, report: SeedReport) -> None:
        bounds = _check_bounds(table)
        single_column_uniques = [
            list(con.columns)
            for con in [*table.constraints, *table.indexes]
            if isinstance(con, sa.UniqueConstraint) or (isinstance(con, sa.Index) and con.unique)
        ]
        unique = {c.name for c in table.columns if c.unique} | {
            cols[0].name for cols in single_column_uniques if len(cols) == 1
        }
        parents = {fk.parent.name: self._keys(connection, fk.column) for fk in table.foreign_keys}
        rows = [self._row(table, bounds, unique, parents) for _ in range(self.rows)]
        ready = [row for row in rows if row is not None]
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for row in ready:
            groups.setdefault(frozenset(row), []).append(row)
        try:
            with connection.begin_nested():
                for group in groups.values():
                    connection.execute(table.insert(), group)
            inserted, refused = len(ready), len(rows) - len(ready)
        except sa_exc.DBAPIError:
            inserted, refused = self._one_by_one(connection, table, bounds, unique, parents)
        report.inserted[table.name] = inserted
        if refused:
            report.refused[table.name] = refused

    def _one_by_one(
        self,
        connection: Connection,
        table: sa.Table,
        bounds: dict[str, _Bounds],
        unique: set[str],
        parents: dict[str, list[Any]],
    ) -> tuple[int, int]:
        """Row by row, each retried with new values: some constraint was not understood."""
        inserted = refused = 0
        for _ in range(self.rows):
            for _attempt in range(_RETRIES):
                row = self._row(table, bounds, unique, parents)
                if row is None:
                    break
                try:
                    with connection.begin_nested():
                        connection.execute(table.insert().values(row))
                except sa_exc.DBAPIError:
                    continue
                inserted += 1
                break
            else:
                refused += 1
        return inserted, refused

    @staticmethod
    def _keys(connection: Connection, column: sa.Column[Any]) -> list[Any]:
        return list(connection.execute(sa.select(column)).scalars())

    def _row(
        self,
        table: sa.Table,
        bounds: dict[str, _Bounds],
        unique: set[str],
        parents: dict[str, list[Any]],
    ) -> dict[str, Any] | None:
        self.serial += 1
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.primary_key and column.autoincrement is not False and _is_integer(column):
                continue  # the database numbers it
            if column.name in parents:
                keys = parents[column.name]
                if not keys:
                    if not column.nullable:
                        return None  # no parent row to point at
                    row[column.name] = None
                else:
                    row[column.name] = self.rng.choice(keys)
                continue
            if column.nullable and self.rng.random() < 0.25:
                row[column.name] = None
                continue
            if column.server_default is not None and self.rng.random() < 0.5:
                continue  # let the database's default fill it
            row[column.name] = self._value(column, bounds.get(column.name), column.name in unique)
        return row

    def _value(self, column: sa.Column[Any], bounds: _Bounds | None, unique: bool) -> Any:
        rng, serial = self.rng, self.serial
        if bounds and bounds.choices:
            return rng.choice(bounds.choices)
        kind = column.type
        if isinstance(kind, sa.Boolean):
            return rng.random() < 0.5
        if isinstance(kind, sa.Integer) or _is_integer(column):
            low = int(bounds.low) if bounds and bounds.low is not None else 0
            high = int(bounds.high) if bounds and bounds.high is not None else 10_000
            return low + serial if unique else rng.randint(low, max(low, high))
        if isinstance(kind, sa.Numeric | sa.Float):
            lowest = bounds.low if bounds and bounds.low is not None else 0.0
            highest = bounds.high if bounds and bounds.high is not None else 1000.0
            value = round(rng.uniform(lowest, highest), 2)
            return decimal.Decimal(str(value)) if getattr(kind, "asdecimal", False) else value
        if isinstance(kind, sa.DateTime):
            moment = dt.datetime(2020, 1, 1) + dt.timedelta(minutes=rng.randint(0, 10**6))
            return moment.replace(tzinfo=dt.UTC) if kind.timezone else moment
        if isinstance(kind, sa.Date):
            return dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 3650))
        if isinstance(kind, sa.Time):
            return dt.time(rng.randint(0, 23), rng.randint(0, 59))
        if isinstance(kind, sa.Enum) and kind.enums:
            return rng.choice(kind.enums)
        if isinstance(kind, sa.Uuid):
            return uuid.UUID(int=rng.getrandbits(128))
        if isinstance(kind, sa.JSON):
            return {"n": serial}
        if isinstance(kind, sa.LargeBinary):
            return rng.randbytes(8)
        if isinstance(kind, sa.String | sa.Text):
            length = getattr(kind, "length", None) or 40
            prefix = f"{serial}-" if unique else ""
            size = max(0, min(length, 24) - len(prefix))
            text = "".join(rng.choice(string.ascii_letters + " ") for _ in range(size))
            return (prefix + text)[:length]
        return None


def _is_integer(column: sa.Column[Any]) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False
