"""The use-case layer on a real Gallery with the real pipeline: enroll's per-photo report,
verify_photo, identify_image's unknown/candidates, detect_faces, and Gallery's PersonStore
additions (nearest, names_with_hash) against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnkit import face
from cnnkit.errors import NotFoundError
from cnnkit.face.descriptors import get_pipeline
from cnnkit.face.gallery import Gallery
from cnnkit.face.index import IndexConfig
from cnnkit.face.recognize import NoFaceError, SeveralFacesError
from cnnkit.face.store import PersonStore
from cnnkit.io import file_sha256
from tests.face.shipped import write_photos

MODEL = "test-model"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def encoder():
    return face.default_encoder()


def test_gallery_is_a_person_store(tmp_path: Path) -> None:
    with Gallery(tmp_path / "a.db") as db:
        assert isinstance(db, PersonStore)
    assert face.Person is __import__("cnnkit.face.store", fromlist=["Person"]).Person


@pytest.mark.parametrize("exact_max", [100_000, 10])  # exact matmul, then faiss
def test_nearest_k_distinct_persons_against_brute_force(tmp_path: Path, rng, exact_max) -> None:
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    names = [f"p{i % 12}" for i in range(60)]  # 12 persons, 5 descriptors each
    cfg = IndexConfig(exact_max=exact_max, nlist=2, nprobe=2)
    with Gallery(tmp_path / "a.db", index_config=cfg) as db:
        for name in sorted(set(names)):
            rows = [i for i, n in enumerate(names) if n == name]
            db.add(name, vectors[rows], model_id=MODEL)
        q = rng.normal(size=(4, 16)).astype(np.float32)
        got = db.nearest(q, k=3)
        assert db.nearest(q[0], k=50)[0].__len__() == 12  # every person, once
        assert db.nearest(np.zeros((0, 16), np.float32), k=3) == []
    d = np.linalg.norm(q[:, None] - vectors[None], axis=2)  # (4, 60)
    for row, matches in zip(d, got, strict=True):
        per_person = {n: row[[i for i, m in enumerate(names) if m == n]].min() for n in set(names)}
        want = sorted(per_person, key=per_person.__getitem__)[:3]
        assert [m.name for m in matches] == want
        np.testing.assert_allclose(
            [m.distance for m in matches], [per_person[n] for n in want], rtol=1e-4
        )


def test_names_with_hash(tmp_path: Path, rng) -> None:
    with Gallery(tmp_path / "a.db") as db:
        db.add("Bo", rng.normal(size=(1, 4)), model_id=MODEL, sha256s=["h1"])
        db.add("Al", rng.normal(size=(2, 4)), model_id=MODEL, sha256s=["h1", "h2"])
        assert db.names_with_hash("h1") == ["Al", "Bo"]
        assert db.names_with_hash("h2") == ["Al"] and db.names_with_hash("zz") == []
        assert db.nearest(rng.normal(size=4), k=1)[0][0].name in {"Al", "Bo"}
    with Gallery(tmp_path / "empty.db") as db:
        assert db.nearest(rng.normal(size=(2, 4)), k=3) == [[], []]


def test_enroll_report_verify_identify(tmp_path: Path, photos, encoder) -> None:
    with Gallery(tmp_path / "a.db") as db:
        report = face.enroll(db, "Grace", [photos["grace"]], encoder=encoder, upsample=0)
        (p,) = report.photos
        assert report.added == 1 and report.total == 1 and p.added and p.faces == 1
        assert p.min_distance is None and p.sha256 == file_sha256(photos["grace"])
        assert p.source == "grace.png" and p.enrolled_as == ()
        # a second photo: distance report against the first; the same file again: skipped
        report = face.enroll(
            db, "Grace", [photos["grace_flip"], photos["grace"]], encoder=encoder, upsample=0
        )
        new, again = report.photos
        assert new.added and new.min_distance is not None and new.min_distance < 0.4
        assert not new.far and new.mean_distance == pytest.approx(new.min_distance)
        assert not again.added and again.reason == "already enrolled"
        assert report.added == 1 and report.total == 2
        # the same file under another name: stored, and the report names who has it
        report = face.enroll(db, "Twin", [photos["grace"]], encoder=encoder, upsample=0)
        assert report.photos[0].added and report.photos[0].enrolled_as == ("Grace",)
        db.remove("Twin")
        # no face / several faces: raise when strict (nothing stored), reported when not
        before = db.dump()
        with pytest.raises(NoFaceError):
            face.enroll(db, "Ada", [photos["grace_bright"], photos["noface"]], encoder=encoder)
        with pytest.raises(SeveralFacesError):
            face.enroll(db, "Ada", [photos["two"]], encoder=encoder, upsample=0)
        assert db.dump() == before
        image = face.load_image(photos["astro"])  # an array: no file name, no hash
        report = face.enroll(
            db,
            "Ada",
            [photos["noface"], photos["two"], image],
            encoder=encoder,
            strict=False,
            upsample=0,
        )
        reasons = [(p.faces, p.reason, p.added) for p in report.photos]
        assert reasons[0] == (0, "no face", False) and reasons[1][1:] == ("several faces", False)
        assert reasons[1][0] == len(face.detect_faces(photos["two"], 0)) >= 2
        assert report.photos[2].added and report.photos[2].sha256 is None
        assert report.total == 1

        v = face.verify_photo(db, photos["grace_rot"], "Grace", encoder=encoder, upsample=0)
        assert v.match and v.faces == 1 and v.tau == 0.6 and v.distance < 0.6
        # The database records the default pipeline (sub-pixel landmarks + flip, and the
        # 68-point chip), and queries use it.
        assert db.pipeline == face.DEFAULT_PIPELINE == "subpixel+flip+68+facenet"
        query = face.faces(  # and the default detector (auto: the CNN on these small photos)
            face.load_image(photos["grace_rot"]),
            0,
            encoder,
            1,
            flip=True,
            detector="auto",
            views=get_pipeline(None).views,
        )
        assert v.distance == pytest.approx(db.distance_to(query[0].embedding, "Grace"))
        v = face.verify_photo(db, photos["two"], "Ada", encoder=encoder, upsample=0, tolerance=0.3)
        assert v.faces == reasons[1][0] and v.tau == 0.3
        with pytest.raises(NotFoundError):  # before the encoder would load
            face.verify_photo(db, photos["grace"], "Nobody", encoder=lambda: pytest.fail("loaded"))
        with pytest.raises(NoFaceError):
            face.verify_photo(db, photos["noface"], "Grace", encoder=encoder)

        found = face.identify_image(db, photos["two"], encoder=encoder, upsample=0, k=2)
        assert {"Ada", "Grace"} <= {f.name for f in found} and len(found) == v.faces
        for f in found:
            assert len(f.candidates) == 2 and f.candidates[0].distance == f.distance
            assert f.name in (f.candidates[0].name, None)
            assert f.candidates[0].distance == f.distance <= f.candidates[1].distance
        unknown = face.identify_image(
            db, photos["two"], encoder=encoder, upsample=0, tolerance=1e-6
        )
        # within tau only the face cut from grace.png itself (distance ~0): the rest is unknown
        assert [f.name for f in unknown] == [f.name if f.distance <= 1e-6 else None for f in found]
        assert [f.name for f in unknown].count(None) >= len(found) - 1
        assert face.identify_image(db, photos["noface"], encoder=encoder, upsample=0) == []
        assert face.detect_faces(photos["two"], 0) == [f.box for f in found]
