"""Benchmark: migrasafe's read-only commands and upgrade against Alembic's, on a long history.

Generates a project of N revisions (default 2,000), upgrades a SQLite file to
head, and times in one run:

  history vs `alembic history`, status vs `alembic current`,
  validate vs `alembic heads`:
    - the command line (a new process each time: what a CI job pays), the
      median of REPEAT runs, with the revision cache cold (an empty cache
      directory, as on a fresh CI machine) and warm; peak memory (max RSS);
    - in process (the library function against Alembic's command function,
      imports already done): the work itself;
  `migrasafe upgrade head` vs `alembic upgrade head` on a fresh file.

It also checks that migrasafe gives the same revisions in the same order,
the same heads and the same current revision as Alembic.
Targets: read-only commands <= 0.5x Alembic's time, peak memory < 150 MB,
upgrade <= 1.1x. Run: python bench/commands_vs_alembic.py [N]
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

sys.path.insert(0, str(Path(__file__).parent))
from verify_vs_alembic import generate

from migrasafe import history, load_project, status, validate

REPEAT = 5
BIN = Path(sys.executable).parent


# A small, fresh process runs each command and reports its wall time and peak RSS.
# Linux counts a child's peak from the memory of the process that forked it, so
# measured straight from this (large) benchmark process, every command would
# show at least the benchmark's own size.
_MEASURE = (
    "import os, sys, time\n"
    "start = time.perf_counter()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "seconds = time.perf_counter() - start\n"
    "os.write(2, f'\\nMEASURED {seconds} {usage.ru_maxrss}\\n'.encode())\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_process(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB, stdout of one process (measured by a small wrapper)."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", _MEASURE, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr[-500:]}")
    measured = [line for line in done.stderr.splitlines() if line.startswith("MEASURED ")][-1]
    _, seconds, peak_kb = measured.split()
    return float(seconds), int(peak_kb) // 1024, done.stdout


def median_process(argv: list[str], cwd: Path, env: dict[str, str],
                   before: Callable[[], None] = lambda: None) -> tuple[float, int]:  # fmt: skip
    times, peaks = [], []
    for _ in range(REPEAT):
        before()
        seconds, peak, _ = run_process(argv, cwd, env)
        times.append(seconds)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


def median_call(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ini = generate(root / "project", count)
        project_dir = ini.parent
        db = root / "big.db"
        text = ini.read_text().replace("sqlite:///migrations.db", f"sqlite:///{db}")
        lines = [
            f"sqlalchemy.url = sqlite:///{db}" if line.startswith("sqlalchemy.url") else line
            for line in text.splitlines()
        ]
        ini.write_text("\n".join(lines) + "\n")
        cache = root / "cache"
        env = {**os.environ, "MIGRASAFE_CACHE_DIR": str(cache)}
        alembic, migrasafe = str(BIN / "alembic"), str(BIN / "migrasafe")

        # -- upgrade head, each on a fresh file -------------------------------
        up_a, _, _ = run_process([alembic, "upgrade", "head"], project_dir, env)
        db.unlink()
        up_m, up_peak, _ = run_process([migrasafe, "upgrade", "head"], project_dir, env)

        # -- same answers ----------------------------------------------------------
        config = Config(str(ini), stdout=io.StringIO())
        script = ScriptDirectory.from_config(config)
        alembic_order = [s.revision for s in script.walk_revisions()]
        _, _, out = run_process([migrasafe, "history", "--json"], project_dir, env)
        ours = [e["revision"] for e in json.loads(out)]
        _, _, out = run_process([migrasafe, "status", "--json"], project_dir, env)
        st = json.loads(out)
        current = io.StringIO()
        command.current(Config(str(ini), stdout=current))
        same = (
            ours == list(reversed(alembic_order))
            and st["heads"] == script.get_heads()
            and st["current"] == [current.getvalue().split()[0]]
        )

        def cold() -> None:
            shutil.rmtree(cache, ignore_errors=True)

        rows = []
        for ours_cmd, theirs_cmd, ours_fn, theirs_fn in (
            ("history", "history", lambda: history(load_project(ini)),
             lambda: command.history(Config(str(ini), stdout=io.StringIO()))),
            ("status", "current", lambda: status(load_project(ini)),
             lambda: command.current(Config(str(ini), stdout=io.StringIO()))),
            ("validate", "heads", lambda: validate(load_project(ini)),
             lambda: command.heads(Config(str(ini), stdout=io.StringIO()))),
        ):  # fmt: skip
            a, a_peak = median_process([alembic, theirs_cmd], project_dir, env)
            m_cold, m_peak = median_process([migrasafe, ours_cmd], project_dir, env, cold)
            m_warm, _ = median_process([migrasafe, ours_cmd], project_dir, env)
            a_in, m_in = median_call(theirs_fn), median_call(ours_fn)
            rows.append((ours_cmd, theirs_cmd, a, m_cold, m_warm, a_in, m_in, a_peak, m_peak))

    print(f"{count} revisions, SQLite; median of {REPEAT} runs; cold = empty revision cache")
    print(f"{'migrasafe vs alembic':<22}{'alembic':>9}{'cold':>8}{'ratio':>7}{'warm':>8}"
          f"{'ratio':>7}  {'in-process':>10}{'ratio':>7}  {'peak MB':>9}")  # fmt: skip
    for ours_cmd, theirs_cmd, a, cold_s, warm_s, a_in, m_in, a_peak, m_peak in rows:
        print(f"{ours_cmd + ' vs ' + theirs_cmd:<22}{a:>8.2f}s{cold_s:>7.2f}s{cold_s / a:>6.2f}x"
              f"{warm_s:>7.2f}s{warm_s / a:>6.2f}x  {m_in:>5.2f}/{a_in:.2f}s{m_in / a_in:>6.2f}x"
              f"  {m_peak:>4}/{a_peak:<4}")  # fmt: skip
    print(f"{'upgrade head':<22}{up_a:>8.2f}s{up_m:>7.2f}s{up_m / up_a:>6.2f}x"
          f"   (target <= 1.1x; migrasafe peak {up_peak} MB)")  # fmt: skip
    print(f"same revisions, order, heads and current as Alembic: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
