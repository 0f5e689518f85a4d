"""Property-based tests (hypothesis): odd revision files and targets never crash a command.

Whatever a revision file declares, and whatever target is asked for, the
outcome is a result or a MigrasafeError (one line for the user), never
another exception; a refused target leaves the database where it was.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrasafe import MigrasafeError, history, load_project, status, upgrade, validate
from migrasafe.deploy.migrate import downgrade

from conftest import make_project

IDS = st.one_of(
    st.text(alphabet="abc0123_-@:+ '\"./", min_size=0, max_size=6),
    st.sampled_from(["0001", "0002", "0003", "head", "base", ""]),
)
VALUES = st.recursive(
    st.one_of(IDS, st.none(), st.integers(-5, 5), st.binary(max_size=3).map(repr)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(map(_py, xs)) + "]"),
        st.lists(inner, max_size=3).map(lambda xs: "(" + "".join(_py(x) + ", " for x in xs) + ")"),
        st.lists(inner, max_size=2).map(lambda xs: "frozenset([" + ", ".join(map(_py, xs)) + "])"),
    ),
    max_leaves=4,
)


def _py(value: object) -> str:
    """A Python expression for a generated value (strings are quoted, code is kept)."""
    if isinstance(value, str) and (value.startswith(("[", "(", "frozenset", "b'", 'b"'))):
        return value
    return repr(value)


@pytest.fixture(scope="module")
def base_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("prop") / "p").parent


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(revision=VALUES, down=VALUES)
def test_any_revision_declaration_gives_a_result_or_a_clear_error(
    base_project: Path, revision: object, down: object
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch) / "p"
        shutil.copytree(base_project, project)
        (project / "migrations" / "versions" / "0004_odd.py").write_text(
            '"""odd"""\nfrom alembic import op\n\n'
            f"revision = {_py(revision)}\ndown_revision = {_py(down)}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
        )
        url = f"sqlite:///{project / 'app.db'}"
        for command in (status, history, lambda p: validate(p, database=True)):
            try:
                command(load_project(project / "alembic.ini", url))
            except MigrasafeError as exc:
                assert str(exc) and "\n" not in str(exc).strip()


TARGETS = st.one_of(
    st.text(alphabet="0123abc@:+-_ hedsbx", max_size=12),
    st.sampled_from(["head", "heads", "base", "+1", "-1", "0001", "0002@head", "heads+1"]),
    st.builds(
        lambda a, b: f"{a}{b}",
        st.sampled_from(["", "0001", "head", "base", "x@"]),
        st.sampled_from(["", "+1", "-1", "+9", "@", ":0001", "@base"]),
    ),
)


@pytest.fixture(scope="module")
def at_0002(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("targets")
    ini = make_project(directory / "p")
    database = directory / "app.db"
    upgrade(load_project(ini, f"sqlite:///{database}"), "0002")
    return ini, database


def _version(database: Path) -> list[tuple[object, ...]]:
    engine = sa.create_engine(f"sqlite:///{database}", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [
                tuple(r) for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            ]
    finally:
        engine.dispose()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=TARGETS, up=st.booleans())
def test_any_target_moves_as_asked_or_not_at_all(
    at_0002: tuple[Path, Path], target: str, up: bool
) -> None:
    ini, template = at_0002
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "app.db"
        shutil.copy(template, database)
        project = load_project(ini, f"sqlite:///{database}")
        project.config.attributes["configure_logger"] = False
        try:
            result = (upgrade if up else downgrade)(project, target)
        except MigrasafeError as exc:
            assert str(exc)
            assert _version(database) == [("0002",)], target  # refused: nothing moved
        else:
            assert [(v,) for v in result.after] == _version(database)


# -- [tool.migrasafe], [tool.migrasafe.lint] and [tool.migrasafe.verify] ---------------------


def _toml(value: object) -> str:
    """A TOML value for a generated one (an inline table for a dict)."""
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
                if math.isinf(value) else repr(value))  # fmt: skip
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


KEYS = st.sampled_from(["db-lock-timeout", "statement-timeout", "retries", "lint", "verify",
                        "ignore", "per-revision-ignore", "irreversible", "before_revision_data",
                        "0001", "0002", "books", "retry", "x"])  # fmt: skip
SCALARS = st.one_of(st.integers(-3, 10**31), st.floats(allow_nan=True), st.booleans(),
                    st.sampled_from(["2s", "0", "500ms", "soon", "drop-column", "nosuch.json",
                                     "", "1e400"]))  # fmt: skip
TOML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)


def _table_of(keys: list[str], values: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """A table whose keys are mostly the ones a reader knows, else anything generated."""
    return st.one_of(TOML_VALUES, st.dictionaries(st.sampled_from(keys), values, max_size=3))


ROW = st.dictionaries(st.sampled_from(["id", "name"]), SCALARS, max_size=2)
ROWS = st.one_of(TOML_VALUES, st.lists(ROW, max_size=2))
SECTIONS = st.fixed_dictionaries({}, optional={
    "db-lock-timeout": SCALARS, "statement-timeout": SCALARS, "retries": SCALARS,
    "lint": _table_of(["ignore", "per-revision-ignore", "x"], st.one_of(
        TOML_VALUES, st.dictionaries(st.sampled_from(["0001", "0002"]), TOML_VALUES))),
    "verify": _table_of(["irreversible", "before_revision_data", "x"], st.one_of(
        TOML_VALUES, st.dictionaries(st.sampled_from(["0001", "0002"]),
                                     _table_of(["books", "authors"], ROWS)))),
    "retry": SCALARS,
})  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=SECTIONS)
def test_any_tool_migrasafe_table_gives_settings_or_one_config_error(
    section: dict[str, object],
) -> None:
    """Whatever [tool.migrasafe] holds, each reader returns settings or a ConfigError naming
    the problem: never another exception, never a setting silently ignored."""
    from migrasafe.checks.lint.suppress import load_settings
    from migrasafe.checks.verify.declarations import load_declarations
    from migrasafe.errors import ConfigError
    from migrasafe.project.settings import load_deploy_settings

    lines = ["[tool.migrasafe]"] + [f"{_key(k)} = {_toml(v)}" for k, v in section.items()]
    with tempfile.TemporaryDirectory() as temp:
        (Path(temp) / "pyproject.toml").write_text("\n".join(lines) + "\n")
        for reader in (load_deploy_settings, load_settings, load_declarations):
            try:
                reader(Path(temp))
            except ConfigError as exc:
                assert str(exc) and "\n" not in str(exc).strip()


def _key(name: str) -> str:
    import json

    return json.dumps(name)
