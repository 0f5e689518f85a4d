"""The lean path's cache is never stale and never trusted beyond what it can check.

An upgraded installed package, an applied script edited to the same size with
its mtime restored, a cache file that is corrupt, truncated, hostile or planted
as a symlink, and an ``env.py`` that rebinds ``os.environ``, calls ``putenv``
or loads a ``.env`` file: each either sends the run cold or is answered as a
cold run answers, and never with a traceback.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from migrasafe.commands.lean import answers
from migrasafe.commands.lean.watch import watching
from migrasafe.project import cachefile
from test_lean import _warm, migrasafe

from conftest import make_project, make_user_project

ANCHOR = 'os.environ["DATABASE_URL"]'


def _env_py(project: Path, prelude: str, url: str) -> None:
    """``env.py`` of the database_url style, with ``prelude`` first and ``url`` for its URL."""
    env_py = project / "migrations" / "env.py"
    text = env_py.read_text()
    assert ANCHOR in text, "the example env.py changed: update this test"
    env_py.write_text(prelude + text.replace(ANCHOR, url))


def _install(site: Path, version: str, database: str) -> None:
    """A distribution ``fakepkg`` at ``version`` in ``site``, as pip leaves one."""
    for old in site.glob("fakepkg-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    package = site / "fakepkg"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f"DATABASE = {database!r}\n")
    info = site / f"fakepkg-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakepkg\nVersion: {version}\n")
    (info / "RECORD").write_text(
        f"fakepkg/__init__.py,,\nfakepkg-{version}.dist-info/METADATA,,\n"
        f"fakepkg-{version}.dist-info/RECORD,,\n"
    )


def test_an_upgraded_installed_package_sends_the_next_run_cold(tmp_path: Path) -> None:
    """env.py takes its database from an installed package: a new version of it (another
    dist-info), or the same one reinstalled in place, is a new answer."""
    site = tmp_path / "lib" / "site-packages"  # not the project's: its files are not watched
    _install(site, "1.0", "first.db")
    project = make_user_project("database_url", tmp_path / "p", "unused")
    _env_py(project, "import fakepkg\n", f"'sqlite:///{tmp_path}/' + fakepkg.DATABASE")
    cache, env = tmp_path / "cache", {"PYTHONPATH": str(site)}
    _warm(project, cache, env)
    status, lean = _warm(project, cache, env)
    assert lean and "first.db" in str(status["url"])
    (answers_file,) = cache.glob("answers-*.json")
    recorded = json.loads(answers_file.read_text())["installed"]["distributions"]
    assert {d["name"]: d["version"] for d in recorded.values()}["fakepkg"] == "1.0"
    assert {"alembic", "SQLAlchemy"} <= {d["name"] for d in recorded.values()}

    _install(site, "2.0", "other.db")
    status, lean = _warm(project, cache, env)
    assert not lean and "other.db" in str(status["url"])
    status, lean = _warm(project, cache, env)
    assert lean and "other.db" in str(status["url"])

    # reinstalled in place: the same directory entries, the package's files rewritten
    info = site / "fakepkg-2.0.dist-info"
    (site / "fakepkg" / "__init__.py").write_text("DATABASE = 'third.db'\n")
    for name in ("METADATA", "RECORD"):
        (info / name).write_text((info / name).read_text() + "\n")
    status, lean = _warm(project, cache, env)
    assert not lean and "third.db" in str(status["url"])


def test_an_applied_script_edited_to_the_same_size_with_its_mtime_restored_is_modified(
    tmp_path: Path,
) -> None:
    make_project(tmp_path / "p", "library")
    project, cache = tmp_path / "p", tmp_path / "cache"
    up, _ = migrasafe("upgrade", cwd=project, cache=None)
    assert up.returncode == 0, up.stderr
    _warm(project, cache, {})
    status, lean = _warm(project, cache, {})
    assert lean and status["modified"] == []
    script = next((project / "migrations" / "versions").glob("0001_*.py"))
    before = script.stat()
    text = script.read_text()
    script.write_text(text.replace("books", "bOoks", 1))
    os.utime(script, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (script.stat().st_size, script.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    status, lean = _warm(project, cache, {})
    assert [m["revision"] for m in status["modified"]] == ["0001"]  # type: ignore[index,union-attr]
    cold, _ = migrasafe("status", "--json", cwd=project, cache=None)
    assert json.loads(cold.stdout) == status


# -- the cache file ---------------------------------------------------------------------


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A project with a warm cache: (project, cache directory, answers file)."""
    make_project(tmp_path / "p", "library")
    project, cache = tmp_path / "p", tmp_path / "cache"
    _warm(project, cache, {})
    (location,) = cache.glob("answers-*.json")
    assert answers.read(str(location)) is not None
    return project, cache, location


