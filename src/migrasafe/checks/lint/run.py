"""Running the rules: which revisions, which suppressions, and the report."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from migrasafe.checks.findings import Check, Finding
from migrasafe.checks.lint.base import (
    DIALECT_ALIASES,
    DIALECTS,
    RULES,
    Hit,
    RevisionLint,
)
from migrasafe.checks.lint.fix import advice
from migrasafe.checks.lint.operations import Offline, record_sql
from migrasafe.checks.lint.phases import branch_layout, declared_phase
from migrasafe.checks.lint.replay import Tables
from migrasafe.checks.lint.sql import split
from migrasafe.checks.lint.suppress import (
    LintSettings,
    Suppressions,
    load_settings,
    sql_suppressions,
    unused_settings,
)
from migrasafe.checks.lint.timeouts import lock_timeout_in_force
from migrasafe.db.urls import parse_url
from migrasafe.errors import ConfigError, MigrasafeError, RevisionError
from migrasafe.project.config import Project, alembic_errors
from migrasafe.project.env import discover_url
from migrasafe.project.graph import apply_order


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


def resolve_dialect(project: Project | None, dialect: str | None) -> str:
    """The dialect to lint for: the one asked for, else that of the URL env.py connects to.

    That URL is learned by running ``env.py`` with every connection refused
    (:func:`migrasafe.project.env.discover_url`): lint never touches a database.
    """
    if dialect is None and project is not None:
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
    dialect = DIALECT_ALIASES.get(dialect or "", dialect or "")
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
    commit = _commit_named(directory, base)
    commands = (
        ["git", "diff", "--name-only", "-z", "--relative", "--diff-filter=ACMR",
         "--end-of-options", commit, "--", "."],
        ["git", "ls-files", "--others", "--exclude-standard", "-z", "--", "."],
    )  # fmt: skip
    found: set[Path] = set()
    for command in commands:
        done = _git(command, directory, base)
        if done.returncode != 0:
            raise ConfigError(f"--git-base {base!r}: git says: {_said(done)}")
        found |= {(directory / name).resolve() for name in done.stdout.split("\0") if name}
    return found


def _commit_named(directory: Path, base: str) -> str:
    """The commit ``base`` names, as git's object id: never handed to git as an option."""
    done = _git(["git", "rev-parse", "--verify", "--quiet", "--end-of-options",
                 f"{base}^{{commit}}"], directory, base)  # fmt: skip
    if done.returncode == 0 and done.stdout.strip():
        return done.stdout.split()[0]
    if base == "HEAD" and not done.stderr.strip():  # no commit yet
        return _EMPTY_TREE
    if done.stderr.strip():  # not a repository, say
        raise ConfigError(f"--git-base {base!r}: git says: {_said(done)}")
    raise ConfigError(
        f"--git-base {base!r} names no commit in the repository of {directory}: give a "
        "branch, tag or commit id (e.g. origin/main; fetch it first in a shallow CI clone)"
    )


def _git(command: list[str], directory: Path, base: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, cwd=directory, capture_output=True, text=True,
                              check=False, timeout=60)  # fmt: skip
    except ValueError as exc:  # a NUL in the ref
        raise ConfigError(f"--git-base {base!r} names no commit: {exc}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--git-base needs git: {exc}") from exc


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(done.stderr.split()) or f"exit {done.returncode}"


class _Judge:
    """Runs the rules on one migration after another, and keeps what they found."""

    def __init__(self, rules: list[Check[RevisionLint, Hit]], settings: LintSettings,
                 strict: bool) -> None:  # fmt: skip
        self.rules, self.settings, self.strict = rules, settings, strict
        self.selected = {r.rule for r in rules}
        self.findings: list[Finding] = []
        self.suppressed = 0
        self.used_settings: set[tuple[str, str]] = set()  # (revision, rule) silenced by pyproject

    def judge(self, view: RevisionLint, revision: str, comments: Suppressions) -> None:
        path = str(comments.path)
        off = self.settings.ignore | self.settings.per_revision.get(revision, frozenset())
        error = view.recorded.error
        if error:
            self.findings.append(Finding(
                "lint-incomplete", "warning", revision, path,
                f"upgrade() could not run without a database ({error}); the operations after "
                "that point were not checked", view.recorded.error_line,
            ))  # fmt: skip
        for rule in self.rules:
            for hit in rule.run(view):
                if rule.rule in off:
                    self.suppressed += 1
                    self.used_settings.add((revision, rule.rule))
                elif comments.covers(hit.at.line, rule.rule):
                    self.suppressed += 1
                else:
                    message = hit.message
                    fixable = advice(rule.rule)
                    if fixable and not view.sql_file and not hit.at.from_sql:
                        message = f"{message} ({fixable})"
                    self.findings.append(
                        Finding(rule.rule, rule.severity, revision, path, message,
                                hit.at.line, hit.table, hit.column)
                    )  # fmt: skip
        if self.strict and "unused-suppression" in self.selected:
            self.findings += [
                Finding("unused-suppression", "error", revision, path,
                        f"`{comments.marker} migrasafe: ignore[{rule}]` silences nothing here: "
                        "remove it (the operation is gone or safe now), or move it to the "
                        "statement it is for", line)
                for line, rule in comments.unused() if rule in self.selected
            ]  # fmt: skip

    def report(self, dialect: str, order: list[str]) -> LintReport:
        findings = list(self.findings)
        if self.strict and "unused-suppression" in self.selected:
            findings += unused_settings(self.settings, self.used_settings, self.selected)
        index = {revision: n for n, revision in enumerate(order)}
        findings.sort(key=lambda f: (index.get(f.revision or "", 0), f.line or 0))
        return LintReport(dialect, tuple(findings), len(order), self.suppressed)


