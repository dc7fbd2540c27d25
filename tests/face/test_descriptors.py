"""Descriptor pipelines: the default (sub-pixel landmarks + flip) is recorded in a new database;
a database from before the key (dlib's pipeline) keeps working with its own pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnkit import face
from cnnkit.errors import CnnkitError, DatabaseError, ShapeError
from cnnkit.face.alignment import View
from cnnkit.face.descriptors import get_pipeline, with_flip
from cnnkit.face.pipeline import FUSION_WEIGHT
from tests.face.shipped import write_photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_photos(tmp_path_factory.mktemp("photos"))


def test_pipeline_names() -> None:
    assert get_pipeline(None).name == face.DEFAULT_PIPELINE == "subpixel+flip+68+facenet"
    assert (get_pipeline("dlib").landmark_upsample, get_pipeline("dlib").flip) == (0, False)
    assert with_flip("dlib", True) == "flip" and with_flip("subpixel", True) == "subpixel+flip"
    assert with_flip("dlib", False) == "dlib"
    with pytest.raises(CnnkitError, match="unknown descriptor pipeline"):
        get_pipeline("best")


def test_flip_average_is_the_mean_of_both_passes(photos) -> None:
    enc = face.default_encoder()
    img = face.load_image(photos["grace"])
    plain = face.faces(img, 0, enc, 1)[0]
    both = face.faces(img, 0, enc, 1, flip=True)[0]
    mirror = enc.embed(np.ascontiguousarray(plain.chip[None, :, ::-1]))[0]
    np.testing.assert_allclose(both.embedding, (plain.embedding + mirror) / 2, atol=1e-5)
    # The mirrored photo's descriptor is nearer the original's with flip averaging.
    img_m = face.load_image(photos["grace_flip"])
    d_plain = face.distance(plain.embedding, face.faces(img_m, 0, enc, 1)[0].embedding)
    d_flip = face.distance(both.embedding, face.faces(img_m, 0, enc, 1, flip=True)[0].embedding)
    assert d_flip < d_plain


def test_legacy_database_keeps_its_pipeline(tmp_path: Path, photos) -> None:
    enc = face.default_encoder()
    img = face.load_image(photos["grace"])
    old = face.faces(img, 0, enc)[0].embedding  # dlib's pipeline, as databases were made
    with face.Gallery(tmp_path / "old.sqlite3") as db:
        db.add("Grace", old[None], model_id=enc.model_id)  # no pipeline: an old database
        assert db.pipeline == "dlib" and db.info().pipeline_recorded is False
        v = face.verify_photo(db, photos["grace"], "Grace", encoder=enc, upsample=0, detector="hog")
        assert v.distance < 1e-5  # the query was made the old way too (HOG's box)
        v = face.verify_photo(db, photos["grace"], "Grace", encoder=enc, upsample=0)
        assert v.match and 1e-5 < v.distance < 0.15  # the default detector's box: close
        report = face.enroll(db, "Grace", [photos["grace_rot"]], encoder=enc, upsample=0)
        assert report.added == 1 and db.pipeline == "dlib"
        with pytest.raises(DatabaseError, match="re-enroll"):
            db.add("Ada", old[None], model_id=enc.model_id, pipeline="subpixel+flip")
        with pytest.raises(DatabaseError, match="new --db"):  # before any image work
            face.enroll(db, "Ada", [photos["astro"]], encoder=enc, pipeline="subpixel+flip")
    with face.Gallery(tmp_path / "chosen.sqlite3") as db:  # a new database, dlib's pipeline
        face.enroll(
            db, "Grace", [photos["grace"]], encoder=enc, upsample=0, pipeline="dlib", detector="hog"
        )
        assert db.pipeline == "dlib" and db.info().pipeline_recorded
        np.testing.assert_allclose(db.vectors_of("Grace")[0], old, atol=1e-6)
    with face.Gallery(tmp_path / "new.sqlite3") as db:
        face.enroll(db, "Grace", [photos["grace"]], encoder=enc, upsample=0)
        assert db.pipeline == face.DEFAULT_PIPELINE and db.info().pipeline_recorded
        new = db.vectors_of("Grace")[0]
        assert new.shape == (256,)  # the fused default: a dlib part and a FaceNet part
        with pytest.raises(ShapeError, match="256"):
            face.distance(new, old)  # descriptors of two pipelines are not comparable
        dlib_part = new[:128] / np.sqrt(1 - FUSION_WEIGHT)
        assert face.distance(dlib_part, old) > 1e-3  # another pipeline: other descriptors
        v = face.verify_photo(db, photos["grace"], "Grace", encoder=enc, upsample=0)
        assert v.distance < 1e-5


def test_export_import_carry_the_pipeline(tmp_path: Path) -> None:
    v = np.random.default_rng(0).normal(size=(2, 128)).astype(np.float32)
    with face.Gallery(tmp_path / "new.sqlite3") as db:
        db.add("Ada", v[:1], model_id="m", pipeline="subpixel+flip")
        db.export(tmp_path / "new.npz")
    with face.Gallery(tmp_path / "old.sqlite3") as db:
        db.add("Bob", v[1:], model_id="m")  # an old database: dlib's pipeline
        with pytest.raises(DatabaseError, match="pipeline"):
            db.import_(tmp_path / "new.npz")
        assert [p.name for p in db.persons()] == ["Bob"]
        db.export(tmp_path / "old.npz")
    with face.Gallery(tmp_path / "copy.sqlite3") as db:
        assert db.import_(tmp_path / "new.npz") == 1 and db.pipeline == "subpixel+flip"
    with face.Gallery(tmp_path / "copy2.sqlite3") as db:
        assert db.import_(tmp_path / "old.npz") == 1 and db.pipeline == "dlib"


def test_padding_views_are_averaged_and_recorded(tmp_path: Path, photos) -> None:
    from cnnkit.face.alignment import align
    from cnnkit.face.pipeline import embed_chips
    from cnnkit.face.recognize import find_faces

    p = get_pipeline("subpixel+flip+pad")
    assert (p.landmark_upsample, p.flip) == (1, True)
    assert [(v.points, v.padding) for v in p.views] == [(5, 0.25), (5, 0.2), (5, 0.3)]
    assert with_flip("subpixel+flip+pad", True) == "subpixel+flip+pad"
    assert get_pipeline("subpixel+flip").views == (View(),)
    enc = face.default_encoder()
    img = face.load_image(photos["grace"])
    (f,) = find_faces(img, 0, enc, "subpixel+flip+pad", "hog")
    chips = np.stack([align(img, f.landmarks, padding=v.padding) for v in p.views])
    views = enc.embed(np.concatenate([chips, np.ascontiguousarray(chips[:, :, ::-1])]))
    np.testing.assert_allclose(f.embedding, views.mean(axis=0), atol=1e-5)
    np.testing.assert_array_equal(f.chip, chips[0])
    (g,) = find_faces(img, 0, enc, "subpixel+flip", "hog")
    assert face.distance(f.embedding, g.embedding) > 1e-3  # other views: another descriptor
    with pytest.raises(ShapeError, match="3 views"):
        embed_chips(np.concatenate([chips, chips[:2]]), enc, True, views=3)
    with face.Gallery(tmp_path / "pad.sqlite3") as db:
        face.enroll(
            db, "Grace", [photos["grace"]], encoder=enc, upsample=0, pipeline=p.name, detector="hog"
        )
        assert db.pipeline == "subpixel+flip+pad" and db.info().pipeline_recorded
        np.testing.assert_allclose(db.vectors_of("Grace")[0], f.embedding, atol=1e-5)
        v = face.verify_photo(db, photos["grace"], "Grace", encoder=enc, upsample=0, detector="hog")
        assert v.match and v.distance < 1e-5  # the query is made with the database's pipeline
        rows = list(face.identify_many([photos["grace"]], db, enc, upsample=0, detector="hog"))
        assert [(r[2], r[4]) for r in rows] == [("Grace", None)] and rows[0][3] < 1e-5


def test_68_point_view_is_averaged_with_the_5_point_one(tmp_path: Path, photos) -> None:
    from cnnkit.face.alignment import align, chip_details_68, extract_chip
    from cnnkit.face.detection import hog_box_from_landmarks, landmarks68
    from cnnkit.face.recognize import find_faces

    p = get_pipeline("subpixel+flip+68")
    assert [(v.points, v.padding) for v in p.views] == [(5, 0.25), (68, 0.25)]
    enc = face.default_encoder()
    img = face.load_image(photos["grace"])
    (f,) = find_faces(img, 0, enc, p.name, "hog")
    marks68 = landmarks68(img, hog_box_from_landmarks(f.landmarks))
    chip68 = extract_chip(img, chip_details_68(marks68))
    chips = np.stack([align(img, f.landmarks), chip68])
    views = enc.embed(np.concatenate([chips, np.ascontiguousarray(chips[:, :, ::-1])]))
    np.testing.assert_allclose(f.embedding, views.mean(axis=0), atol=1e-5)
    (g,) = find_faces(img, 0, enc, "subpixel+flip", "hog")
    assert 1e-3 < face.distance(f.embedding, g.embedding) < 0.2  # another, close descriptor
    with face.Gallery(tmp_path / "68.sqlite3") as db:
        face.enroll(db, "Grace", [photos["grace"]], encoder=enc, upsample=0, pipeline=p.name)
        assert db.pipeline == "subpixel+flip+68"
        v = face.verify_photo(db, photos["grace"], "Grace", encoder=enc, upsample=0)
        assert v.match and v.distance < 1e-5  # the query is made with the database's pipeline
