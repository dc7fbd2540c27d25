"""The identification tau in the service: stored per gallery (storage, ``cnnkit serve
calibrate``), used by identify with its score exactly as ``cnnkit face identify`` does, shown by
``/info``, and warned about once when the gallery outgrows it. Both backends."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from cnnkit.errors import CnnkitError
from cnnkit.face.gallery import Gallery
from cnnkit.face.gallery_meta import IdentificationTau
from cnnkit.serve.storage import open_storage
from cnnkit.serve.storage.base import META_CHANGED, ModelMismatch, read_identification
from tests.face.shipped import write_person_folder
from tests.serve.server import make_key


# -- storage ---------------------------------------------------------------------------------
def test_storage_keeps_identification_tau_in_one_audited_write(storage) -> None:
    assert read_identification(storage.get_meta("g")) is None
    seq = storage.last_seq()
    ident = IdentificationTau(0.42, 0.001, 7, "tnorm")
    storage.set_identification_tau("g", ident, model_id="m", dim=128, actor=None)
    meta = storage.get_meta("g")
    assert read_identification(meta) == ident
    assert meta["model_id"] == "m" and meta["dim"] == "128" and "tau" not in meta
    assert [c.kind for c in storage.changes_since(seq)] == [META_CHANGED]
    assert storage.audit_log("g")[0].action == "gallery.tau_identification"
    storage.set_tau("g", 0.55)  # the pair tau is another key: both are kept
    assert read_identification(storage.get_meta("g")) == ident
    assert float(storage.get_meta("g")["tau"]) == 0.55

    before = storage.get_meta("g")
    for bad in (
        IdentificationTau(0.4, 0.001, 7, "znorm"),
        IdentificationTau(-1.0, 0.001, 7, "none"),
        IdentificationTau(0.4, 1.5, 7, "none"),
        IdentificationTau(0.4, 0.001, 0, "none"),
    ):
        with pytest.raises(CnnkitError):
            storage.set_identification_tau("g", bad)
    with pytest.raises(ModelMismatch):
        storage.set_identification_tau("g", ident, model_id="other", dim=128)
    assert storage.get_meta("g") == before  # refused writes change nothing


# -- through a real server -------------------------------------------------------------------
def _identify(api: httpx.Client, key: dict, photo: bytes) -> dict:
    r = api.post("/identify", files={"file": ("q.png", photo)}, headers=key)
    assert r.status_code == 200, r.text
    return r.json()


def _until(check, timeout: float = 5.0):
    """Poll ``check()`` until it returns a truthy value (the replica follows the feed)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_identify_uses_the_identification_tau_and_its_score(
    api: httpx.Client, server, serve_db: str, photos: dict[str, bytes]
) -> None:
    gallery = f"calib-{time.monotonic_ns()}"
    admin = {"X-API-Key": make_key(serve_db, "admin", gallery=gallery)}
    for name, photo in (("Grace", "grace"), ("Astro", "astro")):
        pid = api.post("/persons", json={"name": name}, headers=admin).json()["id"]
        r = api.post(
            f"/persons/{pid}/photos",
            params={"largest": "true"},
            files={"file": ("p.png", photos[photo])},
            headers=admin,
        )
        assert r.status_code == 201, r.text
    first = _identify(api, admin, photos["grace_flip"])
    assert (first["tau"], first["tau_source"], first["score"]) == (0.6, "default", "none")
    (face,) = first["faces"]
    d = face["distance"]
    assert face["name"] == "Grace" and face["score"] == pytest.approx(d) and 0 < d < 0.6

    # A 1:N tau stricter than this distance (for a gallery of 1: the gallery has outgrown it):
    # identify now says "unknown", while verify, at the pair tau, still says Grace.
    storage = open_storage(serve_db)
    try:
        storage.set_identification_tau(gallery, IdentificationTau(d / 2, 0.001, 1, "none"))
    finally:
        storage.close()
    strict = _until(lambda: (r := _identify(api, admin, photos["grace_flip"]))["tau"] < 0.6 and r)
    assert strict["tau"] == pytest.approx(d / 2) and strict["tau_source"] == "identification"
    assert strict["faces"][0]["name"] == "unknown"
    assert "2 persons" in strict["warning"] and "calibrated on 1" in strict["warning"]
    v = api.post(
        "/verify", files={"file": ("q.png", photos["grace_flip"])}, data={"person": "Grace"},
        headers=admin,
    ).json()  # fmt: skip
    assert v["match"] is True and v["tau"] == 0.6
    info = api.get("/info", headers=admin).json()
    assert info["tau"] == 0.6 and info["tau_calibrated"] is False
    assert info["tau_identification"] == pytest.approx(d / 2)
    assert info["tau_identification_gallery_size"] == 1 and info["tau_identification_fpir"] == 0.001
    assert info["tau_identification_score"] == "none" and info["identify_tau_source"] == (
        "identification"
    )
    assert info["persons"] == 2 and "calibrated on 1" in info["warning"]
    _identify(api, admin, photos["grace"])
    logged = _until(lambda: server.log.read_text().count(f"gallery {gallery!r}: the gallery has"))
    assert logged == 1  # three identify calls past the calibrated size, one log line

    # The other way round, on T-normed scores: a strict pair tau, a T-norm 1:N tau of 0.9.
    # Grace's score is d / (distance to the one other person), far below 0.9: she is named
    # by identify, while verify rejects her at the pair tau.
    storage = open_storage(serve_db)
    try:
        storage.set_tau(gallery, d / 2)
        storage.set_identification_tau(gallery, IdentificationTau(0.9, 0.01, 2, "tnorm"))
    finally:
        storage.close()
    normed = _until(lambda: (r := _identify(api, admin, photos["grace_flip"]))["tau"] == 0.9 and r)
    assert normed["score"] == "tnorm" and normed["warning"] is None
    (face,) = normed["faces"]
    assert face["name"] == "Grace"
    assert face["score"] == pytest.approx(face["distance"] / face["candidates"][0]["distance"])
    v = api.post(
        "/verify", files={"file": ("q.png", photos["grace_flip"])}, data={"person": "Grace"},
        headers=admin,
    ).json()  # fmt: skip
    assert v["match"] is False and v["tau"] == pytest.approx(d / 2)
    info = api.get("/info", headers=admin).json()
    assert info["tau"] == pytest.approx(d / 2) and info["tau_calibrated"] is True
    assert info["tau_identification_score"] == "tnorm" and info["warning"] is None

    # S-norm: d / sqrt(probe cohort x Grace's own cohort), the latter her distance to Astro,
    # computed by the server on the fly from the gallery it holds.
    storage = open_storage(serve_db)
    try:
        storage.set_identification_tau(gallery, IdentificationTau(0.9, 0.01, 2, "snorm"))
        held = storage.load_vectors(gallery)
    finally:
        storage.close()
    by_name = {held.names[int(p)]: v for p, v in zip(held.person_ids, held.vectors, strict=True)}
    grace_astro = float(np.linalg.norm(by_name["Grace"] - by_name["Astro"]))
    snormed = _until(
        lambda: (r := _identify(api, admin, photos["grace_flip"]))["score"] == "snorm" and r
    )
    (face,) = snormed["faces"]
    assert face["name"] == "Grace" and face["distance"] == pytest.approx(d, rel=1e-5)
    probe_cohort = face["candidates"][0]["distance"]  # the next nearest: Astro
    expected = d / np.sqrt(probe_cohort * grace_astro)
    assert face["score"] == pytest.approx(expected, rel=1e-4)


