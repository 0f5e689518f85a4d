"""Suppressions: ``# migrasafe: ignore[rule]`` comments and pyproject.toml's ignores, and
which of them silenced nothing (``--strict``)."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from migrasafe.checks.findings import Finding
from migrasafe.checks.lint.base import (
    IGNORE_COMMENT,
    RULES,
)
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
    if not isinstance(ignore, list) or not isinstance(per_revision, dict):
        raise ConfigError(f"{path}: [tool.migrasafe.lint] expects ignore = [rule ids] and "
                          'per-revision-ignore = {"<revision>" = [rule ids]}')  # fmt: skip
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

    def __init__(self, path: Path) -> None:
        source = path.read_text()
        self.path = path
        self.comments: dict[int, set[str]] = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and (match := IGNORE_COMMENT.search(token.string)):
                rules = {r.strip() for r in match.group(1).split(",") if r.strip()}
                check_known(rules, f"{path}:{token.start[0]}: # migrasafe: ignore[...]")
                self.comments[token.start[0]] = rules
        self.statements = [
            (node.lineno, node.end_lineno or node.lineno)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef | ast.With)
        ]

        self.used: set[tuple[int, str]] = set()

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
