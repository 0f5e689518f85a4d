"""Values of a column's type for generated rows: within its range, its length, its
CHECK's choices, distinct where it must be (:class:`Values`, which the seeder is)."""

from __future__ import annotations

import datetime as dt
import decimal
import random
import string
import uuid
from typing import Any

import sqlalchemy as sa

from migrasafe.checks.verify.allowed import Allowed


class Values:
    """A generator's values, drawn from ``rng``; ``serial`` counts the rows made so far."""

    rng: random.Random
    serial: int

    def _for_column(
        self,
        column: sa.Column[Any],
        hinted: sa.Column[Any] | None,
        allowed: Allowed | None,
        unique: bool,
    ) -> Any:
        """A value of the column's type; shaped by the later type when a revision casts it."""
        kind = column.type
        if hinted is not None and _is_text(kind) and not _is_text(hinted.type):
            later = self._value(hinted.type, allowed, unique)
            if later is not None:  # text the cast will accept: '42', 'open', '2020-01-01'
                return _as_text(later)
        return self._value(kind, allowed, unique)

    def _value(self, kind: Any, allowed: Allowed | None, unique: bool) -> Any:
        rng, serial = self.rng, self.serial
        if allowed is not None and allowed.choices:
            return _coerce(rng.choice(allowed.choices), kind)
        if isinstance(kind, sa.Enum) and kind.enums:
            return rng.choice(kind.enums)
        if isinstance(kind, sa.ARRAY):
            item = kind.item_type
            return [self._value(item, None, False) for _ in range(rng.randint(0, 3))]
        if isinstance(kind, sa.Boolean):
            return rng.random() < 0.5
        if isinstance(kind, sa.Integer) or python_type(kind) is int:
            low = int(allowed.low) if allowed and allowed.low is not None else 0
            high = int(allowed.high) if allowed and allowed.high is not None else 10_000
            high = min(high, _highest(kind))
            if unique:
                return low + serial % max(1, high - low + 1)
            return rng.randint(low, max(low, high))
        if isinstance(kind, sa.Numeric | sa.Float):  # not one class in SQLAlchemy 2.1
            return self._number(kind, allowed, unique)
        if isinstance(kind, sa.DateTime):
            moment = dt.datetime(2020, 1, 1) + dt.timedelta(minutes=rng.randint(0, 10**6))
            if unique:
                moment += dt.timedelta(seconds=serial)
            return moment.replace(tzinfo=dt.UTC) if kind.timezone else moment
        if isinstance(kind, sa.Date):
            return dt.date(2020, 1, 1) + dt.timedelta(days=(serial if unique else 0)
                                                      + rng.randint(0, 3650))  # fmt: skip
        if isinstance(kind, sa.Time):
            return dt.time(rng.randint(0, 23), rng.randint(0, 59))
        if isinstance(kind, sa.Interval):
            return dt.timedelta(minutes=rng.randint(0, 10_000))
        if isinstance(kind, sa.Uuid):
            return uuid.UUID(int=rng.getrandbits(128))
        if isinstance(kind, sa.JSON):
            return {"n": serial, "tags": [rng.choice(string.ascii_lowercase)]}
        if isinstance(kind, sa.LargeBinary):
            return rng.randbytes(8)
        if isinstance(kind, sa.String):  # Text, Unicode, CHAR too
            length = getattr(kind, "length", None) or 40
            if allowed is not None and allowed.longest is not None:
                length = min(length, max(allowed.longest, 1))
            prefix = f"{serial}-" if unique else ""
            size = max(1, min(length, 24) - len(prefix))
            text = "".join(rng.choice(string.ascii_letters) for _ in range(size))
            return (prefix + text)[:length]
        name = type(kind).__name__.upper()
        if name in ("INET", "CIDR"):
            return f"10.{serial // 65536 % 256}.{serial // 256 % 256}.{serial % 256}"
        if name == "MACADDR":
            return ":".join(f"{b:02x}" for b in (serial % 2**48).to_bytes(6, "big"))
        return None

    def _number(
        self, kind: sa.Numeric[Any] | sa.Float[Any], allowed: Allowed | None, unique: bool
    ) -> Any:
        precision, scale = getattr(kind, "precision", None), getattr(kind, "scale", None)
        scale = 2 if scale is None else scale
        highest = 1000.0
        if precision is not None and not isinstance(kind, sa.Float):
            highest = min(highest, 10.0 ** (precision - scale) - 10.0**-scale)
        lowest = 0.0
        if allowed is not None:
            lowest = allowed.low if allowed.low is not None else lowest
            highest = allowed.high if allowed.high is not None else highest
        value = round(self.rng.uniform(lowest, max(lowest, highest)), scale)
        if unique:
            value = round(lowest + (self.serial % 10**6) * 10.0**-scale, scale)
        if getattr(kind, "asdecimal", False):
            return decimal.Decimal(str(value)).quantize(decimal.Decimal(1).scaleb(-scale))
        return value


def python_type(kind: Any) -> type | None:
    try:
        found: type = kind.python_type
    except NotImplementedError:
        return None
    return found


# The integer types' ranges, by the names dialects give them (MySQL's TINYINT, MEDIUMINT).
_RANGES = {"TINYINT": 127, "SMALLINT": 32_767, "SMALLINTEGER": 32_767, "MEDIUMINT": 8_388_607}


def _highest(kind: Any) -> int:
    """The largest value the integer type holds: MySQL's TINYINT(1), its Boolean, holds 1."""
    if getattr(kind, "display_width", None) == 1 and type(kind).__name__ == "TINYINT":
        return 1
    top = _RANGES.get(type(kind).__name__.upper(), 2**31 - 1)
    if isinstance(kind, sa.SmallInteger):
        top = min(top, 32_767)
    return top * 2 + 1 if getattr(kind, "unsigned", False) else top


def _is_text(kind: Any) -> bool:
    return isinstance(kind, sa.String) and not isinstance(kind, sa.Enum)


def _as_text(value: Any) -> str:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _coerce(choice: Any, kind: Any) -> Any:
    """A CHECK's literal as the column's type holds it."""
    if isinstance(kind, sa.Integer) and isinstance(choice, float | str):
        try:
            return int(float(choice))
        except ValueError:
            return choice
    if isinstance(kind, sa.Numeric | sa.Float) and isinstance(choice, float):
        return decimal.Decimal(str(choice)) if getattr(kind, "asdecimal", False) else choice
    if _is_text(kind) and isinstance(choice, float):
        return str(int(choice)) if choice.is_integer() else str(choice)
    return choice
