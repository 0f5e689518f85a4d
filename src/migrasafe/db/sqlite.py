"""SQLite: a file, flock for the migration lock, and DDL that the driver must be told
to keep inside its transaction."""

from __future__ import annotations

import atexit
import errno
import fcntl
import logging
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import asbool

from migrasafe.db.catalog import Catalog, digest
from migrasafe.db.locks import Lock, Locks
from migrasafe.db.scratch import Scratch
from migrasafe.db.sessions import Sessions
from migrasafe.errors import DatabaseError

# The filename of a database in memory (a URI says it with mode=memory too).
_MEMORY = ":memory:"
_PYSQLITE_ARGS = ("uri", "timeout", "isolation_level", "detect_types", "check_same_thread",
                  "cached_statements")  # fmt: skip
_READONLY_ROLLBACK = 776  # SQLITE_READONLY_ROLLBACK: a hot journal that mode=ro cannot undo


def driver_filename(url: URL) -> str:
    """What SQLAlchemy's pysqlite (and aiosqlite) dialect hands ``sqlite3.connect``: so
    that migrasafe locks and reads the file the migration writes, however the URL names it."""
    database = url.database or _MEMORY
    if not _is_true(url.query.get("uri")):
        return database if database == _MEMORY else os.path.abspath(database)
    extra = {k: v for k, v in url.query.items() if k not in _PYSQLITE_ARGS}
    if extra:  # sorted and unescaped, as SQLAlchemy appends them
        database += "?" + "&".join(f"{k}={v}" for k, v in sorted(extra.items()))
    return database


def _is_true(flag: object) -> bool:
    try:
        return isinstance(flag, str) and bool(asbool(flag))
    except ValueError:  # SQLAlchemy refuses it when connecting, and says why
        return False


def file_of(filename: str) -> tuple[Path | None, dict[str, str]]:
    """The file SQLite opens for ``filename`` (None: in memory or a private temporary
    database), and its URI parameters; a ``file:`` URI decoded as SQLite decodes it.

    A name starting ``file:`` is taken for a URI even without ``uri=True``: Debian's
    SQLite is built with SQLITE_USE_URI (and SQLAlchemy makes every other name absolute).
    """
    if not filename.startswith("file:"):
        return (None if filename in ("", _MEMORY) else Path(os.path.abspath(filename))), {}
    rest, _, _fragment = filename[5:].partition("#")
    raw_path, _, raw_query = rest.partition("?")
    if raw_path.startswith("//"):  # file://localhost/path or file:///path
        authority, slash, raw_path = raw_path[2:].partition("/")
        if authority not in ("", "localhost"):
            raise DatabaseError(f"SQLite cannot open {filename!r}: the URI names a host")
        raw_path = slash + raw_path
    params: dict[str, str] = {}
    for pair in raw_query.split("&") if raw_query else []:
        key, _, value = pair.partition("=")
        params[unquote(key)] = unquote(value)
    path = unquote(raw_path)
    if path in ("", _MEMORY) or params.get("mode") == "memory":
        return None, params
    return Path(os.path.abspath(path)), params


def database_path(url: URL) -> Path | None:
    """The file a SQLite URL names (absolute, as the driver opens it); None: in memory."""
    return file_of(driver_filename(url))[0]


def readonly_uri(path: Path, params: dict[str, str] | None = None) -> str:
    """A ``mode=ro`` URI that reads ``path`` as it stands committed, without writing it.

    A writer killed while its changes were in the database file leaves a hot
    journal that the next connection must roll back: a read-only connection
    cannot ("attempt to write a readonly database"). The answer the user
    asked for is then read from a private copy of the file and its journal,
    rolled back there: the same state the next write will find, and the
    database is left as it is for the next ``upgrade`` (or any write) to
    roll back itself. A WAL left behind needs no copy: SQLite reads it read-only.
    """
    kept = {k: v for k, v in (params or {}).items() if k in ("vfs", "cache", "nolock")}
    query = "".join(f"&{quote(k)}={quote(v)}" for k, v in sorted(kept.items()))
    uri = f"file:{quote(path.as_posix())}?mode=ro{query}"
    for _attempt in range(3):
        try:
            probe = sqlite3.connect(uri, uri=True)
            try:  # reading the schema is what finds a hot journal
                probe.execute("SELECT count(*) FROM sqlite_master").fetchall()
            finally:
                probe.close()
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) != _READONLY_ROLLBACK:
                return uri  # the real connection reports it, as it always has
            copy = _rolled_back_copy(path)
            if copy is not None:
                return f"file:{quote(copy.as_posix())}?mode=ro{query}"
            continue  # a writer came and rolled it back meanwhile: read the file itself
        return uri
    raise DatabaseError(
        f"cannot read {path}: a writer keeps replacing its hot journal; retry, or run "
        "`migrasafe upgrade` to roll it back"
    )


