"""The storage interface (SQLite here; the same tests run on PostgreSQL): persons, photos,
keys, audit, the change feed, and replicas that follow it."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.face.index import IndexConfig
from cnnkit.face.store import PersonStore
from cnnkit.serve.replica import GalleryStore, ReplicaIndex
from cnnkit.serve.storage import Conflict, open_storage
from cnnkit.serve.storage.base import ModelMismatch


def _vectors(rng: np.random.Generator, n: int, d: int = 128) -> np.ndarray:
    return rng.standard_normal((n, d)).astype(np.float32)


def test_persons_and_photos_round_trip(storage, rng) -> None:
    ada = storage.create_person("g", "Ada")
    assert (ada.name, ada.photos) == ("Ada", 0)
    x = _vectors(rng, 3)
    person, ids = storage.add_photos("g", "Ada", x, model_id="m", sha256s=["a", "b", "c"])
    assert person.id == ada.id and person.photos == 3 and len(set(ids)) == 3
    loaded = storage.load_vectors("g")
    np.testing.assert_array_equal(loaded.vectors, x)  # float32 stored bit-exact
    assert loaded.person_ids.tolist() == [ada.id] * 3 and loaded.names == {ada.id: "Ada"}
    assert [p.sha256 for p in storage.list_photos("g", ada.id)] == ["a", "b", "c"]
    assert storage.names_with_hash("g", "b") == ["Ada"] and storage.names_with_hash("h", "b") == []
    assert storage.counts("g") == (1, 3) and storage.counts("nothing") == (0, 0)
    storage.delete_photo("g", ada.id, ids[0])
    assert storage.get_person("g", ada.id).photos == 2
    assert storage.delete_person("g", ada.id) == 2
    assert storage.counts("g") == (0, 0)
    with pytest.raises(NotFoundError):
        storage.get_person("g", ada.id)


def test_names_are_unique_per_gallery_only(storage) -> None:
    storage.create_person("g", "Ada")
    with pytest.raises(Conflict):
        storage.create_person("g", "Ada")
    assert storage.create_person("h", "Ada").name == "Ada"
    bob = storage.create_person("g", "Bob")
    with pytest.raises(Conflict):
        storage.rename_person("g", bob.id, "Ada")
    with pytest.raises(NotFoundError):  # another gallery's person is invisible
        storage.rename_person("h", bob.id, "Carl")
    with pytest.raises(CnnkitError):
        storage.create_person("g", "a,b")


def test_pagination(storage) -> None:
    for name in ["d", "b", "e", "a", "c"]:
        storage.create_person("g", name)
    pages = [storage.list_persons("g", offset=o, limit=2) for o in (0, 2, 4)]
    assert [[p.name for p in rows] for rows, _ in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert {total for _, total in pages} == {5}


def test_a_refused_write_changes_nothing(storage, rng) -> None:
    storage.add_photos("g", "Ada", _vectors(rng, 1), model_id="m")
    before = (storage.counts("g"), storage.last_seq(), storage.list_persons("g"))
    with pytest.raises(ModelMismatch):
        storage.add_photos("g", "Bob", _vectors(rng, 1), model_id="other")
    with pytest.raises(ModelMismatch):
        storage.add_photos("g", "Bob", _vectors(rng, 1, d=64), model_id="m")
    with pytest.raises(CnnkitError):
        storage.add_photos("g", "Bob", np.full((1, 128), np.nan, np.float32), model_id="m")
    assert (storage.counts("g"), storage.last_seq(), storage.list_persons("g")) == before


def test_keys_store_only_a_hash(storage) -> None:
    row, secret = storage.create_key("query", "g", "door")
    assert storage.key_for_secret(secret) == row and storage.key_for_secret(secret + "x") is None
    stored = storage._read("SELECT hash FROM api_keys WHERE id = ?", (row.id,))[0][0]
    assert stored == hashlib.sha256(secret.encode()).hexdigest() != secret
    everything = repr(storage._read("SELECT * FROM api_keys")) + repr(storage.list_keys())
    assert secret not in everything
    assert storage.revoke_key(row.id).revoked_at is not None
    assert storage.key_for_secret(secret) is None
    with pytest.raises(CnnkitError):
        storage.create_key("root", "g")


def test_change_feed_and_audit(storage, rng) -> None:
    start = storage.last_seq()
    ada = storage.create_person("g", "Ada", actor=7)
    storage.add_photos("g", "Ada", _vectors(rng, 2), model_id="m", actor=7)
    storage.rename_person("g", ada.id, "Ada L.", actor=8)
    storage.set_tau("g", 0.5, actor=8)
    storage.delete_person("g", ada.id, actor=9)
    feed = storage.changes_since(start)
    assert [c.kind for c in feed] == [
        "person_created",
        "photos_added",
        "person_renamed",
        "meta_changed",
        "person_deleted",
    ]
    assert [c.seq for c in feed] == sorted({c.seq for c in feed}) and feed[
        -1
    ].seq == storage.last_seq()
    assert storage.changes_since(feed[2].seq) == feed[3:]
    audit = storage.audit_log("g")
    assert [(a.action, a.key_id) for a in audit] == [
        ("person.delete", 9),
        ("gallery.tau", 8),
        ("person.rename", 8),
        ("photo.add", 7),
        ("person.create", 7),
    ]
    assert storage.get_meta("g")["tau"] == "0.5"


def _brute_force(q: np.ndarray, gallery: dict[str, np.ndarray], k: int) -> list[list[tuple]]:
    """Reference: each person's nearest descriptor, the k nearest persons, by plain NumPy."""
    out = []
    for v in q:
        d = {n: float(np.sqrt(((x - v) ** 2).sum(1)).min()) for n, x in gallery.items()}
        out.append(sorted(d.items(), key=lambda item: item[1])[:k])
    return out


