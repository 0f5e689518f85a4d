"""The read-only commands' lean path: the same answers as a cold run, without Alembic.

Each command runs as users run it: a new ``migrasafe`` process in the
project's directory. A cold run (the cache turned off) is the reference; a
warm run must print exactly the same, import neither Alembic, SQLAlchemy,
mako nor rich, and never answer from a cache that no longer holds.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrasafe import load_project
from migrasafe.commands.lean.commands import _applied
from migrasafe.project.graph import applied, apply_order

from conftest import make_project, make_user_project

HEAVY = ("alembic", "sqlalchemy", "rich", "mako")


def migrasafe(
    *args: str, cwd: Path, cache: Path | None, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI in a new process; also returns the top-level packages it imported."""
    environ = {k: v for k, v in os.environ.items() if k not in ("MIGRASAFE_URL", "FLASK_APP")}
    environ.update(env or {})
    if cache is None:
        environ["MIGRASAFE_NO_CACHE"] = "1"
    else:
        environ["MIGRASAFE_CACHE_DIR"] = str(cache)
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "migrasafe", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    lines = run.stderr.splitlines()
    run.stderr = "\n".join(line for line in lines if not line.startswith("import time:"))
    return run, imported


def _same_three_ways(args: tuple[str, ...], cwd: Path, cache: Path, **kw: object) -> set[str]:
    """Cold without cache, cold filling the cache, warm: the same output; the warm run's imports."""
    reference, _ = migrasafe(*args, cwd=cwd, cache=None, **kw)  # type: ignore[arg-type]
    filling, _ = migrasafe(*args, cwd=cwd, cache=cache, **kw)  # type: ignore[arg-type]
    warm, imported = migrasafe(*args, cwd=cwd, cache=cache, **kw)  # type: ignore[arg-type]
    assert reference.returncode in (0, 1), reference.stderr
    for run in (filling, warm):
        assert (run.returncode, run.stdout) == (reference.returncode, reference.stdout), run.stderr
    return imported


def test_warm_status_history_and_validate_import_no_alembic_sqlalchemy_nor_rich(
    tmp_path: Path,
) -> None:
    make_project(tmp_path / "p", "library")
    project, cache = tmp_path / "p", tmp_path / "cache"
    up, _ = migrasafe("upgrade", "0002", cwd=project, cache=None)
    assert up.returncode == 0, up.stderr
    for command in (("status",), ("history",), ("validate",), ("status", "--json")):
        imported = _same_three_ways(command, project, cache)
        assert not imported & set(HEAVY), f"{command}: imported {imported & set(HEAVY)}"


# SQLite and PostgreSQL; styles whose env.py decides the URL in different ways.
LEAN_STYLES = ("generic", "async", "pyproject", "version_table", "engine_attribute",
               "connection_attribute", "database_url", "hardcoded", "flask")  # fmt: skip


# On PostgreSQL, one env.py per way of connecting is enough.
CASES = [(style, "sqlite") for style in LEAN_STYLES] + [
    (style, "postgresql") for style in ("generic", "async", "version_table")
]


@pytest.mark.parametrize(("style", "db_url"), CASES, indirect=["db_url"])
def test_lean_answers_are_the_cold_answers_on_users_projects(
    style: str, db_url: str, tmp_path: Path
) -> None:
    project = make_user_project(style, tmp_path / style, db_url)
    env = {"DATABASE_URL": db_url}
    if style == "flask":
        env["FLASK_APP"] = "app"
    cache = tmp_path / "cache"
    up, _ = migrasafe("upgrade", "2b3c4d5e6f7a", cwd=project, cache=None, env=env)
    assert up.returncode == 0, up.stderr
    for command in (("status", "--json"), ("history",)):
        imported = _same_three_ways(command, project, cache, env=env)
        assert not imported & {"alembic", "sqlalchemy", "rich"}, (command, imported)


def _warm(project: Path, cache: Path, env: dict[str, str]) -> tuple[dict[str, object], bool]:
    run, imported = migrasafe("status", "--json", cwd=project, cache=cache, env=env)
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout), "alembic" not in imported


