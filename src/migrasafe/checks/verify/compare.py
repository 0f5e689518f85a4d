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

    A table with a primary key is compared row by row on its key. One
    without is a multiset: rows are compared on the columns that existed
    before the upgrade and still exist, so a column the downgrade leaves
    behind is a schema finding, not every row lost.
    """
    for table, rows in before.items():
        if table not in after or not rows or after[table] is rows:
            continue  # a missing table is a schema finding; an untouched one is the same
        if not schema.tables[table].primary_key:
            yield from _multiset(table, schema, rows, after[table], now)
            continue
        current = after[table]
        lost = [key for key in rows if key not in current]
        if lost:
            yield (
                "data-lost", table, None,
                f"{len(lost)} of {len(rows)} rows of {table} present before the upgrade are "
                f"gone after the downgrade (keys {', '.join(map(str, lost[:_EXAMPLES]))}...)",
            )  # fmt: skip
        for column in sorted(schema.tables[table].columns):
            changed = [
                (key, row[column], current[key].get(column))
                for key, row in rows.items()
                if key in current and column in current[key] and current[key][column] != row[column]
            ]
            if changed:
                key, was, became = changed[0]
                yield (
                    "data-changed", table, column,
                    f"{table}.{column} differs on {len(changed)} of {len(rows)} rows after the "
                    f"round trip: e.g. key {key} was {was!r} before the upgrade, is {became!r} "
                    "after the downgrade",
                )  # fmt: skip


def _multiset(
    table: str, schema: Schema, rows: Rows, current: Rows, now: Schema
) -> Iterator[Difference]:
    still = now.tables.get(table)
    columns = sorted(set(schema.tables[table].columns) & set(still.columns if still else ()))
    if not columns:
        return
    was = Counter(tuple(row.get(c) for c in columns) for row in rows.values())
    became = Counter(tuple(row.get(c) for c in columns) for row in current.values())
    missing = was - became
    if missing:
        count = sum(missing.values())
        example = next(iter(missing))
        yield (
            "data-lost", table, None,
            f"{count} of {len(rows)} rows of {table} (no primary key: compared as a multiset "
            f"on {', '.join(columns)}) present before the upgrade are gone after the downgrade "
            f"(e.g. {dict(zip(columns, example, strict=True))})",
        )  # fmt: skip
