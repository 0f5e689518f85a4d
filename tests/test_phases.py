"""Expand/contract deploys: `upgrade --phase`, phases declared or inferred, and lint's phase rules.

Two conventions are supported as projects use them: a linear history whose
revisions are expand or contract by what they do (or a `phase = ...`
attribute), and the two-branch layout (`expand` and `contract` branch
labels, two heads) that validate must not call an error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import make_project, query, run_cli


def _revision(versions: Path, rev: str, down: str | None, upgrade: str, downgrade: str,
              extra: str = "") -> None:  # fmt: skip
    (versions / f"{rev}_r.py").write_text(
        f'"""revision {rev}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\n{extra}\n"
        f"def upgrade() -> None:\n{upgrade}\n\ndef downgrade() -> None:\n{downgrade}\n"
    )


def _rename_history(directory: Path) -> Path:
    """A rename done the expand/contract way: add full_name and fill it (expand), drop name
    (contract), then an index that only adds but comes after the contract revision."""
    ini = make_project(directory, "generic")
    versions = directory / "migrations" / "versions"
    _revision(versions, "0001", None,
              '    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),'
              ' sa.Column("name", sa.String(50)))',
              '    op.drop_table("users")')  # fmt: skip
    _revision(versions, "0002", "0001",
              '    op.add_column("users", sa.Column("full_name", sa.String(100)))\n'
              '    op.execute("UPDATE users SET full_name = name")',
              '    with op.batch_alter_table("users") as b:\n'
              '        b.drop_column("full_name")')  # fmt: skip
    _revision(versions, "0003", "0002",
              '    with op.batch_alter_table("users") as b:\n        b.drop_column("name")',
              '    with op.batch_alter_table("users") as b:\n'
              '        b.add_column(sa.Column("name", sa.String(50)))')  # fmt: skip
    _revision(versions, "0004", "0003",
              '    op.create_index("ix_users_full_name", "users", ["full_name"])',
              '    op.drop_index("ix_users_full_name", table_name="users")')  # fmt: skip
    return ini


def _version(url: str) -> set[str]:
    return {str(row[0]) for row in query(url, "SELECT version_num FROM alembic_version")}


def test_expand_applies_up_to_the_first_contract_revision(tmp_path: Path, db_url: str) -> None:
    ini = _rename_history(tmp_path / "p")
    expand = run_cli("-c", str(ini), "--url", db_url, "upgrade", "--phase", "expand", "--json")
    assert expand.exit_code == 0, expand.stderr
    data = json.loads(expand.stdout)
    assert [s["revision"] for s in data["steps"]] == ["0001", "0002"]
    waiting = {w["revision"]: w["why"] for w in data["phase"]["waiting"]}
    assert "drops column users.name" in waiting["0003"]
    assert "after 0003" in waiting["0004"]  # it only adds, but builds on the contract one
    assert data["phase"]["phases"]["0002"] == {"revision": "0002", "phase": "expand",
                                               "source": "inferred", "reasons": []}  # fmt: skip
    assert _version(db_url) == {"0002"}
    assert {str(r[0]) for r in query(db_url, "SELECT full_name FROM users")} == set()

    again = run_cli("-c", str(ini), "--url", db_url, "upgrade", "--phase", "expand")
    assert again.exit_code == 0 and "Nothing to apply in the expand phase" in again.stdout
    contract = run_cli("-c", str(ini), "--url", db_url, "upgrade", "--phase", "contract")
    assert contract.exit_code == 0, contract.stderr
    assert "Applied 0003" in contract.stdout and "Applied 0004" in contract.stdout
    assert _version(db_url) == {"0004"}


def test_a_declared_phase_wins_and_lint_holds_it_to_its_operations(tmp_path: Path) -> None:
    ini = _rename_history(tmp_path / "p")
    versions = tmp_path / "p" / "migrations" / "versions"
    for rev, phase in (("0003", "expand"), ("0004", "contract")):
        path = versions / f"{rev}_r.py"
        path.write_text(path.read_text().replace("\n\ndef upgrade", f'\nphase = "{phase}"\n\n'
                                                 "def upgrade", 1))  # fmt: skip
    result = run_cli("-c", str(ini), "lint", "--json")
    found = {(f["revision"], f["rule"]) for f in json.loads(result.stdout)["findings"]}
    assert ("0003", "expand-breaks-old-release") in found  # declared expand, drops a column
    assert ("0003", "drop-column") in found
    assert not any(rule == "expand-breaks-old-release" for rev, rule in found if rev != "0003")
    assert result.exit_code == 1

    plan = run_cli("-c", str(ini), "--url", f"sqlite:///{tmp_path / 'db'}", "upgrade",
                   "--phase", "expand", "--json")  # fmt: skip
    steps = [s["revision"] for s in json.loads(plan.stdout)["steps"]]
    assert steps == ["0001", "0002", "0003"]  # declared expand: applied (lint said why not)
    assert json.loads(plan.stdout)["phase"]["phases"]["0004"]["source"] == "declared"


