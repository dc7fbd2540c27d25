"""The person database: an SQLite file of enrolled face descriptors, and search over it.

Tables::

    meta(key, value)         schema_version, model_id, dim, tau, generation
    persons(id, name, created_at)
    embeddings(id, person_id, vector, source, sha256, created_at)
                             vector: the d float32 values (little endian) of f(img)

Rules:

- The file is in WAL mode with a busy timeout; every write is one ``BEGIN IMMEDIATE``
  transaction, so two processes enrolling at once both get in, and a process killed mid-write
  leaves the database as it was before that write.
- The encoder that made the descriptors (``model_id``, ``dim``) is stored at the first enrollment;
  descriptors of another encoder are refused with a :class:`~cnnkit.errors.DatabaseError`.
- A locked (beyond the timeout), corrupt, or foreign file raises a
  :class:`~cnnkit.errors.DatabaseError` and is left untouched.

Search is :class:`~cnnkit.face.index.VectorIndex`: one float32 matmul over the cached (K, d)
matrix, or a faiss index (saved beside the database as ``<db>.g<generation>.faiss``) above
``IndexConfig.exact_max`` rows.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.errors import CnnkitError, DatabaseError, NotFoundError, ShapeError
from cnnkit.face.index import IndexConfig, VectorIndex

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
#: Tolerance used when the database has no calibrated tau (dlib's published threshold).
DEFAULT_TOLERANCE = 0.6
#: Seconds a write waits for another process's lock before giving up.
DEFAULT_TIMEOUT = 10.0
EXPORT_FORMAT = "cnnkit-faces-v1"

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


def default_db_path() -> Path:
    """``$CNNKIT_FACE_DB`` if set, else ``faces.sqlite3`` in the user data dir (platformdirs)."""
    env = os.environ.get("CNNKIT_FACE_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("cnnkit")) / "faces.sqlite3"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Person:
    """One enrolled person: name, number of enrolled photos, when first enrolled."""

    name: str
    n_photos: int
    created_at: str


@dataclass(frozen=True)
class Match:
    """The nearest enrolled person for one query descriptor."""

    name: str | None  # None when the gallery is empty
    distance: float  # Euclidean distance to that person's nearest enrolled descriptor


def check_name(name: str) -> str:
    """A person's name: stripped, non-empty, printable, at most 200 characters."""
    clean = name.strip() if isinstance(name, str) else ""
    if not clean or len(clean) > 200 or not clean.isprintable() or "," in clean:
        raise CnnkitError(
            f"invalid person name {name!r}",
            hint="use 1-200 printable characters without commas",
        )
    return clean


