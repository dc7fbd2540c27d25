"""The person database: an SQLite file of enrolled face descriptors, and search over it.

Tables::

    meta(key, value)         schema_version, model_id, dim, tau, generation, pipeline,
                             tau_identification* (cnnkit.face.gallery_meta)
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
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from cnnkit.errors import CnnkitError, DatabaseError, NotFoundError, ShapeError, shorten
from cnnkit.face.gallery_meta import GalleryMeta
from cnnkit.face.gallery_sqlite import open_database, translate_errors
from cnnkit.face.index import IndexConfig, VectorIndex
from cnnkit.face.store import Match, Person

log = logging.getLogger(__name__)

#: Tolerance used when the database has no calibrated tau (dlib's published threshold).
DEFAULT_TOLERANCE = 0.6
#: Seconds a write waits for another process's lock before giving up.
DEFAULT_TIMEOUT = 10.0


def default_db_path() -> Path:
    """``$CNNKIT_FACE_DB`` if set, else ``faces.sqlite3`` in the user data dir (platformdirs)."""
    from cnnkit.io.paths import user_data_file

    return user_data_file("faces.sqlite3", "CNNKIT_FACE_DB")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    """A person's name: stripped, non-empty, printable, at most 200 characters."""
    clean = name.strip() if isinstance(name, str) else ""
    if not clean or len(clean) > 200 or not clean.isprintable() or "," in clean:
        raise CnnkitError(
            f"invalid person name {shorten(name)}",
            hint="use 1-200 printable characters without commas",
        )
    return clean


class Gallery(GalleryMeta):
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
        readonly: open the file read-only (SQLite ``mode=ro``), for commands that only read:
            it works where the file or its folder cannot be written; every write then fails
            with a DatabaseError.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        create: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        index_config: IndexConfig | None = None,
        readonly: bool = False,
    ):
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self.readonly = readonly
        self.index_config = index_config or IndexConfig()
        self._cache: tuple[int, VectorIndex, np.ndarray, list[str]] | None = None
        self._con = self._open(create)

    # -- opening (cnnkit.face.gallery_sqlite) --------------------------------------------
    def _open(self, create: bool) -> sqlite3.Connection:
        return open_database(self.path, create=create, readonly=self.readonly, timeout=self.timeout)

    def _translate(self) -> contextlib.AbstractContextManager[None]:
        """Turn sqlite3 errors into one-line DatabaseErrors naming this file."""
        return translate_errors(self.path, self.timeout)

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
        self._set_meta({"tau": repr(tau)}, tau=tau, model_id=model_id, dim=dim)

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
        pipeline: str | None = None,
    ) -> int:
        """Enroll descriptors (n, d) for ``name`` (created if new) in one transaction.

        ``pipeline`` (see :mod:`cnnkit.face.descriptors`) must match the stored one, and is
        recorded in a new database. Returns the number of descriptors the person has afterwards.
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
            if pipeline is not None:
                self._claim_pipeline(con, pipeline)
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
                    f"a person named {shorten(new)} already exists",
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
            raise NotFoundError(f"no person named {shorten(name)}", path=self.path, hint=hint)
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

    def nearest(self, queries: np.ndarray, k: int = 3) -> list[list[Match]]:
        """Up to ``k`` nearest distinct persons for each query (M, d) (or one (d,)), closest first.

        A person's distance is to their nearest enrolled descriptor. Rows are fetched from the
        index (exact or faiss) in growing batches until ``k`` distinct persons are found.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        index, _, names = self.index()
        q = np.asarray(queries, dtype=np.float32)
        q = q[None] if q.ndim == 1 else q
        total = len(index)
        if total == 0:
            return [[] for _ in range(len(q))]
        fetch = min(total, 4 * k)
        while True:
            dist, idx = index.search(q, k=fetch)
            out: list[list[Match]] = []
            for drow, irow in zip(dist, idx, strict=True):
                best: dict[str, float] = {}
                for d, i in zip(drow, irow, strict=True):
                    if i >= 0 and names[i] not in best:
                        best[names[i]] = float(d)
                ranked = sorted(best.items(), key=lambda item: item[1])[:k]
                out.append([Match(name, d) for name, d in ranked])
            if fetch >= total or all(len(row) >= k for row in out):
                return out
            fetch = min(total, fetch * 4)

    def names_with_hash(self, sha256: str) -> list[str]:
        """The persons who already have a photo whose file has this SHA-256, by name."""
        with self._translate():
            rows = self._con.execute(
                "SELECT DISTINCT p.name FROM embeddings e JOIN persons p ON p.id = e.person_id"
                " WHERE e.sha256 = ? ORDER BY p.name",
                (sha256,),
            ).fetchall()
        return [r[0] for r in rows]

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

    # -- export / import (cnnkit.face.gallery_io) ------------------------------------------
    def export(self, path: str | Path) -> int:
        """Write the whole database to a portable ``.npz`` (atomic); see :mod:`gallery_io`."""
        from cnnkit.face.gallery_io import export_gallery

        return export_gallery(self, path)

    def import_(self, path: str | Path) -> int:
        """Merge an export file in one transaction; returns descriptors added."""
        from cnnkit.face.gallery_io import import_gallery

        return import_gallery(self, path)
