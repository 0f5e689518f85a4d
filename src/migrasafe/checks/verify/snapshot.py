"""What a database holds, read by reflection, in a form that compares.

Used by ``verify`` to prove that a downgrade gives back the schema and the
rows that were there before the upgrade.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from migrasafe.db.catalog import Described


def _normalise_sql(text: object) -> str | None:
    """Compare SQL fragments (defaults, CHECKs) up to parentheses, quotes and spaces."""
    if text is None:
        return None
    value = re.sub(r"\s+", " ", str(text)).strip()
    while value.startswith("(") and value.endswith(")") and _balanced(value[1:-1]):
        value = value[1:-1].strip()
    return value.replace('"', "").lower()


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0


@dataclass(frozen=True)
class TableSchema:
    columns: dict[str, tuple[str, bool, str | None]]  # name -> (type, nullable, default)
    primary_key: tuple[str, ...]
    indexes: frozenset[tuple[str | None, tuple[str, ...], bool]]
    uniques: frozenset[tuple[str | None, tuple[str, ...]]]
    foreign_keys: frozenset[tuple[str | None, tuple[str, ...], str, tuple[str, ...], str | None]]
    checks: frozenset[tuple[str | None, str | None]]
    # The catalog's description it was made from, as the database words it (PostgreSQL):
    # the seeder builds its tables from it. Not compared.
    raw: Described | None = field(default=None, compare=False, repr=False)

    def differences(self, other: TableSchema) -> list[str]:
        """How ``other`` differs from this table, one phrase per difference."""
        found = []
        for name in sorted(self.columns.keys() | other.columns.keys()):
            mine, theirs = self.columns.get(name), other.columns.get(name)
            if mine is None:
                found.append(f"column {name} is there but was not before")
            elif theirs is None:
                found.append(f"column {name} is missing")
            elif mine != theirs:
                found.append(f"column {name} was (type, nullable, default) {mine}, is now {theirs}")
        if self.primary_key != other.primary_key:
            found.append(f"primary key was {self.primary_key}, is now {other.primary_key}")
        for label, before, after in (
            ("index", self.indexes, other.indexes),
            ("unique constraint", self.uniques, other.uniques),
            ("foreign key", self.foreign_keys, other.foreign_keys),
            ("check constraint", self.checks, other.checks),
        ):
            found += [
                f"{label} {_describe(item)} is missing" for item in sorted(before - after, key=repr)
            ]
            found += [f"{label} {_describe(item)} is there but was not before"
                      for item in sorted(after - before, key=repr)]  # fmt: skip
        return found


def _describe(item: tuple[Any, ...]) -> str:
    name, rest = item[0], item[1:]
    return f"{name or '(unnamed)'} {rest}"


@dataclass(frozen=True)
class Schema:
    tables: dict[str, TableSchema] = field(default_factory=dict)

    def with_children(self, names: Iterable[str]) -> set[str]:
        """``names`` and every table that refers to one of them by a foreign key, transitively.

        A change to a parent can reach its children (``DROP ... CASCADE``, rows
        deleted to reseed), so they are re-read and reseeded with it.
        """
        found = set(names)
        pending = list(found)
        children = self._children
        while pending:
            for child in children.get(pending.pop(), ()):
                if child not in found:
                    found.add(child)
                    pending.append(child)
        return found

    @cached_property
    def _children(self) -> dict[str, set[str]]:
        """Parent table -> the tables with a foreign key to it (built once per schema)."""
        children: dict[str, set[str]] = {}
        for name, table in self.tables.items():
            for fk in table.foreign_keys:
                children.setdefault(fk[2], set()).add(name)
        return children

    def children_of(self, table: str) -> set[str]:
        """The tables with a foreign key to ``table``."""
        return self._children.get(table, set())

    @cached_property
    def owners(self) -> dict[str, set[str]]:
        """Every named index and constraint -> its tables, by :func:`name_key`."""
        found: dict[str, set[str]] = {}
        for table_name, table in self.tables.items():
            for group in (table.indexes, table.uniques, table.foreign_keys, table.checks):
                for item in group:
                    if item[0]:
                        found.setdefault(name_key(item[0]), set()).add(table_name)
        return found

    def replace(self, fresh: Schema, gone: Iterable[str]) -> Schema:
        """This schema with ``fresh``'s tables re-read and the ``gone`` tables removed.

        The name index (:attr:`owners`) is carried over and patched for the
        tables that changed, not rebuilt: verify replaces after every step. The
        result remembers what it replaced in which schema (weakly), so that
        :meth:`differences` between nearby schemas looks at those tables only.
        """
        dropped = set(gone)
        tables = dict(self.tables)
        for name in dropped:
            tables.pop(name, None)
        tables.update(fresh.tables)
        result = Schema(tables)
        changed = dropped | fresh.tables.keys()
        result.__dict__["_lineage"] = (weakref.ref(self), frozenset(changed))
        for index, keys in (("owners", _named), ("_children", _referred)):
            if index in self.__dict__:
                old = {k for name in changed if name in self.tables
                       for k in keys(self.tables[name])}  # fmt: skip
                result.__dict__[index] = _patched(
                    self.__dict__[index], getattr(fresh, index), changed, old
                )
        return result

    def differences(self, other: Schema) -> dict[str, list[str]]:
        """Per table, how ``other`` differs from this schema."""
        found: dict[str, list[str]] = {}
        names = self._replaced_between(other)
        if names is None:
            names = self.tables.keys() | other.tables.keys()
        # Tables not re-read since are the same objects: nothing to compare, nothing to sort.
        for name in sorted(n for n in names if self.tables.get(n) is not other.tables.get(n)):
            mine, theirs = self.tables.get(name), other.tables.get(name)
            if mine is None:
                found[name] = ["table is there but was not before"]
            elif theirs is None:
                found[name] = ["table is missing"]
            elif diff := mine.differences(theirs):
                found[name] = diff
        return found

    def _replaced_between(self, other: Schema) -> set[str] | None:
        """The tables replaced between this schema and ``other``, when one was made from the
        other by a few :meth:`replace` calls (a step or three); None: compare them all."""
        for older, newer in ((self, other), (other, self)):
            names: set[str] = set()
            node: Schema | None = newer
            for _ in range(_LINEAGE_HOPS + 1):
                if node is older:
                    return names
                lineage = node.__dict__.get("_lineage") if node is not None else None
                if lineage is None:
                    break
                names |= lineage[1]
                node = lineage[0]()
        return None


_LINEAGE_HOPS = 8


def name_key(name: str) -> str:
    """How SQL text names an object: case-folded; "*" for a name that needs quoting.

    A table of another schema (``schema.name``) is named by its own name. Names are cut
    to 63 characters, as PostgreSQL keeps them: a DROP INDEX naming a longer index drops
    the index the catalog lists under the cut name.
    """
    name = name.rpartition(".")[2] if "." in name else name
    return name.lower()[:_NAME_LENGTH] if name.isidentifier() else "*"


_NAME_LENGTH = 63  # PostgreSQL's NAMEDATALEN - 1; MySQL allows 64, SQLite any


def _named(table: TableSchema) -> set[str]:
    """The :attr:`Schema.owners` keys of one table's named indexes and constraints."""
    groups = (table.indexes, table.uniques, table.foreign_keys, table.checks)
    return {name_key(item[0]) for group in groups for item in group if item[0]}


