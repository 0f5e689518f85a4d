"""Running the rules: which revisions, which suppressions, and the report."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.environment import EnvironmentContext

from migrasafe.checks.findings import Finding
from migrasafe.checks.lint.base import (
    DIALECT_ALIASES,
    DIALECTS,
    RULES,
    Hit,
    RevisionLint,
)
from migrasafe.checks.lint.operations import record_upgrade
from migrasafe.checks.lint.replay import Tables
from migrasafe.checks.lint.suppress import Suppressions, load_settings, unused_settings
from migrasafe.db.urls import parse_url
from migrasafe.errors import ConfigError, MigrasafeError, RevisionError
from migrasafe.project.config import Project, alembic_errors
from migrasafe.project.env import discover_url
from migrasafe.project.graph import apply_order
from migrasafe.project.settings import load_deploy_settings


@RULES.register(
    "unused-suppression", "error",
    "with --strict: an ignore comment or pyproject entry that silences nothing",
)  # fmt: skip
def _unused_suppression(_lint: RevisionLint) -> Iterator[Hit]:
    return iter(())  # found by lint() itself, from what the other rules' findings used


@dataclass(frozen=True)
class LintReport:
    dialect: str
    findings: tuple[Finding, ...]
    revisions: int
    suppressed: int

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "dialect": self.dialect,
            "findings": [f.to_dict() for f in self.findings],
            "revisions": self.revisions,
            "suppressed": self.suppressed,
            "ok": self.ok,
        }


def resolve_dialect(project: Project, dialect: str | None) -> str:
    """The dialect to lint for: the one asked for, else that of the URL env.py connects to.

    That URL is learned by running ``env.py`` with every connection refused
    (:func:`migrasafe.project.env.discover_url`): lint never touches a database.
    """
    if dialect is None:
        url = project.configured_url
        if url is None:
            try:
                url = discover_url(project).render_as_string(hide_password=False)
            except MigrasafeError as exc:
                raise ConfigError(
                    f"lint needs a dialect: pass --dialect ({', '.join(DIALECTS)}); "
                    f"the project's URL is unknown ({exc})"
                ) from exc
        dialect = parse_url(url).get_backend_name()
    dialect = DIALECT_ALIASES.get(dialect, dialect)
    if dialect not in DIALECTS:
        raise ConfigError(f"lint knows the dialects {', '.join(DIALECTS)}, not {dialect!r}")
    return dialect


def select_revisions(
    project: Project, since: str | None = None, git_base: str | None = None
) -> set[str] | None:
    """The revisions to lint: after ``since``, and/or whose files changed since ``git_base``.

    None: all of them. For adopting lint on a long history without its old
    findings, and for a pull request's own revisions.
    """
    script = project.script
    chosen: set[str] | None = None
    if since is not None:
        with alembic_errors():
            start = script.get_revision(since)
        if start is None:
            raise RevisionError(f"--since {since!r} names no revision")
        children: dict[str, set[str]] = {}
        for revision in script.walk_revisions():
            for parent in revision._all_down_revisions:
                children.setdefault(parent, set()).add(revision.revision)
        chosen, todo = set(), [start.revision]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in chosen:
                    chosen.add(child)
                    todo.append(child)
    if git_base is not None:
        changed = _changed_files(Path(script.versions), git_base)
        by_git = {s.revision for s in script.walk_revisions() if Path(s.path).resolve() in changed}
        chosen = by_git if chosen is None else chosen & by_git
    return chosen


_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's empty tree, in every repository


def _changed_files(directory: Path, base: str) -> set[Path]:
    """Files under ``directory`` added or changed since git ``base``, committed or not.

    ``HEAD`` in a repository without a commit yet (a pre-commit hook on the
    first commit) is the empty tree: every file is new.
    """
    if base == "HEAD":
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=directory,
                              capture_output=True, text=True, check=False)  # fmt: skip
        if head.returncode != 0 and not head.stderr.strip():
            base = _EMPTY_TREE
    commands = (
        ["git", "diff", "--name-only", "-z", "--relative", "--diff-filter=ACMR", base, "--", "."],
        ["git", "ls-files", "--others", "--exclude-standard", "-z", "."],
    )
    found: set[Path] = set()
    for command in commands:
        try:
            done = subprocess.run(command, cwd=directory, capture_output=True, text=True,
                                  check=False, timeout=60)  # fmt: skip
        except OSError as exc:
            raise ConfigError(f"--git-base needs git: {exc}") from exc
        if done.returncode != 0:
            message = " ".join(done.stderr.split()) or f"exit {done.returncode}"
            raise ConfigError(f"--git-base {base}: git says: {message}")
        found |= {(directory / name).resolve() for name in done.stdout.split("\0") if name}
    return found


def lint(
    project: Project,
    *,
    dialect: str | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    revisions: set[str] | None = None,
    strict: bool = False,
    pg_version: int = 15,
) -> LintReport:
    """Record each revision's upgrade operations offline and run the selected rules.

    ``revisions``: only these (see :func:`select_revisions`); default all.
    ``strict``: a suppression that silenced nothing is an ``unused-suppression``
    error (a rule fixed long ago, or a comment on the wrong line).
    """
    name = resolve_dialect(project, dialect)
    rules = RULES.select(only, skip)
    settings = load_settings(project.config_path.parent.resolve())
    findings: list[Finding] = []
    suppressed = 0
    every = apply_order(project.script)
    order = [s for s in every if revisions is None or s.revision in revisions]
    environment = EnvironmentContext(project.config, project.script)
    lock_timeout = _project_lock_timeout(project)
    schema = Tables()  # replayed from base, through the revisions not linted too
    used_settings: set[tuple[str, str]] = set()  # (revision, rule) silenced by pyproject.toml
    for script in every:
        recorded = record_upgrade(script, name, environment)
        before = schema.copy() if revisions is None or script.revision in revisions else None
        for r in recorded.operations:
            schema.apply(r.operation)
        if before is None:
            continue
        path = Path(script.path)
        comments = Suppressions(path)
        off = settings.ignore | settings.per_revision.get(script.revision, frozenset())
        if recorded.error:
            findings.append(Finding(
                "lint-incomplete", "warning", script.revision, str(path),
                f"upgrade() could not run without a database ({recorded.error}); the operations "
                "after that point were not checked",
            ))  # fmt: skip
        view = RevisionLint(name, recorded, before, pg_version, lock_timeout)
        for rule in rules:
            for hit in rule.run(view):
                if rule.rule in off:
                    suppressed += 1
                    used_settings.add((script.revision, rule.rule))
                    continue
                if comments.covers(hit.at.line, rule.rule):
                    suppressed += 1
                    continue
                findings.append(
                    Finding(rule.rule, rule.severity, script.revision, str(path), hit.message,
                            hit.at.line, hit.table, hit.column)
                )  # fmt: skip
        selected = {r.rule for r in rules}
        if strict and "unused-suppression" in selected:
            findings += [
                Finding("unused-suppression", "error", script.revision, str(path),
                        f"`# migrasafe: ignore[{rule}]` silences nothing here: remove it (the "
                        "operation is gone or safe now), or move it to the statement it is for",
                        line)
                for line, rule in comments.unused() if rule in selected
            ]  # fmt: skip
    if strict and any(r.rule == "unused-suppression" for r in rules):
        findings += unused_settings(settings, used_settings, {r.rule for r in rules})
    revision_index = {s.revision: n for n, s in enumerate(order)}
    findings.sort(key=lambda f: (revision_index.get(f.revision or "", 0), f.line or 0))
    return LintReport(name, tuple(findings), len(order), suppressed)


def _project_lock_timeout(project: Project) -> str | None:
    """Why every migration of the project runs with a lock_timeout, if it does.

    ``[tool.migrasafe] db-lock-timeout`` (``migrasafe upgrade`` sets it per
    session), or an ``env.py`` that sets ``lock_timeout`` itself: lint does
    not run env.py, so its source is read for the setting's name.
    """
    if load_deploy_settings(project.config_path.parent.resolve()).db_lock_timeout is not None:
        return "db-lock-timeout in [tool.migrasafe]"
    env_py = Path(project.script_directory.dir) / "env.py"
    try:
        if "lock_timeout" in env_py.read_text(encoding="utf-8", errors="replace"):
            return f"{env_py} sets lock_timeout"
    except OSError:
        pass
    return None
