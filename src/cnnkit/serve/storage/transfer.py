"""Copying persons into a gallery in one transaction (``cnnkit serve import``), and writing a
gallery's meta (the calibrated taus).

:meth:`SQLStorage.import_persons` delegates here. The rules (see ``Storage.import_persons``):
every check runs before the first insert and the whole copy is one write transaction, so a
refused or failed import leaves the database as it was; photos already in the gallery (same
sha256, or without one the same descriptor bytes) are skipped, so importing twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.errors import ShapeError, shorten
from cnnkit.face.gallery import check_name
from cnnkit.serve.storage.base import (
    META_CHANGED,
    PERSON_CREATED,
    PHOTOS_ADDED,
    Conflict,
    ImportCounts,
    ImportPerson,
    now,
)

if TYPE_CHECKING:
    from cnnkit.serve.storage.sql import SQLStorage, Tx


def _checked(persons: Sequence[ImportPerson]) -> tuple[list[ImportPerson], int]:
    """Persons with clean names and (n, d) float32 descriptors of one d; and d."""
    out: list[ImportPerson] = []
    dims = set()
    for p in persons:
        x = np.asarray(p.vectors, dtype=np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
            raise ShapeError(f"{shorten(p.name)}: descriptors must be finite (n, d), n >= 1")
        if len(p.sha256s) != len(x) or len(p.sources) != len(x):
            raise ShapeError(f"{shorten(p.name)}: {len(x)} descriptors, other hash/source counts")
        dims.add(x.shape[1])
        out.append(ImportPerson(check_name(p.name), x, list(p.sha256s), list(p.sources)))
    if len(dims) > 1:
        raise ShapeError(f"descriptors of several sizes: {sorted(dims)}")
    return out, dims.pop() if dims else 0


def _new_rows(tx: Tx, person_id: int | None, person: ImportPerson) -> list[int]:
    """Indices of the person's descriptors not in the gallery yet (nor repeated earlier)."""
    hashes: set[str] = set()
    blobs: set[bytes] = set()
    if person_id is not None:
        for sha, vector in tx.execute(
            "SELECT sha256, vector FROM photos WHERE person_id = ?", (person_id,)
        ).fetchall():
            if sha:
                hashes.add(sha)
            blobs.add(bytes(vector))
    fresh = []
    for i, sha in enumerate(person.sha256s):
        blob = np.asarray(person.vectors[i], "<f4").tobytes()
        if (sha in hashes) if sha else (blob in blobs):
            continue
        if sha:
            hashes.add(sha)
        blobs.add(blob)
        fresh.append(i)
    return fresh


def import_persons(
    storage: SQLStorage,
    gallery: str,
    persons: Sequence[ImportPerson],
    *,
    model_id: str,
    meta_defaults: dict[str, str] | None = None,
    merge: bool = False,
    origin: str | None = None,
    actor: int | None = None,
    pipeline: str | None = None,
) -> ImportCounts:
    """See :meth:`cnnkit.serve.storage.base.Storage.import_persons`."""
    clean, dim = _checked(persons)
    label = f"imported from {origin}" if origin else "imported"
    created = merged = unchanged = added = skipped = 0
    with storage._write() as tx:
        gid = storage._gallery_id(tx, gallery)
        if clean:
            storage._check_model(tx, gid, model_id, dim, pipeline)
        plan: list[tuple[ImportPerson, int | None, list[int]]] = []
        taken: list[str] = []
        for person in clean:
            row = tx.one(
                "SELECT id FROM persons WHERE gallery_id = ? AND name = ?", (gid, person.name)
            )
            pid = None if row is None else int(row[0])
            fresh = _new_rows(tx, pid, person)
            if pid is not None and fresh and not merge:
                taken.append(person.name)
            plan.append((person, pid, fresh))
        if taken:
            shown = ", ".join(shorten(n, 40) for n in taken[:5])
            shown += " ..." if len(taken) > 5 else ""
            raise Conflict(
                f"{len(taken)} person(s) already in gallery {gallery!r} would get new photos: "
                f"{shown}",
                hint="pass --merge to add their photos, or import into another --gallery",
            )
        at = now()
        for person, pid, fresh in plan:
            skipped += len(person.sha256s) - len(fresh)
            if pid is None:
                (new_id,) = tx.one(
                    "INSERT INTO persons(gallery_id, name, created_at) VALUES (?, ?, ?)"
                    " RETURNING id",
                    (gid, person.name, at),
                )
                pid = int(new_id)
                created += 1
                tx.change(gid, PERSON_CREATED, pid)
                tx.audit(gid, "person.create", actor, pid, person.name)
            elif fresh:
                merged += 1
            else:
                unchanged += 1
                continue
            for i in fresh:
                tx.execute(
                    "INSERT INTO photos(person_id, vector, sha256, source, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        pid,
                        np.asarray(person.vectors[i], "<f4").tobytes(),
                        person.sha256s[i],
                        person.sources[i],
                        at,
                    ),
                )
            added += len(fresh)
            tx.change(gid, PHOTOS_ADDED, pid)
            tx.audit(gid, "photo.import", actor, pid, f"{len(fresh)} photos {label}")
        meta_set = _set_missing_meta(tx, gid, meta_defaults or {}, actor, label)
    return ImportCounts(created, merged, unchanged, added, skipped, meta_set)


def _set_missing_meta(
    tx: Tx, gid: int, values: dict[str, str], actor: int | None, label: str
) -> tuple[str, ...]:
    """Set the ``values`` whose key the gallery's meta lacks; returns the keys set."""
    rows = tx.execute("SELECT key FROM gallery_meta WHERE gallery_id = ?", (gid,)).fetchall()
    have = {r[0] for r in rows}
    missing = tuple(k for k in values if k not in have)
    for key in missing:
        tx.execute(
            "INSERT INTO gallery_meta(gallery_id, key, value) VALUES (?, ?, ?)",
            (gid, key, values[key]),
        )
    if missing:
        tx.change(gid, META_CHANGED, None)
        tx.audit(gid, "gallery.meta", actor, None, f"{', '.join(missing)} {label}")
    return missing


def set_meta(
    storage: SQLStorage,
    gallery: str,
    values: dict[str, str],
    action: str,
    actor: int | None,
    model_id: str | None = None,
    dim: int | None = None,
) -> None:
    """Replace the gallery's meta ``values`` in one audited write; with ``model_id`` and
    ``dim``, the gallery must be of that encoder (an empty one becomes so)."""
    with storage._write() as tx:
        gid = storage._gallery_id(tx, gallery)
        if model_id is not None and dim is not None:
            storage._check_model(tx, gid, model_id, dim)
        for key, value in values.items():
            tx.execute("DELETE FROM gallery_meta WHERE gallery_id = ? AND key = ?", (gid, key))
            tx.execute(
                "INSERT INTO gallery_meta(gallery_id, key, value) VALUES (?, ?, ?)",
                (gid, key, value),
            )
        tx.change(gid, META_CHANGED, None)
        tx.audit(gid, action, actor, None, ", ".join(f"{k}={v}" for k, v in values.items()))
