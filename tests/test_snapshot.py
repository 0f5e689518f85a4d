"""Schema comparison: between schemas a few steps apart verify looks only at the tables
those steps replaced; the answer must be the one a comparison of every table gives."""

from __future__ import annotations

from migrasafe.checks.verify.snapshot import Schema, TableSchema


def _table(*columns: str) -> TableSchema:
    return TableSchema({c: ("INTEGER", True, None) for c in columns}, (), frozenset(),
                       frozenset(), frozenset(), frozenset())  # fmt: skip


def _full(a: Schema, b: Schema) -> dict[str, list[str]]:
    return Schema(dict(a.tables)).differences(Schema(dict(b.tables)))  # copies: no lineage


def test_nearby_schemas_differ_as_a_full_comparison_says() -> None:
    start = Schema({f"t{i}": _table("id") for i in range(50)})
    added = start.replace(Schema({"t1": _table("id", "a"), "new": _table("id")}), [])
    dropped = added.replace(Schema({}), ["t2", "new"])
    same_again = dropped.replace(Schema({"t1": _table("id")}), [])
    schemas = [start, added, dropped, same_again]
    for a in schemas:
        for b in schemas:
            assert a.differences(b) == _full(a, b)
    assert start.differences(same_again) == {"t2": ["table is missing"]}
    assert added.differences(dropped) == {"new": ["table is missing"], "t2": ["table is missing"]}
