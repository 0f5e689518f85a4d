"""No sequence of edits makes the lean path answer otherwise than a cold run.

A hypothesis state machine edits a project the way its developers and its
machine do: revision files added, edited (also to the same size with the
mtime restored, the parent included), removed and touched; ``env.py`` and the
settings module it imports edited; the environment variable ``env.py`` reads
changed; the SQLite file swapped for another; the installed package ``env.py``
imports upgraded. After each step ``history --json`` and ``status --json``
through the cache (twice: the second must be a warm answer) are byte for
byte a cold run's (``MIGRASAFE_NO_CACHE=1``).

In one process, as the other in-process tests run: each answer starts as a
new process would, without the project's modules imported, with fresh
import and checksum caches, and without bytecode (Python takes a ``.pyc``
whose source kept its size and whole-second mtime for current, for Alembic
as for anyone: a cold run would then be the stale one).
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from migrasafe import load_project
from migrasafe.deploy import records

from conftest import make_project

ENV_PY = """import os
import sys

from alembic import context
from sqlalchemy import create_engine, pool

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if here not in sys.path:
    sys.path.insert(0, here)
import fakepkg
import settings

EXTRA = "a"
name = os.environ.get("MS_SM_DATABASE", settings.DATABASE)
url = f"sqlite:///{os.path.join(here, name + fakepkg.SUFFIX + EXTRA)}.db"
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, version_table=settings.VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
"""
SETTINGS = 'DATABASE = "one"\nVERSION_TABLE = "alembic_version"\n'


def _revision(revision: str, down: str | None, digit: int, doc: str = "") -> str:
    return (
        f'"""Revision {revision}{doc}."""\nrevision = {revision!r}\n'
        f"down_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n"
        f"def upgrade():\n    x = {digit}\n\n\ndef downgrade():\n    pass\n"
    )


def _same_size(path: Path, old: str, new: str, restore: bool) -> None:
    """Replace ``old`` by ``new`` (as long) in a file; with ``restore``, keep its mtime."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new, 1))
    if restore:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