# -- cnnkit serve calibrate ------------------------------------------------------------------
@pytest.mark.slow
def test_serve_calibrate_stores_what_face_calibrate_stores(
    storage_url: str, tmp_path: Path, capsys
) -> None:
    import json

    from cnnkit.cli.main import main
    from cnnkit.serve.replica import GalleryStore, ReplicaIndex

    folder = write_person_folder(tmp_path / "people")
    common = ["calibrate", "--for", "identification", "--fpir", "0.001", "--images", str(folder)]
    common += ["--upsample", "0", "--norm", "none"]
    assert main(["serve", *common, "--gallery", "door", "--db", storage_url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    faces_db = tmp_path / "faces.sqlite3"
    assert main(["face", *common, "--db", str(faces_db)]) == 0
    with Gallery(faces_db, create=False) as g:
        expected = g.identification_tau
    assert expected is not None and expected.gallery_size == 1
    storage = open_storage(storage_url)
    try:
        store = GalleryStore(ReplicaIndex(storage), "door")
        assert store.identification_tau == expected  # the same use case, the same tau
        assert store.tau is None and out["tau_identification"] == pytest.approx(expected.tau)
        assert storage.get_meta("door")["model_id"].startswith("dlib")
        assert read_identification(storage.get_meta("other")) is None
    finally:
        storage.close()
    # --for verification needs --pairs: a one-line error, nothing stored
    assert main(["serve", "calibrate", "--for", "verification", "--images", str(folder),
                 "--db", storage_url]) == 2  # fmt: skip
    assert "--pairs is required" in capsys.readouterr().err
