"""``cnnkit serve import``: the persons of a ``cnnkit face`` database into the service's store,
on both backends (the ``storage`` fixture), with synthetic descriptors; and one end-to-end run:
``cnnkit face enroll``, ``cnnkit serve import``, identify through a real server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnkit.errors import DatabaseError
from cnnkit.face.descriptors import DEFAULT_PIPELINE
from cnnkit.face.gallery import Gallery
from cnnkit.serve.importer import import_face_db, import_notice
from cnnkit.serve.storage import Conflict


def _face_db(path: Path, rng, *, model_id: str = "m", pipeline: str = DEFAULT_PIPELINE) -> dict:
    """A face database of Ada (2 photos) and Bob (1), calibrated; returns what it holds."""
    held = {
        "Ada": (rng.standard_normal((2, 128)).astype(np.float32), ["a1", "a2"], ["ada1.jpg", None]),
        "Bob": (rng.standard_normal((1, 128)).astype(np.float32), ["b1"], ["bob.png"]),
    }
    with Gallery(path) as db:
        for name, (x, hashes, sources) in held.items():
            db.add(name, x, model_id=model_id, sha256s=hashes, sources=sources, pipeline=pipeline)
        db.set_tau(0.55)
        db.set_identification_tau(0.41, 0.01, 2, norm="tnorm")
    return held


def _content(storage, gallery: str = "default") -> dict:
    """Per person name: (descriptors, [(sha256, source)...]) as the service stores them."""
    rows, _ = storage.list_persons(gallery, limit=1000)
    out = {}
    for p in rows:
        vectors = storage.load_vectors(gallery, [p.id]).vectors
        out[p.name] = (vectors, [(f.sha256, f.source) for f in storage.list_photos(gallery, p.id)])
    return out


def test_import_copies_persons_photos_and_taus(storage, rng, tmp_path: Path) -> None:
    faces = tmp_path / "faces.sqlite3"
    held = _face_db(faces, rng)
    report = import_face_db(storage, faces, model_id="m")
    c = report.counts
    assert (c.persons_created, c.persons_merged, c.photos_added, c.photos_skipped) == (2, 0, 3, 0)
    got = _content(storage)
    assert sorted(got) == ["Ada", "Bob"]
    for name, (x, hashes, sources) in held.items():
        np.testing.assert_array_equal(got[name][0], x)  # bit-exact float32
        assert got[name][1] == list(zip(hashes, sources, strict=True))
    meta = storage.get_meta("default")
    assert meta["model_id"] == "m" and meta["dim"] == "128" and float(meta["tau"]) == 0.55
    assert float(meta["tau_identification"]) == 0.41 and meta["tau_identification_norm"] == "tnorm"
    assert report.tau == 0.55 and "3 photos added" in report.summary()
    assert {r.action for r in storage.audit_log("default")} >= {"person.create", "photo.import"}

    seq = storage.last_seq()  # again: nothing changes, the sha256s say every photo is there
    again = import_face_db(storage, faces, model_id="m").counts
    assert (again.persons_unchanged, again.photos_added, again.photos_skipped) == (2, 0, 3)
    assert (
        again.meta_set == ()
        and storage.last_seq() == seq
        and _content(storage).keys() == got.keys()
    )


def test_existing_persons_are_refused_unless_merge(storage, rng, tmp_path: Path) -> None:
    faces = tmp_path / "faces.sqlite3"
    _face_db(faces, rng)
    x = rng.standard_normal((1, 128))
    storage.add_photos("default", "Ada", x, model_id="m", sha256s=["x"], pipeline=DEFAULT_PIPELINE)
    storage.set_tau("default", 0.7)
    before, seq = _content(storage), storage.last_seq()
    with pytest.raises(Conflict, match="Ada") as refused:
        import_face_db(storage, faces, model_id="m")
    assert "--merge" in (refused.value.hint or "")
    assert storage.last_seq() == seq and _content(storage).keys() == before.keys()  # nothing
    report = import_face_db(storage, faces, model_id="m", merge=True)
    c = report.counts
    assert (c.persons_created, c.persons_merged, c.photos_added) == (1, 1, 3)
    assert storage.find_person("default", "Ada").photos == 3
    assert float(storage.get_meta("default")["tau"]) == 0.7 and report.tau is None  # kept


def test_another_encoder_or_pipeline_is_a_one_line_error(storage, rng, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.sqlite3"
    _face_db(legacy, rng, pipeline="dlib")
    storage.add_photos("new", "Bo", rng.standard_normal((1, 128)), model_id="m", pipeline="x")
    with pytest.raises(DatabaseError, match="pipeline 'dlib', but gallery 'new' holds 'x' ones"):
        import_face_db(storage, legacy, model_id="m", gallery="new")
    other = tmp_path / "other.sqlite3"
    _face_db(other, rng, model_id="custom")
    with pytest.raises(DatabaseError, match="'custom', but cnnkit serve encodes with 'm'"):
        import_face_db(storage, other, model_id="m")
    x = rng.standard_normal((1, 128))
    storage.add_photos("g", "Cy", x, model_id="m", pipeline=DEFAULT_PIPELINE)
    with pytest.raises(DatabaseError, match="gallery 'g' holds descriptors of encoder 'm'"):
        import_face_db(storage, other, gallery="g")
    storage.add_photos("old", "Di", x, model_id="m")  # as the service wrote before recording it
    with pytest.raises(DatabaseError, match="pipeline 'dlib', but gallery 'old' holds 'subpixel"):
        import_face_db(storage, legacy, gallery="old")
    assert storage.total_persons() == 3  # nothing written
    empty = tmp_path / "empty.sqlite3"
    Gallery(empty).close()
    with pytest.raises(DatabaseError, match="nothing to import"):
        import_face_db(storage, empty)


def test_start_up_notice(storage, rng, tmp_path: Path, monkeypatch) -> None:
    faces = tmp_path / "faces.sqlite3"
    monkeypatch.setenv("CNNKIT_FACE_DB", str(faces))
    assert import_notice(storage) is None  # no face database
    _face_db(faces, rng)
    notice = import_notice(storage, "serve.db")
    assert notice is not None and "\n" not in notice
    assert f"{faces} holds 2 persons" in notice and notice.endswith(
        "cnnkit serve import --db serve.db"
    )
    import_face_db(storage, model_id="m")  # the default face database: $CNNKIT_FACE_DB
    assert import_notice(storage) is None  # the service holds persons now


@pytest.mark.slow
def test_enroll_import_identify_through_a_running_server(tmp_path: Path, monkeypatch) -> None:
    """``cnnkit face enroll --db X``; a server on an empty Y with two workers says once how to
    import X and prints its sign-in URL once; ``cnnkit serve import X --db Y`` while it runs;
    the person is identified through the API."""
    import time

    import httpx

    from tests.face import shipped
    from tests.serve.server import cnnkit, make_key, start_server

    faces, serve_db = tmp_path / "faces.sqlite3", str(tmp_path / "serve.sqlite3")
    photo = tmp_path / "grace.png"
    shipped.grace().save(photo)
    cnnkit("face", "enroll", "Grace Hopper", str(photo), "--db", str(faces))
    monkeypatch.setenv("CNNKIT_FACE_DB", str(faces))  # the CLI's default face database
    key = make_key(serve_db, "query")
    server = start_server(serve_db, tmp_path / "logs", "--workers", "2")
    try:
        done = cnnkit("serve", "import", str(faces), "--db", serve_db)
        assert "1 new" in done.stdout and "1 photos added" in done.stdout
        again = cnnkit("serve", "import", str(faces), "--db", serve_db)
        assert "0 photos added, 1 already there" in again.stdout
        found: list[str] = []
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as api:
            while len(found) < 4 and time.monotonic() < deadline:  # both workers, in turn
                r = api.post(
                    "/identify",
                    files={"file": ("g.png", photo.read_bytes())},
                    headers={"X-API-Key": key},
                )
                assert r.status_code == 200, r.text
                names = [f["name"] for f in r.json()["faces"]]
                found = found + names if names == ["Grace Hopper"] else []
        assert found == ["Grace Hopper"] * 4
        while server.log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline + 60, server.log.read_text()
            time.sleep(0.2)
        log = server.log.read_text()
        assert log.count("cnnkit serve: open http://") == 1, log  # not once per worker
        assert (
            log.count("the service's database is empty") == 1
            and f"{faces} holds 1 person enrolled" in log
        )
    finally:
        server.stop()


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    from tests.serve.server import cnnkit

    missing, serve_db = tmp_path / "none.sqlite3", str(tmp_path / "serve.sqlite3")
    done = cnnkit("serve", "import", str(missing), "--db", serve_db, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {missing}: no face database here (enroll someone")
    assert not missing.exists()  # read-only: nothing created
    assert "Examples:" in cnnkit("serve", "import", "--help").stdout


def test_an_empty_gallery_takes_the_face_databases_pipeline(storage, rng, tmp_path: Path) -> None:
    """The service records each gallery's pipeline at its first photo; an imported database
    made the old way keeps working: its gallery records that pipeline, and photos of another
    pipeline are refused."""
    legacy = tmp_path / "legacy.sqlite3"
    _face_db(legacy, rng, pipeline="dlib")
    import_face_db(storage, legacy, model_id="m", gallery="old")
    assert storage.get_meta("old")["pipeline"] == "dlib"
    with pytest.raises(DatabaseError, match="pipeline 'dlib', not 'subpixel"):
        storage.add_photos(
            "old", "Ed", rng.standard_normal((1, 128)), model_id="m", pipeline=DEFAULT_PIPELINE
        )
    storage.add_photos("old", "Ed", rng.standard_normal((1, 128)), model_id="m", pipeline="dlib")
    assert storage.find_person("old", "Ed").photos == 1
