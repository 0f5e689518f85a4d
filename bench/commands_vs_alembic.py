"""Benchmark: migrasafe's read-only commands against Alembic's, the way users run them.

For each size (default 500, 2,000 and 10,000 revisions) a project is
generated, its SQLite file stamped at head by ``alembic stamp head`` (which
leaves Alembic's ``.pyc`` files, as any first run does) and accepted by
migrasafe. Each command is a new process, median of REPEAT runs, with its
own peak memory (max RSS, read by a small wrapper process):

  history vs `alembic history`, status vs `alembic current`, validate vs `alembic heads`;
  Alembic with its .pyc files (its normal state) and without (a fresh checkout);
  migrasafe cold (empty cache: what a fresh CI machine pays), edited (one
  revision file's body edited before each run, env.py unchanged: the lean
  path reads that file again and reuses the rest) and warm (the lean path).

Answers are checked, not assumed: migrasafe's warm and edited outputs equal
a cold run's, and its order, heads and current revision equal Alembic's.
Targets: warm <= 0.2x Alembic with .pyc, edited <= 0.3x, cold <= 0.6x, peak
memory <= Alembic's. Run: python bench/commands_vs_alembic.py [500,2000,10000]
[--repeat N]; --help for the options.

--warm-against SRC measures a change to the lean path instead: warm history and
status only, runs of the migrasafe sources in SRC (say, `git archive HEAD~1 src |
tar -x -C /tmp/before`, then SRC=/tmp/before/src, put first on PYTHONPATH) and
of this checkout's taking turns, so that a loaded machine weighs on both alike.
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
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

sys.path.insert(0, str(Path(__file__).parent))
from verify_vs_alembic import bench_parser, conditions, generate

REPEAT = 5  # --repeat
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


def _drop_bytecode(project: Path) -> None:
    for directory in project.rglob("__pycache__"):
        shutil.rmtree(directory, ignore_errors=True)


def measure(count: int, root: Path) -> list[tuple[object, ...]]:
    ini = generate(root / f"project{count}", count)
    project = ini.parent
    db = root / f"db{count}.sqlite"
    lines = [
        f"sqlalchemy.url = sqlite:///{db}" if line.startswith("sqlalchemy.url") else line
        for line in ini.read_text().splitlines()
    ]
    ini.write_text("\n".join(lines) + "\n")
    cache = root / f"cache{count}"
    env = {**os.environ, "MIGRASAFE_CACHE_DIR": str(cache)}
    env.pop("MIGRASAFE_NO_CACHE", None)
    # Bytecode is written and reused, as after `pip install` (which compiles it): a shell
    # with PYTHONDONTWRITEBYTECODE would compile an editable checkout on every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    alembic, migrasafe = str(BIN / "alembic"), str(BIN / "migrasafe")
    run_process([alembic, "stamp", "head"], project, env)
    run_process([migrasafe, "accept"], project, env)

    # -- the same answers ------------------------------------------------------
    script = ScriptDirectory.from_config(Config(str(ini)))
    order = [s.revision for s in reversed(list(script.walk_revisions()))]
    current = io.StringIO()
    command.current(Config(str(ini), stdout=current))
    outputs = {}
    for mode in ("cold", "warm"):
        if mode == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        for cmd in ("history", "status", "validate"):
            outputs[mode, cmd] = run_process([migrasafe, cmd, "--json"], project, env)[2]
    history_ = json.loads(outputs["warm", "history"])
    status_ = json.loads(outputs["warm", "status"])
    same = (
        all(outputs["cold", c] == outputs["warm", c] for c in ("history", "status", "validate"))
        and [e["revision"] for e in history_] == order
        and status_["heads"] == list(script.get_heads())
        and status_["current"] == [current.getvalue().split()[0]]
        and status_["pending"] == []
        and status_["unverified"] == []
    )

    def cold() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    edited = project / "migrations" / "versions" / f"{count // 2:04d}_r.py"
    edits = iter(range(10**6))

    def edit() -> None:
        with edited.open("a") as handle:
            handle.write(f"# edit {next(edits)}\n")

    # An edit of one revision file: the lean path's answer is a cold run's.
    no_cache = {**env, "MIGRASAFE_NO_CACHE": "1"}
    for cmd in ("history", "status", "validate"):
        run_process([migrasafe, cmd, "--json"], project, env)
        edit()
        after_edit = run_process([migrasafe, cmd, "--json"], project, env)[2]
        same = same and after_edit == run_process([migrasafe, cmd, "--json"], project, no_cache)[2]

    rows: list[tuple[object, ...]] = []
    for ours, theirs in (("history", "history"), ("status", "current"), ("validate", "heads")):
        run_process([alembic, theirs], project, env)  # leaves the .pyc files
        a_pyc, a_pyc_peak = median_process([alembic, theirs], project, env)
        a_src, _ = median_process([alembic, theirs], project, env, lambda: _drop_bytecode(project))
        run_process([alembic, theirs], project, env)
        m_cold, m_cold_peak = median_process([migrasafe, ours], project, env, cold)
        run_process([migrasafe, ours], project, env)
        m_edit, _ = median_process([migrasafe, ours], project, env, edit)
        run_process([migrasafe, ours], project, env)
        m_warm, m_warm_peak = median_process([migrasafe, ours], project, env)
        rows.append((count, f"{ours} vs {theirs}", a_pyc, a_src, m_cold, m_edit, m_warm,
                     a_pyc_peak, m_cold_peak, m_warm_peak, same))  # fmt: skip
    return rows


def warm_against(count: int, root: Path, before: str) -> None:
    """Warm history and status, the sources in ``before`` and this checkout's in turn."""
    ini = generate(root / f"ab{count}", count)
    project = ini.parent
    lines = [
        f"sqlalchemy.url = sqlite:///{root / f'ab{count}.sqlite'}"
        if line.startswith("sqlalchemy.url") else line
        for line in ini.read_text().splitlines()
    ]  # fmt: skip
    ini.write_text("\n".join(lines) + "\n")
    envs = {}
    for name, extra in (("before", {"PYTHONPATH": before}), ("after", {})):
        envs[name] = {**os.environ, "MIGRASAFE_CACHE_DIR": str(root / f"ab-{name}"), **extra}
        envs[name].pop("MIGRASAFE_NO_CACHE", None)
    argv = [sys.executable, "-m", "migrasafe"]
    run_process([str(BIN / "alembic"), "stamp", "head"], project, envs["after"])
    for cmd in ("status", "history"):
        outputs = {}
        for name, env in envs.items():
            run_process([*argv, cmd], project, env)  # fills the cache
            outputs[name] = run_process([*argv, cmd], project, env)[2]
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(REPEAT):
            for name, env in envs.items():
                times[name].append(run_process([*argv, cmd], project, env)[0])
        old, new = (statistics.median(times[n]) for n in ("before", "after"))
        same = "yes" if outputs["before"] == outputs["after"] else "NO"
        print(f"{count:>9}  {cmd:<8} warm before {old:.3f}s  after {new:.3f}s "
              f"({(new / old - 1) * 100:+.0f}%)  same output: {same}", flush=True)  # fmt: skip


