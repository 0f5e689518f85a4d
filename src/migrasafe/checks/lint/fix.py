"""``lint --fix``: a dangerous ``op.*`` call rewritten as its :mod:`migrasafe.safe_op` form.

The revision file is edited through its concrete syntax tree (libcst), so its
formatting and comments stay as they were; only the calls a finding names
(its rule and line) change, and ``from migrasafe import safe_op`` is added
once. The safe forms take the same arguments as the operations they replace.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrasafe.checks.findings import Finding

# rule -> (the op.* call it finds, the safe_op function that replaces it)
FIXES: dict[str, tuple[str, str]] = {
    "create-index-without-concurrently": ("create_index", "create_index"),
    "drop-index-without-concurrently": ("drop_index", "drop_index"),
    "add-foreign-key-without-not-valid": ("create_foreign_key", "add_foreign_key"),
    "add-check-constraint-without-not-valid": ("create_check_constraint", "add_check"),
    "add-unique-constraint": ("create_unique_constraint", "add_unique"),
    "set-not-null": ("alter_column", "set_not_null"),
}
# alter_column's arguments that set_not_null takes; any other makes the call no plain SET NOT NULL
_SET_NOT_NULL_KEEPS = {"schema", "existing_type", "existing_server_default"}
# the keywords a safe form takes, where it does not take the operation's **kw
_KEYWORDS = {"add_unique": {"schema"}}


def advice(rule: str) -> str | None:
    """What a finding adds when ``lint --fix`` can rewrite it."""
    found = FIXES.get(rule)
    return f"`migrasafe lint --fix` rewrites it as safe_op.{found[1]}(...)" if found else None


@dataclass(frozen=True)
class FileFix:
    path: str
    diff: str
    fixed: tuple[tuple[int, str], ...]  # (line, rule) of each call rewritten
    reverses: tuple[str, ...] = ()  # the op.drop_* calls of downgrade() rewritten with them

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "diff": self.diff,
                "fixed": [{"line": line, "rule": rule} for line, rule in self.fixed],
                "reverses": list(self.reverses)}  # fmt: skip


def fix(findings: Iterable[Finding], *, write: bool = True) -> list[FileFix]:
    """Rewrite each fixable finding's call; the diff of every file changed."""
    wanted: dict[str, dict[int, str]] = defaultdict(dict)
    for finding in findings:
        if finding.rule in FIXES and finding.path and finding.line and finding.path.endswith(".py"):
            wanted[finding.path][finding.line] = finding.rule
    fixes = []
    for path, lines in sorted(wanted.items()):
        before = Path(path).read_text()
        after, done = _rewrite(before, lines)
        fixed = [(line, rule) for line, rule in done if not rule.startswith("reverse:")]
        reverses = tuple(r.removeprefix("reverse:") for _, r in done if r.startswith("reverse:"))
        if not fixed:
            continue
        diff = "".join(difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), path, path
        ))  # fmt: skip
        if write:
            Path(path).write_text(after)
        fixes.append(FileFix(path, diff, tuple(sorted(fixed)), reverses))
    return fixes


