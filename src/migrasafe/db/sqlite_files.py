"""Where a SQLite database is, and a read-only view of it.

The file a URL names, read as SQLAlchemy's driver and SQLite read it (URI
filenames, percent-encoding, ``mode=memory``), so that the migration lock and
``same_database`` know one database however it is spelled; and a ``mode=ro``
URI that reads past a killed writer's hot journal without writing the file.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL
from sqlalchemy.util import asbool

from migrasafe.errors import DatabaseError

# The filename of a database in memory (a URI says it with mode=memory too).
MEMORY = ":memory:"
_PYSQLITE_ARGS = ("uri", "timeout", "isolation_level", "detect_types", "check_same_thread",
                  "cached_statements")  # fmt: skip
_READONLY_ROLLBACK = 776  # SQLITE_READONLY_ROLLBACK: a hot journal that mode=ro cannot undo


def driver_filename(url: URL) -> str:
    """What SQLAlchemy's pysqlite (and aiosqlite) dialect hands ``sqlite3.connect``: so
    that migrasafe locks and reads the file the migration writes, however the URL names it."""
    database = url.database or MEMORY
    if not _is_true(url.query.get("uri")):
        return database if database == MEMORY else os.path.abspath(database)
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
        return (None if filename in ("", MEMORY) else Path(os.path.abspath(filename))), {}
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
    if path in ("", MEMORY) or params.get("mode") == "memory":
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
