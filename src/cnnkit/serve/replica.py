"""Each replica's in-memory search index, kept in step with the database's change feed.

Every ``cnnkit serve`` process holds, per gallery, the descriptors of its persons in memory and
searches them with :class:`cnnkit.face.index.VectorIndex` (one exact float32 matmul, faiss above
its threshold). Writes go to the database; every write appends ``(seq, gallery, kind,
person_id)`` to the change feed in the same transaction. Before a search (at most every
``sync_interval`` seconds, and at once after this replica's own writes) the replica reads the
feed past its cursor and reloads the persons it names, so a person enrolled through replica A
is found by replica B within ``sync_interval`` and a removed one disappears as fast.

:class:`GalleryStore` is one gallery seen through this index: it implements
:class:`cnnkit.face.store.PersonStore`, so the face use cases run on it unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cnnkit.errors import DatabaseError, NotFoundError, ShapeError
from cnnkit.face.gallery_meta import IdentificationTau
from cnnkit.face.index import IndexConfig, VectorIndex
from cnnkit.face.store import Match, Person
from cnnkit.serve.storage.base import (
    META_CHANGED,
    PERSON_DELETED,
    ModelMismatch,
    Storage,
    gallery_pipeline,
    read_identification,
)

log = logging.getLogger(__name__)

#: Tolerance used when a gallery has no calibrated tau (dlib's published threshold).
DEFAULT_TOLERANCE = 0.6

#: The delta is searched exactly whatever its size: it changes with every write, and a faiss
#: index trained per change would cost more than the exact matmul it replaces.
_EXACT = IndexConfig(exact_max=1 << 62)


@dataclass(frozen=True)
class _Part:
    """Descriptors under one VectorIndex, and the person id of each row (K,)."""

    index: VectorIndex
    owner: np.ndarray

    @classmethod
    def of(cls, vectors: dict[int, np.ndarray], pids: Sequence[int], dim: int, config) -> _Part:
        mats = [vectors[p] for p in pids]
        x = np.concatenate(mats) if mats else np.zeros((0, dim), np.float32)  # (K, d)
        owner = np.repeat(np.array(list(pids), np.int64), [len(m) for m in mats])
        return cls(VectorIndex(x, config), owner)

    def ready(self) -> _Part:
        """Build the faiss index now (above ``exact_max``), not on the first search."""
        if self.index.approximate:
            self.index.faiss_index()
        return self

    def nearest(self, q: np.ndarray, k: int, skip: frozenset[int]) -> list[dict[int, float]]:
        """Per query (M, d): up to k distinct persons not in ``skip`` -> nearest distance."""
        n = len(self.index)
        if n == 0:
            return [{} for _ in range(len(q))]
        rows = min(n, max(4 * k, k + 8))
        while True:
            dist, idx = self.index.search(q, k=rows)  # (M, rows), closest first
            out: list[dict[int, float]] = []
            short = False
            for d_row, i_row in zip(dist, idx, strict=True):
                seen: dict[int, float] = {}
                for d, i in zip(d_row, i_row, strict=True):
                    p = int(self.owner[i]) if i >= 0 else -1
                    if p >= 0 and p not in skip and p not in seen:
                        seen[p] = float(d)
                        if len(seen) == k:
                            break
                short |= len(seen) < k and rows < n
                out.append(seen)
            if not short:
                return out
            rows = min(n, rows * 4)


@dataclass(frozen=True)
class Snapshot:
    """An immutable view to search: a base index, and the persons changed since it was built.

    Rebuilding the index over every descriptor after each enrollment would cost O(K) per write
    (and a faiss training above ``exact_max``); instead the base stays, the changed persons'
    rows in it are skipped (``stale``), and their current descriptors are searched exactly in
    a small ``delta`` index. Base minus stale plus delta is always every current descriptor, so
    a search is exact (as the base is) whatever the delta's size; only its cost grows with it.
    When the delta passes 2% of the persons, :class:`GalleryIndex` rebuilds the base in the
    background and swaps it in (see there).
    """

    base: _Part
    stale: frozenset[int]
    delta: _Part
    names: dict[int, str]  # person id -> name, as of this snapshot

    def __len__(self) -> int:
        return len(self.base.index) + len(self.delta.index)

    def nearest(self, q: np.ndarray, k: int) -> list[list[Match]]:
        """Up to k nearest distinct persons per query (M, d), closest first."""
        out = []
        for a, b in zip(
            self.base.nearest(q, k, self.stale), self.delta.nearest(q, k, frozenset()), strict=True
        ):
            best = sorted({**a, **b}.items(), key=lambda item: item[1])[:k]  # disjoint persons
            out.append([Match(self.names[p], d) for p, d in best] or [Match(None, float("inf"))])
        return out


class GalleryIndex:
    """One gallery's persons and descriptors in memory, and a search index over them.

    Thread-safe: the feed follower changes it while request threads search it; a search works
    on a :class:`Snapshot`, made once after each change. ``_lock`` guards the dicts and is held
    only for O(persons) bookkeeping, never for an index build, except the first one (before it
    there is nothing to search).

    The base is rebuilt on a background thread, at most one per gallery at a time: the first
    search that sees a delta past 2% of the persons takes a copy of ``vectors`` under the lock
    (the arrays are replaced on change, never written in place, so a shallow copy is consistent)
    and starts the thread. Meanwhile searches keep using the old base plus a growing exact delta.
    When the new base is built (faiss trained too), it is swapped in under the lock, and only
    the persons changed after the copy stay stale, so nothing enrolled or removed during the
    build is lost or brought back. A failed build is logged, the old base kept, and the rebuild
    retried after ``rebuild_retry_s``. While the new base is built, two bases are in memory.
    """

    #: Seconds to wait after a failed background rebuild before the next try.
    rebuild_retry_s = 5.0

    def __init__(self, storage: Storage, gallery: str, config: IndexConfig):
        self.storage = storage
        self.gallery = gallery
        self.config = config
        self.names: dict[int, str] = {}  # person id -> name
        self.vectors: dict[int, np.ndarray] = {}  # person id -> (n, d) descriptors
        self.meta: dict[str, str] = {}
        #: Called on the rebuild thread once the new base is built, before the swap; tests hold
        #: a rebuild in flight here (an exception counts as a failed build).
        self.rebuild_hook: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._base: _Part | None = None
        self._stale: set[int] = set()  # persons changed since the base's copy was taken
        self._built: Snapshot | None = None
        self._rebuild: threading.Thread | None = None  # the background rebuild in flight
        self._since_copy: set[int] = set()  # persons changed since its copy was taken
        self._epoch = 0  # bumped by a full reload: a rebuild from an older copy is dropped
        self._retry_at = 0.0  # time.monotonic() before which no rebuild starts (after a failure)
        self.reload(None)

    def reload(self, person_ids: Sequence[int] | None) -> None:
        """Reload these persons (None: all of them) and the gallery's meta from the database."""
        loaded = self.storage.load_vectors(self.gallery, person_ids)
        meta = self.storage.get_meta(self.gallery)
        with self._lock:
            if person_ids is None:
                self.names.clear()
                self.vectors.clear()
                self._base = None
                self._epoch += 1
            for pid in person_ids or ():
                self.names.pop(pid, None)
                self.vectors.pop(pid, None)
                self._changed(pid)
            self.names.update(loaded.names)
            for pid in loaded.names:
                rows = loaded.vectors[loaded.person_ids == pid]
                if len(rows):
                    self.vectors[pid] = rows
            self.meta = meta
            self._built = None

    def forget(self, person_id: int) -> None:
        with self._lock:
            self.names.pop(person_id, None)
            self.vectors.pop(person_id, None)
            self._changed(person_id)
            self._built = None

    def _changed(self, pid: int) -> None:
        """Mark a person changed (under the lock): skipped in the base, searched in the delta."""
        self._stale.add(pid)
        self._since_copy.add(pid)

    def snapshot(self) -> Snapshot:
        """What to search, as of now (see :class:`Snapshot`)."""
        with self._lock:
            dim = int(self.meta.get("dim", 0))
            if self._base is None:
                self._base = _Part.of(self.vectors, sorted(self.vectors), dim, self.config).ready()
                self._stale = set()
                self._built = None
            elif (
                self._rebuild is None
                and len(self._stale) > max(32, len(self.vectors) // 50)
                and time.monotonic() >= self._retry_at
            ):
                self._start_rebuild(dim)
            if self._built is None:
                changed = sorted(p for p in self._stale if p in self.vectors)
                delta = _Part.of(self.vectors, changed, dim, _EXACT)
                self._built = Snapshot(self._base, frozenset(self._stale), delta, dict(self.names))
            return self._built

    def _start_rebuild(self, dim: int) -> None:
        """Copy the vectors and start building a new base from them (under the lock)."""
        copy = dict(self.vectors)  # arrays are replaced, never written in place
        self._since_copy = set()
        self._rebuild = threading.Thread(
            target=self._rebuild_base,
            args=(copy, dim, self._epoch),
            name=f"cnnkit-rebuild-{self.gallery}",
            daemon=True,
        )
        self._rebuild.start()

    def _rebuild_base(self, copy: dict[int, np.ndarray], dim: int, epoch: int) -> None:
        """The rebuild thread: build a base from ``copy``, then swap it in."""
        try:
            base = _Part.of(copy, sorted(copy), dim, self.config).ready()
            if self.rebuild_hook is not None:
                self.rebuild_hook()
        except Exception:
            log.exception(
                "rebuilding the index of gallery %r failed; searching the old one, retry in %g s",
                self.gallery,
                self.rebuild_retry_s,
            )
            with self._lock:
                self._retry_at = time.monotonic() + self.rebuild_retry_s
                self._rebuild = None
            return
        with self._lock:
            if epoch == self._epoch:  # else a full reload replaced everything meanwhile
                self._base = base
                self._stale = self._since_copy  # changed after the copy: not in base as they are
                self._since_copy = set()
                self._built = None
            self._rebuild = None

    def wait_rebuilt(self, timeout: float | None = None) -> bool:
        """Wait for the background rebuild in flight, if any; False if it still runs."""
        with self._lock:
            thread = self._rebuild
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()


class ReplicaIndex:
    """The in-memory indexes of every gallery this replica has served, following the feed.

    Args:
        storage: the shared database.
        sync_interval: seconds between two reads of the change feed before searches.
        index_config: when VectorIndex switches from the exact matmul to faiss.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        sync_interval: float = 0.2,
        index_config: IndexConfig | None = None,
    ):
        self.storage = storage
        self.sync_interval = sync_interval
        self.config = index_config or IndexConfig()
        self.seq = storage.last_seq()
        self._galleries: dict[str, GalleryIndex] = {}
        self._lock = threading.RLock()
        self._synced_at = time.monotonic()

    def sync(self, *, force: bool = False) -> int:
        """Apply the change feed past the cursor; returns how many feed rows were read."""
        with self._lock:
            if not force and time.monotonic() - self._synced_at < self.sync_interval:
                return 0
            changes = self.storage.changes_since(self.seq)
            self._synced_at = time.monotonic()
            dirty: dict[str, set[int]] = {}
            meta: set[str] = set()
            for change in changes:
                self.seq = max(self.seq, change.seq)
                gallery = self._galleries.get(change.gallery)
                if gallery is None:
                    continue  # not loaded here yet: loaded whole on first use
                if change.kind == META_CHANGED or change.person_id is None:
                    meta.add(change.gallery)
                elif change.kind == PERSON_DELETED:
                    gallery.forget(change.person_id)
                    dirty.setdefault(change.gallery, set()).discard(change.person_id)
                else:
                    dirty.setdefault(change.gallery, set()).add(change.person_id)
            for name in meta - dirty.keys():
                self._galleries[name].meta = self.storage.get_meta(name)
            for name, pids in dirty.items():
                self._galleries[name].reload(sorted(pids))
            return len(changes)

    def gallery(self, name: str) -> GalleryIndex:
        """The gallery's index, synced with the feed (loaded whole on first use)."""
        with self._lock:
            self.sync()
            found = self._galleries.get(name)
            if found is None:
                self.sync(force=True)  # cursor first: rows after it are replayed, idempotently
                found = self._galleries[name] = GalleryIndex(self.storage, name, self.config)
            return found


class GalleryStore:
    """One gallery of the shared storage as a :class:`cnnkit.face.store.PersonStore`.

    Reads search this replica's in-memory index; writes go to the database (audited under
    ``actor``, the key id) and are applied to the index at once.
    """

    def __init__(self, replica: ReplicaIndex, gallery: str, actor: int | None = None):
        self.replica = replica
        self.storage = replica.storage
        self.gallery = gallery
        self.actor = actor

    def _index(self) -> GalleryIndex:
        return self.replica.gallery(self.gallery)

    def _person_id(self, name: str) -> int:
        found = self.storage.find_person(self.gallery, name)
        if found is None:
            raise NotFoundError(f"no person named {name!r}", hint="list them: GET /persons")
        return found.id

    # -- writes ---------------------------------------------------------------------------
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
        person, _ = self.storage.add_photos(
            self.gallery,
            name,
            vectors,
            model_id=model_id,
            sha256s=sha256s,
            sources=sources,
            actor=self.actor,
            pipeline=pipeline,
        )
        self.replica.sync(force=True)
        return person.photos

    def remove(self, name: str) -> int:
        count = self.storage.delete_person(self.gallery, self._person_id(name), actor=self.actor)
        self.replica.sync(force=True)
        return count

    def rename(self, old: str, new: str) -> None:
        self.storage.rename_person(self.gallery, self._person_id(old), new, actor=self.actor)
        self.replica.sync(force=True)

    # -- reads ----------------------------------------------------------------------------
    def persons(self) -> list[Person]:
        rows, total = self.storage.list_persons(self.gallery, limit=1 << 62)
        return [Person(p.name, p.photos, p.created_at) for p in rows]

    def vectors_of(self, name: str) -> np.ndarray:
        """The person's (n, d) descriptors; NotFoundError for an unknown name, and for a person
        created without a photo yet (nothing to compare with, as for an unknown name)."""
        pid = self._person_id(name)
        found = self._index().vectors.get(pid)
        if found is None or len(found) == 0:
            raise NotFoundError(
                f"{name!r} has no enrolled photo yet",
                hint="add one: POST /api/v1/persons/{id}/photos",
            )
        return found

    def names_with_hash(self, sha256: str) -> list[str]:
        return self.storage.names_with_hash(self.gallery, sha256)

    def search(self, queries: np.ndarray) -> list[Match]:
        return [found[0] for found in self.nearest(queries, k=1)]

    def nearest(self, queries: np.ndarray, k: int = 3) -> list[list[Match]]:
        """Up to ``k`` nearest distinct persons per query (M, d): a person's distance is that of
        their nearest descriptor. An empty gallery gives ``[Match(None, inf)]`` per query."""
        snap = self._index().snapshot()
        q = np.asarray(queries, dtype=np.float32)
        q = q[None] if q.ndim == 1 else q
        if len(snap) == 0:
            return [[Match(None, float("inf"))] for _ in range(len(q))]
        return snap.nearest(q, k)

    def distance_to(self, query: np.ndarray, name: str) -> float:
        vectors = self.vectors_of(name)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != vectors.shape[1]:
            raise ShapeError(f"query is {q.shape[0]}-d, the gallery holds {vectors.shape[1]}-d")
        return float(np.sqrt(((vectors - q[None]) ** 2).sum(axis=1)).min())

    def tolerance(self, tolerance: float | None = None) -> float:
        if tolerance is not None:
            return float(tolerance)
        tau = self._index().meta.get("tau")
        return DEFAULT_TOLERANCE if tau is None else float(tau)

    @property
    def pipeline(self) -> str | None:
        """How the gallery's descriptors were made (None: it has none yet, the default will be
        used and recorded at the first photo); see :mod:`cnnkit.face.descriptors`."""
        return gallery_pipeline(self._index().meta)

    # -- calibration: what cnnkit.face.identification.identification_threshold reads ------
    @property
    def tau(self) -> float | None:
        """The gallery's calibrated pair (verify) tau, or None."""
        value = self._index().meta.get("tau")
        return None if value is None else float(value)

    @property
    def identification_tau(self) -> IdentificationTau | None:
        """The gallery's calibrated 1:N threshold (identify), or None."""
        return read_identification(self._index().meta)

    def person_count(self) -> int:
        """Persons in the gallery, from this replica's index (no database round trip)."""
        return len(self._index().names)

    def set_identification_tau(
        self,
        tau: float,
        fpir: float,
        gallery_size: int,
        *,
        model_id: str | None = None,
        dim: int | None = None,
        pipeline: str | None = None,
        norm: str = "none",
    ) -> None:
        """Store a 1:N threshold (``cnnkit.face.calibrate_identification`` calls this)."""
        from cnnkit.face.descriptors import store_pipeline

        made = store_pipeline(self)
        if pipeline is not None and pipeline != made:
            raise DatabaseError(
                f"a tau for descriptors of pipeline {pipeline!r}, but this gallery's are made "
                f"with {made!r}",
                hint="calibrate without --pipeline",
            )
        ident = IdentificationTau(float(tau), float(fpir), int(gallery_size), norm)
        self.storage.set_identification_tau(
            self.gallery, ident, model_id=model_id, dim=dim, actor=self.actor
        )
        self.replica.sync(force=True)

    def check_model(self, model_id: str, dim: int | None = None) -> None:
        meta = self._index().meta
        stored = meta.get("model_id")
        if stored is not None and stored != model_id:
            raise ModelMismatch(
                f"this gallery holds descriptors of encoder {stored!r}, not {model_id!r}",
                hint="serve with the matching encoder, or use another gallery",
            )
        if dim is not None and meta.get("dim") is not None and int(meta["dim"]) != dim:
            raise ModelMismatch(f"this gallery holds {meta['dim']}-d descriptors, got {dim}-d")