class Gallery:
    """An open person database.

    Example::

        with Gallery("faces.sqlite3") as db:
            db.add("Ada", vectors, model_id=encoder.model_id)   # vectors: (n, 128) float32
            match = db.search(query)[0]                         # Match(name, distance)

    Args:
        path: the SQLite file (``default_db_path()`` if None).
        create: make the file if it does not exist (else a missing file is an error).
        timeout: seconds to wait for another process's write lock.
        index_config: when to switch from exact search to faiss.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        create: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        index_config: IndexConfig | None = None,
    ):
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self.index_config = index_config or IndexConfig()
        self._cache: tuple[int, VectorIndex, np.ndarray, list[str]] | None = None
        self._con = self._open(create)

    # -- opening -------------------------------------------------------------------------
    def _open(self, create: bool) -> sqlite3.Connection:
        if self.path.is_dir():
            raise DatabaseError("is a folder, not a database file", path=self.path)
        if not self.path.exists():
            if not create:
                raise DatabaseError(
                    "no face database here",
                    path=self.path,
                    hint="enroll someone first: cnnkit face enroll NAME PHOTO, or pass --db",
                )
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open: {exc}", path=self.path) from exc
        self._con = con
        try:
            with self._translate():
                con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                tables = {
                    r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if not tables:
                    self._create_schema()
                elif not {"meta", "persons", "embeddings"} <= tables:
                    raise DatabaseError(
                        "an SQLite file, but not a cnnkit face database",
                        path=self.path,
                        hint="pass another --db",
                    )
                else:
                    version = self._meta("schema_version")
                    if version != str(SCHEMA_VERSION):
                        raise DatabaseError(
                            f"face database schema {version}, this cnnkit reads {SCHEMA_VERSION}",
                            path=self.path,
                        )
                    if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            con.close()
            raise
        return con

    def _create_schema(self) -> None:
        con = self._con
        con.execute("PRAGMA journal_mode = WAL")
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
    def _translate(self) -> Iterator[None]:
        """Turn sqlite3 errors into one-line DatabaseErrors naming this file."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise DatabaseError(
                    f"locked by another process for more than {self.timeout:g} s",
                    path=self.path,
                    hint="wait for the other cnnkit command to finish, then retry",
                ) from exc
            raise DatabaseError(f"database error: {text}", path=self.path) from exc
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(
                f"corrupt or not an SQLite database ({exc})",
                path=self.path,
                hint="pass another --db, or restore it from `cnnkit face export`",
            ) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); rolled back on any error.

        Every write bumps the ``generation`` counter, which invalidates cached search matrices.
        """
        con = self._con
        with self._translate():
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                )
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ----------------------------------------------------------------------------
    def _meta(self, key: str, con: sqlite3.Connection | None = None) -> str | None:
        row = (con or self._con).execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _read_meta(self, key: str) -> str | None:
        with self._translate():
            return self._meta(key)

    @property
    def model_id(self) -> str | None:
        """Identity of the encoder whose descriptors are stored (None before the first enroll)."""
        return self._read_meta("model_id")

    @property
    def dim(self) -> int | None:
        value = self._read_meta("dim")
        return None if value is None else int(value)

    @property
    def tau(self) -> float | None:
        """The calibrated distance threshold (``cnnkit face calibrate``), or None."""
        value = self._read_meta("tau")
        return None if value is None else float(value)

    @property
    def generation(self) -> int:
        """A counter bumped by every write; caches compare it to know they are stale."""
        return int(self._read_meta("generation") or 0)

    def tolerance(self, tolerance: float | None = None) -> float:
        """``tolerance`` if given, else the calibrated tau, else 0.6."""
        if tolerance is not None:
            return float(tolerance)
        tau = self.tau
        return DEFAULT_TOLERANCE if tau is None else tau

    def set_tau(self, tau: float, model_id: str | None = None, dim: int | None = None) -> None:
        """Store ``tau`` as this database's default tolerance.

        With ``model_id``, the database must be of that encoder (an empty one becomes so):
        a tau is only meaningful for the encoder it was calibrated with.
        """
        if not np.isfinite(tau) or tau <= 0:
            raise CnnkitError(f"tau must be a positive number, got {tau}")
        with self.transaction() as con:
            if model_id is not None:
                self._check_model(con, model_id, dim)
                self._claim(con, model_id, dim)
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('tau', ?)", (repr(tau),))

    def _claim(self, con: sqlite3.Connection, model_id: str, dim: int | None) -> None:
        """Record the encoder in an empty database (inside a transaction)."""
        if self._meta("model_id", con) is None:
            con.execute("INSERT INTO meta(key, value) VALUES ('model_id', ?)", (model_id,))
            if dim is not None:
                con.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('dim', ?)", (str(dim),)
                )

    def check_model(self, model_id: str, dim: int | None = None) -> None:
        """Raise DatabaseError if this database holds descriptors of another encoder."""
        with self._translate():
            self._check_model(self._con, model_id, dim)

    def _check_model(self, con: sqlite3.Connection, model_id: str, dim: int | None) -> None:
        stored = self._meta("model_id", con)
        if stored is not None and stored != model_id:
            raise DatabaseError(
                f"made with encoder {stored!r}, but the encoder in use is {model_id!r}",
                path=self.path,
                hint="pass the matching --model, or use another --db for this encoder",
            )
        stored_dim = self._meta("dim", con)
        if dim is not None and stored_dim is not None and int(stored_dim) != dim:
            raise DatabaseError(f"holds {stored_dim}-d descriptors, got {dim}-d", path=self.path)

    # -- writes --------------------------------------------------------------------------
    def add(
        self,
        name: str,
        vectors: np.ndarray,
        *,
        model_id: str,
        sources: Sequence[str | None] | None = None,
        sha256s: Sequence[str | None] | None = None,
    ) -> int:
        """Enroll descriptors (n, d) for ``name`` (created if new) in one transaction.

        Returns the number of descriptors the person has afterwards.
        """
        name = check_name(name)
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] == 0:
            raise ShapeError(f"descriptors must be (n, d) with n >= 1, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ShapeError("descriptors contain NaN or inf")
        n, d = x.shape
        sources = list(sources) if sources is not None else [None] * n
        sha256s = list(sha256s) if sha256s is not None else [None] * n
        if len(sources) != n or len(sha256s) != n:
            raise ShapeError(f"{n} descriptors but {len(sources)} sources / {len(sha256s)} hashes")
        now = _now()
        with self.transaction() as con:
            self._check_model(con, model_id, d)
            self._claim(con, model_id, d)
            pid = self._person_id(con, name)
            if pid is None:
                pid = con.execute(
                    "INSERT INTO persons(name, created_at) VALUES (?, ?)", (name, now)
                ).lastrowid
            con.executemany(
                "INSERT INTO embeddings(person_id, vector, source, sha256, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (pid, x[i].astype("<f4").tobytes(), sources[i], sha256s[i], now)
                    for i in range(n)
                ],
            )
            (count,) = con.execute(
                "SELECT COUNT(*) FROM embeddings WHERE person_id = ?", (pid,)
            ).fetchone()
        return int(count)

    def remove(self, name: str) -> int:
        """Remove a person and all their descriptors; returns how many descriptors went."""
        with self.transaction() as con:
            pid = self._require_person(con, name)
            (count,) = con.execute(
                "SELECT COUNT(*) FROM embeddings WHERE person_id = ?", (pid,)
            ).fetchone()
            con.execute("DELETE FROM embeddings WHERE person_id = ?", (pid,))
            con.execute("DELETE FROM persons WHERE id = ?", (pid,))
        return int(count)

    def rename(self, old: str, new: str) -> None:
        """Rename a person; the new name must be free."""
        new = check_name(new)
        with self.transaction() as con:
            pid = self._require_person(con, old)
            if self._person_id(con, new) is not None:
                raise DatabaseError(
                    f"a person named {new!r} already exists",
                    path=self.path,
                    hint="remove or rename that person first",
                )
            con.execute("UPDATE persons SET name = ? WHERE id = ?", (new, pid))

    # -- reads ---------------------------------------------------------------------------
    @staticmethod
    def _person_id(con: sqlite3.Connection, name: str) -> int | None:
        row = con.execute("SELECT id FROM persons WHERE name = ?", (name.strip(),)).fetchone()
        return None if row is None else int(row[0])

    def _require_person(self, con: sqlite3.Connection, name: str) -> int:
        pid = self._person_id(con, name)
        if pid is None:
            known = [r[0] for r in con.execute("SELECT name FROM persons ORDER BY name LIMIT 6")]
            hint = "enrolled: " + ", ".join(known) if known else "the database is empty"
            raise NotFoundError(f"no person named {name!r}", path=self.path, hint=hint)
        return pid

    def persons(self) -> list[Person]:
        """Every enrolled person, by name."""
        with self._translate():
            rows = self._con.execute(
                "SELECT p.name, COUNT(e.id), p.created_at FROM persons p"
                " LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name"
            ).fetchall()
        return [Person(name, int(n), created) for name, n, created in rows]

    def __len__(self) -> int:
        """Number of enrolled descriptors (K)."""
        with self._translate():
            return int(self._con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def vectors_of(self, name: str) -> np.ndarray:
        """The (n, d) descriptors enrolled for ``name``."""
        with self._translate():
            pid = self._require_person(self._con, name)
            blobs = [
                r[0]
                for r in self._con.execute(
                    "SELECT vector FROM embeddings WHERE person_id = ? ORDER BY id", (pid,)
                )
            ]
        return self._stack(blobs)

    def sources_of(self, name: str) -> list[tuple[str | None, str | None]]:
        """(source file name, sha256) of each descriptor enrolled for ``name``."""
        with self._translate():
            pid = self._require_person(self._con, name)
            return [
                (r[0], r[1])
                for r in self._con.execute(
                    "SELECT source, sha256 FROM embeddings WHERE person_id = ? ORDER BY id", (pid,)
                )
            ]

    def _stack(self, blobs: list[bytes]) -> np.ndarray:
        d = self.dim or 0
        if not blobs:
            return np.zeros((0, d), np.float32)
        return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1).copy()

    def _faiss_path(self, generation: int) -> Path:
        return self.path.with_name(f"{self.path.name}.g{generation}.faiss")

    def index(self) -> tuple[VectorIndex, np.ndarray, list[str]]:
        """The search index over all K descriptors, their person ids (K,), and names by id.

        Cached until the database's generation changes. Above ``exact_max`` rows the faiss index
        is loaded from ``<db>.g<generation>.faiss`` or built and saved there.
        """
        generation = self.generation
        if self._cache is not None and self._cache[0] == generation:
            return self._cache[1], self._cache[2], self._cache[3]
        with self._translate():
            rows = self._con.execute(
                "SELECT person_id, vector FROM embeddings ORDER BY id"
            ).fetchall()
            names_rows = self._con.execute("SELECT id, name FROM persons").fetchall()
        names_by_id = dict(names_rows)
        pids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = self._stack([r[1] for r in rows])
        index = VectorIndex(vectors, self.index_config)
        if index.approximate:
            side = self._faiss_path(generation)
            if not (side.exists() and index.load_faiss(side)):
                try:
                    index.save_faiss(side)
                except OSError as exc:  # read-only folder: keep it in memory only
                    log.warning("could not save the faiss index beside the database: %s", exc)
            for old in self.path.parent.glob(f"{self.path.name}.g*.faiss"):
                if old != side:
                    with contextlib.suppress(OSError):
                        old.unlink()
        names = [names_by_id[int(p)] for p in pids]
        self._cache = (generation, index, pids, names)
        return index, pids, names

    def search(self, queries: np.ndarray) -> list[Match]:
        """Nearest enrolled person for each query descriptor (M, d) (or one (d,) vector)."""
        index, _, names = self.index()
        q = np.asarray(queries, dtype=np.float32)
        q = q[None] if q.ndim == 1 else q
        if len(index) == 0:
            return [Match(None, float("inf")) for _ in range(len(q))]
        dist, idx = index.search(q, k=1)
        return [
            Match(names[i] if i >= 0 else None, float(d))
            for d, i in zip(dist[:, 0], idx[:, 0], strict=True)
        ]

    def distance_to(self, query: np.ndarray, name: str) -> float:
        """Smallest Euclidean distance from a (d,) descriptor to ``name``'s descriptors."""
        vectors = self.vectors_of(name)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != vectors.shape[1]:
            raise ShapeError(f"query is {q.shape[0]}-d, the database holds {vectors.shape[1]}-d")
        return float(np.sqrt(((vectors - q[None]) ** 2).sum(axis=1)).min())

    def dump(self) -> list[tuple]:
        """Every row of every table, sorted: for comparing content before/after an operation."""
        with self._translate():
            meta = [("meta", *r) for r in self._con.execute("SELECT key, value FROM meta")]
            persons = [("person", *r) for r in self._con.execute("SELECT * FROM persons")]
            embs = [("embedding", *r) for r in self._con.execute("SELECT * FROM embeddings")]
        return sorted(meta + persons + embs, key=repr)

    def integrity_check(self) -> bool:
        """SQLite's integrity check, plus: every person has a descriptor, every descriptor a
        person, and every vector has ``dim`` float32 values."""
        with self._translate():
            if self._con.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return False
            orphans = self._con.execute(
                "SELECT COUNT(*) FROM embeddings e LEFT JOIN persons p ON p.id = e.person_id"
                " WHERE p.id IS NULL"
            ).fetchone()[0]
            empty = self._con.execute(
                "SELECT COUNT(*) FROM persons p WHERE NOT EXISTS"
                " (SELECT 1 FROM embeddings e WHERE e.person_id = p.id)"
            ).fetchone()[0]
            dim = self._meta("dim")
            bad = 0
            if dim is not None:
                bad = self._con.execute(
                    "SELECT COUNT(*) FROM embeddings WHERE length(vector) != ?", (int(dim) * 4,)
                ).fetchone()[0]
        return orphans == 0 and empty == 0 and bad == 0

    # -- export / import -----------------------------------------------------------------
    def export(self, path: str | Path) -> int:
        """Write the whole database to a portable ``.npz`` (atomic); returns descriptors written.

        Arrays: ``format``, ``model_id``, ``dim``, ``tau`` (nan if none), ``names`` and
        ``person_created`` (per person), ``person`` (index into names), ``vectors`` (K, d),
        ``sources``, ``sha256``, ``created`` (per descriptor).
        """
        from cnnkit.io.atomic import atomic_write

        with self._translate():
            persons = self._con.execute(
                "SELECT id, name, created_at FROM persons ORDER BY id"
            ).fetchall()
            rows = self._con.execute(
                "SELECT person_id, vector, source, sha256, created_at FROM embeddings ORDER BY id"
            ).fetchall()
            model_id, dim, tau = self._meta("model_id"), self._meta("dim"), self._meta("tau")
        position = {pid: i for i, (pid, _, _) in enumerate(persons)}
        vectors = self._stack([r[1] for r in rows]) if rows else np.zeros((0, int(dim or 0)))
        arrays = {
            "format": np.array(EXPORT_FORMAT),
            "model_id": np.array(model_id or ""),
            "dim": np.array(int(dim or 0)),
            "tau": np.array(float(tau) if tau is not None else np.nan),
            "names": np.array([p[1] for p in persons], dtype=str),
            "person_created": np.array([p[2] for p in persons], dtype=str),
            "person": np.array([position[r[0]] for r in rows], dtype=np.int64),
            "vectors": vectors.astype(np.float32),
            "sources": np.array([r[2] or "" for r in rows], dtype=str),
            "sha256": np.array([r[3] or "" for r in rows], dtype=str),
            "created": np.array([r[4] for r in rows], dtype=str),
        }
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
        return len(rows)

    def import_(self, path: str | Path) -> int:
        """Merge an export file into this database in one transaction; returns descriptors added.

        Persons are matched by name; a descriptor already enrolled for that person (same
        vector) is skipped. The file's tau is taken only if this database has none. A file of
        another encoder is refused, and nothing changes.
        """
        data = _read_export(path)
        model_id, dim = data["model_id"], data["dim"]
        names, vectors = data["names"], data["vectors"]
        added = 0
        with self.transaction() as con:
            if len(vectors):
                self._check_model(con, model_id, dim)
                self._claim(con, model_id, dim)
            if data["tau"] is not None and self._meta("tau", con) is None:
                con.execute("INSERT INTO meta(key, value) VALUES ('tau', ?)", (repr(data["tau"]),))
            pids: dict[int, int] = {}
            existing: dict[int, set[bytes]] = {}
            for i, name in enumerate(names):
                name = check_name(str(name))
                found = self._person_id(con, name)
                if found is None:
                    cur = con.execute(
                        "INSERT INTO persons(name, created_at) VALUES (?, ?)",
                        (name, str(data["person_created"][i]) or _now()),
                    )
                    found = int(cur.lastrowid or 0)
                pids[i] = found
                rows = con.execute("SELECT vector FROM embeddings WHERE person_id = ?", (found,))
                existing[found] = {r[0] for r in rows}
            for j in range(len(vectors)):
                pid = pids[int(data["person"][j])]
                blob = vectors[j].astype("<f4").tobytes()
                if blob in existing[pid]:
                    continue
                existing[pid].add(blob)
                con.execute(
                    "INSERT INTO embeddings(person_id, vector, source, sha256, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        pid,
                        blob,
                        str(data["sources"][j]) or None,
                        str(data["sha256"][j]) or None,
                        str(data["created"][j]) or _now(),
                    ),
                )
                added += 1
            # A person from the file with no descriptor at all would break the invariant.
            con.execute(
                "DELETE FROM persons WHERE NOT EXISTS"
                " (SELECT 1 FROM embeddings e WHERE e.person_id = persons.id)"
            )
        return added


