"""Export a person database to a portable ``.npz`` file and merge one back in.

The file (format ``cnnkit-faces-v1``) holds names, descriptors, source file names, file hashes,
the encoder id, the descriptor pipeline (absent in older files: ``dlib``) and tau; it is
written atomically. Import matches persons by name, skips
descriptors already present, and refuses a file of another encoder, in one transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.errors import CnnkitError
from cnnkit.face.descriptors import LEGACY_PIPELINE
from cnnkit.face.gallery import _now, check_name

if TYPE_CHECKING:
    from cnnkit.face.gallery import Gallery

EXPORT_FORMAT = "cnnkit-faces-v1"


def export_gallery(self: Gallery, path: str | Path) -> int:
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
        pipeline = self._pipeline(self._con)
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
        "pipeline": np.array(pipeline or ""),
    }
    with atomic_write(path, "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    return len(rows)


def import_gallery(self: Gallery, path: str | Path) -> int:
    """Merge an export file into this database in one transaction; returns descriptors added.

    Persons are matched by name; a descriptor already enrolled for that person (same
    vector) is skipped. The file's tau is taken only if this database has none. A file of
    another encoder is refused, and nothing changes.
    """
    data = read_export(path)
    model_id, dim = data["model_id"], data["dim"]
    names, vectors = data["names"], data["vectors"]
    added = 0
    with self.transaction() as con:
        if len(vectors):
            self._check_model(con, model_id, dim)
            self._claim(con, model_id, dim)
            self._claim_pipeline(con, data["pipeline"])
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


def read_export(path: str | Path) -> dict:
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
        # Files from before the key hold dlib-pipeline descriptors.
        "pipeline": str(arrays.get("pipeline", "")) or LEGACY_PIPELINE,
    }