class LeanCache(RuleBasedStateMachine):
    """A project under random edits; the cache's answers checked against a cold run's."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="lean-sm-"))
        self.site = self.root / "lib" / "site-packages"  # installed: not the project's files
        self.version = 1
        self._install()
        self.ini = make_project(self.root / "p", "generic")
        self.project = self.ini.parent
        self.versions = self.project / "migrations" / "versions"
        (self.project / "migrations" / "env.py").write_text(ENV_PY)
        (self.project / "settings.py").write_text(SETTINGS)
        self.parents: dict[str, str | None] = {}
        self.count = 0
        for _ in range(4):
            self._add(self._heads()[0] if self.parents else None)
        self.saved = dict(os.environ)
        self.path = list(sys.path)
        self.bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        sys.path.append(str(self.site))
        os.environ["MIGRASAFE_CACHE_DIR"] = str(self.root / "cache")
        os.environ.pop("MIGRASAFE_NO_CACHE", None)
        os.environ.pop("MS_SM_DATABASE", None)
        self._pool()

    # -- the project --------------------------------------------------------------------

    def _install(self) -> None:
        for old in self.site.glob("fakepkg-*.dist-info"):
            shutil.rmtree(old)
        package = self.site / "fakepkg"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text(f'SUFFIX = "v{self.version}"\n')
        info = self.site / f"fakepkg-{self.version}.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: fakepkg\nVersion: {self.version}.0\n")
        (info / "RECORD").write_text("fakepkg/__init__.py,,\n")

    def _heads(self) -> list[str]:
        referenced = set(self.parents.values())
        return sorted(r for r in self.parents if r not in referenced)

    def _add(self, parent: str | None) -> None:
        revision = f"r{self.count:02d}"
        self.count += 1
        self.parents[revision] = parent
        (self.versions / f"{revision}.py").write_text(_revision(revision, parent, 0))

    def _file(self, pick: int) -> tuple[str, Path] | None:
        if not self.parents:
            return None
        revision = sorted(self.parents)[pick % len(self.parents)]
        return revision, self.versions / f"{revision}.py"

    def _chosen(self) -> Path:
        """The database env.py picks now."""
        extra = 'EXTRA = "b"' in (self.project / "migrations" / "env.py").read_text()
        text = (self.project / "settings.py").read_text()
        name = os.environ.get("MS_SM_DATABASE") or ("two" if '"two"' in text else "one")
        return self.project / f"{name}v{self.version}{'b' if extra else 'a'}.db"

    def _pool(self) -> None:
        """Databases to swap in: at head with migrasafe's checksums, one revision back, empty."""
        from migrasafe import upgrade

        self._fresh()
        upgrade(load_project(self.ini))
        head = self._chosen()
        self.pool = [self.root / f"pool{n}.db" for n in range(3)]
        shutil.copy(head, self.pool[0])
        shutil.copy(head, self.pool[1])
        with sqlite3.connect(self.pool[1]) as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'r01'")
        sqlite3.connect(self.pool[2]).close()

    def teardown(self) -> None:
        os.environ.clear()
        os.environ.update(self.saved)
        sys.path[:] = self.path
        sys.dont_write_bytecode = self.bytecode
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the edits ----------------------------------------------------------------------

    @rule(pick=st.integers(0, 99), on_head=st.booleans())
    def add_revision(self, pick: int, on_head: bool) -> None:
        choices = self._heads() if on_head else sorted(self.parents)
        self._add(choices[pick % len(choices)] if choices else None)

    @rule(pick=st.integers(0, 99), doc=st.sampled_from(["", " edited", " \x1b[31mred"]))
    def edit_revision(self, pick: int, doc: str) -> None:
        found = self._file(pick)
        if found:
            revision, path = found
            path.write_text(_revision(revision, self.parents[revision], pick % 10, doc))

    @rule(pick=st.integers(0, 99), digit=st.integers(1, 9), restore=st.booleans())
    def edit_revision_same_size(self, pick: int, digit: int, restore: bool) -> None:
        found = self._file(pick)
        if found:
            text = found[1].read_text()
            old = text[text.index("    x = ") :][:9]
            _same_size(found[1], old, f"    x = {digit}", restore)

    @rule(pick=st.integers(0, 99), other=st.integers(0, 99), restore=st.booleans())
    def reparent_same_size(self, pick: int, other: int, restore: bool) -> None:
        """A different parent of the same length, mtime restored: only the content tells."""
        found, parent = self._file(pick), self._file(other)
        if found and parent and self.parents[found[0]] and parent[0] != found[0]:
            revision, path = found
            _same_size(path, f"down_revision = {self.parents[revision]!r}",
                       f"down_revision = {parent[0]!r}", restore)  # fmt: skip
            self.parents[revision] = parent[0]

    @rule(pick=st.integers(0, 99), head=st.booleans())
    def remove_revision(self, pick: int, head: bool) -> None:
        heads = self._heads()
        if head and heads:
            revision = heads[pick % len(heads)]
        elif found := self._file(pick):
            revision = found[0]
        else:
            return
        (self.versions / f"{revision}.py").unlink()
        del self.parents[revision]

    @rule(pick=st.integers(0, 99))
    def touch_revision(self, pick: int) -> None:
        found = self._file(pick)
        if found:
            now = found[1].stat().st_mtime_ns + 1_000_000_000
            os.utime(found[1], ns=(now, now))

    @rule(restore=st.booleans())
    def edit_env_py(self, restore: bool) -> None:
        env_py = self.project / "migrations" / "env.py"
        old = 'EXTRA = "a"' if 'EXTRA = "a"' in env_py.read_text() else 'EXTRA = "b"'
        _same_size(env_py, old, 'EXTRA = "b"' if old.endswith('"a"') else 'EXTRA = "a"', restore)

    @rule(restore=st.booleans(), table=st.booleans())
    def edit_settings(self, restore: bool, table: bool) -> None:
        path = self.project / "settings.py"
        text = path.read_text()
        if table:
            old = '"alembic_version"' if '"alembic_version"' in text else '"alembic_versioz"'
            new = '"alembic_versioz"' if old == '"alembic_version"' else '"alembic_version"'
        else:
            old = '"one"' if '"one"' in text else '"two"'
            new = '"two"' if old == '"one"' else '"one"'
        _same_size(path, old, new, restore)

    @rule(value=st.sampled_from([None, "one", "two", "three"]))
    def set_environment_variable(self, value: str | None) -> None:
        if value is None:
            os.environ.pop("MS_SM_DATABASE", None)
        else:
            os.environ["MS_SM_DATABASE"] = value

    @rule(pick=st.integers(0, 3))
    def swap_database(self, pick: int) -> None:
        chosen = self._chosen()
        if pick == 3:
            chosen.unlink(missing_ok=True)
            return
        copy = chosen.with_suffix(".new")
        shutil.copy(self.pool[pick], copy)
        os.replace(copy, chosen)

    @rule()
    def upgrade_package(self) -> None:
        self.version += 1
        self._install()

    # -- the property -------------------------------------------------------------------

    def _fresh(self) -> None:
        """As a new process starts: the project's modules not imported, no caches."""
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if name in ("settings", "fakepkg") or origin.startswith(str(self.root)):
                del sys.modules[name]
        importlib.invalidate_caches()
        records._checksums.clear()

    def _answers(self, cache: bool) -> tuple[str, str, bool]:
        """history and status --json as the CLI prints them, and whether both were warm."""
        import migrasafe.commands.lean as lean
        from migrasafe.commands.history import history
        from migrasafe.commands.status import status

        if not cache:
            os.environ["MIGRASAFE_NO_CACHE"] = "1"
        warm = []
        invocation = lean.Invocation(config=(str(self.ini),))
        outputs = []
        commands = (
            (lean.history, history, lambda r: [[e.to_dict() for e in r.entries], r.warning],
             lambda r: r.warning is None),
            (lean.status, status, lambda r: r.to_dict(), lambda _r: True),
        )  # fmt: skip
        try:
            for lean_command, cold_command, shown, keep in commands:
                self._fresh()

                def watched(found: Any, command: Any = lean_command) -> Any:
                    result = command(found)
                    warm.append(result is not None)
                    return result

                try:
                    result = lean.answer(invocation, watched, cold_command,
                                         lambda: load_project(self.ini), keep)  # fmt: skip
                except Exception as exc:  # compared, whatever it is
                    outputs.append(f"{type(exc).__name__}: {exc}")
                    continue
                outputs.append(json.dumps(shown(result), indent=2, default=str))
        finally:
            os.environ.pop("MIGRASAFE_NO_CACHE", None)
        return outputs[0], outputs[1], all(warm)

    @invariant()
    def warm_answers_are_a_cold_runs(self) -> None:
        history_1, status_1, _ = self._answers(cache=True)  # warm, refreshed or cold
        history_2, status_2, warm = self._answers(cache=True)
        history_0, status_0, _ = self._answers(cache=False)
        assert history_1 == history_0 and status_1 == status_0
        assert history_2 == history_0 and status_2 == status_0
        failed = "Error" in history_0[:60] or "Error" in status_0[:60]
        assert warm or failed, "nothing changed, yet the second run was not answered warm"


LeanCache.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=7,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_lean_cache_answers_are_a_cold_runs_after_any_edits = LeanCache.TestCase