# Copies already rolled back, by the (inode, size, mtime) of the file and its journal.
_copies: dict[tuple[object, ...], Path] = {}


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def _rolled_back_copy(path: Path) -> Path | None:
    """``path`` and its hot journal copied to a private directory and rolled back there;
    None if they changed while being copied (a writer is at work: read again)."""
    path = Path(os.path.realpath(path))  # SQLite keeps the journal beside the real file
    journal = path.with_name(path.name + "-journal")
    key = (str(path), _stamp(path), _stamp(journal))
    if key in _copies:
        return _copies[key]
    directory = Path(tempfile.mkdtemp(prefix="migrasafe-rollback-"))  # 0700: the user's data
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    copy = directory / path.name
    try:
        shutil.copyfile(path, copy)
        shutil.copyfile(journal, copy.with_name(copy.name + "-journal"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatabaseError(
            f"cannot read {path}: a killed writer left its hot journal {journal.name}, which "
            f"a read-only session cannot roll back, and copying it to roll it back aside "
            f"failed ({exc.strerror}); the next `migrasafe upgrade` (or any write) rolls it back"
        ) from exc
    if key != (str(path), _stamp(path), _stamp(journal)):
        return None
    try:
        with closing(sqlite3.connect(copy)) as connection:  # rolls the copy's journal back
            connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.Error as exc:
        raise DatabaseError(
            f"cannot read {path}: a killed writer left its hot journal {journal.name}, and "
            f"rolling it back in a copy failed ({exc}); the next `migrasafe upgrade` (or any "
            "write) rolls it back in place"
        ) from exc
    logging.getLogger(__name__).warning(
        "%s: a killed writer left %s; read as it will be once rolled back (the next "
        "write to the database does that)",
        path,
        journal.name,
    )
    _copies[key] = copy
    return copy


class SQLiteSessions(Sessions):
    name = "sqlite"
    sync_drivers: ClassVar[dict[str, str]] = {"aiosqlite": "pysqlite"}

    @property
    def path(self) -> Path | None:
        return database_path(self.url)

    def identity(self) -> tuple[object, ...]:
        # The file itself (a hard link, a symlink, a file: URI: one database); by its real
        # path while it does not exist yet.
        path = self.path
        if path is None:
            return ("sqlite", self.url.database)
        try:
            found = os.stat(path)
        except OSError:
            return ("sqlite", os.path.realpath(path))
        return ("sqlite", found.st_dev, found.st_ino)

    def exists(self) -> bool:
        # Connecting to a missing SQLite file creates it: look before connecting.
        return self.path is None or self.path.is_file()

    def readonly_engine(self) -> Engine:
        path = self.path
        if path is None:
            return self.engine()
        params = file_of(driver_filename(self.url))[1]
        return sa.create_engine(
            "sqlite://", creator=_sqlite_readonly_creator(path, params), poolclass=NullPool
        )

    @classmethod
    def make_readonly_args(
        cls, driver: str, cargs: list[Any], cparams: dict[str, Any]
    ) -> str | None:
        if not cargs or not isinstance(cargs[0], str):
            return None
        path, params = file_of(cargs[0])
        if path is None:  # in memory: nothing to protect
            return None
        if not path.is_file():
            cargs[0] = _MEMORY
            return str(path)
        cargs[0] = readonly_uri(path, params)
        cparams["uri"] = True
        return None

    @classmethod
    @contextmanager
    def transactional_ddl(cls) -> Iterator[None]:
        """Make Python's sqlite3 driver put DDL inside the transaction.

        SQLite's DDL is transactional, but the driver only opens a transaction
        before INSERT/UPDATE/DELETE, so a CREATE TABLE is committed at once
        and a failed migration leaves it behind. SQLAlchemy's recipe: turn off
        the driver's own handling and emit BEGIN. Installed on every SQLite
        connection opened meanwhile, so it also covers an env.py that builds
        its own engine.
        """

        def on_connect(dbapi_connection: Any, _record: object) -> None:
            if _is_sqlite(dbapi_connection):
                dbapi_connection.isolation_level = None

        def on_begin(connection: Connection) -> None:
            raw: Any = connection.connection.dbapi_connection
            # autocommit asked for (Alembic's autocommit_block): no transaction
            if not _is_sqlite(raw) or (
                connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            ):
                return
            # The block's end sets the isolation level back, and SQLAlchemy gives the driver
            # its own transaction handling again (isolation_level ""): taken back here, or
            # every later revision of the run would commit its DDL at once.
            raw.isolation_level = None
            if not _sqlite_in_transaction(raw):
                connection.exec_driver_sql("BEGIN")

        sa.event.listen(sa.pool.Pool, "connect", on_connect)
        sa.event.listen(Engine, "begin", on_begin)
        try:
            yield
        finally:
            sa.event.remove(sa.pool.Pool, "connect", on_connect)
            sa.event.remove(Engine, "begin", on_begin)


class SQLiteCatalog(Catalog):
    @classmethod
    def fingerprints(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> dict[tuple[str | None, str], str] | None:
        names = [name for schema, name in tables if schema is None]
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = connection.exec_driver_sql(
            f"SELECT tbl_name, type, name, coalesce(sql, '') FROM sqlite_master "
            f"WHERE tbl_name IN ({marks}) ORDER BY tbl_name, type, name", tuple(names),
        ).all()  # fmt: skip
        found: dict[str, list[str]] = {}
        for table, kind, name, sql in rows:  # the DDL as SQLite keeps it, tables and indexes
            found.setdefault(table, []).append(f"{kind}:{name}:{sql}")
        return {(None, t): digest(parts) for t, parts in found.items()}

    @classmethod
    def tables_named(
        cls, connection: Connection, tables: list[tuple[str | None, str]]
    ) -> set[tuple[str | None, str]] | None:
        names = [name for schema, name in tables if schema is None]
        if not names:
            return set()
        marks = ", ".join("?" for _ in names)
        rows = connection.exec_driver_sql(
            f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
            tuple(names),
        ).scalars()
        return {(None, name) for name in rows}

    @classmethod
    def all_tables(cls, connection: Connection) -> tuple[str, list[tuple[str, str]]] | None:
        rows = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'"
        ).scalars()
        return "main", [("main", name) for name in rows]


class SQLiteScratch(Scratch):
    @contextmanager
    def create(self) -> Iterator[str]:
        with tempfile.TemporaryDirectory(prefix="migrasafe-scratch-") as directory:
            yield f"sqlite:///{Path(directory) / 'scratch.db'}"

    @classmethod
    def tune_session(cls, dbapi_connection: Any) -> None:
        # A scratch file is deleted afterwards: waiting for the disk on each commit buys nothing.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()

    @classmethod
    def empty(cls, connection: Connection, keep: set[str]) -> None:
        # foreign_keys cannot be switched off inside a transaction (migrasafe's BEGIN comes
        # first): deferred, they are checked at the commit, when every table is gone
        connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        rows = connection.exec_driver_sql(
            "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'table') "
            "AND substr(name, 1, 7) <> 'sqlite_' ORDER BY type DESC"
        ).all()  # views first
        for kind, name in rows:
            quoted = name.replace('"', '""')
            connection.exec_driver_sql(f'DROP {kind.upper()} IF EXISTS "{quoted}"')
        connection.commit()


class SQLiteLocks(Locks):
    def set_timeouts(
        self, connection: Connection, lock_timeout: float | None, statement_timeout: float | None
    ) -> None:
        if statement_timeout is not None:
            raise DatabaseError("--statement-timeout is not supported on SQLite")
        if lock_timeout is not None:  # how long a write waits for another connection's lock
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")

    def is_lock_conflict(self, exc: BaseException) -> bool:
        return "database is locked" in str(getattr(exc, "orig", exc))

    def lock(self) -> Lock | None:
        """Exclusive file locks (flock) for the database file, however it is named.

        A lock inside the database (BEGIN EXCLUSIVE) would also block the
        migration's own connection; the kernel drops a flock when its process
        dies, however it dies. The database file itself is never opened for
        it: closing any descriptor of that file drops the POSIX locks SQLite
        holds on it in this process. Two lock files, taken in this order:

        - beside the database, named after its real path (a symlink, a
          ``file:`` URI and any spelling of the path share it, and so do
          containers sharing the volume);
        - in a private directory of the user's under /tmp, named after the
          file's device and inode: a hard link, under any name in any
          directory, shares it (skipped while the file does not exist: no
          hard link to it can exist either, and the first lock serialises
          the runs that create it).
        """
        path = database_path(self.url)
        if path is None:
            return None
        real = Path(os.path.realpath(path))
        try:
            found: os.stat_result | None = os.stat(real)
        except FileNotFoundError:
            found = None
        mode, owner = (found.st_mode & 0o666, found.st_uid) if found else (0o644, os.geteuid())
        files = [_LockFile(real.with_name(real.name + ".migrasafe-lock"), mode,
                           {os.geteuid(), owner})]  # fmt: skip
        directory = _private_lock_directory() if found is not None else None
        if found is not None and directory is not None:
            name = f"sqlite-{found.st_dev}-{found.st_ino}.lock"
            files.append(_LockFile(directory / name, 0o600, {os.geteuid()}, transient=True))
        blocked: list[_LockFile] = []

        def try_acquire() -> bool:
            taken: list[_LockFile] = []
            try:
                for file in files:
                    if not file.acquire():
                        blocked[:] = [file]
                        return False
                    taken.append(file)
                taken.clear()  # all held: kept
                return True
            finally:  # all or none: a refused lock file lets go of the one before it too
                for done in reversed(taken):
                    done.release()

        def holder() -> str:
            pid = blocked[0].seen if blocked else ""
            return f"process {pid}" if pid else "another process"

        def release(acquired: bool) -> None:
            for file in reversed(files):
                if acquired:
                    file.release()
                else:
                    file.close()

        return Lock(try_acquire, holder, release, lambda: True)


class _LockFile:
    """One flock'd file that is never followed through a symlink, never a file someone
    else planted (a hard link to one of the user's files would be truncated), and whose
    contents say which process holds it.

    A ``transient`` one is removed by its holder on release (it sits in /tmp, one per
    database): a waiter that locked the file just removed sees that the name now
    belongs to another file and locks that one instead.
    """

    def __init__(self, path: Path, mode: int, owners: set[int], transient: bool = False) -> None:
        self.path, self.mode, self.owners, self.transient = path, mode, owners, transient
        self.fd: int | None = None
        self.seen = ""  # the pid the holder wrote, when this file was found locked

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, self.mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DatabaseError(
                    f"refusing the migration lock file {self.path}: it is a symbolic link "
                    "(migrasafe never follows one there); remove it and run again"
                ) from exc
            raise DatabaseError(
                f"cannot open the migration lock file {self.path}: {exc.strerror}"
            ) from exc
        found = os.fstat(fd)
        problem = ""
        if not stat.S_ISREG(found.st_mode):
            problem = "it is not a regular file"
        elif found.st_nlink != 1:
            problem = f"it is a hard link ({found.st_nlink} names for one file)"
        elif found.st_uid not in self.owners:
            problem = f"it belongs to another user (uid {found.st_uid})"
        if problem:
            os.close(fd)
            raise DatabaseError(
                f"refusing the migration lock file {self.path}: {problem}; remove it "
                "(migrasafe creates its own) and run again"
            )
        return fd

    def acquire(self) -> bool:
        while True:
            if self.fd is None:
                self.fd = self._open()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.seen = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
                if self.transient:  # its holder removes it: open the name afresh next time
                    self.close()
                return False
            if self._named():
                os.ftruncate(self.fd, 0)  # safe: a regular file of ours with one name
                os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
                return True
            self.close()  # the previous holder removed it: lock the file named so now

    def _named(self) -> bool:
        """Whether the path still names the file locked (a transient one can be removed)."""
        if not self.transient or self.fd is None:
            return True
        try:
            named = os.lstat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self.fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if self.transient and self._named():
                os.unlink(self.path)
            else:
                os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _private_lock_directory() -> Path | None:
    """The user's own directory for locks keyed by inode, under /tmp (the same for every
    run on this machine, whatever $TMPDIR says); None where /tmp cannot hold it."""
    base = Path("/tmp") if os.path.isdir("/tmp") else Path(tempfile.gettempdir())
    directory = base / f"migrasafe-{os.geteuid()}"
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError:  # a read-only /tmp: the lock beside the database still holds
        logging.getLogger(__name__).debug("no private lock directory", exc_info=True)
        return None
    found = os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o077:
        raise DatabaseError(
            f"refusing {directory} for migration locks: it is not a directory of yours "
            "that only you can write; remove it and run again"
        )
    return directory


def _is_sqlite(dbapi_connection: Any) -> bool:
    """sqlite3's connection, or SQLAlchemy's adapter of aiosqlite's (an async env.py)."""
    return isinstance(dbapi_connection, sqlite3.Connection) or (
        type(dbapi_connection).__name__ == "AsyncAdapt_aiosqlite_connection"
    )


def _sqlite_in_transaction(dbapi_connection: Any) -> bool:
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.in_transaction
    return bool(getattr(dbapi_connection._connection, "in_transaction", False))


def _sqlite_readonly_creator(
    path: Path, params: dict[str, str]
) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(readonly_uri(path, params), uri=True)

    return connect