def test_a_contract_revision_that_drops_is_not_a_drop_column_error(tmp_path: Path) -> None:
    ini = _rename_history(tmp_path / "p")
    versions = tmp_path / "p" / "migrations" / "versions"
    path = versions / "0003_r.py"
    path.write_text(path.read_text().replace("\n\ndef upgrade", '\nphase = "contract"\n\n'
                                             "def upgrade", 1))  # fmt: skip
    _revision(versions, "0005", "0004",
              '    op.add_column("users", sa.Column("nickname", sa.String(20)))',
              '    with op.batch_alter_table("users") as b:\n        b.drop_column("nickname")',
              extra='phase = "contract"')  # fmt: skip
    found = json.loads(run_cli("-c", str(ini), "lint", "--json").stdout)["findings"]
    rules = {(f["revision"], f["rule"]) for f in found}
    assert ("0003", "drop-column") not in rules
    assert ("0005", "contract-adds") in rules


def test_the_expand_and_contract_branch_convention(tmp_path: Path, db_url: str) -> None:
    """Two heads labelled expand and contract, as projects that deploy in phases lay them out."""
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    _revision(versions, "0001", None,
              '    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),'
              ' sa.Column("name", sa.String(50)))', '    op.drop_table("users")')  # fmt: skip
    _revision(versions, "e001", "0001",
              '    op.add_column("users", sa.Column("full_name", sa.String(100)))',
              '    with op.batch_alter_table("users") as b:\n        b.drop_column("full_name")',
              extra='branch_labels = ("expand",)')  # fmt: skip
    _revision(versions, "c001", "0001",
              '    with op.batch_alter_table("users") as b:\n        b.drop_column("name")',
              '    with op.batch_alter_table("users") as b:\n'
              '        b.add_column(sa.Column("name", sa.String(50)))',
              extra='branch_labels = ("contract",)\ndepends_on = "e001"')  # fmt: skip
    validate = run_cli("-c", str(ini), "validate", "--json")
    assert validate.exit_code == 0, validate.stdout  # two heads, by design
    expand = run_cli("-c", str(ini), "--url", db_url, "upgrade", "--phase", "expand", "--json")
    assert expand.exit_code == 0, expand.stderr
    assert [s["revision"] for s in json.loads(expand.stdout)["steps"]] == ["0001", "e001"]
    assert _version(db_url) == {"e001"}
    assert run_cli("-c", str(ini), "--url", db_url, "upgrade", "--phase", "contract").exit_code == 0
    assert _version(db_url) == {"c001"}  # Alembic keeps c001 alone: it depends on e001
    history = run_cli("-c", str(ini), "history").stdout
    assert "expand" in history and "contract" in history  # the labels, as Alembic shows them
    plain = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ini), "-x", "x=1",
                            "heads"], capture_output=True, text=True, check=False)  # fmt: skip
    assert {line.split()[0] for line in plain.stdout.splitlines()} == {"e001", "c001"}


def test_inference_reads_what_breaks_the_old_release_as_a_maintainer_does(tmp_path: Path) -> None:
    """Found on pypi/warehouse: a widened type, a NOT NULL on a column the same revision adds
    with a default, and what is created and dropped in one revision break nothing; dropping a
    view, a function or a trigger, or renaming a type, does."""
    from migrasafe import load_project
    from migrasafe.commands.phases import revision_phases

    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    _revision(versions, "0001", None,
              '    op.create_table("t", sa.Column("id", sa.Integer, primary_key=True),'
              ' sa.Column("name", sa.String(100)), sa.Column("n", sa.SmallInteger))',
              '    op.drop_table("t")')  # fmt: skip
    bodies = {
        "0002": '    op.alter_column("t", "name", type_=sa.String(),\n'
                "                    existing_type=sa.String(100))\n"
                '    op.alter_column("t", "n", type_=sa.BigInteger(),\n'
                "                    existing_type=sa.SmallInteger())",
        "0003": '    op.add_column("t", sa.Column("flag", sa.Boolean(), server_default="false"))\n'
                '    op.execute("UPDATE t SET flag = false")\n'
                '    op.alter_column("t", "flag", nullable=False)',
        "0004": '    op.create_table("tmp", sa.Column("id", sa.Integer, primary_key=True))\n'
                '    op.drop_table("tmp")',
        "0005": '    op.execute("DROP VIEW IF EXISTS t_report")',
        "0006": '    op.execute("ALTER TYPE mood RENAME TO feeling")',
        "0007": '    op.alter_column("t", "name", type_=sa.String(50), existing_type=sa.String())',
        "0008": '    op.alter_column("t", "n", server_default=sa.func.now(), nullable=False)',
    }  # fmt: skip
    parent = "0001"
    for rev, body in bodies.items():
        _revision(versions, rev, parent, body, "    pass")
        parent = rev
    phases = revision_phases(load_project([str(ini)]), "postgresql")
    assert {rev: phases[rev].phase for rev in bodies} == {
        "0002": "expand", "0003": "expand", "0004": "expand",
        "0005": "contract", "0006": "contract", "0007": "contract", "0008": "expand",
    }  # fmt: skip
    assert "view t_report" in phases["0005"].reasons[0]


