"""Concurrency and faults through real `cnnkit serve` processes on loopback, on both backends.

- 8 clients enrolling and 8 identifying at once, for a bounded time: every acknowledged
  enrollment is there afterwards, nothing else is, and no request failed;
- ``kill -9`` of the server mid-enroll: the database is consistent and holds every acknowledged
  enrollment, and a new server on it starts and writes at once;
- two replicas on one PostgreSQL: each sees the other's enrollments, renames and removals
  within 1 s.

The first and last reuse the API tests' server of each backend (``server``, ``serve_db``), each
in a gallery of its own, so the suite starts as few servers as it can.

Every test stops by itself: client loops end at a deadline and requests have time-outs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from cnnkit.serve.storage import open_storage
from tests.serve.server import Server, make_key, start_server

pytestmark = pytest.mark.slow

#: Seconds the enroll/identify clients run.
DURATION = 3.0
#: The change feed's promise: another replica's write is visible within this many seconds.
FOLLOW_S = 1.0


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty service database of each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "serve.sqlite3")
    return str(request.getfixturevalue("pg_url"))


def _enroll(http: httpx.Client, name: str, photo: bytes) -> bool:
    """Create a person and add one photo; True once both are acknowledged (201)."""
    r = http.post("/api/v1/persons", json={"name": name})
    if r.status_code != 201:
        raise AssertionError(f"create {name}: {r.status_code} {r.text[:300]}")
    pid = r.json()["id"]
    r = http.post(f"/api/v1/persons/{pid}/photos", files={"file": ("p.png", photo, "image/png")})
    if r.status_code != 201:
        raise AssertionError(f"photo {name}: {r.status_code} {r.text[:300]}")
    return True


def _persons(url: str, key: str) -> dict[str, int]:
    """name -> photos of every person, page by page."""
    out: dict[str, int] = {}
    offset: int | None = 0
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http:
        while offset is not None:
            page = http.get("/api/v1/persons", params={"offset": offset, "limit": 100}).json()
            out.update({p["name"]: p["photos"] for p in page["items"]})
            offset = page["next_offset"]
    return out


def _identify(http: httpx.Client, photo: bytes) -> list[str]:
    r = http.post("/api/v1/identify", files={"file": ("q.png", photo, "image/png")})
    assert r.status_code == 200, r.text[:300]
    return [f["name"] for f in r.json()["faces"]]


def test_8_enrolling_and_8_identifying_lose_nothing(
    server: Server, serve_db: str, photos: dict[str, bytes]
) -> None:
    """On the API tests' server of each backend, in a gallery of its own."""
    db = serve_db
    key = make_key(db, "enroll", gallery="load")
    enroll_photos = [photos[n] for n in ("grace", "grace_flip", "grace_crop")]
    acked: list[str] = []
    failures: list[str] = []
    identified = [0]
    lock = threading.Lock()
    stop = time.monotonic() + DURATION

    def enroller(c: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as h:
            i = 0
            while time.monotonic() < stop:
                name = f"client{c}-{i}"
                try:
                    _enroll(h, name, enroll_photos[(c + i) % len(enroll_photos)])
                except (AssertionError, httpx.HTTPError) as exc:
                    with lock:
                        failures.append(str(exc))
                    return
                with lock:
                    acked.append(name)
                i += 1

    def identifier(c: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as h:
            photo = photos["astro" if c % 2 else "two"]
            while time.monotonic() < stop:
                try:
                    _identify(h, photo)
                except (AssertionError, httpx.HTTPError) as exc:
                    with lock:
                        failures.append(str(exc))
                    return
                with lock:
                    identified[0] += 1

    threads = [threading.Thread(target=enroller, args=(c,)) for c in range(8)]
    threads += [threading.Thread(target=identifier, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION + 120)
    assert not any(t.is_alive() for t in threads)
    assert not failures, (failures[:3], server.proc.poll(), server.log.read_text()[-3000:])
    assert len(acked) >= 8 and identified[0] >= 8
    listed = _persons(server.url, key)
    # Every acknowledged enrollment, each with its photo, and nothing unacknowledged.
    assert listed == {name: 1 for name in acked}
    storage = open_storage(db)
    try:
        assert storage.counts("load") == (len(acked), len(acked))
    finally:
        storage.close()


def test_kill_9_mid_enroll_keeps_every_acknowledged_enrollment(
    db: str, photos: dict[str, bytes], tmp_path: Path
) -> None:
    key = make_key(db, "enroll")
    acked: list[str] = []
    lock = threading.Lock()
    server = start_server(db, tmp_path / "logs")
    stop = threading.Event()

    def enroller(c: int) -> None:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as h:
            i = 0
            while not stop.is_set():
                name = f"k{c}-{i}"
                try:
                    _enroll(h, name, photos["grace"])
                except (httpx.HTTPError, AssertionError):
                    return  # the server died under this request: not acknowledged
                with lock:
                    acked.append(name)
                i += 1

    threads = [threading.Thread(target=enroller, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop(kill=True)  # requests are in flight: a write may be half done
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert len(acked) >= 4

    storage = open_storage(db)
    try:
        for name in acked:
            person = storage.find_person("default", name)
            assert person is not None and person.photos == 1, name
        _assert_consistent(storage)
        # Usable at once: no lock or open transaction of the dead server is left behind.
        t0 = time.monotonic()
        storage.create_person("default", "after-the-crash")
        assert time.monotonic() - t0 < 5
    finally:
        storage.close()


def _assert_consistent(storage) -> None:
    """Every photo has its person, and the change feed is gap-free and names real persons."""
    (orphans,) = storage._read(
        "SELECT COUNT(*) FROM photos f LEFT JOIN persons p ON p.id = f.person_id WHERE p.id IS NULL"
    )[0]
    assert orphans == 0
    seqs = [c.seq for c in storage.changes_since(0)]
    assert seqs == list(range(1, len(seqs) + 1))
    added = {c.person_id for c in storage.changes_since(0) if c.kind == "photos_added"}
    (with_photos,) = storage._read("SELECT COUNT(DISTINCT person_id) FROM photos")[0]
    assert len(added) == with_photos


def _until(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` holds (polled), or fail after ``timeout``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout:g} s")
    return time.monotonic() - t0


@pytest.mark.parametrize("serve_db", ["postgresql"], indirect=True)
def test_two_replicas_see_each_others_changes_within_1s(
    server: Server, serve_db: str, photos: dict[str, bytes], tmp_path: Path
) -> None:
    """Replica A: the API tests' PostgreSQL server; replica B: a second one on its database."""
    db = serve_db
    headers = {"X-API-Key": make_key(db, "enroll", gallery="replicas")}
    b = start_server(db, tmp_path / "logs")
    ha = httpx.Client(base_url=server.url, headers=headers, timeout=30)
    hb = httpx.Client(base_url=b.url, headers=headers, timeout=30)
    try:
        query = photos["grace_flip"]
        assert _identify(hb, query) == ["unknown"]  # B has loaded the (empty) gallery
        assert _identify(ha, query) == ["unknown"]
        # Enrolled through A -> identified by B.
        _enroll(ha, "Grace Hopper", photos["grace"])
        took = _until(lambda: _identify(hb, query) == ["Grace Hopper"], FOLLOW_S)
        # Renamed through B -> A answers the new name.
        pid = hb.get("/api/v1/persons").json()["items"][0]["id"]
        assert hb.patch(f"/api/v1/persons/{pid}", json={"name": "G. Hopper"}).status_code == 200
        took = max(took, _until(lambda: _identify(ha, query) == ["G. Hopper"], FOLLOW_S))
        # Removed through B -> unknown to A.
        assert hb.delete(f"/api/v1/persons/{pid}").status_code == 204
        took = max(took, _until(lambda: _identify(ha, query) == ["unknown"], FOLLOW_S))
        assert took < FOLLOW_S
    finally:
        ha.close()
        hb.close()
        b.stop()