def _referred(table: TableSchema) -> set[str]:
    """The :attr:`Schema._children` keys of one table: the tables it refers to."""
    return {fk[2] for fk in table.foreign_keys}


def _patched(
    index: dict[str, set[str]], fresh: dict[str, set[str]], changed: set[str], old: set[str]
) -> dict[str, set[str]]:
    """``index`` (key -> tables) with the ``changed`` tables' entries replaced by ``fresh``'s.

    ``old``: the keys under which the changed tables were indexed; only those are touched.
    """
    patched = dict(index)
    for key in old:
        kept = patched[key] - changed
        if kept:
            patched[key] = kept
        else:
            del patched[key]
    for key, tables in fresh.items():
        patched[key] = patched.get(key, set()) | tables
    return patched


class Namespaces:
    """The schemas verify reads, and how a table is named across them.

    A table of the default schema is known by its name, any other as
    ``schema.name``: every schema the project uses is seeded and compared
    (``version_table_schema``, tables declared with ``schema=``, and every
    schema of the database when ``env.py`` sets ``include_schemas``).
    """

    def __init__(self, schemas: Iterable[str | None] = (None,), every: bool = False) -> None:
        self.schemas = tuple(dict.fromkeys([None, *schemas]))
        self.every = every
        self.places: dict[str, tuple[str | None, str]] = {}

    def listed(self, inspector: Any) -> tuple[str | None, ...]:
        default = inspector.default_schema_name
        found = [s for s in self.schemas if s != default]
        if self.every:
            found += [
                s for s in inspector.get_schema_names()
                if s != default and s != "information_schema" and not s.startswith("pg_")
            ]  # fmt: skip
        return tuple(dict.fromkeys(found))

    def key(self, schema: str | None, name: str) -> str:
        if not schema:
            return name  # split() needs no entry for it
        found = f"{schema}.{name}"
        self.places[found] = (schema, name)
        return found

    def split(self, key: str) -> tuple[str | None, str]:
        return self.places.get(key, (None, key))