def lint(
    project: Project,
    *,
    dialect: str | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    revisions: set[str] | None = None,
    since: str | None = None,
    git_base: str | None = None,
    strict: bool = False,
    pg_version: int = 15,
    db_lock_timeout: str | None = None,
) -> LintReport:
    """Record each revision's upgrade operations offline and run the selected rules.

    Revisions are loaded and run as ``alembic upgrade --sql`` runs them
    (:class:`~migrasafe.checks.lint.operations.Offline`), never on a database.
    ``revisions``, ``since``, ``git_base``: only these (see
    :func:`select_revisions`); default all. ``strict``: a suppression that
    silenced nothing is an ``unused-suppression`` error (a rule fixed long
    ago, or a comment on the wrong line). ``db_lock_timeout``: the deploy's
    ``--db-lock-timeout``, as given to ``migrasafe upgrade``.
    """
    name = resolve_dialect(project, dialect)
    judge = _Judge(RULES.select(only, skip), load_settings(project.config_path.parent.resolve()),
                   strict)  # fmt: skip
    env_py = Path(project.script_directory.dir) / "env.py"
    lock_timeout = lock_timeout_in_force(project.config_path.parent.resolve(), db_lock_timeout,
                                         env_py)  # fmt: skip
    with Offline(project.config, project.script_directory, name) as offline:
        if since is not None or git_base is not None:
            chosen = select_revisions(project, since, git_base) or set()
            revisions = chosen if revisions is None else revisions & chosen
        every = apply_order(project.script)
        layout = branch_layout(project.script)
        schema = Tables()  # replayed from base, through the revisions not linted too
        for script in every:
            recorded = offline.record(script)
            linted = revisions is None or script.revision in revisions
            before = schema.copy() if linted else None
            for r in recorded.operations:
                schema.apply(r.operation)
            if before is not None:
                view = RevisionLint(name, recorded, before, pg_version, lock_timeout,
                                    declared_phase=declared_phase(script, layout)[0])  # fmt: skip
                judge.judge(view, script.revision, Suppressions(Path(script.path)))
    order = [s.revision for s in every if revisions is None or s.revision in revisions]
    return judge.report(name, order)


def sql_files(paths: Iterable[Path]) -> list[Path]:
    """The .sql files to lint, in order: each file given, and each directory's, sorted.

    Names sort as their numbers do (``V2__`` before ``V10__``), as migration
    tools apply them.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.glob("*.sql"), key=lambda p: _natural(p.name))
        elif path.is_file():
            if path.suffix.lower() != ".sql":
                raise ConfigError(f"{path} is not a .sql file: lint reads the .sql files given on "
                                  "the command line; revisions come from the project")  # fmt: skip
            found.append(path)
        else:
            raise ConfigError(f"{path}: no such file or directory")
    return found


def _with_history(files: list[Path]) -> list[tuple[Path, bool]]:
    """Each file to lint (True) after the .sql files that sort before it in its directory and
    are not linted themselves (False): replayed, so that it starts from the schema they build."""
    chosen = {f.resolve() for f in files}
    out: list[tuple[Path, bool]] = []
    replayed: set[Path] = set()
    for path in files:
        key = _natural(path.name)
        for earlier in sorted(path.parent.glob("*.sql"), key=lambda p: _natural(p.name)):
            if _natural(earlier.name) >= key:
                break
            if earlier.resolve() not in chosen | replayed:
                replayed.add(earlier.resolve())
                out.append((earlier, False))
        out.append((path, True))
    return out


def _natural(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", name) if part]  # fmt: skip


def lint_sql_files(
    paths: Iterable[Path],
    *,
    project: Project | None = None,
    dialect: str | None = None,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    strict: bool = False,
    pg_version: int = 15,
    db_lock_timeout: str | None = None,
) -> LintReport:
    """Lint plain SQL migration files with the rules that judge ``op.execute()`` SQL.

    ``paths``: files and directories (see :func:`sql_files`), applied in
    that order: the schema each file starts from is what the files before it
    built; a file given alone starts from what the files before it in its
    directory build (read, not reported). Each statement runs outside a
    transaction unless the file opens one (``BEGIN`` ... ``COMMIT``), as
    ``psql -f`` runs a file. ``project``
    (optional) gives the default dialect, pyproject.toml's settings and its
    env.py's lock_timeout; without one, the dialect defaults to postgresql and
    settings come from the pyproject.toml at or above the current directory.
    A file's "revision" is its name, for ``per-revision-ignore``.
    """
    if project is not None:
        name = resolve_dialect(project, dialect)
        start = project.config_path.parent.resolve()
        env_py: Path | None = Path(project.script_directory.dir) / "env.py"
    else:
        name = resolve_dialect(None, dialect or "postgresql")
        start, env_py = Path.cwd().resolve(), None
    judge = _Judge(RULES.select(only, skip), load_settings(start), strict)
    lock_timeout = lock_timeout_in_force(start, db_lock_timeout, env_py)
    files = sql_files(paths)
    schema = Tables()
    for path, linted in _with_history(files):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        pieces = split(text, name)
        recorded = record_sql(str(path), pieces, name)
        view = RevisionLint(name, recorded, schema.copy(), pg_version, lock_timeout, True)
        for r in recorded.operations:
            schema.apply(r.operation)
        if linted:
            judge.judge(view, path.name, sql_suppressions(path, text, pieces))
    return judge.report(name, [path.name for path in files])
