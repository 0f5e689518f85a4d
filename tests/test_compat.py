"""`compat REF`: the release running (its models at a git ref) against the schema a deploy leaves.

A rename of authors.country to country_code, in one revision, breaks the
release before it (its model still maps country); split into an expand
revision (add country_code, fill it) and a contract one (drop country), the
expand phase leaves a schema both releases work on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import make_user_project, run_cli

NEW_MODEL = 'sa.Column("country_code", sa.String(2), nullable=True),\n'


def _git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True)


def _released(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared three-revision project, committed as release v1; the working tree next."""
    directory = make_user_project("generic", tmp_path / "app", url)
    monkeypatch.chdir(directory)
    monkeypatch.delitem(__import__("sys").modules, "models", raising=False)
    _git(directory, "init", "-q", "-b", "main")
    _git(directory, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(directory, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1")
    _git(directory, "tag", "v1")
    models = directory / "models.py"
    text = models.read_text()
    old = 'sa.Column("country", sa.String(2), nullable=True),\n'
    assert old in text
    models.write_text(text.replace(old, NEW_MODEL))  # the new release maps country_code
    return directory


def _revision(directory: Path, rev: str, down: str, body: str, extra: str = "") -> None:
    (directory / "migrations" / "versions" / f"{rev}_r.py").write_text(
        f'"""{rev}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\n{extra}\n"
        f"def upgrade() -> None:\n{body}\n\ndef downgrade() -> None:\n    pass\n"
    )


def test_a_rename_in_one_revision_breaks_the_running_release(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _released(tmp_path, db_url, monkeypatch)
    _revision(directory, "4d5e6f7a8b9c", "3c4d5e6f7a8b",
              '    with op.batch_alter_table("authors") as b:\n'
              '        b.alter_column("country", new_column_name="country_code")')  # fmt: skip
    result = run_cli("compat", "v1", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["after"] == "head"
    broken = [(f["rule"], f["table"], f["column"]) for f in report["findings"]]
    assert ("compat-missing-column", "authors", "country") in broken
    assert all(f["path"] == "models at v1" for f in report["findings"])


def test_the_same_rename_split_into_expand_and_contract_passes(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _released(tmp_path, db_url, monkeypatch)
    _revision(directory, "4d5e6f7a8b9c", "3c4d5e6f7a8b",
              '    op.add_column("authors", sa.Column("country_code", sa.String(2)))\n'
              '    op.execute("UPDATE authors SET country_code = country")',
              extra='phase = "expand"')  # fmt: skip
    _revision(directory, "5e6f7a8b9c0d", "4d5e6f7a8b9c",
              '    with op.batch_alter_table("authors") as b:\n        b.drop_column("country")',
              extra='phase = "contract"')  # fmt: skip
    result = run_cli("compat", "v1", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["after"] == "expand" and report["findings"] == []
    assert report["applied"][-1] == "4d5e6f7a8b9c"  # the contract revision waits
    text = run_cli("compat", "v1").stdout
    assert "Both releases work on that schema." in text


def test_a_ref_that_is_no_commit_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _released(tmp_path, f"sqlite:///{tmp_path / 'db'}", monkeypatch)
    for ref in ("nosuch", "--output=x"):
        result = run_cli("compat", "--", ref)
        assert result.exit_code == 2
        assert "git ref" in result.stderr or "no commit" in result.stderr


def test_compat_of_an_unchanged_project_on_sqlite_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library template's models have a unique column: a row written by the old release
    must not stay behind to collide with the new release's (SQLite's savepoints commit)."""
    from conftest import make_project

    ini = make_project(tmp_path / "lib")
    monkeypatch.chdir(ini.parent)
    monkeypatch.delitem(__import__("sys").modules, "library.models", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "library", raising=False)
    _git(ini.parent, "init", "-q", "-b", "main")
    _git(ini.parent, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(ini.parent, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1")
    result = run_cli("compat", "HEAD", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["findings"] == []


def test_compat_without_models_is_an_error_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import make_project

    ini = make_project(tmp_path / "g", "generic")  # target_metadata = None
    monkeypatch.chdir(ini.parent)
    _git(ini.parent, "init", "-q", "-b", "main")
    _git(ini.parent, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(ini.parent, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1")
    result = run_cli("compat", "HEAD")
    assert result.exit_code == 2 and "target_metadata" in result.stderr
