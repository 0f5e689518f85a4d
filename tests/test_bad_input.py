"""Bad input, table-driven: every case is one line on stderr, exit 2, no traceback,
no password, and the database exactly as it was.

The project is the library template with its database at 0001; each case may
change the project's files (a copy of its own) or the environment, never the
database.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import make_project, run_cli

SECRET = "hunter2"
Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    setup: Setup | None = None
    env: dict[str, str] = field(default_factory=dict)
    url: bool = True  # pass the project's database with --url
    expect: str = ""  # a phrase the error line must hold


def _write(relative: str, text: str | bytes) -> Setup:
    def setup(project: Path) -> None:
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    return setup


def _edit(relative: str, old: str, new: str) -> Setup:
    def setup(project: Path) -> None:
        path = project / relative
        text = path.read_text()
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new))

    return setup


def _remove(relative: str) -> Setup:
    def setup(project: Path) -> None:
        target = project / relative
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()

    return setup


def _symlink_loop(project: Path) -> None:
    versions = project / "migrations" / "versions"
    (versions / "loop.py").symlink_to(versions / "loop.py")


def _mark(project: Path, revision: str) -> None:
    """A write-ahead mark standing for ``revision`` in the database (``app.db`` beside the
    project: see the ``template`` fixture)."""
    url = f"sqlite:///{project.parent / 'app.db'}"
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE IF NOT EXISTS migrasafe_checksums (version_table VARCHAR(128), "
            "revision VARCHAR(64), checksum VARCHAR(64), script VARCHAR(255), "
            "applied_at TIMESTAMP, applied_by VARCHAR(255), state VARCHAR(16), "
            "PRIMARY KEY (version_table, revision))"
        )
        conn.exec_driver_sql(
            "INSERT INTO migrasafe_checksums VALUES ('alembic_version', ?, 'x', 'x.py', "
            "'2026-01-01', 'someone', 'started')",
            (revision,),
        )
    engine.dispose()


ENV_PY = "migrations/env.py"
REV = "migrations/versions/0002_add_book_fields_and_reviews.py"
BAD_REVISION_HEAD = '"""x"""\nfrom alembic import op\n'

CASES: dict[str, Case] = {}


def case(name: str, *args: str, **kw: object) -> None:
    assert name not in CASES, name
    CASES[name] = Case(tuple(args), **kw)  # type: ignore[arg-type]


# -- configuration files ----------------------------------------------------------
for command in ("status", "upgrade", "history", "verify", "lint"):
    case(f"config-missing-{command}", "-c", "nothing.ini", command, expect="not found")
case("config-is-a-directory", "-c", "migrations", "status")
case("config-binary", "status", setup=_write("alembic.ini", b"\x00\xff\xfe\x89PNG\x00" * 20))
case(
    "config-not-utf8",
    "status",
    setup=_write("alembic.ini", "[alembic]\nx = \xe9\n".encode("latin-1")),
)
case(
    "config-bad-percent",
    "status",
    setup=_edit("alembic.ini", "path_separator = os", "path_separator = 50%"),
)
case("config-no-alembic-section", "status", setup=_write("alembic.ini", "[other]\nx = 1\n"))
case("config-empty", "status", setup=_write("alembic.ini", ""))
case("config-no-script-location", "status",
     setup=_edit("alembic.ini", "script_location = %(here)s/migrations", "# none"))  # fmt: skip
case("config-script-location-missing", "status",
     setup=_edit("alembic.ini", "%(here)s/migrations", "%(here)s/nowhere"))  # fmt: skip
case("config-no-env-py", "status", setup=_remove(ENV_PY), expect="env.py")
case("config-two-ini", "-c", "a.ini", "-c", "b.ini", "status", expect="only one ini")
case("config-two-toml", "-c", "pyproject.toml", "-c", "x/pyproject.toml", "status")
case(
    "config-toml-invalid",
    "-c",
    "pyproject.toml",
    "status",
    setup=_write("pyproject.toml", "[tool.alembic\n"),
)
case("config-toml-without-alembic", "-c", "pyproject.toml", "status",
     setup=_write("pyproject.toml", "[tool.other]\nx = 1\n"), expect="[tool.alembic]")  # fmt: skip
case("config-unknown-section", "-n", "staging", "status", expect="[staging]")
case(
    "config-alembic-config-env-missing",
    "status",
    env={"ALEMBIC_CONFIG": "/nonexistent/alembic.ini"},
    url=False,
)
case("config-symlink-loop", "-c", "loop.ini", "status",
     setup=lambda p: (p / "loop.ini").symlink_to(p / "loop.ini"))  # fmt: skip

# -- env.py ---------------------------------------------------------------------------
case("env-syntax-error", "status", setup=_write(ENV_PY, "def (:\n"), expect="env.py")
case("env-raises", "upgrade", setup=_write(ENV_PY, "raise RuntimeError('no config for you')\n"),
     expect="before any revision ran")  # fmt: skip
case(
    "env-sys-exit", "upgrade", setup=_write(ENV_PY, "import sys\nsys.exit(0)\n"), expect="sys.exit"
)
case("env-missing-module", "status", setup=_write(ENV_PY, "import not_installed_anywhere\n"),
     expect="not_installed_anywhere")  # fmt: skip
case("env-no-run-migrations", "status", setup=_write(ENV_PY, "x = 1\n"), expect="run_migrations")
case("env-reads-missing-variable", "status",
     setup=_write(ENV_PY, "import os\nos.environ['DATABASE_URL_NOT_SET']\n"))  # fmt: skip
case("env-verify-raises", "verify", setup=_write(ENV_PY, "raise RuntimeError('broken env')\n"),
     expect="before any revision ran")  # fmt: skip
case("env-lint-raises-without-a-url", "lint", url=False,
     setup=lambda p: (_write(ENV_PY, "raise RuntimeError('broken env')\n")(p),
                      _edit("alembic.ini", "sqlalchemy.url", "# sqlalchemy.url")(p)))  # fmt: skip

# -- revision files -----------------------------------------------------------------
case("rev-syntax-error-upgrade", "upgrade", setup=_write(REV, "def (:\n"), expect="validate")
case("rev-syntax-error-status", "status", setup=_write(REV, "def (:\n"))
case("rev-syntax-error-accept", "accept", setup=_write(REV, "def (:\n"))
case("rev-sys-exit-at-import", "upgrade", setup=_write(REV, "import sys\nsys.exit(0)\n"))
case("rev-raises-at-import", "upgrade", setup=_write(REV, "raise ImportError('nope')\n"))
case("rev-unknown-parent", "upgrade",
     setup=_edit(REV, 'None] = "0001"', 'None] = "9999"'))  # fmt: skip
case("rev-self-parent", "status", setup=_edit(REV, 'None] = "0001"', 'None] = "0002"'))
case("rev-duplicate", "upgrade",
     setup=lambda p: shutil.copy(p / REV, p / "migrations/versions/0002_copy.py"))  # fmt: skip
case("rev-quoted-id", "upgrade",
     setup=_edit(REV, 'revision: str = "0002"', "revision: str = \"0002' || 'x\""))  # fmt: skip
case("rev-symlink-loop", "status", setup=_symlink_loop)

# -- targets ----------------------------------------------------------------------------
for target in ("", "@", "heads+5", "base+99", "nosuch", "abc@base", "+99", "0003@", "@head",
               "0001:0003", "x" * 300):  # fmt: skip
    case(f"upgrade-target-{target[:12]!r}", "upgrade", target)
for target in ("", "@", "head", "heads", "nosuch", "abc@base", "+1", "-99", "base+99", "0003"):
    case(f"downgrade-target-{target!r}", "downgrade", target)
case("downgrade-sql-no-start", "downgrade", "--sql", "nosuch")
case("upgrade-sql-bad-range", "upgrade", "--sql", "nosuch:0002")
case("accept-unknown", "accept", "nosuch", expect="not applied")
case("accept-not-applied", "accept", "0003", expect="not applied")

# -- URLs, on the command line and in the environment ---------------------------------
URLS = {
    "garbage": "not a url",
    "unescaped-password": f"postgresql://app:{SECRET}@x@127.0.0.1/db",
    "password-with-slash": f"postgresql://app:a/{SECRET}:b@127.0.0.1:1/db",
    "no-driver": f"postgresql+nosuchdriver://app:{SECRET}@127.0.0.1/db",
    "unknown-dialect": f"nosuchdb://app:{SECRET}@127.0.0.1/db",
    "refused": f"postgresql+psycopg://app:{SECRET}@127.0.0.1:1/db",
    "query-password": f"postgresql+psycopg://app@127.0.0.1:1/db?password={SECRET}",
    "sqlite-missing-directory": "sqlite:////nonexistent/dir/app.db",
    "bad-port": f"postgresql://app:{SECRET}@127.0.0.1:99999/db",
    # malformed before SQLAlchemy could find the password in them
    "one-slash": f"postgresql:/app:{SECRET}@127.0.0.1/x",
    "no-scheme": f"app:{SECRET}@127.0.0.1/db",
    "scheme-colon-only": f"postgresql:app:{SECRET}@127.0.0.1/db",
    "open-bracket": f"postgresql://app:{SECRET}@[::1/db",
}
for name, url in URLS.items():
    for command in ("status", "upgrade", "accept", "verify"):
        if name == "sqlite-missing-directory" and command in ("status", "verify"):
            continue  # nothing to read, and verify's scratch file is elsewhere: no error
        case(f"url-{name}-{command}", "--url", url, command, url=False)
    case(f"env-url-{name}", "upgrade", env={"MIGRASAFE_URL": url}, url=False)
case("verify-url-garbage", "verify", "--url", "not a url")
for name in ("one-slash", "no-scheme", "open-bracket"):
    case(f"url-{name}-json", "--url", URLS[name], "status", "--json", url=False)
    case(f"url-{name}-debug", "--debug", "--url", URLS[name], "current", url=False)

# -- targets: read whole, as Alembic reads only a prefix ("+1a" would move one) ---------
for target in ("base-1", "+1a", "+1.5", "head+1", "heads+2", "-1", "0001+x", "a@", "@"):
    case(f"target-upgrade-{target}", "upgrade", target)
for target in ("-1x", "+1", "-1.5", "base-2"):
    case(f"target-downgrade-{target}", "downgrade", target)
case("target-stamp-unknown", "stamp", "nosuch", expect="nosuch")
case("target-stamp-none", "stamp")
case("target-show-unknown", "show", "nosuch", url=False)
case("target-show-ambiguous", "show", "000", url=False)
case("target-edit-unknown", "edit", "nosuch", url=False)
case("edit-no-editor", "edit", "0001", url=False,
     env={"EDITOR": "/nonexistent/editor", "VISUAL": "/nonexistent/editor"})  # fmt: skip
case("merge-one-head", "merge", "-m", "nothing to merge", "0001", url=False)
case("revision-unknown-head", "revision", "-m", "x", "--head", "nosuch", url=False)
case("revision-depends-on-unknown", "revision", "-m", "x", "--depends-on", "nosuch", url=False)
case("check-not-at-head", "check", expect="not up to date")

# -- declarations and code that raise what Exception does not catch --------------------
DATA = "[tool.migrasafe.verify.before_revision_data]\n"
for name, text in {
    "unknown-table": DATA + '"0002" = { nosuch = [{ id = 1 }] }\n',
    "rows-not-a-list": DATA + '"0002" = { books = 3 }\n',
    "row-not-a-table": DATA + '"0002" = { books = [1, 2] }\n',
    "revision-not-a-table": "[tool.migrasafe.verify]\nbefore_revision_data = 5\n",
    "unknown-revision": DATA + '"9999" = { books = [] }\n',
    "irreversible-not-a-list": '[tool.migrasafe.verify]\nirreversible = "0001"\n',
    "irreversible-ints": "[tool.migrasafe.verify]\nirreversible = [1, 2]\n",
    "verify-not-a-table": "[tool.migrasafe]\nverify = [1]\n",
    "fixtures-file-missing": '[tool.migrasafe.verify]\nbefore_revision_data = "nosuch.json"\n',
}.items():
    case(f"declarations-{name}", "verify", setup=_write("pyproject.toml", text))  # fmt: skip
for name, statement in (("base-exception", "raise BaseException('env.py gave up')"),
                        ("generator-exit", "raise GeneratorExit()"),
                        ("system-exit", "raise SystemExit(3)")):  # fmt: skip
    case(f"env-py-{name}", "status",
         setup=_edit("migrations/env.py", "config = context.config\n",
                     f"config = context.config\n{statement}\n"))  # fmt: skip
    case(f"revision-{name}", "upgrade",
         setup=_edit("migrations/versions/0002_add_book_fields_and_reviews.py",
                     "def upgrade() -> None:\n",
                     f"def upgrade() -> None:\n    {statement}\n"))  # fmt: skip
case("ini-bad-path-separator", "status",
     setup=_edit("alembic.ini", "[alembic]\n",
                 "[alembic]\npath_separator = semicolonx\n"))  # fmt: skip

# -- [tool.migrasafe] names: a typo would silently drop the setting ------------------------
for text in ("db_lock_timeout = \"2s\"\n", "retry = 3\n", "lint = 3\n", "verify = \"x\"\n",
             "[tool.migrasafe.lint]\nignores = []\n",
             "[tool.migrasafe.lint]\nper-revision-ignore = { \"0001\" = 3 }\n",
             "[tool.migrasafe.lint]\nignore = [1, 2]\n",
             "[tool.migrasafe.verify]\nirreversable = []\n"):  # fmt: skip
    body = text if text.startswith("[") else "[tool.migrasafe]\n" + text
    case(f"settings-{text.split()[0].strip('[]')}-{len(CASES)}", "upgrade",
         setup=_write("pyproject.toml", body))  # fmt: skip

# -- numbers: NaN, infinity, 0 (which a database reads as no timeout at all) ------------
for value in ("nan", "1e400", "inf", "-0.5", "ten", "604801"):
    case(f"option-lock-timeout-{value}", "upgrade", "--lock-timeout", value)
for value in ("0", "0s", "0.5ms", "0ms", "-1s", "nan", "25d", "99999999"):
    case(f"option-db-lock-timeout-{value}", "upgrade", "--db-lock-timeout", value)
    case(f"option-statement-timeout-{value}", "downgrade", "base", "--statement-timeout", value)
case("option-retries-negative", "upgrade", "--retries", "-1")
case("option-resume-with-sql", "upgrade", "--resume", "--sql", expect="--resume")
case("option-resume-with-sql-downgrade", "downgrade", "base", "--resume", "--sql",
     expect="--resume")  # fmt: skip
case("option-resume-takes-no-value", "upgrade", "--resume=yes")
case("upgrade-over-a-revision-stopped-midway", "upgrade",
     setup=lambda project: _mark(project, "0002"), expect="stopped midway")  # fmt: skip
case("option-rows-negative", "verify", "--rows", "-5")
case("option-rows-huge", "verify", "--rows", "100000000")
case("option-fail-on-unknown", "validate", "--fail-on", "sometimes", url=False)
case("option-quiet-and-verbose", "-q", "-v", "status")
for key, value in (("retries", "1000000000000000000000000000000"), ("retries", '"3"'),
                   ("retries", "-1"), ("db-lock-timeout", '"0s"'),
                   ("db-lock-timeout", "0"), ("statement-timeout", "nan"),
                   ("db-lock-timeout", '"soon"')):  # fmt: skip
    case(f"pyproject-{key}-{value.strip(chr(34))}", "upgrade",
         setup=_write("pyproject.toml", f"[tool.migrasafe]\n{key} = {value}\n"))  # fmt: skip
case("verify-url-refused", "verify", "--url", f"postgresql+psycopg://app:{SECRET}@127.0.0.1:1/db")

# -- options ----------------------------------------------------------------------------
case("option-unknown", "status", "--nope")
case("option-rows-not-a-number", "verify", "--rows", "abc")
case("option-lock-timeout-negative", "upgrade", "--lock-timeout", "-5")
case("option-dialect-unknown", "lint", "--dialect", "oracle")
case("option-lint-rule-unknown", "lint", "--rule", "nosuch")


def _git_repository(project: Path) -> None:
    """The project committed to a git repository of its own (for --git-base)."""
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "project")):
        subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
                       cwd=project, check=True, capture_output=True)  # fmt: skip


# A ref is validated as a commit before git sees it: never an option (it once truncated x).
for name, ref in (("option", "--output=x"), ("unknown", "nosuch"), ("spaces", "main branch"),
                  ("blob", "HEAD:alembic.ini"), ("dash", "-p")):  # fmt: skip
    case(f"option-lint-git-base-{name}", "lint", f"--git-base={ref}", setup=_git_repository,
         expect="names no commit")  # fmt: skip
case("option-lint-git-base-not-a-repository", "lint", "--git-base", "HEAD~1", expect="git says")
case("option-validate-rule-unknown", "validate", "--rule", "nosuch", url=False)
case("option-validate-skip-unknown", "validate", "--skip", "nosuch", url=False)
case("option-revision-without-message", "revision")
case("option-unknown-command", "nosuchcommand")
case("option-init-template-unknown", "init", "x", "--template", "nosuch", url=False)
case("init-into-a-file", "init", "alembic.ini", url=False)
case("init-non-empty", "init", "migrations", url=False, expect="not an empty directory")
case("init-unwritable", "init", "/proc/migrasafe-cannot", url=False)
case("flask-app-missing", "--app", "nosuchmodule:app", "status", url=False,
     setup=lambda p: (p / "alembic.ini").rename(p / "migrations" / "alembic.ini"))  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The library project, and its database at 0001."""
    base = tmp_path_factory.mktemp("bad-input")
    ini = make_project(base / "project")
    database = base / "app.db"
    result = run_cli("-c", str(ini), "--url", f"sqlite:///{database}", "upgrade", "0001")
    assert result.exit_code == 0, result.stderr
    return ini.parent, database