DEFAULT = Namespaces()


def table_names(
    connection: Connection, exclude: Iterable[str] = (), where: Namespaces = DEFAULT
) -> set[str]:
    """The tables there now, by key (see :class:`Namespaces`), leaving out ``exclude``.

    From one catalog query where the dialect lists every schema's tables at
    once (PostgreSQL), else the inspector's, schema by schema.
    """
    from migrasafe.db.dialects import dialect_named

    skip = set(exclude)
    listing = dialect_named(connection.dialect.name).catalog.all_tables(connection)
    if listing is not None:
        default, rows = listing
        wanted = set(where.schemas)
        return {
            where.key(None if schema == default else schema, name)
            for schema, name in rows
            if name not in skip and (where.every or (None if schema == default else schema)
                                     in wanted)
        }  # fmt: skip
    inspector = sa.inspect(connection)
    return {
        where.key(schema, name)
        for schema in where.listed(inspector)
        for name in inspector.get_table_names(schema=schema)
        if name not in skip
    }


def read_schema(
    connection: Connection,
    exclude: Iterable[str] = (),
    only: Iterable[str] | None = None,
    present: set[str] | None = None,
    where: Namespaces = DEFAULT,
    known: dict[tuple[str, str], TableSchema] | None = None,
) -> Schema:
    """Reflect every table (or ``only`` those named), leaving out ``exclude``.

    ``present``: the tables there now, when the caller just listed them.
    Where the dialect describes tables from its catalog in one query
    (PostgreSQL), that replaces reflection, which costs several queries per
    table. Elsewhere, ``known``: tables read before, by name and the database's fingerprint of
    them (one query for all): a table whose fingerprint was seen is not
    reflected again. A downgrade gives back the schema from before the
    upgrade, so verify reflects a table once per revision, not three times.
    """
    from migrasafe.db.dialects import dialect_named

    dialect = connection.dialect
    catalog = dialect_named(dialect.name).catalog
    if present is not None and only is not None:  # the tables asked for, not all of them
        names = {name for name in only if name in present}
    else:
        names = set(present) if present is not None else table_names(connection, exclude, where)
        if only is not None:
            names &= set(only)
    described = catalog.describe(connection, [where.split(k) for k in names]) if names else {}
    if described is not None:  # the catalog in one query, where the dialect offers it
        return Schema({
            key: _from_catalog(described[where.split(key)], where)
            for key in sorted(names) if where.split(key) in described
        })  # fmt: skip
    inspector = sa.inspect(connection)
    prints: dict[tuple[str | None, str], str] | None = None
    if known is not None and names:
        prints = catalog.fingerprints(connection, [where.split(k) for k in names])
    tables = {}
    for key in sorted(names):
        schema, table = where.split(key)
        fingerprint = prints.get((schema, table)) if prints is not None else None
        if fingerprint is not None and known is not None and (key, fingerprint) in known:
            tables[key] = known[(key, fingerprint)]
            continue
        columns = {
            c["name"]: (
                str(c["type"].compile(dialect=dialect)),
                bool(c["nullable"]),
                _normalise_sql(c.get("default")),
            )
            for c in inspector.get_columns(table, schema=schema)
        }
        pk = inspector.get_pk_constraint(table, schema=schema)
        tables[key] = TableSchema(
            columns=columns,
            primary_key=tuple(pk.get("constrained_columns") or ()),
            indexes=frozenset(
                (ix["name"], _index_keys(ix, dialect.name), bool(ix["unique"]))
                for ix in inspector.get_indexes(table, schema=schema)
            ),
            uniques=frozenset(
                (uc["name"], tuple(uc["column_names"]))
                for uc in inspector.get_unique_constraints(table, schema=schema)
            ),
            foreign_keys=frozenset(
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    where.key(fk.get("referred_schema"), fk["referred_table"]),
                    tuple(fk["referred_columns"]),
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table, schema=schema)
            ),
            checks=frozenset(
                (ck["name"], _normalise_sql(ck["sqltext"]))
                for ck in inspector.get_check_constraints(table, schema=schema)
            ),
        )
        if fingerprint is not None and known is not None:
            known[(key, fingerprint)] = tables[key]
    return Schema(tables)


