"""Installing migrasafe never breaks `alembic`: its plugin loads on every Alembic it allows.

Alembic 1.18.0 to 1.20.0 iterate over what the ``alembic.plugins`` entry point
loads and set up each module it yields; 1.20.1 sets up the module itself.
These tests load the entry point both ways, whatever Alembic is installed;
.ci/run also runs this file, and ``alembic`` itself, with the oldest Alembic
and SQLAlchemy that pyproject.toml allows. That autogenerate and ``alembic
check`` then leave ``migrasafe_checksums`` alone is
tests/test_user_projects.py's ``test_alembic_check_passes_after_migrasafe_upgrade``.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

from alembic.runtime.plugins import Plugin


def _loaded() -> object:
    (entry_point,) = [
        e for e in metadata.entry_points(group="alembic.plugins") if e.name == "migrasafe"
    ]
    return entry_point.load()


def test_the_entry_point_is_a_plugin_module_as_alembic_1_20_1_sets_it_up() -> None:
    loaded = _loaded()
    assert isinstance(loaded, ModuleType)
    assert callable(loaded.setup)


def test_the_entry_point_yields_that_one_module_as_alembic_1_18_to_1_20_0_iterate_it() -> None:
    loaded = _loaded()
    modules = list(loaded)  # type: ignore[call-overload]
    assert modules == [loaded]
    # what those versions then do with each module it yields
    plugin_name = "migrasafe.test_iteration"
    Plugin.setup_plugin_from_module(modules[0], plugin_name)
    from alembic.runtime.plugins import _all_plugins

    registered = _all_plugins.pop(plugin_name).autogenerate_comparators._registry
    assert [fn for fns in registered.values() for fn, _ in fns] == [loaded._hide_bookkeeping]  # type: ignore[attr-defined]


def test_alembic_runs_with_migrasafe_installed_and_warns_of_nothing(tmp_path: Path) -> None:
    for args in (["--help"], ["list_templates"]):
        ran = subprocess.run(
            [sys.executable, "-W", "error", "-m", "alembic", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stderr == ""