def test_a_cached_answer_is_never_used_once_what_it_came_from_changed(tmp_path: Path) -> None:
    project = make_user_project("database_url", tmp_path / "p", "unused")
    cache = tmp_path / "cache"
    first = {"DATABASE_URL": f"sqlite:///{tmp_path / 'first.db'}"}
    up, _ = migrasafe("upgrade", cwd=project, cache=None, env=first)
    assert up.returncode == 0, up.stderr
    _warm(project, cache, first)
    status, lean = _warm(project, cache, first)
    assert lean and status["current"] == ["3c4d5e6f7a8b"] and status["pending"] == []

    # env.py reads $DATABASE_URL: another value is another database
    second = {"DATABASE_URL": f"sqlite:///{tmp_path / 'second.db'}"}
    status, lean = _warm(project, cache, second)
    assert not lean and status["current"] == [] and "second.db" in str(status["url"])

    # an applied revision edited (same size, so only the content can tell)
    _warm(project, cache, first)
    script = next((project / "migrations" / "versions").glob("2b3c*.py"))
    text = script.read_text()
    script.write_text(text.replace("books", "bOoks", 1))
    status, lean = _warm(project, cache, first)
    assert [m["revision"] for m in status["modified"]] == ["2b3c4d5e6f7a"]  # type: ignore[index,union-attr]
    script.write_text(text)

    # a new revision file
    _warm(project, cache, first)
    (project / "migrations" / "versions" / "4d_more.py").write_text(
        '"""More."""\nrevision = "4d"\ndown_revision = "3c4d5e6f7a8b"\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
    status, lean = _warm(project, cache, first)
    assert lean and status["pending"] == ["4d"]  # the new file read alone, nothing else

    # a module env.py imports (its models) changed
    _warm(project, cache, first)
    models = project / "models.py"
    models.write_text(models.read_text() + "\n# edited\n")
    _status, lean = _warm(project, cache, first)
    assert not lean
    _status, lean = _warm(project, cache, first)
    assert lean


def test_a_database_url_with_a_password_is_never_cached(tmp_path: Path, pg_url: str) -> None:
    with_password = pg_url.replace("://postgres@", "://postgres:Sup3rS3cret@")
    assert "Sup3rS3cret" in with_password
    project = make_user_project("database_url", tmp_path / "p", "unused")
    cache, env = tmp_path / "cache", {"DATABASE_URL": with_password}
    for _ in range(2):
        status, lean = _warm(project, cache, env)
        assert not lean and status["current"] == []
    assert all("Sup3rS3cret" not in path.read_text() for path in cache.iterdir())
    (answers,) = cache.glob("answers-*.json")
    assert "a password, which is never cached" in answers.read_text()


def _random_history(directory: Path, count: int, seed: int) -> None:
    """Branches, merges and depends_on, as long real histories have them."""
    rng = random.Random(seed)
    heads: list[str] = []
    every: list[str] = []
    for number in range(count):
        revision = f"r{number:03d}"
        if not heads or rng.random() < 0.15:
            down: list[str] = [rng.choice(every)] if every and rng.random() < 0.7 else []
        elif len(heads) > 1 and rng.random() < 0.3:
            down = rng.sample(heads, 2)
        else:
            down = [rng.choice(heads)]
        depends = [rng.choice(every)] if every and rng.random() < 0.1 else []
        depends = [d for d in depends if d not in down]
        heads = [h for h in heads if h not in down] + [revision]
        every.append(revision)
        (directory / f"{revision}.py").write_text(
            f'"""Revision {number}."""\nrevision = {revision!r}\n'
            f"down_revision = {tuple(down) if len(down) > 1 else (down[0] if down else None)!r}\n"
            f"depends_on = {tuple(depends) or None!r}\n\n"
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
        )


@pytest.mark.parametrize("seed", [1, 2])
def test_lean_graph_answers_are_alembics_revision_map(tmp_path: Path, seed: int) -> None:
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    _random_history(versions, 60, seed)
    cache = tmp_path / "cache"
    run, _ = migrasafe("-c", str(ini), "status", cwd=tmp_path / "p", cache=cache)
    assert run.returncode in (0, 1), run.stderr
    (answers_file,) = cache.glob("answers-*.json")
    answers = json.loads(answers_file.read_text())
    script = load_project(ini).script  # imported by Alembic: the reference
    assert answers["graph"]["order"] == [s.revision for s in apply_order(script)]
    assert answers["graph"]["heads"] == list(script.get_heads())
    revisions = answers["graph"]["order"]
    rng = random.Random(seed)
    currents = [[r] for r in revisions] + [rng.sample(revisions, 2) for _ in range(40)]
    for current in currents:
        try:
            expected = applied(script, current)
        except Exception:  # heads no database can have (one the other's ancestor)
            continue
        assert _applied(answers, current) == expected, current


# -- after an edit of revision files alone: the answers are a cold run's --------------

Declared = dict[str, tuple[object, ...]]


def _write_revision(versions: Path, revision: str, declared: dict[str, object]) -> None:
    down, depends, labels = declared["down"], declared["depends"], declared["labels"]
    body = declared.get("body", "pass")
    (versions / f"{revision}.py").write_text(
        f'"""{declared.get("doc", "Revision " + revision)}\n\nMore words."""\n'
        f"revision = {revision!r}\n"
        f"down_revision = {down!r}\n"
        f"branch_labels = {labels!r}\n"
        f"depends_on = {depends!r}\n\n"
        f"def upgrade():\n    {body}\n\n\ndef downgrade():\n    pass\n"
    )


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["body", "doc", "add_on_head", "add_anywhere", "delete", "down",
                         "labels", "depends"]),
        st.integers(min_value=0, max_value=10_000),
    ),
    min_size=1,
    max_size=4,
)  # fmt: skip


