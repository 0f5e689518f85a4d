"""missing-lock-timeout follows the deploy settings in force, not the words in env.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli


def _rules(ini: Path, *args: str) -> list[tuple[str, str]]:
    result = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return [(f["revision"], f["rule"]) for f in json.loads(result.stdout)["findings"]]


FIRES = [("0002", "missing-lock-timeout")]  # the reference project's 0002 alters books


def _env_py(ini: Path, code: str) -> None:
    """Put ``code`` into env.py just before it runs the migrations."""
    env_py = ini.parent / "migrations" / "env.py"
    source = env_py.read_text()
    marker = "def _migrate(connection: Connection) -> None:\n"
    assert marker in source
    env_py.write_text(source.replace(marker, marker + code))


def test_fires_with_no_lock_timeout_anywhere(library: Path) -> None:
    assert _rules(library) == FIRES


def test_quiet_when_pyproject_sets_db_lock_timeout(library: Path) -> None:
    (library.parent / "pyproject.toml").write_text('[tool.migrasafe]\ndb-lock-timeout = "2s"\n')
    assert _rules(library) == []
    (library.parent / "pyproject.toml").write_text("[tool.migrasafe]\ndb-lock-timeout = 0\n")
    refused = run_cli("-c", str(library), "lint")  # 0 would mean no timeout: refused outright
    assert refused.exit_code == 2 and "no timeout" in refused.stderr


def test_quiet_when_lint_is_told_the_deploy_timeout(library: Path) -> None:
    assert _rules(library, "--db-lock-timeout", "2s") == []
    assert _rules(library, "--db-lock-timeout", "500ms") == []
    refused = run_cli("-c", str(library), "lint", "--db-lock-timeout", "0")
    assert refused.exit_code == 2 and "no timeout" in refused.stderr
    result = run_cli("-c", str(library), "lint", "--db-lock-timeout", "soon")
    assert result.exit_code == 2 and "expected a duration" in result.stderr


@pytest.mark.parametrize(
    "code",
    [
        "    connection.execute(text(\"SET lock_timeout = '2s'\"))\n",
        "    connection.exec_driver_sql(\"SET LOCAL lock_timeout TO '5s'\")\n",
        '    timeout = "3s"\n    connection.execute(text(f"SET lock_timeout = \'{timeout}\'"))\n',
        '    context.execute("SET lock_timeout = 4000")\n',
    ],
)
def test_quiet_when_env_py_executes_set_lock_timeout(library: Path, code: str) -> None:
    env_py = library.parent / "migrations" / "env.py"
    imports = "from sqlalchemy import engine_from_config"
    env_py.write_text(env_py.read_text().replace(imports, imports + ", text"))
    _env_py(library, code)
    assert _rules(library) == []


def test_quiet_when_env_py_connects_with_a_lock_timeout_option(library: Path) -> None:
    env_py = library.parent / "migrations" / "env.py"
    source = env_py.read_text()
    old = "        poolclass=pool.NullPool,\n"
    assert old in source
    env_py.write_text(source.replace(
        old, old + '        connect_args={"options": "-c lock_timeout=2000"},\n'
    ))  # fmt: skip
    assert _rules(library) == []


@pytest.mark.parametrize(
    "code",
    [
        "    # TODO: SET lock_timeout = '2s' here, as the DBA asked\n",
        "    HELP = \"run with SET lock_timeout = '2s'\"\n",
        "    print(\"SET lock_timeout = '2s'\")\n",
        '    connection.execute(text("SET lock_timeout = 0"))\n',
        "    connection.execute(text(\"SET statement_timeout = '2s'\"))\n",
    ],
)
def test_words_in_env_py_that_set_no_lock_timeout_do_not_silence_it(
    library: Path, code: str
) -> None:
    """A comment, a string never executed, a timeout of 0 or another setting."""
    _env_py(library, code)
    assert _rules(library) == FIRES


def test_sql_files_follow_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.sql").write_text("CREATE TABLE t (a int);\n")
    (tmp_path / "n.sql").write_text("ALTER TABLE t ADD COLUMN b int;\n")
    result = run_cli("lint", "--json", "n.sql")
    assert [f["rule"] for f in json.loads(result.stdout)["findings"]] == ["missing-lock-timeout"]
    result = run_cli("lint", "--json", "--db-lock-timeout", "2s", "n.sql")
    assert json.loads(result.stdout)["findings"] == []
    (tmp_path / "pyproject.toml").write_text('[tool.migrasafe]\ndb-lock-timeout = "2s"\n')
    assert json.loads(run_cli("lint", "--json", "n.sql").stdout)["findings"] == []
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "n.sql").write_text("SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN b int;\n")
    assert json.loads(run_cli("lint", "--json", "n.sql").stdout)["findings"] == []
