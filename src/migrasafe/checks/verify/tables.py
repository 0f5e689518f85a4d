"""The seeder's tables from what verify already read of them, and one query for their columns.

Reflecting a table with SQLAlchemy costs about ten catalog queries on
PostgreSQL (columns, keys, indexes, constraints, comment, options, each
its own), and verify reseeds the tables every revision touched. verify has
just read those tables' keys, indexes and constraints from the catalog in one
query (:meth:`~migrasafe.db.catalog.Catalog.describe`); only the columns
need SQLAlchemy (its types: enum labels, ARRAY, Numeric precision), and
``Inspector.get_multi_columns`` reads them for every table at once. Types
are remembered by how the catalog writes them: a table whose columns are all
of built-in types seen before (``integer``, ``character varying(50)``) is
built without that query. Enum and domain types are always read: a
revision may change their labels or their rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from migrasafe.checks.verify.snapshot import Namespaces, Schema

if TYPE_CHECKING:
    from migrasafe.db.catalog import Described


def catalog_tables(
    connection: Connection,
    keys: Iterable[str],
    schema: Schema,
    where: Namespaces,
    types: dict[str, TypeEngine[Any]] | None = None,
) -> sa.MetaData | None:
    """The tables ``keys`` (and their foreign-key parents, as far as their keys) in one
    MetaData; None when one of them was not read from the catalog (then reflect).

    ``types``: column types by the catalog's name for them, learned and used
    across calls (the caller keeps it for one scratch database).
    """
    types = {} if types is None else types
    described: dict[str, Described] = {}
    for key in keys:
        table = schema.tables.get(key)
        if table is None or table.raw is None:
            return None
        described[key] = table.raw
    unseen = {key for key, description in described.items()  # a column of a type not seen
              if any(kind not in types for kind, _, _ in description.columns.values())}  # fmt: skip
    by_schema: dict[str | None, list[str]] = {}
    for key in unseen:
        owner, name = where.split(key)
        by_schema.setdefault(owner, []).append(name)
    inspector = sa.inspect(connection)
    columns: dict[tuple[str | None, str], list[Any]] = {}
    for owner, names in by_schema.items():
        found = inspector.get_multi_columns(schema=owner, filter_names=names)
        columns.update({(owner, name): cols for (_, name), cols in found.items()})
    metadata = sa.MetaData()
    for key, description in described.items():
        owner, name = where.split(key)
        if key in unseen:
            if (owner, name) not in columns:
                return None  # gone since it was read
            reflected = columns[(owner, name)]
            _learn(types, description, reflected)
            made = list(map(_column, reflected))
        else:
            made = [_described_column(column, parts, types[parts[0]])
                    for column, parts in description.columns.items()]  # fmt: skip
        sa.Table(name, metadata, *made, *_constraints(description), schema=owner)
    _add_parents(metadata, described.values())
    return metadata


def _learn(types: dict[str, TypeEngine[Any]], table: Described, reflected: list[Any]) -> None:
    """Remember the built-in types among a table's reflected columns, by catalog name."""
    for column in reflected:
        parts = table.columns.get(column["name"])
        if parts is not None and _built_in(column["type"]):
            types[parts[0]] = column["type"]


def _built_in(kind: TypeEngine[Any]) -> bool:
    """Not an enum, a domain (what a revision may redefine) nor a type SQLAlchemy lacks."""
    item = getattr(kind, "item_type", None)  # ARRAY
    if item is not None:
        return _built_in(item)
    return not isinstance(kind, sa.types.SchemaType | sa.types.NullType)


def _described_column(
    name: str, parts: tuple[str, bool, str | None], kind: TypeEngine[Any]
) -> sa.Column[Any]:
    """A column from the catalog's description, as :func:`_column` makes it from reflection:
    numbered by the database when its default is a sequence's or an identity."""
    _, nullable, default = parts
    extra: list[Any] = []
    server_default = None
    numbered = False
    if default is not None and default.startswith("identity "):
        extra.append(sa.Identity(always=default == "identity always"))
        numbered = True
    elif default is not None and default.startswith(_GENERATED) and default.endswith(" stored"):
        extra.append(sa.Computed(default[len(_GENERATED) : -len(" stored")], persisted=True))
    elif default is not None:
        server_default = sa.text(default)
        numbered = "nextval(" in default
    return sa.Column(name, kind, *extra, nullable=nullable, server_default=server_default,
                     autoincrement=numbered)  # fmt: skip


_GENERATED = "generated always as "


def _column(reflected: dict[str, Any]) -> sa.Column[Any]:
    extra: list[Any] = []
    identity = reflected.get("identity")
    if identity:
        extra.append(sa.Identity(always=bool(identity.get("always"))))
    computed = reflected.get("computed")
    if computed:
        extra.append(sa.Computed(computed["sqltext"], persisted=computed.get("persisted")))
    default = reflected.get("default")
    return sa.Column(
        reflected["name"], reflected["type"], *extra, nullable=bool(reflected["nullable"]),
        server_default=sa.text(default) if default is not None and not identity else None,
        autoincrement=reflected.get("autoincrement", "auto"),
    )  # fmt: skip


def _constraints(table: Described) -> list[Any]:
    found: list[Any] = []
    if table.primary_key:
        found.append(sa.PrimaryKeyConstraint(*table.primary_key))
    for name, columns in table.uniques:
        found.append(sa.UniqueConstraint(*columns, name=name))
    for name, parts, unique in table.indexes:
        keys = [p for p in parts if p.isidentifier()]  # expressions, USING, WHERE left out
        if unique and keys and name:
            found.append(sa.Index(name, *keys, unique=True))
    for name, columns, (owner, parent), referred, on_delete in table.foreign_keys:
        target = f"{owner}.{parent}" if owner else parent
        found.append(sa.ForeignKeyConstraint(list(columns), [f"{target}.{c}" for c in referred],
                                             name=name, ondelete=on_delete))  # fmt: skip
    for name, text in table.checks:
        if text is not None and not text.upper().startswith("EXCLUDE"):
            condition = text.removesuffix(" NOT VALID")
            found.append(sa.CheckConstraint(sa.text(condition), name=name))
    return found


def _add_parents(metadata: sa.MetaData, tables: Iterable[Described]) -> None:
    """Parents outside the chosen tables, as far as the columns foreign keys point at."""
    for table in tables:
        for _name, _columns, (owner, parent), referred, _on_delete in table.foreign_keys:
            key = f"{owner}.{parent}" if owner else parent
            existing = metadata.tables.get(key)
            if existing is None:
                sa.Table(parent, metadata, *(sa.Column(c) for c in referred), schema=owner)
            else:
                for column in referred:
                    if column not in existing.c:
                        existing.append_column(sa.Column(column))