def _index_keys(index: Any, dialect: str) -> tuple[str, ...]:
    """An index's columns (expressions as written), then its predicate when it is partial."""
    expressions = index.get("expressions") or [None] * len(index["column_names"])
    keys = tuple(str(c if c is not None else e) for c, e in
                 zip(index["column_names"], expressions, strict=False))  # fmt: skip
    where = (index.get("dialect_options") or {}).get(f"{dialect}_where")
    return keys + ((f"WHERE {_normalise_sql(where)}",) if where is not None else ())


def _from_catalog(described: Described, where: Namespaces) -> TableSchema:
    return TableSchema(
        columns={
            name: (kind, nullable, _normalise_sql(default))
            for name, (kind, nullable, default) in described.columns.items()
        },
        primary_key=described.primary_key,
        indexes=described.indexes,
        uniques=described.uniques,
        foreign_keys=frozenset(
            (name, columns, where.key(*referred), referred_columns, on_delete)
            for name, columns, referred, referred_columns, on_delete in described.foreign_keys
        ),
        checks=frozenset((name, _normalise_sql(text)) for name, text in described.checks),
        raw=described,
    )


Rows = dict[tuple[Any, ...], dict[str, Any]]


def read_rows(
    connection: Connection,
    schema: Schema,
    only: Iterable[str] | None = None,
    where: Namespaces = DEFAULT,
) -> dict[str, Rows]:
    """Every row of every table (or ``only`` those), keyed by primary key.

    A table without a primary key is keyed by the whole row and its
    occurrence, so that duplicates count (it is compared as a multiset).
    """
    data: dict[str, Rows] = {}
    wanted = schema.tables.keys() if only is None else set(only) & schema.tables.keys()
    for name in wanted:
        table = schema.tables[name]
        columns = sorted(table.columns)
        owner, table_name = where.split(name)
        select = sa.table(table_name, *(sa.column(c) for c in columns), schema=owner).select()
        rows: Rows = {}
        seen: dict[tuple[Any, ...], int] = {}
        for row in connection.execute(select).mappings():
            record = dict(row)
            if table.primary_key:
                rows[tuple(record[c] for c in table.primary_key)] = record
            else:
                whole = tuple(record[c] for c in columns)
                seen[whole] = seen.get(whole, 0) + 1
                rows[(*whole, seen[whole])] = record
        data[name] = rows
    return data
