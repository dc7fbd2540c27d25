"""The PostgreSQL storage backend against a real server: dialect, feed order, wake-up, errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import psycopg
import pytest

from cnnkit.errors import DatabaseError
from cnnkit.serve.storage import Conflict, open_storage
from cnnkit.serve.storage.postgres import PostgresStorage, redact, to_pyformat
from tests.pgserver import PgServer, free_port


@pytest.fixture
def store(pg_url: str):
    s = open_storage(pg_url)
    assert isinstance(s, PostgresStorage)
    yield s
    s.close()


def test_descriptors_round_trip_bit_exact(store: PostgresStorage, rng) -> None:
    x = rng.standard_normal((3, 128)).astype(np.float32)
    x[0, 0] = np.float32(1e-38)  # a subnormal-adjacent value survives bytea
    person, ids = store.add_photos("g", "Ada", x, model_id="m", sha256s=["h1", None, "h3"])
    assert person.photos == 3 and len(ids) == 3
    loaded = store.load_vectors("g")
    assert loaded.vectors.dtype == np.float32
    np.testing.assert_array_equal(loaded.vectors, x)
    assert loaded.names == {person.id: "Ada"}
    assert store.names_with_hash("g", "h3") == ["Ada"]


def test_names_sort_bytewise_and_conflict(store: PostgresStorage) -> None:
    for name in ["bob", "Zed", "alice", "Émile"]:
        store.create_person("g", name)
    rows, total = store.list_persons("g", limit=10)
    assert [r.name for r in rows] == sorted(["bob", "Zed", "alice", "Émile"])
    assert total == 4
    with pytest.raises(Conflict, match="already exists"):
        store.create_person("g", "bob")
    # Another gallery may reuse the name.
    assert store.create_person("h", "bob").name == "bob"


def test_concurrent_writers_make_a_gapless_feed_in_commit_order(pg_url: str, rng) -> None:
    stores = [open_storage(pg_url) for _ in range(4)]
    errors: list[BaseException] = []

    def enroll(i: int) -> None:
        try:
            for j in range(15):
                v = np.full((1, 8), i + j / 100, np.float32)
                stores[i].add_photos("g", f"p{i}-{j % 5}", v, model_id="m")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enroll, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    feed = stores[0].changes_since(0)
    assert [c.seq for c in feed] == list(range(1, len(feed) + 1))
    # 4 writers x 15 enrollments: one photos_added each, one person_created per new name.
    kinds = [c.kind for c in feed]
    assert kinds.count("photos_added") == 60 and kinds.count("person_created") == 20
    assert stores[1].counts("g") == (20, 60)
    for s in stores:
        s.close()


def test_a_reader_never_skips_a_seq_that_commits_late(pg_url: str, store: PostgresStorage) -> None:
    """A transaction that appends to the feed and commits late holds later appends back."""
    store.create_person("g", "first")
    slow = psycopg.connect(pg_url, autocommit=True)
    slow.execute("BEGIN")
    slow.execute(
        "INSERT INTO changes(gallery_id, kind, person_id, at) VALUES (1, 'meta_changed', NULL, 'x')"
    )
    done = threading.Event()
    threading.Thread(target=lambda: (store.create_person("g", "second"), done.set())).start()
    time.sleep(0.3)
    # The second writer waits for the first's feed append to commit: no seq 3 before seq 2.
    assert not done.is_set()
    assert [c.seq for c in store.changes_since(0)] == [1]
    slow.execute("COMMIT")
    slow.close()
    assert done.wait(10)
    assert [(c.seq, c.kind) for c in store.changes_since(1)] == [
        (2, "meta_changed"),
        (3, "person_created"),
    ]


def test_wait_for_change_wakes_on_another_replicas_write(pg_url: str) -> None:
    a, b = open_storage(pg_url), open_storage(pg_url)
    assert isinstance(b, PostgresStorage)
    b.wait_for_change(0.1)  # the first call connects and LISTENs
    t0 = time.perf_counter()
    assert b.wait_for_change(0.2) is False
    assert time.perf_counter() - t0 >= 0.19
    threading.Timer(0.2, lambda: a.create_person("g", "Ada")).start()
    t0 = time.perf_counter()
    assert b.wait_for_change(5.0) is True
    assert time.perf_counter() - t0 < 2.0
    assert [c.kind for c in b.changes_since(0)] == ["person_created"]
    a.close()
    b.close()


def test_replicas_starting_together_create_the_schema_once(pg_url: str) -> None:
    out: list[object] = []

    def start() -> None:
        try:
            out.append(open_storage(pg_url))
        except BaseException as exc:  # noqa: BLE001
            out.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(s, PostgresStorage) for s in out), out
    for s in out:
        s.close()  # type: ignore[union-attr]


def test_a_foreign_database_is_refused_untouched(postgres: PgServer) -> None:
    url = postgres.create_database("foreign_db")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE accounts (id int)")
    with pytest.raises(DatabaseError, match="not a cnnkit serve database"):
        open_storage(url)
    with psycopg.connect(url) as con:
        tables = con.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'").fetchall()
    assert tables == [("accounts",)]


def test_unreachable_server_is_a_one_line_error() -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/none"
    with pytest.raises(DatabaseError) as err:
        PostgresStorage(url, timeout=1.0)
    text = str(err.value)
    assert "cannot reach PostgreSQL" in text and "secret" not in text and "\n" not in text


def test_helpers() -> None:
    assert to_pyformat("SELECT '5%' , ? WHERE x = ?") == "SELECT '5%%' , %s WHERE x = %s"
    assert (
        redact("postgresql://u:pw@db.example:5433/faces") == "postgresql://u@db.example:5433/faces"
    )


def test_follower_pushes_another_replicas_writes_into_the_index(pg_url: str, rng) -> None:
    from cnnkit.serve.follow import start_follower
    from cnnkit.serve.replica import ReplicaIndex

    a, b = open_storage(pg_url), open_storage(pg_url)
    a.add_photos("g", "Ada", rng.standard_normal((1, 8)).astype(np.float32), model_id="m")
    # Replica B never syncs on its own (interval: a day): only the follower can update it.
    replica = ReplicaIndex(b, sync_interval=86_400)
    gallery = replica.gallery("g")
    assert set(gallery.names.values()) == {"Ada"}
    follower = start_follower(b, replica, poll_s=30.0)
    assert follower is not None
    try:
        t0 = time.monotonic()
        a.add_photos("g", "Bob", rng.standard_normal((2, 8)).astype(np.float32), model_id="m")
        while "Bob" not in gallery.names.values():
            assert time.monotonic() - t0 < 1.0, "not within 1 s"
            time.sleep(0.01)
        assert len(gallery.vectors[a.find_person("g", "Bob").id]) == 2  # type: ignore[union-attr]
        a.delete_person("g", a.find_person("g", "Ada").id)  # type: ignore[union-attr]
        while "Ada" in gallery.names.values():
            assert time.monotonic() - t0 < 2.0, "removal not within 1 s"
            time.sleep(0.01)
    finally:
        t0 = time.monotonic()
        follower.stop()
        assert time.monotonic() - t0 < 2.0  # woken by wake(), not by its 30 s time-out
        a.close()
        b.close()


def test_sqlite_needs_no_follower(tmp_path) -> None:
    from cnnkit.serve.follow import start_follower
    from cnnkit.serve.replica import ReplicaIndex

    s = open_storage(str(tmp_path / "s.db"))
    assert start_follower(s, ReplicaIndex(s)) is None
    s.close()


def test_searches_stay_correct_while_the_follower_applies_changes(pg_url: str, rng) -> None:
    """The follower thread changes the index while request threads search it."""
    from cnnkit.serve.follow import start_follower
    from cnnkit.serve.replica import GalleryStore, ReplicaIndex

    a, b = open_storage(pg_url), open_storage(pg_url)
    for i in range(50):
        a.add_photos("g", f"p{i}", rng.random((1, 16), dtype=np.float32), model_id="m")
    replica = ReplicaIndex(b)
    store = GalleryStore(replica, "g")
    follower = start_follower(b, replica)
    errors: list[str] = []
    searches = [0]
    stop = time.monotonic() + 2.0
    query = rng.random((2, 16), dtype=np.float32)

    def search() -> None:
        while time.monotonic() < stop:
            try:
                found = store.nearest(query, 3)
                assert all(len(m) == 3 and m[0].name is not None for m in found)
                searches[0] += 1
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    i = 50
    while time.monotonic() < stop:  # enroll one, remove the previous one: 50 persons stay
        a.add_photos("g", f"p{i}", rng.random((1, 16), dtype=np.float32), model_id="m")
        a.delete_person("g", a.find_person("g", f"p{i - 50}").id)  # type: ignore[union-attr]
        i += 1
    for t in threads:
        t.join(timeout=30)
    assert follower is not None
    follower.stop()
    assert not errors, errors[:3]
    assert searches[0] > 0 and i > 55
    a.close()
    b.close()
