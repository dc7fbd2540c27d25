"""The SQLite backend: one file in WAL mode, one connection per thread, ``BEGIN IMMEDIATE`` writes.

Several processes (``--workers N``, or the CLI's ``keys`` commands while the server runs) share
the file safely: WAL lets readers run beside the one writer, and a writer waits up to
``timeout`` seconds for another's lock. One writer at a time also makes the change feed's
``seq`` gap-free in commit order.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from cnnkit.errors import DatabaseError
from cnnkit.io.paths import user_data_file
from cnnkit.serve.storage.base import Conflict
from cnnkit.serve.storage.sql import SCHEMA_VERSION, SQLStorage

#: Seconds a write waits for another process's lock.
DEFAULT_TIMEOUT = 10.0


def default_serve_db() -> Path:
    """``$CNNKIT_SERVE_DB`` if set, else ``serve.sqlite3`` in the user data dir (platformdirs)."""
    return user_data_file("serve.sqlite3", "CNNKIT_SERVE_DB")


class SQLiteStorage(SQLStorage):
    """The service's storage in one SQLite file (see ``storage/base.py``).

    Ids are never reused (AUTOINCREMENT): a client holding the id of a deleted person cannot
    reach someone enrolled later.

    Args:
        path: the database file; created with its tables if missing.
        timeout: seconds a write waits for another process's lock.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS schema_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS galleries (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS gallery_meta (
        gallery_id INTEGER NOT NULL REFERENCES galleries(id), key TEXT NOT NULL,
        value TEXT NOT NULL, PRIMARY KEY (gallery_id, key));
    CREATE TABLE IF NOT EXISTS persons (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        gallery_id INTEGER NOT NULL REFERENCES galleries(id),
        name TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (gallery_id, name));
    CREATE TABLE IF NOT EXISTS photos (
        id INTEGER PRIMARY KEY AUTOINCREMENT, person_id INTEGER NOT NULL REFERENCES persons(id),
        vector BLOB NOT NULL, sha256 TEXT, source TEXT, created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS photos_person ON photos(person_id);
    CREATE INDEX IF NOT EXISTS photos_sha256 ON photos(sha256);
    CREATE TABLE IF NOT EXISTS api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
        gallery_id INTEGER NOT NULL REFERENCES galleries(id), label TEXT,
        created_at TEXT NOT NULL, revoked_at TEXT);
    CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, key_id INTEGER,
        gallery_id INTEGER NOT NULL REFERENCES galleries(id), action TEXT NOT NULL,
        person_id INTEGER, detail TEXT);
    CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, gallery_id INTEGER NOT NULL,
        kind TEXT NOT NULL, person_id INTEGER, at TEXT NOT NULL)
    """

    def __init__(self, path: str | Path | None = None, *, timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path) if path is not None else default_serve_db()
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise DatabaseError("is a folder, not a database file", path=self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"cannot create the folder: {exc.strerror}",
                path=self.path.parent,
                hint="pass --db with a writable path",
            ) from exc
        self._create_schema()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    # -- backend hooks --------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            str(self.path), timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._open()
            self._local.con = con
            with self._lock:
                self._all.append(con)
        yield con

    def _begin(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"conflicting write ({exc})", hint="retry with another name") from exc
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise DatabaseError(
                    f"locked by another process for more than {self.timeout:g} s",
                    path=self.path,
                    hint="retry in a moment",
                ) from exc
            if "readonly" in text:
                raise DatabaseError(
                    "the database file is read-only",
                    path=self.path,
                    hint="give the server's user write access, or pass another --db",
                ) from exc
            raise DatabaseError(f"database error: {text}", path=self.path) from exc
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(
                f"corrupt or not an SQLite database ({exc})",
                path=self.path,
                hint="pass another --db",
            ) from exc

    # -- lifecycle ------------------------------------------------------------------------
    def _create_schema(self) -> None:
        with self._translate(), self._connection() as con:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "schema_info" not in tables:
                raise DatabaseError(
                    "an SQLite file, but not a cnnkit serve database",
                    path=self.path,
                    hint="pass another --db (a `cnnkit face` database is a different file)",
                )
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                con.execute("PRAGMA journal_mode = WAL")
            con.execute("BEGIN IMMEDIATE")
            try:
                self._run_script(con, self.SCHEMA)
                version = self._schema_version(con)
                con.execute("COMMIT")
            except BaseException:
                self._rollback(con)
                raise
        if version != SCHEMA_VERSION:
            raise DatabaseError(
                f"serve database schema {version}, this cnnkit reads {SCHEMA_VERSION}",
                path=self.path,
            )

    def ping(self) -> None:
        self._read("SELECT 1")

    def close(self) -> None:
        with self._lock:
            for con in self._all:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
            self._all.clear()
        self._local = threading.local()
