"""Every storage query, written once in portable SQL; backends add connections and dialect.

Placeholders are ``?`` (a backend's ``_sql`` rewrites them), inserts use ``RETURNING id``
(SQLite >= 3.35, PostgreSQL), and times are ISO 8601 text. See ``storage/base.py`` for what a
backend provides. The API-key queries are in ``storage/keys.py`` (a mixin of :class:`SQLStorage`).
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from cnnkit.errors import CnnkitError, NotFoundError, ShapeError
from cnnkit.face.gallery import check_name
from cnnkit.face.gallery_meta import IdentificationTau
from cnnkit.serve.storage.base import (
    PERSON_CREATED,
    PERSON_DELETED,
    PERSON_RENAMED,
    PHOTO_DELETED,
    PHOTOS_ADDED,
    AuditRow,
    Change,
    Conflict,
    GalleryVectors,
    ImportCounts,
    ImportPerson,
    ModelMismatch,
    PersonRow,
    PhotoRow,
    Storage,
    gallery_pipeline,
    identification_meta,
    now,
)
from cnnkit.serve.storage.keys import KeyQueries
from cnnkit.serve.storage.transfer import import_persons, set_meta

SCHEMA_VERSION = "1"

_PERSON_COLUMNS = (
    "p.id, p.name, (SELECT COUNT(*) FROM photos f WHERE f.person_id = p.id), p.created_at"
)


def _vectors(blobs: list[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(bytes(b) for b in blobs), dtype="<f4").reshape(len(blobs), -1)


class Tx:
    """One open write transaction: execute, and queue feed rows to append before commit."""

    def __init__(self, storage: SQLStorage, con: Any):
        self.storage = storage
        self.con = con
        self.changes: list[tuple[int, str, int | None]] = []  # (gallery id, kind, person id)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(self.storage._sql(sql), tuple(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def change(self, gallery_id: int, kind: str, person_id: int | None) -> None:
        self.changes.append((gallery_id, kind, person_id))

    def audit(
        self,
        gallery_id: int,
        action: str,
        actor: int | None,
        person_id: int | None,
        detail: str | None = None,
    ) -> None:
        self.execute(
            "INSERT INTO audit(at, key_id, gallery_id, action, person_id, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (now(), actor, gallery_id, action, person_id, detail),
        )


class SQLStorage(KeyQueries, Storage):
    """:class:`Storage` in SQL; subclasses give connections, transactions and the dialect.

    The API-key queries are in :class:`~cnnkit.serve.storage.keys.KeyQueries`.
    """

    SCHEMA: str = ""

    # -- what a backend provides ----------------------------------------------------------
    @abstractmethod
    def _connection(self) -> contextlib.AbstractContextManager[Any]: ...

    @abstractmethod
    def _begin(self, con: Any) -> None: ...

    def _commit(self, con: Any) -> None:
        con.execute("COMMIT")

    def _rollback(self, con: Any) -> None:
        with contextlib.suppress(Exception):
            con.execute("ROLLBACK")

    def _sql(self, text: str) -> str:
        return text

    @staticmethod
    def _run_script(con: Any, script: str) -> None:
        """Execute the ``;``-separated statements of ``script`` one by one."""
        for statement in script.split(";"):
            if statement.strip():
                con.execute(statement)

    def _schema_version(self, con: Any) -> str:
        """Record :data:`SCHEMA_VERSION` in a new database (inside the caller's transaction) and
        return the version the database holds."""
        con.execute(
            self._sql(
                "INSERT INTO schema_info(key, value) VALUES ('version', ?)"
                " ON CONFLICT (key) DO NOTHING"
            ),
            (SCHEMA_VERSION,),
        )
        (version,) = con.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
        return str(version)

    @abstractmethod
    def _translate(self) -> contextlib.AbstractContextManager[None]: ...

    def _after_commit(self, con: Any, changes: list[Change]) -> None:  # noqa: B027 - optional hook
        """Hook run after a write commits (e.g. NOTIFY); nothing by default."""

    # -- plumbing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[Tx]:
        """One write transaction; appends the queued feed rows, then commits."""
        with self._translate(), self._connection() as con:
            self._begin(con)
            tx = Tx(self, con)
            try:
                yield tx
                appended = []
                for gallery_id, kind, person_id in tx.changes:
                    (seq,) = tx.one(
                        "INSERT INTO changes(gallery_id, kind, person_id, at)"
                        " VALUES (?, ?, ?, ?) RETURNING seq",
                        (gallery_id, kind, person_id, now()),
                    )
                    appended.append((seq, gallery_id, kind, person_id))
                self._commit(con)
            except BaseException:
                self._rollback(con)
                raise
            if appended:
                names = {g: self._gallery_name(con, g) for g, _, _ in tx.changes}
                self._after_commit(con, [Change(int(s), names[g], k, p) for s, g, k, p in appended])

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._translate(), self._connection() as con:
            return list(con.execute(self._sql(sql), tuple(params)).fetchall())

    def _gallery_name(self, con: Any, gallery_id: int) -> str:
        row = con.execute(self._sql("SELECT name FROM galleries WHERE id = ?"), (gallery_id,))
        return str(row.fetchone()[0])

    def _gallery_id(self, tx: Tx, gallery: str, *, create: bool = True) -> int:
        row = tx.one("SELECT id FROM galleries WHERE name = ?", (gallery,))
        if row is not None:
            return int(row[0])
        if not create:
            raise NotFoundError(f"no gallery named {gallery!r}")
        (gid,) = tx.one(
            "INSERT INTO galleries(name, created_at) VALUES (?, ?) RETURNING id", (gallery, now())
        )
        return int(gid)

    def _person(self, tx: Tx, gallery_id: int, person_id: int) -> tuple[int, str]:
        row = tx.one(
            "SELECT id, name FROM persons WHERE id = ? AND gallery_id = ?", (person_id, gallery_id)
        )
        if row is None:
            raise NotFoundError(f"no person with id {person_id}", hint="list them: GET /persons")
        return int(row[0]), str(row[1])

    def _person_row(self, tx: Tx, person_id: int) -> PersonRow:
        row = tx.one(f"SELECT {_PERSON_COLUMNS} FROM persons p WHERE p.id = ?", (person_id,))
        return PersonRow(int(row[0]), row[1], int(row[2]), row[3])

    def _name_free(self, tx: Tx, gallery_id: int, name: str) -> None:
        row = tx.one("SELECT id FROM persons WHERE gallery_id = ? AND name = ?", (gallery_id, name))
        if row is not None:
            raise Conflict(
                f"a person named {name!r} already exists (id {row[0]})",
                hint="choose another name, or add photos to that person",
            )

    # -- persons --------------------------------------------------------------------------
    def create_person(self, gallery: str, name: str, *, actor: int | None = None) -> PersonRow:
        name = check_name(name)
        with self._write() as tx:
            gid = self._gallery_id(tx, gallery)
            self._name_free(tx, gid, name)
            (pid,) = tx.one(
                "INSERT INTO persons(gallery_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
                (gid, name, now()),
            )
            tx.change(gid, PERSON_CREATED, int(pid))
            tx.audit(gid, "person.create", actor, int(pid), name)
            return self._person_row(tx, int(pid))

    def list_persons(
        self, gallery: str, *, offset: int = 0, limit: int = 50
    ) -> tuple[list[PersonRow], int]:
        rows = self._read(
            f"SELECT {_PERSON_COLUMNS} FROM persons p JOIN galleries g ON g.id = p.gallery_id"
            " WHERE g.name = ? ORDER BY p.name, p.id LIMIT ? OFFSET ?",
            (gallery, int(limit), int(offset)),
        )
        ((total,),) = self._read(
            "SELECT COUNT(*) FROM persons p JOIN galleries g ON g.id = p.gallery_id"
            " WHERE g.name = ?",
            (gallery,),
        )
        return [PersonRow(int(r[0]), r[1], int(r[2]), r[3]) for r in rows], int(total)

    def _select_person(self, gallery: str, where: str, value: Any) -> PersonRow | None:
        rows = self._read(
            f"SELECT {_PERSON_COLUMNS} FROM persons p JOIN galleries g ON g.id = p.gallery_id"
            f" WHERE g.name = ? AND {where}",
            (gallery, value),
        )
        return PersonRow(int(rows[0][0]), rows[0][1], int(rows[0][2]), rows[0][3]) if rows else None

    def get_person(self, gallery: str, person_id: int) -> PersonRow:
        found = self._select_person(gallery, "p.id = ?", int(person_id))
        if found is None:
            raise NotFoundError(f"no person with id {person_id}", hint="list them: GET /persons")
        return found

    def find_person(self, gallery: str, name: str) -> PersonRow | None:
        return self._select_person(gallery, "p.name = ?", name.strip())

    def rename_person(
        self, gallery: str, person_id: int, new_name: str, *, actor: int | None = None
    ) -> PersonRow:
        new_name = check_name(new_name)
        with self._write() as tx:
            gid = self._gallery_id(tx, gallery)
            pid, old = self._person(tx, gid, person_id)
            if old != new_name:
                self._name_free(tx, gid, new_name)
                tx.execute("UPDATE persons SET name = ? WHERE id = ?", (new_name, pid))
                tx.change(gid, PERSON_RENAMED, pid)
                tx.audit(gid, "person.rename", actor, pid, f"{old} -> {new_name}")
            return self._person_row(tx, pid)

    def delete_person(self, gallery: str, person_id: int, *, actor: int | None = None) -> int:
        with self._write() as tx:
            gid = self._gallery_id(tx, gallery)
            pid, name = self._person(tx, gid, person_id)
            (count,) = tx.one("SELECT COUNT(*) FROM photos WHERE person_id = ?", (pid,))
            tx.execute("DELETE FROM photos WHERE person_id = ?", (pid,))
            tx.execute("DELETE FROM persons WHERE id = ?", (pid,))
            tx.change(gid, PERSON_DELETED, pid)
            tx.audit(gid, "person.delete", actor, pid, name)
            return int(count)

    # -- photos ---------------------------------------------------------------------------
    def _check_model(
        self, tx: Tx, gid: int, model_id: str, dim: int, pipeline: str | None = None
    ) -> None:
        """The gallery's encoder, dimension and descriptor pipeline must be these (a gallery
        without descriptors takes them)."""
        meta = dict(tx.execute("SELECT key, value FROM gallery_meta WHERE gallery_id = ?", (gid,)))
        recorded = gallery_pipeline(meta)
        if pipeline is not None and recorded is not None and recorded != pipeline:
            raise ModelMismatch(
                f"this gallery holds descriptors made with pipeline {recorded!r}, not {pipeline!r}",
                hint="use another gallery for the other pipeline",
            )
        if pipeline is not None and "pipeline" not in meta:
            tx.execute(
                "INSERT INTO gallery_meta(gallery_id, key, value) VALUES (?, 'pipeline', ?)",
                (gid, pipeline),
            )
        stored = meta.get("model_id")
        if stored is not None and stored != model_id:
            raise ModelMismatch(
                f"this gallery holds descriptors of encoder {stored!r}, not {model_id!r}",
                hint="serve with the matching encoder, or use another gallery",
            )
        if meta.get("dim") is not None and int(meta["dim"]) != dim:
            raise ModelMismatch(f"this gallery holds {meta['dim']}-d descriptors, got {dim}-d")
        if stored is None:
            tx.execute(
                "INSERT INTO gallery_meta(gallery_id, key, value) VALUES (?, 'model_id', ?)",
                (gid, model_id),
            )
            tx.execute(
                "INSERT INTO gallery_meta(gallery_id, key, value) VALUES (?, 'dim', ?)",
                (gid, str(dim)),
            )

    def add_photos(
        self,
        gallery: str,
        name: str,
        vectors: np.ndarray,
        *,
        model_id: str,
        sha256s: Sequence[str | None] | None = None,
        sources: Sequence[str | None] | None = None,
        actor: int | None = None,
        pipeline: str | None = None,
    ) -> tuple[PersonRow, list[int]]:
        name = check_name(name)
        x = np.asarray(vectors, dtype=np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[0] == 0:
            raise ShapeError(f"descriptors must be (n, d) with n >= 1, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ShapeError("descriptors contain NaN or inf")
        n, d = x.shape
        hashes = list(sha256s) if sha256s is not None else [None] * n
        labels = list(sources) if sources is not None else [None] * n
        if len(hashes) != n or len(labels) != n:
            raise ShapeError(f"{n} descriptors but {len(hashes)} hashes / {len(labels)} sources")
        at = now()
        with self._write() as tx:
            gid = self._gallery_id(tx, gallery)
            self._check_model(tx, gid, model_id, d, pipeline)
            row = tx.one("SELECT id FROM persons WHERE gallery_id = ? AND name = ?", (gid, name))
            if row is None:
                (pid,) = tx.one(
                    "INSERT INTO persons(gallery_id, name, created_at) VALUES (?, ?, ?)"
                    " RETURNING id",
                    (gid, name, at),
                )
                tx.change(gid, PERSON_CREATED, int(pid))
                tx.audit(gid, "person.create", actor, int(pid), name)
            else:
                pid = row[0]
            ids = []
            for i in range(n):
                (photo_id,) = tx.one(
                    "INSERT INTO photos(person_id, vector, sha256, source, created_at)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (pid, x[i].astype("<f4").tobytes(), hashes[i], labels[i], at),
                )
                ids.append(int(photo_id))
            tx.change(gid, PHOTOS_ADDED, int(pid))
            tx.audit(gid, "photo.add", actor, int(pid), ",".join(map(str, ids)))
            return self._person_row(tx, int(pid)), ids

    def list_photos(self, gallery: str, person_id: int) -> list[PhotoRow]:
        self.get_person(gallery, person_id)
        rows = self._read(
            "SELECT id, person_id, sha256, source, created_at FROM photos WHERE person_id = ?"
            " ORDER BY id",
            (int(person_id),),
        )
        return [PhotoRow(int(r[0]), int(r[1]), r[2], r[3], r[4]) for r in rows]

    def delete_photo(
        self, gallery: str, person_id: int, photo_id: int, *, actor: int | None = None
    ) -> None:
        with self._write() as tx:
            gid = self._gallery_id(tx, gallery)
            pid, _ = self._person(tx, gid, person_id)
            row = tx.one("SELECT id FROM photos WHERE id = ? AND person_id = ?", (photo_id, pid))
            if row is None:
                raise NotFoundError(
                    f"person {pid} has no photo with id {photo_id}",
                    hint=f"list them: GET /persons/{pid}/photos",
                )
            tx.execute("DELETE FROM photos WHERE id = ?", (photo_id,))
            tx.change(gid, PHOTO_DELETED, pid)
            tx.audit(gid, "photo.delete", actor, pid, str(photo_id))

    def names_with_hash(self, gallery: str, sha256: str) -> list[str]:
        rows = self._read(
            "SELECT DISTINCT p.name FROM photos f JOIN persons p ON p.id = f.person_id"
            " JOIN galleries g ON g.id = p.gallery_id WHERE g.name = ? AND f.sha256 = ?"
            " ORDER BY p.name",
            (gallery, sha256),
        )
        return [r[0] for r in rows]

    def load_vectors(self, gallery: str, person_ids: Sequence[int] | None = None) -> GalleryVectors:
        meta = self.get_meta(gallery)
        dim = int(meta.get("dim", 0))
        base = " FROM persons p JOIN galleries g ON g.id = p.gallery_id WHERE g.name = ?"
        params: list[Any] = [gallery]
        if person_ids is not None:
            if not person_ids:
                return GalleryVectors(np.zeros((0, dim), np.float32), np.zeros(0, np.int64), {})
            base += f" AND p.id IN ({','.join('?' * len(person_ids))})"
            params += [int(p) for p in person_ids]
        names = {int(r[0]): r[1] for r in self._read("SELECT p.id, p.name" + base, params)}
        rows = self._read(
            "SELECT f.person_id, f.vector FROM photos f WHERE f.person_id IN"
            f" (SELECT p.id{base}) ORDER BY f.id",
            params,
        )
        pids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        return GalleryVectors(_vectors([r[1] for r in rows], dim), pids, names)

    def import_persons(
        self, gallery: str, persons: Sequence[ImportPerson], **options: Any
    ) -> ImportCounts:
        return import_persons(self, gallery, persons, **options)

    def total_persons(self) -> int:
        ((count,),) = self._read("SELECT COUNT(*) FROM persons")
        return int(count)

    # -- meta -----------------------------------------------------------------------------
    def get_meta(self, gallery: str) -> dict[str, str]:
        rows = self._read(
            "SELECT m.key, m.value FROM gallery_meta m JOIN galleries g ON g.id = m.gallery_id"
            " WHERE g.name = ?",
            (gallery,),
        )
        return {k: v for k, v in rows}

    def set_tau(self, gallery: str, tau: float, *, actor: int | None = None) -> None:
        if not np.isfinite(tau) or tau <= 0:
            raise CnnkitError(f"tau must be a positive number, got {tau}")
        set_meta(self, gallery, {"tau": repr(float(tau))}, "gallery.tau", actor)

    def set_identification_tau(
        self,
        gallery: str,
        ident: IdentificationTau,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        actor: int | None = None,
    ) -> None:
        values = identification_meta(ident)
        set_meta(self, gallery, values, "gallery.tau_identification", actor, model_id, dim)

    def counts(self, gallery: str) -> tuple[int, int]:
        ((persons, photos),) = self._read(
            "SELECT (SELECT COUNT(*) FROM persons p WHERE p.gallery_id = g.id),"
            " (SELECT COUNT(*) FROM photos f JOIN persons p ON p.id = f.person_id"
            "  WHERE p.gallery_id = g.id)"
            " FROM (SELECT CAST(? AS TEXT) AS name) q LEFT JOIN galleries g ON g.name = q.name",
            (gallery,),
        )
        return int(persons or 0), int(photos or 0)

    # -- audit and feed -------------------------------------------------------------------
    def audit_log(self, gallery: str, *, limit: int = 100) -> list[AuditRow]:
        rows = self._read(
            "SELECT a.id, a.at, a.key_id, g.name, a.action, a.person_id, a.detail FROM audit a"
            " JOIN galleries g ON g.id = a.gallery_id WHERE g.name = ? ORDER BY a.id DESC LIMIT ?",
            (gallery, int(limit)),
        )
        return [AuditRow(int(r[0]), *r[1:]) for r in rows]

    def record(
        self, gallery: str, action: str, *, actor: int | None, person_id: int | None = None
    ) -> None:
        with self._write() as tx:
            tx.audit(self._gallery_id(tx, gallery), action, actor, person_id)

    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        rows = self._read(
            "SELECT c.seq, g.name, c.kind, c.person_id FROM changes c"
            " JOIN galleries g ON g.id = c.gallery_id WHERE c.seq > ? ORDER BY c.seq LIMIT ?",
            (int(seq), int(limit)),
        )
        return [Change(int(r[0]), r[1], r[2], None if r[3] is None else int(r[3])) for r in rows]

    def last_seq(self) -> int:
        ((seq,),) = self._read("SELECT COALESCE(MAX(seq), 0) FROM changes")
        return int(seq)
