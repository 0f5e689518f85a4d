"""Rows before an upgrade against rows after its downgrade: what was lost or changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from migrasafe.checks.verify.snapshot import Rows, Schema

_EXAMPLES = 3

Difference = tuple[str, str, str | None, str]  # rule, table, column, message


def data_differences(
    schema: Schema, before: dict[str, Rows], after: dict[str, Rows], now: Schema
) -> Iterator[Difference]:
    """Rows gone (``data-lost``) and values changed (``data-changed``), table by table.

    A table with a primary key is compared row by row on its key, as it was
    before the upgrade (a downgrade that recreates the key in another column
    order still finds each row). A row whose key is gone is matched, by its
    other values, with a row that was not there before: its key changed, the
    row is not lost. One without a key is a multiset: rows are compared on the
    columns that existed before the upgrade and still exist, so a column the
    downgrade leaves behind is a schema finding, not every row lost.
    """
    for table, rows in sorted(before.items()):  # findings in one order, whatever the dict's
        if table not in after or not rows or after[table] is rows:
            continue  # a missing table is a schema finding; an untouched one is the same
        key = schema.tables[table].primary_key
        still = now.tables.get(table)
        if not key or still is None or not set(key) <= set(still.columns):
            yield from _multiset(table, schema, rows, after[table], now)
            continue
        current = {tuple(row[c] for c in key): row for row in after[table].values()}
        yield from _keyed(table, key, rows, current, sorted(set(schema.tables[table].columns)
                                                            & set(still.columns)))  # fmt: skip


def _keyed(
    table: str, key: tuple[str, ...], rows: Rows, current: Rows, columns: list[str]
) -> Iterator[Difference]:
    lost = [k for k in rows if k not in current]
    if lost:
        yield from _lost_or_rekeyed(table, key, rows, current, columns, lost)
    for column in columns:
        changed = [
            (k, row[column], current[k].get(column))
            for k, row in rows.items()
            if k in current and column in current[k] and current[k][column] != row[column]
        ]
        if changed:
            k, was, became = changed[0]
            yield (
                "data-changed", table, column,
                f"{table}.{column} differs on {len(changed)} of {len(rows)} rows after the "
                f"round trip: e.g. key {k} was {was!r} before the upgrade, is {became!r} "
                "after the downgrade",
            )  # fmt: skip


def _lost_or_rekeyed(
    table: str, key: tuple[str, ...], rows: Rows, current: Rows, columns: list[str],
    lost: list[tuple[object, ...]],
) -> Iterator[Difference]:  # fmt: skip
    """Rows whose key is gone: matched by their other values with rows that are new, their
    key changed; else, as many as there are new rows, changed beyond matching; the rest lost."""
    others = [c for c in columns if c not in key]
    appeared = [k for k in current if k not in rows]
    waiting: dict[object, list[tuple[object, ...]]] = {}
    for k in appeared:
        waiting.setdefault(_frozen([current[k].get(c) for c in others]), []).append(k)
    rekeyed, unmatched = [], []
    for k in lost:
        same = waiting.get(_frozen([rows[k].get(c) for c in others])) if others else None
        if same:
            rekeyed.append((k, same.pop(0)))
        else:
            unmatched.append(k)
    names = ", ".join(key)
    if rekeyed:
        was, became = rekeyed[0]
        yield (
            "data-changed", table, names,
            f"the key ({names}) of {len(rekeyed)} of {len(rows)} rows of {table} differs after "
            f"the round trip, their other values unchanged: e.g. the row keyed {was} before the "
            f"upgrade is keyed {became} after the downgrade. The rows are there; their keys "
            "changed (a data migration that rewrites key values is not reversed by its "
            "downgrade)",
        )  # fmt: skip
    left = len(appeared) - len(rekeyed)
    changed, gone = unmatched[:left], unmatched[left:]
    if changed:
        yield (
            "data-changed", table, names,
            f"{len(changed)} of {len(rows)} rows of {table} have another key ({names})"
            f"{' and other values' if others else ''} after the round trip, and as many rows "
            f"are new: e.g. key {changed[0]} before the upgrade is gone; the rows were changed, "
            "not removed",
        )  # fmt: skip
    if gone:
        yield (
            "data-lost", table, None,
            f"{len(gone)} of {len(rows)} rows of {table} present before the upgrade are "
            f"gone after the downgrade (keys {', '.join(map(str, gone[:_EXAMPLES]))}...)",
        )  # fmt: skip


def _frozen(value: object) -> object:
    """A value as a dict key: ARRAY and JSON values come back as lists and dicts."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    return value


def _multiset(
    table: str, schema: Schema, rows: Rows, current: Rows, now: Schema
) -> Iterator[Difference]:
    """Rows without a key, compared as multisets on the columns kept. As many rows as
    before, but some differ: values changed (the column named when one column alone makes
    the difference), not rows lost; only fewer rows are lost rows."""
    still = now.tables.get(table)
    columns = sorted(set(schema.tables[table].columns) & set(still.columns if still else ()))
    if not columns:
        return
    was = Counter(_frozen([row.get(c) for c in columns]) for row in rows.values())
    became = Counter(_frozen([row.get(c) for c in columns]) for row in current.values())
    missing = was - became
    if not missing:
        return
    count = sum(missing.values())
    gone = max(0, len(rows) - len(current))
    changed = count - gone
    how = f"no primary key: compared as a multiset on {', '.join(columns)}"
    if changed > 0:
        column = _the_column(columns, rows, current)
        where = f"{table}.{column}" if column else f"{table}"
        yield (
            "data-changed", table, column,
            f"{where} differs on {changed} of {len(rows)} rows after the round trip ({how}; "
            f"as many rows as before): e.g. "
            f"{dict(zip(columns, next(iter(missing)), strict=True))} is no longer there",  # type: ignore[call-overload]
        )  # fmt: skip
    if gone:
        example = next(iter(missing))
        yield (
            "data-lost", table, None,
            f"{gone} of {len(rows)} rows of {table} ({how}) present before the upgrade are gone "
            f"after the downgrade (e.g. {dict(zip(columns, example, strict=True))})",  # type: ignore[call-overload]
        )  # fmt: skip


def _the_column(columns: list[str], rows: Rows, current: Rows) -> str | None:
    """The one column whose values alone make two multisets of rows differ, if there is one."""
    for column in columns:
        others = [c for c in columns if c != column]
        if others and Counter(_frozen([r.get(c) for c in others]) for r in rows.values()) == (
            Counter(_frozen([r.get(c) for c in others]) for r in current.values())
        ):
            return column
    return None
