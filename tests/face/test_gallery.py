"""The person database: content, model identity, bad files, locks, concurrency, crashes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cnnkit.errors import CnnkitError, DatabaseError, NotFoundError
from cnnkit.face.gallery import Gallery, default_db_path
from cnnkit.face.index import IndexConfig

MODEL = "fake-encoder-v1"


def _vecs(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    return rng.normal(size=(n, d)).astype(np.float32)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "faces.sqlite3"


def test_enroll_list_search_remove_rename(db_path: Path, rng: np.random.Generator) -> None:
    ada, bob = _vecs(rng, 2), _vecs(rng, 1)
    with Gallery(db_path) as db:
        assert db.add("Ada", ada[:1], model_id=MODEL, sources=["a.jpg"], sha256s=["aa"]) == 1
        assert db.add("Ada", ada[1:], model_id=MODEL) == 2  # several photos per person
        db.add("Bob", bob, model_id=MODEL)
        assert [(p.name, p.n_photos) for p in db.persons()] == [("Ada", 2), ("Bob", 1)]
        assert db.model_id == MODEL and db.dim == 8 and len(db) == 3
        np.testing.assert_array_equal(db.vectors_of("Ada"), ada)
        assert db.sources_of("Ada") == [("a.jpg", "aa"), (None, None)]
        # Nearest person of a slightly perturbed descriptor of Ada's second photo.
        match = db.search(ada[1] + 0.01)[0]
        assert match.name == "Ada"
        assert match.distance == pytest.approx(0.01 * np.sqrt(8), rel=1e-3)
        assert db.distance_to(bob[0], "Ada") == pytest.approx(
            np.linalg.norm(ada - bob[0], axis=1).min(), rel=1e-5
        )
        db.rename("Bob", "Robert")
        assert [p.name for p in db.persons()] == ["Ada", "Robert"]
        assert db.remove("Ada") == 2
        assert [p.name for p in db.persons()] == ["Robert"]
        assert db.search(ada[0])[0].name == "Robert"  # cache invalidated by the writes
        assert db.integrity_check()
    with Gallery(db_path, create=False) as db:  # persisted
        assert [p.name for p in db.persons()] == ["Robert"]
        assert sqlite3.connect(db_path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_names_and_conflicts_change_nothing(db_path: Path, rng) -> None:
    with Gallery(db_path) as db:
        db.add("Ada", _vecs(rng, 1), model_id=MODEL)
        db.add("Bob", _vecs(rng, 1), model_id=MODEL)
        before = db.dump()
        with pytest.raises(NotFoundError, match="no person named 'Eve'"):
            db.remove("Eve")
        with pytest.raises(NotFoundError):
            db.rename("Eve", "Zoe")
        with pytest.raises(DatabaseError, match="already exists"):
            db.rename("Ada", "Bob")
        with pytest.raises(CnnkitError, match="invalid person name"):
            db.add("  ", _vecs(rng, 1), model_id=MODEL)
        with pytest.raises(CnnkitError):
            db.add("Ada", np.full((1, 8), np.nan, np.float32), model_id=MODEL)
        assert db.dump() == before


def test_other_model_refused(db_path: Path, rng) -> None:
    with Gallery(db_path) as db:
        db.add("Ada", _vecs(rng, 1), model_id=MODEL)
        before = db.dump()
        with pytest.raises(DatabaseError, match="made with encoder 'fake-encoder-v1'"):
            db.add("Bob", _vecs(rng, 1), model_id="another-model")
        with pytest.raises(DatabaseError, match="8-d"):
            db.add("Bob", _vecs(rng, 1, d=16), model_id=MODEL)
        with pytest.raises(DatabaseError):
            db.check_model("another-model")
        assert db.dump() == before


def test_missing_garbage_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="no face database"):
        Gallery(tmp_path / "none.sqlite3", create=False)
    assert not (tmp_path / "none.sqlite3").exists()
    garbage = tmp_path / "garbage.sqlite3"
    payload = os.urandom(3000)
    garbage.write_bytes(payload)
    with pytest.raises(DatabaseError, match="corrupt or not an SQLite database"):
        Gallery(garbage)
    assert garbage.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.sqlite3"]
    foreign = tmp_path / "foreign.sqlite3"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match="not a cnnkit face database"):
        Gallery(foreign)


def test_locked_database_times_out_cleanly(db_path: Path, rng) -> None:
    with Gallery(db_path) as db:
        db.add("Ada", _vecs(rng, 1), model_id=MODEL)
        before = db.dump()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with Gallery(db_path, timeout=0.2) as db:
            assert [p.name for p in db.persons()] == ["Ada"]  # WAL: readers still read
            start = time.perf_counter()
            with pytest.raises(DatabaseError, match="locked by another process"):
                db.add("Bob", _vecs(rng, 1), model_id=MODEL)
            assert time.perf_counter() - start < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Gallery(db_path) as db:
        assert db.dump() == before


_ENROLLER = textwrap.dedent(
    """
    import sys, numpy as np
    from cnnkit.face.gallery import Gallery
    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(abs(hash(tag)) % 1000)
    with Gallery(path, timeout=30) as db:
        for i in range(n):
            db.add(f"{tag}{i}", rng.normal(size=(2, 8)).astype("float32"), model_id="m")
            db.add("shared", rng.normal(size=(1, 8)).astype("float32"), model_id="m")
    """
)


def test_two_processes_enrolling_at_once_lose_nothing(db_path: Path) -> None:
    n = 25
    procs = [
        subprocess.Popen([sys.executable, "-c", _ENROLLER, str(db_path), tag, str(n)])
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with Gallery(db_path) as db:
        counts = {p.name: p.n_photos for p in db.persons()}
        assert len(counts) == 2 * n + 1
        assert counts["shared"] == 2 * n
        assert all(counts[f"{t}{i}"] == 2 for t in "ab" for i in range(n))
        assert db.integrity_check()


def test_killed_inside_a_transaction_leaves_it_consistent(db_path: Path, rng) -> None:
    with Gallery(db_path) as db:
        db.add("Ada", _vecs(rng, 1), model_id=MODEL)
        before = db.dump()
    child = textwrap.dedent(
        """
        import os, sys, numpy as np
        from cnnkit.face.gallery import Gallery
        db = Gallery(sys.argv[1])
        with db.transaction() as con:
            con.execute("INSERT INTO persons(name, created_at) VALUES ('Bob', 'now')")
            con.execute("UPDATE meta SET value = 'x' WHERE key = 'model_id'")
            os._exit(3)  # dies holding the write transaction
        """
    )
    assert subprocess.run([sys.executable, "-c", child, str(db_path)]).returncode == 3
    with Gallery(db_path) as db:
        assert db.dump() == before
        assert db.integrity_check()


def test_sigkill_during_enrolls_leaves_whole_enrollments(db_path: Path) -> None:
    child = textwrap.dedent(
        """
        import sys, numpy as np
        from cnnkit.face.gallery import Gallery
        rng = np.random.default_rng(0)
        with Gallery(sys.argv[1]) as db:
            i = 0
            while True:
                db.add(f"p{i % 7}", rng.normal(size=(3, 8)).astype("float32"), model_id="m")
                i += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child, str(db_path)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
            if db_path.exists():
                try:
                    con = sqlite3.connect(db_path, timeout=1)
                    n = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
                    con.close()
                except sqlite3.Error:
                    continue
                if n >= 60:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Gallery(db_path) as db:
        assert db.integrity_check()
        photos = [p.n_photos for p in db.persons()]
        assert sum(photos) >= 60
        assert all(n % 3 == 0 for n in photos)  # each enrollment is all-or-nothing
        db.add("after", np.ones((1, 8), np.float32), model_id="m")  # still writable