def _snapshot(database: Path) -> tuple[object, ...]:
    engine = sa.create_engine(f"sqlite:///{database}", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            names = sorted(sa.inspect(conn).get_table_names())
            rows = tuple(tuple(conn.execute(sa.text(f'SELECT * FROM "{n}"')).all()) for n in names)
            return (tuple(names), rows, database.stat().st_size)
    finally:
        engine.dispose()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 200, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    name: str, template: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = CASES[name]
    project = tmp_path / "project"
    shutil.copytree(template[0], project, symlinks=True)
    database = tmp_path / "app.db"
    shutil.copy(template[1], database)
    if spec.setup is not None:
        spec.setup(project)
    monkeypatch.chdir(project)
    for key in ("ALEMBIC_CONFIG", "MIGRASAFE_URL", "FLASK_APP", "DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in spec.env.items():
        monkeypatch.setenv(key, value)
    before = _snapshot(database)
    args = (("--url", f"sqlite:///{database}") if spec.url else ()) + spec.args
    result = run_cli(*args)
    output = result.stdout + result.stderr
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("migrasafe: error: ")]
    assert len(ours) == 1, result.stderr
    assert "Traceback" not in output or "--debug" in spec.args  # --debug asks for it
    assert SECRET not in output
    assert spec.expect in ours[0], ours[0]
    assert _snapshot(database) == before
