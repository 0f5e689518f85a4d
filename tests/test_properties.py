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