def main() -> None:
    global REPEAT
    parser = bench_parser(__doc__, "500,2000,10000", repeat=REPEAT)
    parser.add_argument("--warm-against", metavar="SRC",
                        help="warm history and status: SRC's sources against these")  # fmt: skip
    args = parser.parse_args()
    if args.pg:
        parser.error("this benchmark runs on a SQLite file only")
    REPEAT = args.repeat
    sizes = [int(n) for n in args.sizes.split(",")]
    print(conditions([]))
    if args.warm_against:
        print(f"SQLite file stamped at head; each command a new process (python -m migrasafe), "
              f"median of {REPEAT} runs taking turns")  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                warm_against(size, Path(tmp), os.path.abspath(args.warm_against))
        return
    print(f"SQLite file; each command a new process, median of {REPEAT}; cold = empty "
          "migrasafe cache; edited = one revision file edited before each run; ratios "
          "against Alembic with its .pyc files")  # fmt: skip
    print(f"{'revisions':>9}  {'command':<22}{'alembic .pyc':>13}{'no .pyc':>9}"
          f"{'cold':>8}{'ratio':>7}{'edited':>8}{'ratio':>7}{'warm':>8}{'ratio':>7}"
          f"  {'peak MB a/cold/warm':>20}  same", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            for row in measure(size, Path(tmp)):
                count, name, *times, a_peak, c_peak, w_peak, same = row
                a_pyc, a_src, cold_s, edit_s, warm_s = (float(t) for t in times)  # type: ignore[arg-type]
                print(
                    f"{count:>9}  {name:<22}{a_pyc:>12.3f}s{a_src:>8.3f}s{cold_s:>7.3f}s"
                    f"{cold_s / a_pyc:>6.2f}x{edit_s:>7.3f}s{edit_s / a_pyc:>6.2f}x"
                    f"{warm_s:>7.3f}s{warm_s / a_pyc:>6.2f}x"
                    f"  {a_peak:>6}/{c_peak}/{w_peak:<8}  {'yes' if same else 'NO'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