def _answers(ini: Path, url: str) -> tuple[object, object]:
    """history and status as the CLI computes them: the lean path, else cold (and cached)."""
    import migrasafe.commands.lean as lean
    from migrasafe.commands.history import history
    from migrasafe.commands.status import status
    from migrasafe.errors import MigrasafeError

    invocation = lean.Invocation(config=(str(ini),), url=url)

    def load() -> object:
        return load_project(ini, url=url)

    try:
        found_history = lean.answer(invocation, lean.history, history, load)  # type: ignore[arg-type]
        found_status = lean.answer(invocation, lean.status, status, load)  # type: ignore[arg-type]
    except MigrasafeError as exc:
        return str(exc), None
    return [e.to_dict() for e in found_history.entries], found_status.to_dict()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10_000), edits=EDITS)
def test_after_editing_revision_files_the_cached_answers_are_a_cold_runs(
    seed: int, edits: list[tuple[str, int]]
) -> None:
    """Edits of revision files alone (env.py as it was): the warm answer, refreshed from
    the changed files only, equals a cold run's; edits it cannot follow go cold."""
    import sqlite3
    import tempfile

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ini = make_project(root / "p", "generic")
        versions = root / "p" / "migrations" / "versions"
        history: dict[str, dict[str, object]] = {}
        order: list[str] = []
        labelled, branchy = rng.random() < 0.3, rng.random() < 0.4  # most histories: neither
        for number in range(8):
            revision = f"r{number:02d}"
            down: object = None
            if order:
                down = rng.choice(order) if branchy and rng.random() < 0.3 else order[-1]
            label = f"lab{number}" if labelled and rng.random() < 0.3 else None
            history[revision] = {"down": down, "depends": None, "labels": label}
            order.append(revision)
            _write_revision(versions, revision, history[revision])
        database = root / "app.db"
        with sqlite3.connect(database) as connection:
            connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
            connection.execute("INSERT INTO alembic_version VALUES (?)", (order[1],))
        url = f"sqlite:///{database}"
        environ = dict(os.environ)
        os.environ["MIGRASAFE_CACHE_DIR"] = str(root / "cache")
        try:
            _answers(ini, url)  # cold: fills the cache
            assert _answers(ini, url) is not None
            for kind, pick in edits:
                _edit(versions, history, order, kind, pick)
                got = _answers(ini, url)
                os.environ["MIGRASAFE_NO_CACHE"] = "1"
                try:
                    expected = _answers(ini, url)
                finally:
                    del os.environ["MIGRASAFE_NO_CACHE"]
                assert got == expected, (kind, pick)
        finally:
            os.environ.clear()
            os.environ.update(environ)


def _edit(versions: Path, history: dict[str, dict[str, object]], order: list[str], kind: str,
          pick: int) -> None:  # fmt: skip
    """One edit of the revision files, as a developer makes them."""
    if not order:
        return
    target = order[pick % len(order)]
    declared = history[target]
    referenced = {d for r in order for d in _downs(history[r])}
    heads = [r for r in order if r not in referenced]
    if kind == "body":
        declared["body"] = f"x = {pick}"
    elif kind == "doc":
        declared["doc"] = f"Edited {pick}"
    elif kind in ("add_on_head", "add_anywhere"):
        revision = f"n{len(order):02d}x{pick}"
        parent = heads[pick % len(heads)] if kind == "add_on_head" else target
        history[revision] = {"down": parent, "depends": None, "labels": None}
        order.append(revision)
        _write_revision(versions, revision, history[revision])
        return
    elif kind == "delete":
        (versions / f"{target}.py").unlink()
        order.remove(target)
        del history[target]
        return
    elif kind == "down":
        earlier = order[: order.index(target)]
        declared["down"] = earlier[pick % len(earlier)] if earlier else None
    elif kind == "labels":
        declared["labels"] = None if declared["labels"] else f"label{pick}"
    elif kind == "depends":
        earlier = order[: order.index(target)]
        declared["depends"] = earlier[pick % len(earlier)] if earlier else None
    _write_revision(versions, target, declared)