def _check(store: GalleryStore, q: np.ndarray, gallery: dict[str, np.ndarray]) -> None:
    found = store.nearest(q, k=3)
    for row, expected in zip(found, _brute_force(q, gallery, 3), strict=True):
        assert [m.name for m in row] == [n for n, _ in expected]
        # the returned distances are recomputed as ||q - x||: exact at distance 0 too
        got = [m.distance for m in row]
        np.testing.assert_allclose(got, [d for _, d in expected], rtol=1e-5, atol=1e-5)


def test_gallery_store_is_a_person_store_and_searches_exactly(storage, rng) -> None:
    store = GalleryStore(ReplicaIndex(storage, sync_interval=0), "g")
    assert isinstance(store, PersonStore)
    x = _vectors(rng, 60)
    gallery = {f"p{p:02d}": x[3 * p : 3 * p + 3] for p in range(20)}
    for name, vectors in gallery.items():
        store.add(name, vectors, model_id="m")
    q = _vectors(rng, 5)
    _check(store, q, gallery)  # one index over everybody
    # Changes after the index was built: searched in the delta, their old rows skipped.
    for name in ("p03", "p07", "p11"):
        store.remove(name)
        del gallery[name]
    more = _vectors(rng, 4)
    store.add("new1", more[:2], model_id="m")
    store.add("p05", more[2:], model_id="m")
    gallery["new1"] = more[:2]
    gallery["p05"] = np.concatenate([gallery["p05"], more[2:]])
    store.rename("p00", "zero")
    gallery["zero"] = gallery.pop("p00")
    _check(store, np.concatenate([q, more]), gallery)
    assert store.distance_to(q[0], "p04") == pytest.approx(
        float(np.sqrt(((gallery["p04"] - q[0]) ** 2).sum(1)).min()), rel=1e-4
    )
    assert store.tolerance() == 0.6 and store.tolerance(0.4) == 0.4
    empty = GalleryStore(ReplicaIndex(storage), "empty")
    assert empty.search(q[:2])[0].name is None


