"""Every alembic command through migrasafe, and `alembic` agrees with each answer.

A project's whole life (revision, branch, merge, upgrade, stamp, show, current,
heads, branches, check, edit, downgrade) with migrasafe alone, on SQLite and
PostgreSQL, with plain Alembic asked the same questions of the same files and
database after each step.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_project, query, run_cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _with_url(ini: Path, url: str) -> Path:
    """The project's own alembic.ini names the database, so `alembic` reads the same one."""
    text = ini.read_text()
    ini.write_text(re.sub(r"(?m)^sqlalchemy\.url = .*$", f"sqlalchemy.url = {url}", text))
    return ini


def _alembic(ini: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        capture_output=True, text=True, cwd=ini.parent, check=False,
    )  # fmt: skip
    assert done.returncode == 0 or args[0] == "check", done.stderr
    return done.stdout


def _ids(text: str) -> set[str]:
    """The revision ids at the start of each line of `alembic heads`/`current` output."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


def _ms(ini: Path, *args: str) -> dict[str, object] | list[dict[str, object]]:
    result = run_cli("-c", str(ini), *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _checksums(url: str) -> set[str]:
    return {str(row[0]) for row in query(url, "SELECT revision FROM migrasafe_checksums")}


def test_a_projects_whole_life_agrees_with_alembic(tmp_path: Path, db_url: str) -> None:
    ini = _with_url(make_project(tmp_path / "project"), db_url)
    cli = ("-c", str(ini))

    assert run_cli(*cli, "upgrade", "0001").exit_code == 0
    current = _ms(ini, "current")
    assert isinstance(current, dict) and current["heads"] == ["0001"]
    assert _ids(_alembic(ini, "current")) == {"0001"}

    side = _ms(ini, "revision", "-m", "side table", "--head", "0001", "--splice",
               "--branch-label", "side", "--rev-id", "side1")  # fmt: skip
    assert side == side | {"revision": "side1", "down_revision": ["0001"]}
    heads = _ms(ini, "heads")
    assert {h["revision"] for h in heads} == {"0003", "side1"} == _ids(_alembic(ini, "heads"))  # type: ignore[index]
    branch_points = _ms(ini, "branches")
    assert [(b["revision"], b["next_revisions"]) for b in branch_points] == [  # type: ignore[index]
        ("0001", ["0002", "side1"])
    ]
    assert "0001" in _alembic(ini, "branches")

    merged = _ms(ini, "merge", "-m", "join the side branch")
    assert isinstance(merged, dict) and set(merged["down_revision"]) == {"0003", "side1"}  # type: ignore[arg-type]
    merge_id = str(merged["revision"])
    assert merge_id == "0004"  # the project numbers its revisions: so does merge
    assert _ids(_alembic(ini, "heads")) == {merge_id}

    assert run_cli(*cli, "upgrade", "heads").exit_code == 0
    assert _ids(_alembic(ini, "current")) == {merge_id}
    assert _checksums(db_url) == {"0001", "0002", "0003", "side1", merge_id}
    shown = _ms(ini, "show", "current")
    assert [s["revision"] for s in shown] == [merge_id]  # type: ignore[index]
    assert shown[0]["is_merge_point"] is True  # type: ignore[index]

    # stamp down: the revisions stamped off lose their checksums, in Alembic's agreement
    stamped = _ms(ini, "stamp", "0002")
    assert stamped == stamped | {"direction": "stamp", "before": [merge_id], "after": ["0002"]}
    assert _ids(_alembic(ini, "current")) == {"0002"}
    assert _checksums(db_url) == {"0001", "0002"}
    # stamp up: nothing ran, so the stamped revisions are unverified, not verified
    assert run_cli(*cli, "stamp", "heads").exit_code == 0
    status = json.loads(run_cli(*cli, "status", "--json").stdout)
    assert set(status["unverified"]) == {"0003", "side1", merge_id}
    assert status["pending"] == []

    assert run_cli(*cli, "downgrade", "base").exit_code == 0
    assert _alembic(ini, "current").strip() == ""
    assert _ms(ini, "current") == _ms(ini, "current") | {"heads": [], "revisions": []}


def test_show_resolves_what_alembic_resolves(library: Path) -> None:
    for name, expected in (("head", ["0003"]), ("heads", ["0003"]), ("base", ["0001"]),
                           ("00", None), ("0002", ["0002"])):  # fmt: skip
        result = run_cli("-c", str(library), "show", name, "--json")
        if expected is None:  # a prefix of several ids is ambiguous, for Alembic too
            assert result.exit_code == 2
            assert "00" in result.stderr and "history" in result.stderr
            continue
        assert result.exit_code == 0, result.stderr
        assert [s["revision"] for s in json.loads(result.stdout)] == expected
    text = run_cli("-c", str(library), "show", "0002").stdout
    assert (
        "Revision ID: 0002" in text and "Revises: 0001" in text and "Next revisions: 0003" in text
    )


def test_stamp_sql_prints_what_alembic_prints(library: Path) -> None:
    result = run_cli("-c", str(library), "stamp", "--sql", "0001:0003")
    assert result.exit_code == 0, result.stderr
    assert "UPDATE alembic_version SET version_num='0003'" in result.stdout
    assert "version_num = '0001'" in result.stdout


def test_stamp_refuses_an_unknown_revision_and_leaves_the_database(
    library: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    run_cli("-c", str(library), "--url", url, "upgrade", "0002")
    result = run_cli("-c", str(library), "--url", url, "stamp", "nope")
    assert result.exit_code == 2
    assert "nope" in result.stderr and "history" in result.stderr
    assert query(url, "SELECT version_num FROM alembic_version") == [("0002",)]


def test_check_reports_what_autogenerate_would_write(tmp_path: Path, db_url: str) -> None:
    ini = _with_url(make_project(tmp_path / "project"), db_url)
    before = run_cli("-c", str(ini), "check")
    assert before.exit_code == 2 and "not up to date" in before.stderr

    assert run_cli("-c", str(ini), "upgrade").exit_code == 0
    clean = run_cli("-c", str(ini), "check", "--json")
    assert clean.exit_code == 0, clean.stderr
    assert json.loads(clean.stdout)["differences"] == []  # migrasafe_checksums is no model
    assert "No new upgrade operations" in _alembic(ini, "check")

    models = tmp_path / "project" / "library" / "models.py"
    text = models.read_text()
    anchor = "    description: Mapped[str | None] = mapped_column(Text)\n"
    assert anchor in text, "the reference models changed: update this test"
    models.write_text(text.replace(anchor, anchor + "    shelf: Mapped[str | None] = "
                                   "mapped_column(String(10))\n", 1))  # fmt: skip
    drift = _subprocess(ini, "check", "--json")  # a fresh process imports the edited models
    assert drift.returncode == 1, drift.stderr
    found = json.loads(drift.stdout)["differences"]
    assert [d["table"] for d in found] == ["books"]
    assert "shelf" in found[0]["description"]
    plain = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), "check"],
                           capture_output=True, text=True, cwd=ini.parent, check=False)  # fmt: skip
    assert plain.returncode != 0 and "shelf" in plain.stderr + plain.stdout


def test_edit_opens_the_revision_in_the_editor(library: Path, tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\necho "# seen by the editor" >> "$1"\n')
    editor.chmod(0o755)
    result = run_cli("-c", str(library), "edit", "0002", env={"EDITOR": str(editor)})
    assert result.exit_code == 0, result.stderr
    path = next((library.parent / "migrations" / "versions").glob("0002_*.py"))
    assert path.read_text().endswith("# seen by the editor\n")
    assert str(path) in result.stdout


def test_revision_takes_alembics_options(library: Path) -> None:
    made = _ms(library, "revision", "-m", "needs 0002", "--rev-id", "abc1",
               "--depends-on", "0002")  # fmt: skip
    assert isinstance(made, dict) and made["revision"] == "abc1"
    shown = _ms(library, "show", "abc1")
    assert shown[0]["depends_on"] == ["0002"]  # type: ignore[index]
    assert shown[0]["down_revision"] == ["0003"]  # type: ignore[index]


# -- terminal and CI habits ------------------------------------------------------------


def _subprocess(ini: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrasafe", "-c", str(ini), *args],
        capture_output=True, text=True, cwd=ini.parent, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def test_quiet_verify_piped_shows_progress_and_report_but_no_alembic_info(library: Path) -> None:
    loud = _subprocess(library, "verify", MIGRASAFE_PROGRESS_EVERY="0")
    assert "INFO  [alembic" in loud.stderr  # the project's own fileConfig logs at INFO
    quiet = _subprocess(library, "-q", "verify", MIGRASAFE_PROGRESS_EVERY="0")
    assert quiet.returncode == 0, quiet.stderr
    assert "INFO" not in quiet.stderr
    assert "verify: 2/3 (66%)" in quiet.stderr and "ETA" in quiet.stderr
    assert "verify: 3/3 done in" in quiet.stderr
    assert "Every revision reverses cleanly." in quiet.stdout


def test_progress_is_quiet_for_a_short_run(library: Path) -> None:
    quick = _subprocess(library, "-q", "upgrade")
    assert quick.returncode == 0 and "upgrade:" not in quick.stderr


def test_errors_under_json_are_a_json_object(library: Path, tmp_path: Path) -> None:
    missing = _subprocess(library, "--url", "postgresql+psycopg://nobody@127.0.0.1:1/x",
                          "status", "--json")  # fmt: skip
    assert missing.returncode == 2
    error = json.loads(missing.stdout)["error"]
    assert error["exit"] == 2 and error["kind"] and "127.0.0.1" in error["message"]
    assert error["message"] in missing.stderr

    usage = _subprocess(library, "status", "--json", "--no-such-option")
    assert json.loads(usage.stdout)["error"]["kind"] == "usage"

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    versions = library.parent / "migrations" / "versions"
    broken = next(versions.glob("0002_*.py"))
    broken.write_text(broken.read_text().replace("def upgrade() -> None:\n",
                      "def upgrade() -> None:\n    raise RuntimeError('boom')\n", 1))  # fmt: skip
    failed = _subprocess(library, "--url", url, "upgrade", "--json")
    assert failed.returncode == 2
    data = json.loads(failed.stdout)
    assert data["error"]["kind"] == "migration-failed" and "boom" in data["error"]["message"]
    assert data["failed"] == "0002" and [s["revision"] for s in data["steps"]] == ["0001"]


def test_fail_on_sets_which_findings_fail(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "project")
    versions = tmp_path / "project" / "migrations" / "versions"
    (versions / "0004_second_head.py").write_text(
        '"""A second head."""\nrevision = "0004"\ndown_revision = "0002"\n'
        "def upgrade() -> None:\n    pass\n\ndef downgrade() -> None:\n    pass\n"
    )
    assert run_cli("-c", str(ini), "validate").exit_code == 1  # multiple-heads is an error
    assert run_cli("-c", str(ini), "validate", "--fail-on", "never").exit_code == 0


def test_shell_completion_offers_revision_ids(library: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from migrasafe.cli import main; main(prog_name='migrasafe')"],
        capture_output=True, text=True, cwd=library.parent, check=False,
        env={**os.environ, "_MIGRASAFE_COMPLETE": "bash_complete",
             "COMP_WORDS": "migrasafe upgrade 000", "COMP_CWORD": "2"},
    )  # fmt: skip
    offered = {line.split(",", 1)[1] for line in done.stdout.splitlines()}
    assert offered == {"0001", "0002", "0003"}


def test_lint_fail_on_warning_fails_on_a_warning_alone(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    (versions / "0001_index.py").write_text(
        '"""An index built without CONCURRENTLY: a warning on PostgreSQL."""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        'revision = "0001"\ndown_revision = None\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_table("t")\n'
    )
    (versions / "0002_index.py").write_text(
        '"""Index."""\nfrom alembic import op\n\n'
        'revision = "0002"\ndown_revision = "0001"\n\n'
        "def upgrade() -> None:\n"
        '    op.drop_index("ix_t_old", table_name="t")\n\n'
        "def downgrade() -> None:\n"
        '    op.create_index("ix_t_old", "t", ["id"])\n'
    )
    default = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--json")
    severities = {f["severity"] for f in json.loads(default.stdout)["findings"]}
    assert "warning" in severities and "error" not in severities, default.stdout
    assert default.exit_code == 0
    strict = run_cli("-c", str(ini), "lint", "--dialect", "postgresql", "--fail-on", "warning")
    assert strict.exit_code == 1


def test_stamp_takes_several_revisions_and_branch_names_as_alembic_does(tmp_path: Path) -> None:
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    for rev, down, label in (("0001", None, None), ("0002", "0001", "left-side"),
                             ("0003", "0001", "right")):  # fmt: skip
        labels = f"branch_labels = ({label!r},)\n" if label else ""
        (versions / f"{rev}_r.py").write_text(
            f'"""{rev}"""\nrevision = {rev!r}\ndown_revision = {down!r}\n{labels}'
            "def upgrade() -> None:\n    pass\n\ndef downgrade() -> None:\n    pass\n"
        )
    _with_url(ini, f"sqlite:///{tmp_path / 'db.sqlite'}")
    for targets in (("left-side@head", "right@head"), ("0001", "right@head"), ("left-side",)):
        result = run_cli("-c", str(ini), "stamp", "--purge", *targets)
        assert result.exit_code == 0, result.stderr
        ours = _ids(_alembic(ini, "current"))
        _alembic(ini, "stamp", "--purge", *targets)
        assert ours == _ids(_alembic(ini, "current")), targets
    sql = run_cli("-c", str(ini), "stamp", "--sql", "0001:left-side@head")
    assert sql.exit_code == 0 and "version_num='0002'" in sql.stdout
    refused = run_cli("-c", str(ini), "stamp", "--sql", "--purge", "0001:0002")
    assert refused.exit_code == 2 and "--purge" in refused.stderr


def test_terminal_escapes_from_a_revision_are_shown_not_obeyed(
    library: Path, tmp_path: Path
) -> None:
    versions = library.parent / "migrations" / "versions"
    second = next(versions.glob("0002_*.py"))
    text = second.read_text().replace('"""', '"""\x1b]0;PWNED\x07\x1b[2J', 1)
    second.write_text(text.replace("def upgrade() -> None:\n", "def upgrade() -> None:\n"
                                   "    raise RuntimeError('\x1b[2Jboom')\n", 1))  # fmt: skip
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    failed = run_cli("-c", str(library), "--url", url, "-q", "upgrade")  # Alembic's own logs off
    assert failed.exit_code == 2
    assert "\x1b" not in failed.stderr + failed.stdout and "\\x1b" in failed.stderr
    history = run_cli("-c", str(library), "history")
    assert "\x1b]" not in history.stdout and "\\x1b]0;PWNED" in history.stdout
