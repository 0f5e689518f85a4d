"""What a CHECK constraint allows each column to hold, read with a real SQL parser.

The database gives back a CHECK in its own words: PostgreSQL turns
``status IN ('a', 'b')`` into ``(status)::text = ANY ((ARRAY['a'::varchar,
'b'::varchar])::text[])``. sqlglot parses each dialect's form; from the tree
come, per column, a list of allowed values (``=``, ``IN``, ``= ANY(ARRAY)``,
``OR`` of those), numeric bounds (comparisons, ``BETWEEN``) and a longest
length (``length(col) <= n``). What is not understood is left out: the seeder
then retries, and reports the rows the database still refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_DIALECTS = {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql", "mariadb": "mysql"}


@dataclass
class Allowed:
    """What one column may hold, as far as the CHECKs say."""

    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None
    longest: int | None = None
    not_null: bool = False

    def merge(self, other: Allowed) -> None:
        """Both must hold (AND): the tighter bound, the common choices."""
        if other.low is not None:
            self.low = other.low if self.low is None else max(self.low, other.low)
        if other.high is not None:
            self.high = other.high if self.high is None else min(self.high, other.high)
        if other.choices is not None:
            self.choices = (
                other.choices
                if self.choices is None
                else [c for c in self.choices if c in other.choices] or self.choices
            )
        if other.longest is not None:
            longest = other.longest
            self.longest = longest if self.longest is None else min(self.longest, longest)
        self.not_null = self.not_null or other.not_null


@dataclass
class _Found:
    columns: dict[str, Allowed] = field(default_factory=dict)

    def get(self, column: str) -> Allowed:
        return self.columns.setdefault(column, Allowed())


def allowed_values(sqltexts: list[str], dialect: str) -> dict[str, Allowed]:
    """Per column name (lower case), what the CHECK constraints allow."""
    found: dict[str, Allowed] = {}
    for text in sqltexts:
        for column, allowed in _read(text, dialect).items():
            found.setdefault(column, Allowed()).merge(allowed)
    return found


def _read(text: str, dialect: str) -> dict[str, Allowed]:
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(text, read=_DIALECTS.get(dialect))
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return {}
    return _walk(tree, exp)


def _walk(node: Any, exp: Any) -> dict[str, Allowed]:
    node = _bare(node, exp)
    if isinstance(node, exp.And):
        left, right = _walk(node.this, exp), _walk(node.expression, exp)
        for name, allowed in right.items():
            left.setdefault(name, Allowed()).merge(allowed)
        return left
    if isinstance(node, exp.Or):
        left, right = _walk(node.this, exp), _walk(node.expression, exp)
        merged: dict[str, Allowed] = {}
        for name in left.keys() & right.keys():  # a value both sides allow
            a, b = left[name], right[name]
            if a.choices is not None and b.choices is not None:
                merged[name] = Allowed(choices=a.choices + b.choices)
        return merged
    found = _Found()
    column: str | None
    if isinstance(node, exp.EQ):
        column, other = _column_and_other(node, exp)
        if column is not None:
            if isinstance(_bare(other, exp), exp.Any):
                values = _array_values(_bare(other, exp).this, exp)
                if values is not None:
                    found.get(column).choices = values
            elif (value := _literal(other, exp)) is not _NOT_LITERAL:
                found.get(column).choices = [value]
    elif isinstance(node, exp.In):
        column = _column_name(node.this, exp)
        values = [_literal(e, exp) for e in node.expressions]
        if column is not None and values and _NOT_LITERAL not in values:
            found.get(column).choices = values
    elif isinstance(node, exp.Between):
        column = _column_name(node.this, exp)
        low, high = _literal(node.args.get("low"), exp), _literal(node.args.get("high"), exp)
        if column is not None and _is_number(low) and _is_number(high):
            allowed = found.get(column)
            allowed.low, allowed.high = float(low), float(high)
    elif isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
        _bound(node, exp, found)
    elif isinstance(node, exp.Not) and isinstance(_bare(node.this, exp), exp.Is):
        column = _column_name(_bare(node.this, exp).this, exp)
        if column is not None:
            found.get(column).not_null = True
    return found.columns


def _bound(node: Any, exp: Any, found: _Found) -> None:
    column: str | None
    column, value = _column_name(node.this, exp), _literal(node.expression, exp)
    flipped = False
    if column is None:  # 0 < amount
        column, value, flipped = _column_name(node.expression, exp), _literal(node.this, exp), True
    if column is None:
        this = _bare(node.this, exp)
        if isinstance(this, exp.Length) and _is_number(value) and not flipped:
            name = _column_name(this.this, exp)
            if name is not None and isinstance(node, exp.LT | exp.LTE):
                found.get(name).longest = int(float(value)) - (isinstance(node, exp.LT))
        return
    if not _is_number(value):
        return
    number = float(value)
    lower = isinstance(node, exp.GT | exp.GTE) != flipped
    strict = isinstance(node, exp.GT | exp.LT)
    allowed = found.get(column)
    if lower:
        allowed.merge(Allowed(low=number + 1 if strict else number))
    else:
        allowed.merge(Allowed(high=number - 1 if strict else number))


_NOT_LITERAL = object()


def _bare(node: Any, exp: Any) -> Any:
    """Without parentheses and casts: ``(status)::text`` is ``status``."""
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return node


def _column_name(node: Any, exp: Any) -> str | None:
    node = _bare(node, exp)
    return node.name.lower() if isinstance(node, exp.Column) else None


def _column_and_other(node: Any, exp: Any) -> tuple[str | None, Any]:
    column = _column_name(node.this, exp)
    if column is not None:
        return column, node.expression
    return _column_name(node.expression, exp), node.this


def _literal(node: Any, exp: Any) -> Any:
    node = _bare(node, exp)
    if isinstance(node, exp.Neg) and isinstance(_bare(node.this, exp), exp.Literal):
        return -float(_bare(node.this, exp).this)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else float(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    return _NOT_LITERAL


def _array_values(node: Any, exp: Any) -> list[Any] | None:
    node = _bare(node, exp)
    if not isinstance(node, exp.Array):
        return None
    values = [_literal(e, exp) for e in node.expressions]
    return None if _NOT_LITERAL in values else values


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