def _hostile(location: Path, how: str) -> None:
    """Spoil the answers file at ``location`` in one way."""
    found = json.loads(location.read_text())
    if how == "corrupt":
        location.write_bytes(b"\xff\xfe{" + location.read_bytes()[3:])
    elif how == "truncated":
        location.write_bytes(location.read_bytes()[: location.stat().st_size // 2])
    elif how == "nested":
        location.write_text("[" * 100_000 + "]" * 100_000)
    elif how == "huge":
        os.truncate(location, cachefile.MAX_BYTES + 1)  # sparse: no disk used
    elif how == "other owner":
        os.chown(location, 12345, 12345)
    elif how == "world writable":
        location.chmod(0o666)
    elif how == "group readable":
        location.chmod(0o640)
    elif how == "fifo":
        location.unlink()
        os.mkfifo(location, 0o600)
    elif how == "symlink":
        copy = location.with_name("elsewhere.json")
        copy.write_text(json.dumps(found))
        copy.chmod(0o600)
        location.unlink()
        location.symlink_to(copy)
    else:  # a wrong type somewhere the lean path reads
        path, value = how.split("=", 1)
        *parents, last = path.split(".")
        node = found
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = json.loads(value)
        location.write_text(json.dumps(found))


HOSTILE = [
    "corrupt", "truncated", "nested", "huge", "world writable", "group readable", "fifo",
    "symlink", "salt=5", "salt=\"zz\"", "files.0.size=\"12\"", "files.0.declared.literal=1",
    "files.0.declared.extra=null", "graph.entries.0.is_head=\"yes\"", "graph.order=[\"nope\"]",
    "graph.parents={}", "graph.heads=[[]]", "database.version_table=7",
    "database.dialect=\"oracle\"", "installed.sites.x=\"1\"", "watched.x=[1, 2]",
    "environ.x=3", "directories.x=\"a\"", "format=2", "installed=null",
]  # fmt: skip
if os.getuid() == 0:  # root can give a file away; others cannot make one to test with
    HOSTILE.append("other owner")


@pytest.mark.parametrize("how", HOSTILE)
def test_a_corrupt_or_hostile_cache_file_is_ignored(
    filled: tuple[Path, Path, Path], how: str
) -> None:
    _project, _cache, location = filled
    _hostile(location, how)
    assert answers.read(str(location)) is None


@pytest.mark.parametrize("how", ["symlink", "truncated", "graph.entries.0.is_head=\"yes\"",
                                 "files=[]", "fifo"])  # fmt: skip
def test_the_command_answers_cold_after_a_hostile_cache_file_never_with_a_traceback(
    filled: tuple[Path, Path, Path], how: str
) -> None:
    project, cache, location = filled
    target = location.with_name("elsewhere.json")
    _hostile(location, how)
    planted = target.read_bytes() if target.exists() else None
    reference, _ = migrasafe("status", "--json", cwd=project, cache=None)
    run, imported = migrasafe("status", "--json", cwd=project, cache=cache)
    assert (run.returncode, run.stdout) == (reference.returncode, reference.stdout), run.stderr
    assert "Traceback" not in run.stderr and "alembic" in imported
    info = os.lstat(location)  # replaced by a file of the user's, not written through
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    if planted is not None:
        assert target.read_bytes() == planted
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []  # no temp
    _run, imported = migrasafe("status", "--json", cwd=project, cache=cache)
    assert "alembic" not in imported  # and warm again


def test_the_cache_is_private_and_its_temporary_files_follow_no_planted_symlink(
    tmp_path: Path,
) -> None:
    location = tmp_path / "cache" / "answers-x.json"
    victim = tmp_path / "victim"
    victim.write_text("precious")
    cachefile.write_json(str(location), {"format": 0})
    assert stat.S_IMODE(location.stat().st_mode) == 0o600
    assert stat.S_IMODE(location.parent.stat().st_mode) == 0o700
    location.unlink()
    location.symlink_to(victim)  # planted at the answers' own name
    for name in (f"answers-x.json.{os.getpid()}.tmp", ".answers-x.json.tmp"):  # old names
        (location.parent / name).symlink_to(victim)
    cachefile.write_json(str(location), {"format": 1})
    assert victim.read_text() == "precious"
    assert not location.is_symlink() and json.loads(location.read_text()) == {"format": 1}


# -- os.environ, putenv and .env files: as under Alembic ---------------------------------

ENV_PRELUDE = """import json as _json, os as _os, sys as _sys
import dotenv as _dotenv
_here = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_original = _os.environ
_os.putenv("MS_PUT_ONLY", "put")  # the C environment only: os.environ does not see it
_dotenv.load_dotenv(_os.path.join(_here, ".env"))  # DB_NAME, unless already set
with open(_os.path.join(_here, "settings.env")) as _handle:  # a file read by hand
    _TABLE_PREFIX = _handle.read().strip()
_os.environ = dict(_os.environ, MS_ASSIGNED="yes")  # rebound, as some env.py do
with open(_os.environ["MS_SEEN"], "w") as _seen:
    _json.dump({"same_object_before": type(_original).__name__, "put": _os.environ.get(
        "MS_PUT_ONLY"), "assigned": _os.environ.get("MS_ASSIGNED"), "db": _os.environ.get(
        "DB_NAME"), "is_dict": type(_os.environ) is dict, "prefix": _TABLE_PREFIX}, _seen)
"""


def test_an_env_py_that_rebinds_os_environ_puts_env_and_loads_dotenv_acts_as_under_alembic(
    tmp_path: Path,
) -> None:
    project = make_user_project("database_url", tmp_path / "p", "unused")
    _env_py(project, ENV_PRELUDE, f"'sqlite:///{tmp_path}/' + os.environ['DB_NAME'] + '.db'")
    (project / ".env").write_text("DB_NAME=first\n")
    (project / "settings.env").write_text("x\n")
    seen = tmp_path / "seen.json"
    env = {"MS_SEEN": str(seen)}
    environ = {k: v for k, v in os.environ.items() if k not in ("DB_NAME", "MIGRASAFE_URL")}
    up = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "2b3c4d5e6f7a"],
                        cwd=project, env={**environ, **env, "DB_NAME": "first"},
                        capture_output=True, text=True)  # fmt: skip
    assert up.returncode == 0, up.stderr

    def alembic() -> tuple[str, object]:
        run = subprocess.run([sys.executable, "-m", "alembic", "current"], cwd=project,
                             env={**environ, **env}, capture_output=True, text=True)  # fmt: skip
        assert run.returncode == 0, run.stderr
        return run.stdout.split()[0] if run.stdout.strip() else "", json.loads(seen.read_text())

    cache = tmp_path / "cache"
    for db_name in ("first", "second", "first"):
        (project / ".env").write_text(f"DB_NAME={db_name}\n")
        current, under_alembic = alembic()
        status, lean = _warm(project, cache, env)
        assert not lean and json.loads(seen.read_text()) == under_alembic
        assert under_alembic == {"same_object_before": "_Environ", "put": None,
                                 "assigned": "yes", "db": db_name, "is_dict": True,
                                 "prefix": "x"}  # fmt: skip
        assert status["current"] == ([current] if current else [])
        assert f"{db_name}.db" in str(status["url"])
        status_again, lean = _warm(project, cache, env)
        assert lean and status_again == status
    (project / "settings.env").write_text("y\n")  # a file env.py read by hand
    _status, lean = _warm(project, cache, env)
    assert not lean


