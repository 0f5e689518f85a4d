"""Raw SQL read by sqlglot, for SQLite and MySQL: statements to Alembic operations."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops

from migrasafe.checks.lint.sql.base import Named, Statement

_DIALECTS = {"sqlite": "sqlite", "mysql": "mysql"}  # PostgreSQL: see .postgresql (pglast)


def read(sql: str, dialect: str) -> list[ops.MigrateOperation] | None:
    """The operations ``sql`` performs, read by sqlglot; None when it cannot be parsed."""
    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to a Command": ours
    try:
        statements = sqlglot.parse(sql, read=_DIALECTS.get(dialect, dialect))
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return None
    found: list[ops.MigrateOperation] = []
    for statement in statements:
        if statement is not None:
            found += _statement(statement, exp, _DIALECTS.get(dialect, dialect))
    return found


def tokens(sql: str, dialect: str) -> list[tuple[int, bool]] | None:
    """(offset, whether a ``;``) of each token of ``sql``, by sqlglot's tokenizer (comments are
    not tokens); None when it cannot tokenize it."""
    import sqlglot
    from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

    try:
        found = sqlglot.Dialect.get_or_raise(_DIALECTS.get(dialect, dialect)).tokenize(sql)
    except (sqlglot.errors.TokenError, sqlglot.errors.ParseError):
        return None
    return [(t.start, t.token_type == TokenType.SEMICOLON) for t in found]


def _name(node: Any) -> str | None:
    return node.name if node is not None and node.name else None


def _schema(table: Any) -> str | None:
    return table.args.get("db").name if table.args.get("db") is not None else None


def _statement(node: Any, exp: Any, read: str) -> list[ops.MigrateOperation]:
    if isinstance(node, exp.Create):
        return _create(node, exp, read)
    if isinstance(node, exp.Drop):
        kind = (node.args.get("kind") or "").upper()
        targets = node.args.get("tables") or []
        if kind == "TABLE":
            return [ops.DropTableOp(t.name, schema=_schema(t)) for t in targets]
        if kind == "DATABASE":
            return [Statement("drop-database", t.name) for t in targets]
        if kind == "INDEX":
            concurrently = bool(node.args.get("concurrently"))
            return [ops.DropIndexOp(t.name, schema=_schema(t), postgresql_concurrently=concurrently)
                    for t in targets]  # fmt: skip
        return []
    if isinstance(node, exp.Alter) and (node.args.get("kind") or "").upper() == "TABLE":
        return _alter(node, exp, read)
    if isinstance(node, exp.TruncateTable):
        cascade = str(node.args.get("option") or "").upper() == "CASCADE"
        return [Statement("truncate", t.name, cascade=cascade) for t in node.expressions]
    if isinstance(node, exp.Command) and str(node.this).upper() == "REINDEX":
        words = str(node.expression.this if node.expression is not None else "").split()
        concurrently = any(w.upper() == "CONCURRENTLY" for w in words)
        return [Statement("reindex", words[-1] if words else None, concurrently=concurrently)]
    if isinstance(node, exp.Command) and str(node.this).upper() in ("ALTER", "CREATE", "DROP"):
        start = " ".join(f"{node.this} {node.expression or ''}".split()[:4])
        return [Statement("unread", f"{start} ...: the SQL parser could not read it")]
    if isinstance(node, exp.Transaction | exp.Commit) or (
        isinstance(node, exp.Rollback) and node.args.get("savepoint") is None
    ):
        return [Statement("transaction", node.sql(dialect=read).split()[0].upper())]
    if isinstance(node, exp.Set):
        return [Statement("set", f"{item.this.this.name.lower()}={_setting(item.this.expression)}")
                for item in node.expressions
                if isinstance(item, exp.SetItem) and isinstance(item.this, exp.EQ)
                and isinstance(item.this.this, exp.Column)]  # fmt: skip
    return []


def _setting(value: Any) -> str:
    """A SET value as written, unquoted: '2s', 2000, 0."""
    return str(value.this if hasattr(value, "is_string") and value.is_string else value.sql())


def _create(node: Any, exp: Any, read: str) -> list[ops.MigrateOperation]:
    kind = (node.args.get("kind") or "").upper()
    target = node.this
    if kind == "TABLE":
        table = target.this if isinstance(target, exp.Schema) else target
        columns = ([_column(c, exp, read) for c in target.expressions
                    if isinstance(c, exp.ColumnDef)]
                   if isinstance(target, exp.Schema) else [])  # fmt: skip
        return [ops.CreateTableOp(table.name, columns, schema=_schema(table))]
    if kind == "INDEX" and isinstance(target, exp.Index):
        table = target.args.get("table")
        params = target.args.get("params")
        columns = [c.this.name if isinstance(c, exp.Ordered) else c.name
                   for c in (params.args.get("columns") if params else None) or []]  # fmt: skip
        return [ops.CreateIndexOp(
            _name(target.this) or "(unnamed)", table.name if table is not None else "",
            columns, schema=_schema(table) if table is not None else None,
            unique=bool(node.args.get("unique")),
            postgresql_concurrently=bool(node.args.get("concurrently")),
        )]  # fmt: skip
    return []


def _alter(node: Any, exp: Any, read: str) -> list[ops.MigrateOperation]:
    table, schema = node.this.name, _schema(node.this)
    not_valid = bool(node.args.get("not_valid"))
    found: list[ops.MigrateOperation] = []
    for action in node.args.get("actions") or []:
        if isinstance(action, exp.AlterColumn):
            column = action.this.name
            dtype = action.args.get("dtype")
            if dtype is not None:
                found.append(ops.AlterColumnOp(table, column, schema=schema,
                                               modify_type=_type(dtype, exp)))  # fmt: skip
            allow_null = action.args.get("allow_null")
            if allow_null is not None:
                found.append(ops.AlterColumnOp(table, column, schema=schema,
                                               modify_nullable=bool(allow_null)))  # fmt: skip
        elif isinstance(action, exp.ColumnDef):
            position = action.args.get("position")
            place: dict[str, Any] = {}
            if position is not None:  # MySQL: ADD COLUMN ... AFTER x / FIRST
                after = position.this.name if position.this is not None else None
                place = {"mysql_after": after} if after else {"mysql_first": True}
            found.append(ops.AddColumnOp(table, _column(action, exp, read), schema=schema,
                                         **place))  # fmt: skip
        elif isinstance(action, exp.ModifyColumn):  # MySQL: MODIFY / CHANGE restate the column
            found += _modify(table, schema, action, exp, read)
        elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
            found += [ops.DropColumnOp(table, c.name, schema=schema)
                      for c in action.args.get("tables") or []]  # fmt: skip
        elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "INDEX":
            found += [ops.DropIndexOp(c.name, table_name=table, schema=schema)
                      for c in action.args.get("tables") or []]  # fmt: skip
        elif isinstance(action, exp.RenameColumn):
            found.append(ops.AlterColumnOp(table, action.this.name, schema=schema,
                                           modify_name=action.args["to"].name))  # fmt: skip
        elif isinstance(action, exp.AlterRename):
            found.append(ops.RenameTableOp(table, action.this.name, schema=schema))
        elif isinstance(action, exp.AddConstraint):
            for constraint in action.expressions:
                found += _constraint(table, schema, constraint, not_valid, exp, read)
    return found


def _modify(
    table: str, schema: str | None, action: Any, exp: Any, read: str
) -> list[ops.MigrateOperation]:
    """MySQL's MODIFY/CHANGE COLUMN: the whole column restated, perhaps renamed.

    Type and nullability are given as changes; lint's replay of the history
    knows what the column was, so a restated one is no change.
    """
    column = _column(action.this, exp, read)
    renamed = action.args.get("rename_from")
    name = renamed.name if renamed is not None else column.name
    # The restated type and nullability on the name the history knows, then the rename.
    found: list[ops.MigrateOperation] = [
        ops.AlterColumnOp(table, name, schema=schema, modify_type=column.type,
                          modify_nullable=column.nullable)
    ]  # fmt: skip
    if name != column.name:
        found.append(ops.AlterColumnOp(table, name, schema=schema, modify_name=column.name))
    return found


def _constraint(
    table: str, schema: str | None, constraint: Any, not_valid: bool, exp: Any, read: str
) -> list[ops.MigrateOperation]:
    name = _name(constraint.this) if isinstance(constraint, exp.Constraint) else None
    parts = constraint.expressions if isinstance(constraint, exp.Constraint) else [constraint]
    found: list[ops.MigrateOperation] = []
    for part in parts:
        if isinstance(part, exp.ForeignKey):
            reference = part.args.get("reference")
            target = reference.this if reference is not None else None
            referent = target.this if isinstance(target, exp.Schema) else target
            remote = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
            found.append(ops.CreateForeignKeyOp(
                name, table, referent.name if referent is not None else "",
                [c.name for c in part.expressions], remote, source_schema=schema,
                postgresql_not_valid=not_valid,
            ))  # fmt: skip
        elif isinstance(part, exp.CheckColumnConstraint):
            condition = sa.text(part.this.sql(dialect=read))
            found.append(ops.CreateCheckConstraintOp(name, table, condition, schema=schema,
                                                     postgresql_not_valid=not_valid))  # fmt: skip
        elif isinstance(part, exp.UniqueColumnConstraint):
            columns = [c.name for c in getattr(part.this, "expressions", None) or []]
            index = getattr(part.this, "this", None)  # MySQL: ADD UNIQUE INDEX name (cols)
            if name is None and isinstance(index, exp.Identifier):
                found.append(ops.CreateIndexOp(index.name, table, columns, schema=schema,
                                               unique=True))  # fmt: skip
            else:
                found.append(ops.CreateUniqueConstraintOp(name, table, columns, schema=schema))
        elif isinstance(part, exp.IndexColumnConstraint):  # MySQL: ADD INDEX name (cols)
            columns = [c.name for c in part.expressions]
            found.append(ops.CreateIndexOp(_name(part.this) or "(unnamed)", table, columns,
                                           schema=schema))  # fmt: skip
        elif isinstance(part, exp.PrimaryKey):
            found.append(ops.CreatePrimaryKeyOp(name, table, [c.name for c in part.expressions],
                                                schema=schema))  # fmt: skip
    return found


def _column(node: Any, exp: Any, read: str) -> sa.Column[Any]:
    constraints = [c.args.get("kind") for c in node.args.get("constraints") or []]
    not_null = any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null")
                   for k in constraints)  # fmt: skip
    default = next((k for k in constraints if isinstance(k, exp.DefaultColumnConstraint)), None)
    primary = any(isinstance(k, exp.PrimaryKeyColumnConstraint) for k in constraints)
    kind = node.args.get("kind")
    extra: list[Any] = []
    for k in constraints:
        if isinstance(k, exp.GeneratedAsIdentityColumnConstraint):
            extra.append(sa.Identity())
        elif isinstance(k, exp.ComputedColumnConstraint) and k.this is not None:
            extra.append(sa.Computed(k.this.sql(dialect=read), persisted=True))
    return sa.Column(
        node.this.name, _type(kind, exp) if kind is not None else sa.types.NullType(), *extra,
        nullable=not (not_null or primary), primary_key=primary,
        server_default=sa.text(default.this.sql(dialect=read)) if default is not None else None,
    )  # fmt: skip


def _type(node: Any, exp: Any) -> Any:
    """A SQLAlchemy type for a parsed one: strings keep their length (widening is judged on it)."""
    kind = node.this
    size = node.expressions[0].this.name if node.expressions else None
    length = int(size) if size is not None and str(size).isdigit() else None
    types = exp.DataType.Type
    if kind in (types.VARCHAR, types.NVARCHAR, types.CHAR, types.NCHAR):
        return sa.String(length)
    if kind == types.TEXT:
        return sa.Text()
    return sa.types.NullType() if kind is None else Named(node.sql())