def test_the_base_index_is_rebuilt_after_many_changes(storage, rng) -> None:
    store = GalleryStore(ReplicaIndex(storage, sync_interval=0), "g")
    x = _vectors(rng, 80)
    gallery = {}
    for i in range(80):  # each search in between sees a bigger delta, then a rebuilt base
        store.add(f"p{i}", x[i : i + 1], model_id="m")
        gallery[f"p{i}"] = x[i : i + 1]
        if i % 10 == 0:
            _check(store, x[:3] + 0.01, gallery)
    for i in range(0, 80, 2):
        store.remove(f"p{i}")
        del gallery[f"p{i}"]
    _check(store, x[:6] + 0.01, gallery)
    for i in range(1, 80, 2):
        store.remove(f"p{i}")
    assert store.search(x[:2])[0].name is None


def test_a_second_replica_follows_the_feed(storage_url: str, rng) -> None:
    a, b = open_storage(storage_url), open_storage(storage_url)  # two processes' connections
    try:
        store_a = GalleryStore(ReplicaIndex(a, sync_interval=0), "g")
        store_b = GalleryStore(ReplicaIndex(b, sync_interval=0), "g")
        x = _vectors(rng, 2)
        store_a.add("Ada", x[:1], model_id="m")
        assert store_b.search(x[:1])[0].name == "Ada"  # B loads the gallery
        store_a.add("Bob", x[1:], model_id="m")
        assert store_b.search(x[1:])[0].name == "Bob"  # B follows the feed
        store_a.rename("Bob", "Robert")
        assert store_b.search(x[1:])[0].name == "Robert"
        a.set_tau("g", 0.45)
        assert store_b.tolerance() == 0.45
        store_a.remove("Robert")
        assert store_b.search(x[1:])[0].name == "Ada"
        store_a.remove("Ada")
        assert store_b.search(x[:1])[0].name is None
    finally:
        a.close()
        b.close()


def test_searches_run_while_the_index_changes(storage, rng) -> None:
    import threading

    replica = ReplicaIndex(storage, sync_interval=0)
    store = GalleryStore(replica, "g")
    x = _vectors(rng, 40)
    store.add("anchor", x[:1], model_id="m")
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                found = store.nearest(x[:4], k=3)
                assert all(row and row[0].name is not None for row in found)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(1, 30):
        store.add(f"p{i}", x[i : i + 1], model_id="m")
        if i % 3 == 0:
            store.remove(f"p{i - 1}")
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert store.search(x[1:2])[0].name == "p1" and len(store.persons()) == 30 - 9