def test_os_environ_stays_the_same_object_and_its_reads_are_noted_with_their_first_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MS_WATCHED", "given")
    monkeypatch.delenv("MS_ABSENT", raising=False)
    environ = os.environ
    with watching() as watch:
        assert os.environ is environ and type(os.environ).__name__ == "_Environ"
        os.environ["MS_WATCHED"] = "set by env.py"
        assert os.environ["MS_WATCHED"] == "set by env.py"
        assert "MS_ABSENT" not in os.environ
        assert os.getenvb(b"MS_WATCHED") == b"set by env.py"
    assert type(os.environ) is os._Environ and os.environ is environ
    assert watch.environ == {"MS_WATCHED": "given", "MS_ABSENT": None}
    assert not watch.whole_environ


def test_the_audit_hook_never_fails_the_users_open(tmp_path: Path) -> None:
    """A hook that raised would fail the open() it audits: with the working directory
    gone, making a relative path absolute fails, and the open must still be the user's."""
    from migrasafe.commands.lean import watch as watch_module

    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    try:
        os.chdir(gone)
        gone.rmdir()
        with watching():
            watch_module._on_audit("open", ("relative.txt", "r", 0))
            with pytest.raises(FileNotFoundError):
                open("relative.txt")  # noqa: SIM115 (the error is the open's own)
    finally:
        os.chdir(here)


def test_the_revision_files_cache_is_read_and_written_the_same_guarded_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cold run's declarations come from it: a planted file there would reach the
    lean path's answers."""
    from migrasafe.project.scripts import RevisionCache, ScriptFile

    monkeypatch.setenv("MIGRASAFE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MIGRASAFE_NO_CACHE", raising=False)
    cache = RevisionCache(tmp_path)
    cache.put("key", ScriptFile(path=tmp_path / "a.py", revision="a"))
    cache.save()
    assert cache.path is not None and stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    found = RevisionCache(tmp_path).get("key", tmp_path / "a.py")
    assert found is not None and found.revision == "a"
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(cache.path.read_text())
    elsewhere.chmod(0o600)
    cache.path.unlink()
    cache.path.symlink_to(elsewhere)
    assert RevisionCache(tmp_path).entries == {}
    cache.path.unlink()
    cache.path.write_text(json.dumps({"key": 5}))
    cache.path.chmod(0o600)
    assert RevisionCache(tmp_path).get("key", tmp_path / "a.py") is None  # no traceback