def _downs(declared: dict[str, object]) -> tuple[object, ...]:
    down = declared["down"]
    return down if isinstance(down, tuple) else (() if down is None else (down,))


def test_a_body_edit_or_a_new_head_is_answered_without_a_cold_run(tmp_path: Path) -> None:
    """Only the changed files are read again: no Alembic, no env.py."""
    make_project(tmp_path / "p", "library")
    project, cache = tmp_path / "p", tmp_path / "cache"
    up, _ = migrasafe("upgrade", "0002", cwd=project, cache=None)
    assert up.returncode == 0, up.stderr
    versions = project / "migrations" / "versions"
    migrasafe("history", cwd=project, cache=cache)
    script = next(versions.glob("0002_*.py"))
    script.write_text(script.read_text().replace('"""', '"""Edited: ', 1))
    (versions / "0004_more.py").write_text(
        '"""More."""\nrevision = "0004"\ndown_revision = "0003"\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
    for command in (("history",), ("status", "--json")):
        warm, imported = migrasafe(*command, cwd=project, cache=cache)
        cold, _ = migrasafe(*command, cwd=project, cache=None)
        assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout), warm.stderr
        assert not imported & set(HEAVY), (command, imported & set(HEAVY))
    (versions / "0004_more.py").unlink()
    warm, imported = migrasafe("history", cwd=project, cache=cache)
    cold, _ = migrasafe("history", cwd=project, cache=None)
    assert warm.stdout == cold.stdout and "0004" not in warm.stdout
    assert "0002 -> 0003 (head), " in warm.stdout and "Edited: " in warm.stdout
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_a_branch_label_that_is_no_literal_sends_only_its_own_file_cold(tmp_path: Path) -> None:
    make_project(tmp_path / "p", "library")
    project, cache = tmp_path / "p", tmp_path / "cache"
    versions = project / "migrations" / "versions"
    script = next(versions.glob("0001_*.py"))
    text = script.read_text()
    declared = "branch_labels: Union[str, Sequence[str], None] = None"
    assert declared in text
    script.write_text(text.replace(declared, 'LABEL = "books"\nbranch_labels = (LABEL,)'))
    _same_three_ways(("history",), project, cache)
    warm, imported = migrasafe("history", cwd=project, cache=cache)
    assert "0001 (books)" in warm.stdout  # as Alembic shows a branch label
    assert not imported & set(HEAVY), imported & set(HEAVY)
    other = next(versions.glob("0003_*.py"))
    other.write_text(other.read_text() + "\n# edited\n")  # another file: still warm
    warm, imported = migrasafe("history", cwd=project, cache=cache)
    assert not imported & set(HEAVY), imported & set(HEAVY)
    script.write_text(script.read_text().replace('"books"', '"shelf"'))  # its own file: cold
    warm, imported = migrasafe("history", cwd=project, cache=cache)
    cold, _ = migrasafe("history", cwd=project, cache=None)
    assert warm.stdout == cold.stdout and "0001 (shelf)" in warm.stdout
    assert "alembic" in imported


def test_a_settings_module_that_did_not_exist_counts_once_created(tmp_path: Path) -> None:
    """env.py's `try: from local_settings import DATABASE_URL / except ImportError`: the
    module looked for and not found is watched, so creating it sends the next run cold."""
    project = make_user_project("database_url", tmp_path / "p", "unused")
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    anchor = 'os.environ["DATABASE_URL"]'
    assert anchor in text, "the example env.py changed: update this test"
    env_py.write_text("try:\n    from local_settings import DATABASE_URL as _LOCAL\n"
                      "except ImportError:\n    _LOCAL = None\n"
                      + text.replace(anchor, f"(_LOCAL or {anchor})"))  # fmt: skip
    cache = tmp_path / "cache"
    first = {"DATABASE_URL": f"sqlite:///{tmp_path / 'first.db'}"}
    _warm(project, cache, first)
    status, lean = _warm(project, cache, first)
    assert lean and "first.db" in str(status["url"])
    (project / "local_settings.py").write_text(
        f"DATABASE_URL = 'sqlite:///{tmp_path / 'local.db'}'\n"
    )
    status, lean = _warm(project, cache, first)
    assert not lean and "local.db" in str(status["url"])