class _HeldRebuild:
    """A rebuild hook that stops the background rebuild until released (and counts them)."""

    def __init__(self, fail_first: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []
        self.fail_first = fail_first

    def __call__(self) -> None:
        self.threads.append(threading.current_thread())
        self.entered.set()
        assert self.release.wait(timeout=30), "the test never released the rebuild"
        if self.fail_first and len(self.threads) == 1:
            raise RuntimeError("the rebuild failed (test)")


def _search_on_a_thread(store: GalleryStore, q: np.ndarray) -> list[list] | None:
    """A search on another thread; None when it did not return within a few seconds."""
    found: list[list] = []
    thread = threading.Thread(target=lambda: found.append(store.nearest(q, k=3)), daemon=True)
    thread.start()
    thread.join(timeout=5)
    return found[0] if found else None


def test_searches_stay_exact_and_unblocked_while_the_base_is_rebuilt(storage, rng) -> None:
    # exact_max=16: the base goes through a real faiss IVF index (built on the rebuild thread);
    # at ~100 descriptors nlist <= nprobe, so it scans every cell and stays exact.
    replica = ReplicaIndex(storage, sync_interval=0, index_config=IndexConfig(exact_max=16))
    store = GalleryStore(replica, "g")
    x = _vectors(rng, 200)
    q = np.concatenate([x[:40:3] + 0.01, _vectors(rng, 4)])
    gallery = {f"p{i}": x[i : i + 1] for i in range(40)}
    for name, vectors in gallery.items():
        store.add(name, vectors, model_id="m")
    _check(store, q, gallery)  # the first base: built at once
    index = replica.gallery("g")
    first_base = index.snapshot().base
    held = _HeldRebuild()
    index.rebuild_hook = held
    try:
        for i in range(40, 73):  # 33 new persons: the delta passes the rebuild threshold (32)
            gallery[f"p{i}"] = x[i : i + 1]
            store.add(f"p{i}", x[i : i + 1], model_id="m")
            _check(store, q, gallery)
        assert held.entered.wait(timeout=30)  # the new base is built, its swap held
        assert held.threads[0] is not threading.current_thread()
        # A search on another thread is answered while the rebuild is held.
        assert _search_on_a_thread(store, q) is not None, "a search waited for the rebuild"
        # Changes after the copy was taken: removals (of persons in the copy, and of one
        # enrolled after it), new persons, new photos of a copied person, a name reused.
        for name in ("p0", "p5", "p41", "p70"):
            store.remove(name)
            del gallery[name]
            _check(store, q, gallery)
        for i in range(73, 110):  # the delta keeps growing past the threshold: still exact
            gallery[f"p{i}"] = x[i : i + 1]
            store.add(f"p{i}", x[i : i + 1], model_id="m")
        store.add("p9", x[150:152], model_id="m")
        gallery["p9"] = np.concatenate([gallery["p9"], x[150:152]])
        store.add("p0", x[160:161], model_id="m")  # a new person under a removed one's name
        gallery["p0"] = x[160:161]
        _check(store, np.concatenate([q, x[150:161:5] + 0.01]), gallery)
        other = _search_on_a_thread(store, q)  # and after the changes, exactly
        assert other is not None, "a search waited for the rebuild"
        assert [[m.name for m in row] for row in other] == [
            [n for n, _ in row] for row in _brute_force(q, gallery, 3)
        ]
        assert len(held.threads) == 1 and index.snapshot().base is first_base
        assert not index.wait_rebuilt(timeout=0)  # one rebuild at a time, still in flight
    finally:
        held.release.set()
    assert index.wait_rebuilt(timeout=30)
    swapped = index.snapshot()
    assert swapped.base is not first_base and swapped.base.index.approximate
    assert len(swapped.base.index) == 73  # the copy: everybody up to p72, one row each
    _check(store, np.concatenate([q, x[150:161:5] + 0.01]), gallery)  # nothing lost or revived
    for name in ("p1", "p9", "p100"):
        store.remove(name)
        del gallery[name]
    _check(store, q, gallery)


def test_a_failed_rebuild_keeps_the_old_base_and_is_retried(storage, rng, caplog) -> None:
    replica = ReplicaIndex(storage, sync_interval=0, index_config=IndexConfig(exact_max=16))
    store = GalleryStore(replica, "g")
    x = _vectors(rng, 80)
    q = x[::7] + 0.01
    gallery = {f"p{i}": x[i : i + 1] for i in range(40)}
    for name, vectors in gallery.items():
        store.add(name, vectors, model_id="m")
    _check(store, q, gallery)
    index = replica.gallery("g")
    index.rebuild_retry_s = 0.0
    first_base = index.snapshot().base
    failing = index.rebuild_hook = _HeldRebuild(fail_first=True)
    failing.release.set()
    for i in range(40, 73):
        gallery[f"p{i}"] = x[i : i + 1]
        store.add(f"p{i}", x[i : i + 1], model_id="m")
    _check(store, q, gallery)  # starts the rebuild, which fails
    assert failing.entered.wait(timeout=30) and index.wait_rebuilt(timeout=30)
    assert "rebuilding the index of gallery 'g' failed" in caplog.text
    assert index.snapshot().base is first_base  # and starts the retry (rebuild_retry_s = 0)
    _check(store, q, gallery)  # the old base and the whole delta: still exact
    assert index.wait_rebuilt(timeout=30)
    assert len(failing.threads) == 2 and len(index.snapshot().base.index) == 73
    _check(store, q, gallery)