def test_labelled_branches_expand_as_alembic_reads_expand_at_head(
    tmp_path: Path, db_url: str
) -> None:
    """A trunk revision below the branches whose phase cannot be told (keystone's base reads
    the database) does not stop the expand phase: it is on the way to expand@head."""
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    _revision(versions, "0001", None,
              '    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),'
              ' sa.Column("name", sa.String(50)))\n'
              "    sa.inspect(op.get_bind())",
              '    op.drop_table("users")')  # fmt: skip
    _revision(versions, "e001", "0001",
              '    op.add_column("users", sa.Column("full_name", sa.String(100)))',
              '    with op.batch_alter_table("users") as b:\n        b.drop_column("full_name")',
              extra='branch_labels = ("expand",)')  # fmt: skip
    _revision(versions, "c001", "0001",
              '    with op.batch_alter_table("users") as b:\n        b.drop_column("name")',
              '    with op.batch_alter_table("users") as b:\n'
              '        b.add_column(sa.Column("name", sa.String(50)))',
              extra='branch_labels = ("contract",)\ndepends_on = "e001"')  # fmt: skip
    expand = run_cli("-c", str(ini), "--url", db_url, "upgrade", "--phase", "expand", "--json")
    assert expand.exit_code == 0, expand.stderr
    data = json.loads(expand.stdout)
    assert [s["revision"] for s in data["steps"]] == ["0001", "e001"]
    assert data["phase"]["phases"]["0001"]["phase"] is None  # unknown, yet on the way
    assert data["phase"]["waiting"] == [{"revision": "c001",
                                         "why": "it is not on the expand branch"}]  # fmt: skip


def test_a_branch_label_in_a_linear_history_declares_no_phase(tmp_path: Path) -> None:
    """Alembic copies a label to the whole branch: in a linear history, labelling one
    revision expand (or contract-billing) labels them all, and must not hide a drop."""
    ini = _rename_history(tmp_path / "p")
    versions = tmp_path / "p" / "migrations" / "versions"
    path = versions / "0004_r.py"
    for label in ("expand", "contract"):
        path.write_text(path.read_text().replace("down_revision = '0003'\n",
                                                 f"down_revision = '0003'\nbranch_labels = "
                                                 f"({label!r},)\n", 1))  # fmt: skip
        found = json.loads(run_cli("-c", str(ini), "lint", "--json").stdout)["findings"]
        assert ("0003", "drop-column") in {(f["revision"], f["rule"]) for f in found}
        plan = run_cli("-c", str(ini), "--url", f"sqlite:///{tmp_path / label}.db", "upgrade",
                       "--phase", "expand", "--json")  # fmt: skip
        assert [s["revision"] for s in json.loads(plan.stdout)["steps"]] == ["0001", "0002"]
        path.write_text(path.read_text().replace(f"branch_labels = ({label!r},)\n", ""))


def test_expand_on_two_branches_runs_once_and_reports_what_it_did_before_a_failure(
    tmp_path: Path,
) -> None:
    ini = make_project(tmp_path / "p", "generic")
    versions = tmp_path / "p" / "migrations" / "versions"
    _revision(versions, "0001", None,
              '    op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))',
              '    op.drop_table("t")')  # fmt: skip
    _revision(versions, "0002", "0001", '    op.create_table("a", sa.Column("id", sa.Integer))',
              '    op.drop_table("a")', extra='phase = "expand"')  # fmt: skip
    _revision(versions, "0003", "0001", "    raise RuntimeError('boom')", "    pass",
              extra='phase = "expand"')  # fmt: skip
    url = f"sqlite:///{tmp_path / 'db'}"
    result = run_cli("-c", str(ini), "--url", url, "upgrade", "--phase", "expand", "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["failed"] == "0003" and "0001" in [s["revision"] for s in data["steps"]]


def test_status_lists_the_pending_work_of_each_phase(tmp_path: Path) -> None:
    ini = _rename_history(tmp_path / "p")
    url = f"sqlite:///{tmp_path / 'db'}"
    assert run_cli("-c", str(ini), "--url", url, "upgrade", "0001").exit_code == 0
    result = run_cli("-c", str(ini), "--url", url, "status", "--phases", "--json")
    assert json.loads(result.stdout)["pending_phases"] == {
        "expand": ["0002", "0004"], "contract": ["0003"], "unknown": []
    }  # fmt: skip
    text = run_cli("-c", str(ini), "--url", url, "status", "--phases").stdout
    assert "Pending, contract: 0003" in text
