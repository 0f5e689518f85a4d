"""Suppressions: ``# migrasafe: ignore[rule]`` comments and pyproject.toml's ignores, and
which of them silenced nothing (``--strict``)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from migrasafe.checks.findings import Finding
from migrasafe.checks.lint.base import (
    IGNORE_COMMENT,
    RULES,
)
from migrasafe.checks.lint.sql import Piece
from migrasafe.errors import ConfigError
from migrasafe.project.settings import tool_section


@dataclass(frozen=True)
class LintSettings:
    """Suppressions from pyproject.toml's [tool.migrasafe.lint]."""

    ignore: frozenset[str] = frozenset()
    per_revision: dict[str, frozenset[str]] = field(default_factory=dict)
    source: str | None = None


def load_settings(start: Path) -> LintSettings:
    """[tool.migrasafe.lint] of the nearest pyproject.toml at or above ``start``."""
    tool, path = tool_section(start)
    if path is None:
        return LintSettings()
    section = tool.get("lint", {})
    ignore = section.get("ignore", [])
    per_revision = section.get("per-revision-ignore", {})
    # tool_section checked the names and types (project.settings)
    settings = LintSettings(
        frozenset(ignore), {str(k): frozenset(v) for k, v in per_revision.items()}, str(path)
    )
    named = set(settings.ignore).union(*settings.per_revision.values())
    check_known(named, f"{path} [tool.migrasafe.lint]")
    return settings


def check_known(rules: Iterable[str], where: str) -> None:
    unknown = sorted(set(rules) - set(RULES.checks))
    if unknown:
        raise ConfigError(f"{where} names unknown lint rule(s) {', '.join(unknown)}; known rules: "
                          f"{', '.join(sorted(RULES.checks))}")  # fmt: skip


class Suppressions:
    """``# migrasafe: ignore[rule, ...]`` comments of one file, by the statement they annotate."""

    marker = "#"

    def __init__(self, path: Path, source: str | None = None,
                 statements: list[tuple[int, int]] | None = None) -> None:  # fmt: skip
        """A revision file's comments and statements; or, given them, another file's."""
        self.path = path
        self.comments: dict[int, set[str]] = {}
        self.used: set[tuple[int, str]] = set()
        if statements is not None:
            self.statements = statements
            return
        source = path.read_text()
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and (match := IGNORE_COMMENT.search(token.string)):
                self._add(token.start[0], match.group(1))
        self.statements = [
            (node.lineno, node.end_lineno or node.lineno)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef | ast.With)
        ]

    def _add(self, line: int, rules: str) -> None:
        named = {r.strip() for r in rules.split(",") if r.strip()}
        check_known(named, f"{self.path}:{line}: {self.marker} migrasafe: ignore[...]")
        self.comments[line] = named

    def covers(self, line: int | None, rule: str) -> bool:
        if line is None or not self.comments:
            return False
        spans = [(a, b) for a, b in self.statements if a <= line <= b] or [(line, line)]
        first, last = min(spans, key=lambda s: s[1] - s[0])
        for n in range(first, last + 1):
            if rule in self.comments.get(n, ()):
                self.used.add((n, rule))
                return True
        return False

    def unused(self) -> Iterator[tuple[int, str]]:
        """(line, rule) of each ignore comment that silenced nothing."""
        for line, rules in sorted(self.comments.items()):
            for rule in sorted(rules):
                if (line, rule) not in self.used:
                    yield line, rule


def unused_settings(
    settings: LintSettings, used: set[tuple[str, str]], selected: set[str]
) -> list[Finding]:
    """pyproject.toml ignores that silenced nothing (``--strict``)."""
    found = []
    for rule in sorted(settings.ignore & selected):
        if not any(r == rule for _, r in used):
            found.append(Finding("unused-suppression", "error", None, settings.source,
                                 f'ignore = ["{rule}"] in [tool.migrasafe.lint] silences '
                                 "nothing: remove it"))  # fmt: skip
    for revision, rules in sorted(settings.per_revision.items()):
        for rule in sorted(rules & selected - settings.ignore):
            if (revision, rule) not in used:
                found.append(Finding("unused-suppression", "error", revision, settings.source,
                                     f"per-revision-ignore {revision} = [{rule!r}] silences "
                                     "nothing: remove it"))  # fmt: skip
    return found


_SQL_IGNORE = re.compile(r"--\s*migrasafe:\s*ignore\[([^\]]*)\]")


def sql_suppressions(path: Path, text: str, pieces: Iterable[Piece]) -> Suppressions:
    """``-- migrasafe: ignore[rule]`` comments of a SQL file: on a statement's lines, or on
    the lines between it and the statement before (squawk's place for them)."""
    spans, after = [], 1
    for piece in pieces:
        spans.append((after, piece.end_line))
        after = piece.end_line + 1
    found = Suppressions(path, statements=spans)
    found.marker = "--"
    for number, line in enumerate(text.splitlines(), 1):
        if match := _SQL_IGNORE.search(line):
            found._add(number, match.group(1))
    return found