def _read_export(path: str | Path) -> dict:
    """Read and validate a ``cnnkit face export`` file."""
    path = Path(path)
    bad = CnnkitError(
        "not a cnnkit face export file (or it is damaged)",
        path=path,
        hint="make one with `cnnkit face export FILE.npz`",
    )
    if not path.is_file():
        raise CnnkitError("no such file", path=path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise bad from exc
    needed = {"format", "model_id", "dim", "tau", "names", "person_created", "person", "vectors"}
    if not needed <= arrays.keys() or str(arrays["format"]) != EXPORT_FORMAT:
        raise bad
    vectors = np.asarray(arrays["vectors"], dtype=np.float32)
    n = len(vectors)
    person = np.asarray(arrays["person"], dtype=np.int64)
    names = arrays["names"]
    dim = int(arrays["dim"])
    if (
        (n and (vectors.ndim != 2 or vectors.shape[1] != dim))
        or len(person) != n
        or (n and (person.min() < 0 or person.max() >= len(names)))
        or not np.all(np.isfinite(vectors))
    ):
        raise bad
    tau = float(arrays["tau"])
    return {
        "model_id": str(arrays["model_id"]),
        "dim": dim,
        "tau": None if not np.isfinite(tau) else tau,
        "names": names,
        "person_created": arrays["person_created"],
        "person": person,
        "vectors": vectors,
        "sources": arrays.get("sources", np.full(n, "")),
        "sha256": arrays.get("sha256", np.full(n, "")),
        "created": arrays.get("created", np.full(n, "")),
    }
