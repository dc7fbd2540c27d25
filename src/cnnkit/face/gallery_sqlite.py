"""Opening the SQLite person database: schema, WAL, read-only mode, and error translation.

Every sqlite3 error becomes a one-line :class:`~cnnkit.errors.DatabaseError` naming the file and
what to do (a locked, read-only, corrupt or foreign file). Read commands open the file with
SQLite's ``mode=ro`` URI, so a database in a read-only folder can still be read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from cnnkit.errors import DatabaseError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE persons (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE embeddings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    source TEXT,
    sha256 TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX embeddings_person ON embeddings(person_id);
"""


def _readonly_query(path: Path) -> str:
    """The URI query for a read-only open: ``mode=ro``, and ``immutable=1`` when the folder is
    not writable and no write-ahead log is pending, since SQLite cannot then create the ``-shm``
    file a WAL database needs even for reading."""
    wal = Path(f"{path}-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    if not os.access(path.parent, os.W_OK) and not Path(f"{path}-shm").exists() and not pending:
        return "?mode=ro&immutable=1"
    return "?mode=ro"


def open_database(
    path: Path, *, create: bool, readonly: bool, timeout: float
) -> sqlite3.Connection:
    """Open (and with ``create``, make) a face database; ``readonly`` uses ``mode=ro``."""
    if path.is_dir():
        raise DatabaseError(
            "is a folder, not a database file",
            path=path,
            hint=f"pass a file, e.g. --db {path / 'faces.sqlite3'}",
        )
    if not path.exists():
        if not create or readonly:
            raise DatabaseError(
                "no face database here",
                path=path,
                hint="enroll someone first: cnnkit face enroll NAME PHOTO, or pass --db",
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create its folder ({exc.strerror or exc})",
                path=path,
                hint="check the path and its permissions",
            ) from exc
        if not os.access(path.parent, os.W_OK):
            raise DatabaseError(
                "cannot create a database here: the folder is read-only",
                path=path,
                hint="pass a --db in a folder you can write",
            )
    try:
        if readonly:
            con = sqlite3.connect(
                path.resolve().as_uri() + _readonly_query(path),
                uri=True,
                timeout=timeout,
                isolation_level=None,
            )
        else:
            con = sqlite3.connect(str(path), timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(
            f"cannot open: {exc}",
            path=path,
            hint="check that the file and its folder are readable, or pass another --db",
        ) from exc
    try:
        with translate_errors(path, timeout):
            con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables and readonly:
                raise DatabaseError(
                    "an empty file, not a cnnkit face database",
                    path=path,
                    hint="enroll someone first: cnnkit face enroll NAME PHOTO, or pass --db",
                )
            if not tables:
                _create_schema(con, timeout)
            elif not {"meta", "persons", "embeddings"} <= tables:
                raise DatabaseError(
                    "an SQLite file, but not a cnnkit face database",
                    path=path,
                    hint="pass another --db",
                )
            else:
                row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                version = None if row is None else row[0]
                if version != str(SCHEMA_VERSION):
                    raise DatabaseError(
                        f"face database schema {version}, this cnnkit reads {SCHEMA_VERSION}",
                        path=path,
                    )
                wal = con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
                if not wal and not readonly:
                    con.execute("PRAGMA journal_mode = WAL")
            if not readonly:
                con.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        con.close()
        raise
    return con


def _create_schema(con: sqlite3.Connection, timeout: float) -> None:
    # Switching to WAL needs the file to itself; SQLite answers "locked" at once (the busy
    # handler is not called) while another process creates the same new file: retry.
    deadline = time.monotonic() + timeout
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    con.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created it while we waited for the lock.
        exists = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not exists:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    con.execute(statement)
            con.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [("schema_version", str(SCHEMA_VERSION)), ("generation", "0")],
            )
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def translate_errors(path: Path, timeout: float) -> Iterator[None]:
    """Turn sqlite3 errors into one-line DatabaseErrors naming ``path``, with what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            raise DatabaseError(
                "cannot write: the file or its folder is read-only",
                path=path,
                hint="make both writable (the database needs its -wal and -shm files "
                "beside it), or copy the file to a folder you can write and pass --db",
            ) from exc
        if "unable to open" in text:
            raise DatabaseError(
                f"cannot open: {text}",
                path=path,
                hint="check that the file and its folder are readable and writable, "
                "or pass another --db",
            ) from exc
        if "locked" in text or "busy" in text:
            raise DatabaseError(
                f"locked by another process for more than {timeout:g} s",
                path=path,
                hint="wait for the other cnnkit command to finish, then retry",
            ) from exc
        raise DatabaseError(
            f"database error: {text}",
            path=path,
            hint="retry; if it persists, restore the file from `cnnkit face export`",
        ) from exc
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"corrupt or not an SQLite database ({exc})",
            path=path,
            hint="pass another --db, or restore it from `cnnkit face export`",
        ) from exc