def test_tau_and_tolerance(db_path: Path, rng) -> None:
    with Gallery(db_path) as db:
        assert db.tau is None and db.tolerance() == 0.6 and db.tolerance(0.3) == 0.3
        db.set_tau(0.55)
        assert db.tau == 0.55 and db.tolerance() == 0.55
        with pytest.raises(CnnkitError):
            db.set_tau(-1.0)


def test_export_import_roundtrip(tmp_path: Path, rng) -> None:
    src = Gallery(tmp_path / "a.sqlite3")
    src.add("Ada", _vecs(rng, 2), model_id=MODEL, sources=["a.jpg", "b.jpg"], sha256s=["1", "2"])
    src.add("Bob", _vecs(rng, 1), model_id=MODEL)
    src.set_tau(0.5)
    out = tmp_path / "export.npz"
    assert src.export(out) == 3
    dst = Gallery(tmp_path / "b.sqlite3")
    assert dst.import_(out) == 3
    assert dst.import_(out) == 0  # idempotent
    assert dst.model_id == MODEL and dst.tau == 0.5
    assert [(p.name, p.n_photos) for p in dst.persons()] == [("Ada", 2), ("Bob", 1)]
    np.testing.assert_array_equal(dst.vectors_of("Ada"), src.vectors_of("Ada"))
    assert dst.sources_of("Ada") == [("a.jpg", "1"), ("b.jpg", "2")]
    # Another model's database refuses the file and keeps its content.
    other = Gallery(tmp_path / "c.sqlite3")
    other.add("Zoe", _vecs(rng, 1), model_id="other")
    before = other.dump()
    with pytest.raises(DatabaseError, match="made with encoder"):
        other.import_(out)
    assert other.dump() == before
    # A damaged file is refused.
    bad = tmp_path / "bad.npz"
    bad.write_bytes(out.read_bytes()[:100])
    with pytest.raises(CnnkitError, match="not a cnnkit face export"):
        other.import_(bad)
    assert other.dump() == before


def test_faiss_index_is_persisted_and_refreshed(db_path: Path, rng) -> None:
    config = IndexConfig(exact_max=10, nprobe=64)
    centers = _vecs(rng, 40)
    with Gallery(db_path, index_config=config) as db:
        for i, c in enumerate(centers):
            db.add(f"p{i}", c, model_id=MODEL)
        index, _, _ = db.index()
        assert index.approximate
        sides = list(db_path.parent.glob("*.faiss"))
        assert len(sides) == 1
        assert [m.name for m in db.search(centers[:5] + 0.001)] == [f"p{i}" for i in range(5)]
        db.add("new", np.full(8, 9.0, np.float32), model_id=MODEL)
        assert db.search(np.full(8, 9.0, np.float32))[0].name == "new"
        assert len(list(db_path.parent.glob("*.faiss"))) == 1  # the stale one is gone
    with Gallery(db_path, index_config=config) as db:  # loads the saved index
        assert db.search(centers[7])[0].name == "p7"


def test_default_path_respects_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CNNKIT_FACE_DB", str(tmp_path / "x.sqlite3"))
    assert default_db_path() == tmp_path / "x.sqlite3"
    monkeypatch.delenv("CNNKIT_FACE_DB")
    assert default_db_path().name == "faces.sqlite3"