def _rewrite(source: str, lines: dict[int, str]) -> tuple[str, list[tuple[int, str]]]:
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    fixed: list[tuple[int, str]] = []
    names: set[str | None] = set()  # of the indexes and constraints rewritten
    reverses: list[str] = []  # their reverses rewritten in downgrade()

    class Reverse(cst.CSTTransformer):
        """In downgrade(): the plain reverse of what was rewritten, as its safe_op reverse
        (on SQLite a constraint added in batch mode is dropped in batch mode too)."""

        def __init__(self) -> None:
            super().__init__()
            self.depth = 0

        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            if node.name.value == "downgrade":
                self.depth += 1

        def leave_FunctionDef(self, original: cst.FunctionDef,
                              updated: cst.FunctionDef) -> cst.FunctionDef:  # fmt: skip
            if original.name.value == "downgrade":
                self.depth -= 1
            return updated

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            func = updated.func
            reverse = isinstance(func, cst.Attribute) and func.attr.value in (
                "drop_index", "drop_constraint")  # fmt: skip
            if not (self.depth and reverse and isinstance(func, cst.Attribute)
                    and isinstance(func.value, cst.Name) and func.value.value == "op"
                    and updated.args):  # fmt: skip
                return updated
            if _literal_name(updated.args[0].value) not in names:
                return updated
            reverses.append(func.attr.value)
            return updated.with_changes(func=cst.Attribute(cst.Name("safe_op"), func.attr))

    class Rewrite(cst.CSTTransformer):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            func = updated.func
            if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
                    and func.value.value == "op"):  # fmt: skip
                return updated
            start = self.get_metadata(PositionProvider, original).start.line
            end = self.get_metadata(PositionProvider, original).end.line
            rule = next((lines[n] for n in range(start, end + 1) if n in lines), None)
            if rule is None or FIXES[rule][0] != func.attr.value:
                return updated
            if _literal_name(updated.args[0].value if updated.args else None) is None:
                return updated  # unnamed (None, a variable): safe_op needs the name it validates
            allowed = _KEYWORDS.get(FIXES[rule][1])
            if allowed is not None and any(
                a.keyword is not None and a.keyword.value not in allowed for a in updated.args
            ):
                return updated  # deferrable=, dialect options: the safe form cannot take them
            arguments: Sequence[cst.Arg] | None = updated.args
            if rule == "set-not-null":
                arguments = _set_not_null_arguments(updated.args)
            if arguments is None:
                return updated  # not a plain SET NOT NULL: left for a person
            fixed.append((start, rule))
            names.add(_literal_name(updated.args[0].value))
            return updated.with_changes(
                func=cst.Attribute(cst.Name("safe_op"), cst.Name(FIXES[rule][1])), args=arguments
            )

    module = MetadataWrapper(cst.parse_module(source))
    changed = module.visit(Rewrite())
    if names:
        changed = changed.visit(Reverse())
    if fixed and not _imports_safe_op(changed):
        changed = _add_import(changed)
    fixed += [(0, f"reverse:{name}") for name in reverses]
    return changed.code, fixed


def _literal_name(node: Any) -> str | None:
    """A name written as a string literal, or as ``op.f("...")``; None otherwise."""
    import libcst as cst

    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and (node.func.attr.value == "f" and len(node.args) == 1)
    ):
        node = node.args[0].value
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _set_not_null_arguments(args: Sequence[Any]) -> list[Any] | None:
    """alter_column(table, column, nullable=False, existing_type=...) as set_not_null takes
    them; None when the call does more than set NOT NULL (a type, a rename, a default)."""
    import libcst as cst

    kept = []
    nullable_false = False
    for arg in args:
        name = arg.keyword.value if arg.keyword is not None else None
        if name is None:
            kept.append(arg)
        elif name == "nullable":
            nullable_false = isinstance(arg.value, cst.Name) and arg.value.value == "False"
        elif name in _SET_NOT_NULL_KEEPS:
            kept.append(arg)
        elif name != "existing_nullable":
            return None
    if not nullable_false or len([a for a in kept if a.keyword is None]) != 2:
        return None
    if kept and kept[-1].comma is not None:
        import libcst as cst

        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return kept


def _imports_safe_op(module: Any) -> bool:
    return (
        "from migrasafe import safe_op" in module.code or "import migrasafe.safe_op" in module.code
    )


def _add_import(module: Any) -> Any:
    """``from migrasafe import safe_op`` after the last top-level import (or at the top)."""
    import libcst as cst

    statement = cst.parse_statement("from migrasafe import safe_op\n")
    body = list(module.body)
    last = -1
    for index, item in enumerate(body):
        if isinstance(item, cst.SimpleStatementLine) and any(
            isinstance(s, cst.Import | cst.ImportFrom) for s in item.body
        ):
            last = index
    body.insert(last + 1, statement)
    return module.with_changes(body=body)
