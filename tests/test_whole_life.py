"""A project's whole life with migrasafe alone, on the layouts users have, and Alembic agrees.

Generic, async (asyncpg on PostgreSQL), pyproject and Flask-Migrate
(``FLASK_APP=app``, module style) projects from ``tests/envs/``: upgrade, a
model change written by ``revision --autogenerate``, ``check`` before and after
applying it, a branch and its merge, ``stamp``, ``show current``, ``downgrade``.
At each step that changes the answer, ``alembic`` (``flask db`` for Flask)
is asked the same question of the same files and database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_user_project, run_cli

LAYOUTS = ("generic", "async", "pyproject", "flask")
HEAD = "3c4d5e6f7a8b"


def _plain(style: str, directory: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The same question asked of plain Alembic, in a process of its own."""
    if style == "flask":
        command = [sys.executable, "-m", "flask", "db", *args]
    else:
        command = [sys.executable, "-m", "alembic", *args]
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "app"}
    return subprocess.run(command, capture_output=True, text=True, cwd=directory, env=env,
                          check=False)  # fmt: skip


def _ids(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines() if line.strip() and line[0].isalnum()}


def _json(*args: str) -> object:
    result = run_cli(*args, "--json")
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def _add_isbn(style: str, directory: Path) -> None:
    """A model change: books gets an isbn column."""
    if style == "flask":
        path, anchor = directory / "app.py", '    __tablename__ = "books"\n'
        line = "    isbn = db.Column(db.String(20), nullable=True)\n"
    else:
        path, anchor = (
            directory / "models.py",
            '    sa.Column("title", sa.String(200), nullable=False),\n',
        )
        line = '    sa.Column("isbn", sa.String(20), nullable=True),\n'
    text = path.read_text()
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + line, 1))
    for name in ("models", "app"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("style", LAYOUTS)
def test_a_whole_life_with_migrasafe_alone(
    style: str, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = make_user_project(style, tmp_path / style, db_url)
    monkeypatch.chdir(directory)
    for name in ("ALEMBIC_CONFIG", "MIGRASAFE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("FLASK_APP", "app")  # module style, as `flask db` accepts it
    for name in ("models", "app"):
        monkeypatch.delitem(sys.modules, name, raising=False)

    assert run_cli("upgrade").exit_code == 0
    current = _json("current")
    assert isinstance(current, dict) and current["heads"] == [HEAD]
    assert _ids(_plain(style, directory, db_url, "current").stdout) == {HEAD}

    _add_isbn(style, directory)
    written = _json("revision", "--autogenerate", "-m", "add isbn")
    assert isinstance(written, dict)
    new = str(written["revision"])
    text = Path(str(written["path"])).read_text()
    assert "add_column(" in text and "isbn" in text
    assert run_cli("check").exit_code == 2  # not at head: as alembic check, nothing compared
    assert run_cli("upgrade").exit_code == 0
    clean = run_cli("check", "--json")
    assert clean.exit_code == 0, clean.stdout + clean.stderr
    assert _plain(style, directory, db_url, "check").returncode == 0

    side = _json("revision", "-m", "side", "--head", HEAD, "--splice", "--rev-id", "side0001")
    assert isinstance(side, dict) and side["down_revision"] == [HEAD]
    heads = _json("heads")
    assert {h["revision"] for h in heads} == {new, "side0001"}  # type: ignore[union-attr,index]
    assert _ids(_plain(style, directory, db_url, "heads").stdout) == {new, "side0001"}
    merged = _json("merge", "-m", "join", "--rev-id", "merge0001")
    assert isinstance(merged, dict) and set(merged["down_revision"]) == {new, "side0001"}  # type: ignore[arg-type]
    assert run_cli("upgrade", "heads").exit_code == 0
    assert _ids(_plain(style, directory, db_url, "current").stdout) == {"merge0001"}

    assert run_cli("stamp", new).exit_code == 0
    assert _ids(_plain(style, directory, db_url, "current").stdout) == {new}
    status = json.loads(run_cli("status", "--json").stdout)
    assert status["pending"] == ["side0001", "merge0001"]
    assert run_cli("stamp", "heads").exit_code == 0
    shown = _json("show", "current")
    assert [s["revision"] for s in shown] == ["merge0001"]  # type: ignore[union-attr,index]

    assert run_cli("downgrade", HEAD).exit_code == 0
    assert _ids(_plain(style, directory, db_url, "current").stdout) == {HEAD}
