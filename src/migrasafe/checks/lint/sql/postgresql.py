"""PostgreSQL's SQL read by pglast (libpg_query, the server's own parser) into Alembic operations.

sqlglot gives up on much of PostgreSQL's DDL (``VALIDATE CONSTRAINT``,
``ADD CONSTRAINT ... USING INDEX``, ``VACUUM FULL``, ``LOCK TABLE``, ``ALTER
TYPE ... ADD VALUE``, ``CLUSTER``): pglast reads whatever the server reads,
so only what lint cannot judge (a DO block's PL/pgSQL) is left unread, and
said so.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.ddl.postgresql import CreateExcludeConstraintOp
from alembic.operations import ops
from pglast import ast, enums, parse_sql
from pglast.parser import ParseError, scan
from pglast.stream import RawStream

from migrasafe.checks.lint.sql.base import Named, Statement

AT = enums.AlterTableType
CONSTR = enums.ConstrType
OBJECT = enums.ObjectType
# pg_constraint's ON DELETE letters, as pglast gives them: "a" (NO ACTION) is the default.
_ON_DELETE = {"r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
# LOCK TABLE's modes by number (lockdefs.h)
_LOCK_MODES = {
    1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: "SHARE UPDATE EXCLUSIVE",
    5: "SHARE", 6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE",
}  # fmt: skip


def read(sql: str) -> list[ops.MigrateOperation] | None:
    """The operations ``sql`` performs; None when PostgreSQL could not parse it either."""
    try:
        statements = parse_sql(sql)
    except ParseError:
        return None
    found: list[ops.MigrateOperation] = []
    for raw in statements:
        found += _statement(raw.stmt)
    return found


def tokens(sql: str) -> list[tuple[int, bool]] | None:
    """(offset, whether a ``;``) of each token of ``sql`` but comments, by PostgreSQL's scanner;
    None when it cannot scan it (an unterminated string or comment)."""
    try:
        scanned = scan(sql)
    except ParseError:
        return None
    return [(t.start, t.name == "ASCII_59") for t in scanned
            if t.name not in ("SQL_COMMENT", "C_COMMENT")]  # fmt: skip


def _sql(node: Any) -> str:
    return str(RawStream()(node))


def _names(values: Any) -> list[str]:
    return [v.sval for v in values or ()]


def _statement(node: Any) -> list[ops.MigrateOperation]:
    if isinstance(node, ast.CreateStmt):
        return [_create_table(node)]
    if isinstance(node, ast.IndexStmt):
        return [_create_index(node)]
    if isinstance(node, ast.AlterTableStmt) and node.objtype == OBJECT.OBJECT_TABLE:
        return _alter(node)
    if isinstance(node, ast.RenameStmt):
        return _rename(node)
    if isinstance(node, ast.DropStmt):
        return _drop(node)
    if isinstance(node, ast.TruncateStmt):
        cascade = node.behavior == enums.DropBehavior.DROP_CASCADE
        return [Statement("truncate", r.relname, cascade=cascade) for r in node.relations or ()]
    if isinstance(node, ast.DropdbStmt):
        return [Statement("drop-database", node.dbname)]
    if isinstance(node, ast.ReindexStmt):
        concurrently = any(p.defname == "concurrently" for p in node.params or ())
        target = node.relation.relname if node.relation is not None else node.name
        return [Statement("reindex", target, concurrently=concurrently)]
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        if any(p.defname == "full" for p in node.options or ()):
            tables = [r.relation.relname for r in node.rels or () if r.relation is not None]
            return [Statement("vacuum-full", t) for t in tables or [None]]
        return []
    if isinstance(node, ast.ClusterStmt):
        return [Statement("cluster", node.relation.relname if node.relation else None)]
    if isinstance(node, ast.LockStmt):
        mode = _LOCK_MODES.get(int(node.mode or 0), str(node.mode))
        return [Statement("lock", r.relname, mode=mode) for r in node.relations or ()]
    if isinstance(node, ast.AlterEnumStmt) and node.newVal is not None:
        return [Statement("enum-add-value", ".".join(_names(node.typeName)))]
    if isinstance(node, ast.TransactionStmt):
        kind = enums.TransactionStmtKind
        words = {
            kind.TRANS_STMT_BEGIN: "BEGIN", kind.TRANS_STMT_START: "START TRANSACTION",
            kind.TRANS_STMT_COMMIT: "COMMIT", kind.TRANS_STMT_ROLLBACK: "ROLLBACK",
        }  # fmt: skip
        return [Statement("transaction", words[node.kind])] if node.kind in words else []
    if isinstance(node, ast.VariableSetStmt) and node.name:
        value = ",".join(_sql(a).strip("'") for a in node.args or ())
        return [Statement("set", f"{node.name.lower()}={value}")]
    if isinstance(node, ast.DoStmt):
        return [Statement("unread", "a DO block: its PL/pgSQL is not read")]
    return []


def _create_table(node: Any) -> ops.MigrateOperation:
    relation = node.relation
    columns = [_column(e) for e in node.tableElts or () if isinstance(e, ast.ColumnDef)]
    return ops.CreateTableOp(relation.relname, columns, schema=relation.schemaname)


def _create_index(node: Any) -> ops.MigrateOperation:
    relation = node.relation
    columns = [p.name if p.name is not None else sa.text(_sql(p.expr))
               for p in node.indexParams or ()]  # fmt: skip
    extra: dict[str, Any] = {}
    if node.whereClause is not None:
        extra["postgresql_where"] = sa.text(_sql(node.whereClause))
    if node.accessMethod and node.accessMethod != "btree":
        extra["postgresql_using"] = node.accessMethod
    return ops.CreateIndexOp(node.idxname or "(unnamed)", relation.relname, columns,
                             schema=relation.schemaname, unique=bool(node.unique),
                             postgresql_concurrently=bool(node.concurrent), **extra)  # fmt: skip


def _alter(node: Any) -> list[ops.MigrateOperation]:
    table, schema = node.relation.relname, node.relation.schemaname
    found: list[ops.MigrateOperation] = []
    for cmd in node.cmds or ():
        kind = cmd.subtype
        if kind == AT.AT_AddColumn:
            found.append(ops.AddColumnOp(table, _column(cmd.def_), schema=schema))
        elif kind == AT.AT_DropColumn:
            found.append(ops.DropColumnOp(table, cmd.name, schema=schema))
        elif kind == AT.AT_AlterColumnType:
            found.append(ops.AlterColumnOp(table, cmd.name, schema=schema,
                                           modify_type=_type(cmd.def_.typeName)))  # fmt: skip
        elif kind in (AT.AT_SetNotNull, AT.AT_DropNotNull):
            found.append(ops.AlterColumnOp(table, cmd.name, schema=schema,
                                           modify_nullable=kind == AT.AT_DropNotNull))  # fmt: skip
        elif kind == AT.AT_ColumnDefault:
            default = sa.text(_sql(cmd.def_)) if cmd.def_ is not None else None
            found.append(ops.AlterColumnOp(table, cmd.name, schema=schema,
                                           modify_server_default=default))  # fmt: skip
        elif kind == AT.AT_AddConstraint:
            found += _constraint(table, schema, cmd.def_)
        elif kind == AT.AT_DropConstraint:
            found.append(ops.DropConstraintOp(cmd.name, table, schema=schema))
        elif kind == AT.AT_SetTableSpace:
            found.append(Statement("set-tablespace", table))
        elif kind == AT.AT_ValidateConstraint:  # a NOT VALID constraint checked, without a lock
            found.append(Statement("validate-constraint", f"{table}.{cmd.name}"))
    return found


def _constraint(table: str, schema: str | None, node: Any) -> list[ops.MigrateOperation]:
    name, kind = node.conname, node.contype
    if node.indexname:  # ADD CONSTRAINT ... USING INDEX: the index was built beforehand
        return []
    if kind == CONSTR.CONSTR_FOREIGN:
        target = node.pktable
        return [ops.CreateForeignKeyOp(
            name, table, target.relname, _names(node.fk_attrs), _names(node.pk_attrs),
            source_schema=schema, referent_schema=target.schemaname,
            ondelete=_ON_DELETE.get(node.fk_del_action or "a"),
            postgresql_not_valid=bool(node.skip_validation),
        )]  # fmt: skip
    if kind == CONSTR.CONSTR_CHECK:
        condition = sa.text(_sql(node.raw_expr))
        not_valid = bool(node.skip_validation)
        return [ops.CreateCheckConstraintOp(name, table, condition, schema=schema,
                                            postgresql_not_valid=not_valid)]  # fmt: skip
    if kind == CONSTR.CONSTR_UNIQUE:
        return [ops.CreateUniqueConstraintOp(name, table, _names(node.keys), schema=schema)]
    if kind == CONSTR.CONSTR_PRIMARY:
        return [ops.CreatePrimaryKeyOp(name, table, _names(node.keys), schema=schema)]
    if kind == CONSTR.CONSTR_EXCLUSION:
        elements = [(_sql(element), _names(operator)[0] if operator else "=")
                    for element, operator in node.exclusions or ()]  # fmt: skip
        return [CreateExcludeConstraintOp(name, table, elements, schema=schema,
                                          using=node.access_method or None)]  # fmt: skip
    return []


def _rename(node: Any) -> list[ops.MigrateOperation]:
    relation = node.relation
    if node.renameType in _OBJECTS:
        return _rename_object(node)
    if relation is None:
        return []
    if node.renameType == OBJECT.OBJECT_TABLE:
        return [ops.RenameTableOp(relation.relname, node.newname, schema=relation.schemaname)]
    if node.renameType == OBJECT.OBJECT_COLUMN:
        return [ops.AlterColumnOp(relation.relname, node.subname, schema=relation.schemaname,
                                  modify_name=node.newname)]  # fmt: skip
    return []


def _rename_object(node: Any) -> list[ops.MigrateOperation]:
    kind = _OBJECTS.get(node.renameType)
    if kind is None or node.newname is None:
        return []
    old = node.relation.relname if node.relation is not None else _object_name(node.object)
    return [Statement("rename-object", f"{kind} {old} to {node.newname}")]


# Objects the application may use that DROP or RENAME takes away (expand/contract phases).
_OBJECTS = {
    OBJECT.OBJECT_VIEW: "view", OBJECT.OBJECT_MATVIEW: "materialized view",
    OBJECT.OBJECT_FUNCTION: "function", OBJECT.OBJECT_PROCEDURE: "procedure",
    OBJECT.OBJECT_TRIGGER: "trigger", OBJECT.OBJECT_TYPE: "type", OBJECT.OBJECT_DOMAIN: "domain",
    OBJECT.OBJECT_SEQUENCE: "sequence",
}  # fmt: skip


def _object_name(parts: Any) -> str:
    if isinstance(parts, list | tuple):
        return ".".join(_names(parts))
    objname = getattr(parts, "objname", None)  # functions and procedures: ObjectWithArgs
    if objname is not None:
        return ".".join(_names(objname))
    names = getattr(parts, "names", None)  # types: TypeName
    return ".".join(_names(names)) if names is not None else "?"


def _drop(node: Any) -> list[ops.MigrateOperation]:
    found: list[ops.MigrateOperation] = []
    kind = _OBJECTS.get(node.removeType)
    for parts in node.objects or ():
        if kind is not None:
            found.append(Statement("drop-object", f"{kind} {_object_name(parts)}"))
            continue
        names = _names(parts) if isinstance(parts, list | tuple) else []
        if not names:
            continue
        schema, name = (names[-2] if len(names) > 1 else None), names[-1]
        if node.removeType == OBJECT.OBJECT_TABLE:
            found.append(ops.DropTableOp(name, schema=schema))
        elif node.removeType == OBJECT.OBJECT_INDEX:
            concurrently = bool(node.concurrent)
            found.append(ops.DropIndexOp(name, schema=schema, postgresql_concurrently=concurrently))
    return found


def _column(node: Any) -> sa.Column[Any]:
    constraints = list(node.constraints or ())
    kinds = {c.contype for c in constraints}
    extra: list[Any] = []
    default = None
    for c in constraints:
        if c.contype == CONSTR.CONSTR_DEFAULT and c.raw_expr is not None:
            default = sa.text(_sql(c.raw_expr))
        elif c.contype == CONSTR.CONSTR_IDENTITY:
            extra.append(sa.Identity(always=c.generated_when == "a"))
        elif c.contype == CONSTR.CONSTR_GENERATED and c.raw_expr is not None:
            extra.append(sa.Computed(_sql(c.raw_expr), persisted=True))
    primary = CONSTR.CONSTR_PRIMARY in kinds
    return sa.Column(
        node.colname, _type(node.typeName), *extra, primary_key=primary,
        nullable=not (primary or CONSTR.CONSTR_NOTNULL in kinds), server_default=default,
    )  # fmt: skip


_STRINGS = {"varchar", "bpchar", "char", "character", "character varying"}


def _type(node: Any) -> Any:
    """A SQLAlchemy type for a parsed one: strings keep their length (widening is judged on it)."""
    if node is None:
        return sa.types.NullType()
    names = _names(node.names)
    base = names[-1].lower() if names else ""
    if base in _STRINGS and not node.arrayBounds:
        sizes = [getattr(m.val, "ival", None) for m in node.typmods or ()
                 if isinstance(m, ast.A_Const)]  # fmt: skip
        return sa.String(sizes[0] if sizes and isinstance(sizes[0], int) else None)
    if base == "text" and not node.arrayBounds:
        return sa.Text()
    return Named(_sql(node).upper())
