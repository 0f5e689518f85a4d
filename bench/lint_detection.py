"""Benchmark: lint's detection rate on a corpus, next to squawk's on the SQL Alembic renders.

The corpus is tests/test_lint_raw_sql.py's: dangerous operations on an
existing table, each written with op.* and as raw SQL in op.execute(), and
safer rewrites in both forms. For each case:

  migrasafe: `migrasafe lint --dialect postgresql` on the project; a dangerous
      case counts as caught when the expected rule is reported, a safe one as
      a false positive when anything is;
  squawk: the SQL that `alembic upgrade 0001:0002 --sql` renders for the
      revision, checked by squawk (squawk-cli from PyPI, installed once in
      bench/.venv-squawk, not a dependency of migrasafe); caught when squawk
      reports a rule other than its timeout reminders (it asks for
      lock_timeout and statement_timeout before every statement, safe ones
      included) and its style preferences (prefer-*).

Conditions: lint for PostgreSQL (--pg-version 15), the project deploys with
db-lock-timeout set (so missing-lock-timeout, like squawk's timeout reminders,
is out of the count); squawk's version and migrasafe's are printed first.
Nothing here is timed: the figures are counts.

Run: python bench/lint_detection.py [--squawk PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from importlib import metadata
from pathlib import Path

from alembic import command
from alembic.config import Config
from click.testing import CliRunner

from migrasafe import init
from migrasafe.cli import main as migrasafe

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from test_lint_raw_sql import BASE, DANGEROUS, PYPROJECT, REVISION, SAFE

SQUAWK_VENV = Path(__file__).parent / ".venv-squawk"


def squawk() -> Path:
    binary = SQUAWK_VENV / "bin" / "squawk"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SQUAWK_VENV)], check=True)
        subprocess.run([str(SQUAWK_VENV / "bin" / "python"), "-m", "pip", "install", "-q",
                        "squawk-cli"], check=True)  # fmt: skip
    return binary


def project(root: Path, body: str) -> Path:
    init(root, "generic")
    versions = root / "migrations" / "versions"
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_change.py").write_text(REVISION.format(body="    " + body))
    (root / "pyproject.toml").write_text(PYPROJECT)  # as squawk's timeout reminders are left out
    return root / "alembic.ini"


def migrasafe_rules(ini: Path) -> set[str]:
    result = CliRunner().invoke(migrasafe, ["-c", str(ini), "lint", "--dialect", "postgresql",
                                            "--json"])  # fmt: skip
    return {f["rule"] for f in json.loads(result.stdout)["findings"] if f["revision"] == "0002"}


def squawk_violations(ini: Path, binary: Path) -> int:
    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", "postgresql://u@localhost/db")
    rendered = io.StringIO()
    config.stdout = rendered
    with redirect_stdout(rendered):
        command.upgrade(config, "0001:0002", sql=True)
    sql = ini.parent / "0002.sql"
    sql.write_text(rendered.getvalue())
    done = subprocess.run([str(binary), "--reporter", "json", str(sql)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    try:
        found = json.loads(done.stdout or "[]")
    except ValueError:
        return 0
    if not isinstance(found, list):
        return 0
    return sum(1 for v in found if not _reminder(str(v.get("rule_name", ""))))


def _reminder(rule: str) -> bool:
    """squawk's timeout reminders (on every statement) and style preferences."""
    return "timeout" in rule or rule.startswith("prefer-")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--squawk", type=Path, metavar="PATH",
                        help=f"squawk binary (default: installed in {SQUAWK_VENV})")  # fmt: skip
    args = parser.parse_args()
    binary = args.squawk or squawk()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()  # fmt: skip
    print(f"conditions: migrasafe {metadata.version('migrasafe')}, {version or 'squawk ?'}, "
          f"Python {platform.python_version()}; corpus tests/test_lint_raw_sql.py: "
          f"{len(DANGEROUS)} dangerous operations x 2 forms, {len(SAFE)} safe rewrites x 2 forms; "
          "lint --dialect postgresql, db-lock-timeout set")  # fmt: skip
    caught = {"migrasafe": 0, "squawk": 0}
    false_positives = {"migrasafe": 0, "squawk": 0}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = 0
        for rule, (op_form, sql) in sorted(DANGEROUS.items()):
            for form, body in (("op.*", op_form), ("raw SQL", f"op.execute({sql!r})")):
                n += 1
                ini = project(root / f"d{n}", body)
                ours = rule in migrasafe_rules(ini)
                theirs = squawk_violations(ini, binary) > 0
                caught["migrasafe"] += ours
                caught["squawk"] += theirs
                rows.append((rule, form, ours, theirs))
        safe_cases = 0
        for case, (op_form, sql_form) in sorted(SAFE.items()):
            for form, body in (("op.*", op_form), ("raw SQL", sql_form)):
                n += 1
                safe_cases += 1
                ini = project(root / f"s{n}", body)
                ours = bool(migrasafe_rules(ini))
                theirs = squawk_violations(ini, binary) > 0
                false_positives["migrasafe"] += ours
                false_positives["squawk"] += theirs
                rows.append((f"(safe) {case}", form, ours, theirs))
    dangerous = 2 * len(DANGEROUS)
    print(f"{'case':<58}{'form':<9}{'migrasafe':>10}{'squawk':>8}")
    for case, form, ours, theirs in rows:
        print(f"{case[:57]:<58}{form:<9}{'yes' if ours else '-':>10}{'yes' if theirs else '-':>8}")
    for tool in ("migrasafe", "squawk"):
        print(f"{tool}: caught {caught[tool]}/{dangerous} dangerous "
              f"({100 * caught[tool] / dangerous:.0f}%), flagged "
              f"{false_positives[tool]}/{safe_cases} safe rewrites")  # fmt: skip


if __name__ == "__main__":
    main()
