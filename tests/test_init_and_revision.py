"""init writes working projects; revision numbers new files sequentially."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrasafe.commands.scaffold import next_revision_id

from conftest import make_project, run_cli, tables


@pytest.mark.parametrize("template", ["generic", "library"])
def test_init_writes_a_project_alembic_itself_can_run(tmp_path: Path, template: str) -> None:
    result = run_cli("init", str(tmp_path / "p"), "--template", template, "--json")
    assert result.exit_code == 0
    files = {
        Path(f).relative_to(tmp_path / "p").as_posix() for f in json.loads(result.stdout)["files"]
    }
    assert {"alembic.ini", "migrations/env.py", "migrations/script.py.mako"} <= files
    if template == "library":
        assert {"library/models.py", "migrations/versions/0003_backfill_book_details.py"} <= files
    # Plain Alembic reads the same project: it is an ordinary Alembic project.
    alembic = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(tmp_path / "p" / "alembic.ini"), "heads"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert alembic.returncode == 0, alembic.stderr
    assert alembic.stdout.strip() == ("0003 (head)" if template == "library" else "")


def test_generic_project_starts_empty_and_up_to_date(tmp_path: Path, db_url: str) -> None:
    ini = make_project(tmp_path / "p", "generic")
    assert run_cli("-c", str(ini), "--url", db_url, "status").exit_code == 0
    assert run_cli("-c", str(ini), "validate").exit_code == 0


def test_revision_gets_the_next_sequential_id(library: Path, db_url: str) -> None:
    result = run_cli("-c", str(library), "revision", "-m", "Add loans table", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["revision"] == "0004" and data["down_revision"] == ["0003"]
    assert Path(data["path"]).name == "0004_add_loans_table.py"
    assert run_cli("-c", str(library), "validate").exit_code == 0
    assert run_cli("-c", str(library), "--url", db_url, "upgrade").exit_code == 0
    status = json.loads(run_cli("-c", str(library), "--url", db_url, "status", "--json").stdout)
    assert status["current"] == ["0004"]


def test_first_revision_of_a_generic_project_is_0001(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic")
    result = run_cli("-c", str(ini), "revision", "-m", "first", "--json")
    assert json.loads(result.stdout)["revision"] == "0001"


def test_next_revision_id_keeps_the_width() -> None:
    assert next_revision_id([]) == "0001"
    assert next_revision_id(["0001", "0002", "0003"]) == "0004"
    assert next_revision_id(["009", "010"]) == "011"
    assert next_revision_id(["0009", "ae1027a6acf"]) == "0010"
    assert next_revision_id(["ae1027a6acf1", "1975ea83b712"]) is None  # Alembic's own ids


def test_autogenerate_writes_the_model_change(library: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'auto.db'}"
    assert run_cli("-c", str(library), "--url", url, "upgrade").exit_code == 0
    models = library.parent / "library" / "models.py"
    models.write_text(models.read_text().replace(
        "    description: Mapped[str | None] = mapped_column(Text)\n",
        "    description: Mapped[str | None] = mapped_column(Text)\n"
        "    language: Mapped[str | None] = mapped_column(String(20))\n",
    ))  # fmt: skip
    # A new process: the library's models module is imported fresh.
    result = subprocess.run(
        [sys.executable, "-m", "migrasafe", "-c", str(library), "--url", url,
         "revision", "-m", "add language", "--autogenerate", "--json"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = Path(json.loads(result.stdout)["path"])
    assert written.name == "0004_add_language.py"
    text = written.read_text()
    assert "add_column(sa.Column('language'" in text and "drop_column('language')" in text
    assert "migrasafe_backfill_0003" not in text  # migrasafe's own tables are not the models'
    assert tables(url) >= {"books", "reviews"}
