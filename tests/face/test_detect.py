"""Detection, landmarks and the whole pipeline; loading images and the optional dependencies."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import dlib  # the reference implementation (cnnkit[face] depends on dlib-bin)
import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import DependencyError, ImageReadError, NotFoundError, ShapeError
from cnnkit.face import detect, faces, landmarks, load_image, model_file
from cnnkit.io import sample_path

detect_mod = importlib.import_module("cnnkit.face.detection")


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    return load_image(sample_path("grace_hopper"))


def test_boxes_and_landmarks_equal_dlibs(grace):
    rects = detect_mod._hog_detector()(grace, 0)  # the same dlib detector, constructed once
    expected = [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]
    boxes = detect(grace, upsample=0)
    assert boxes == expected and len(boxes) == 1
    sp = dlib.shape_predictor(str(model_file("shape_predictor_5")))
    parts = sp(grace, rects[0]).parts()
    np.testing.assert_array_equal(landmarks(grace, boxes[0]), [[p.x, p.y] for p in parts])


def test_boxes_are_clipped_to_the_image(grace):
    top, right, bottom, left = detect(grace, 0)[0]
    crop = np.ascontiguousarray(grace[top + 30 :, left + 40 :])  # the face runs off the top-left
    for t, r, b, l in detect(crop, 1):
        assert 0 <= t < b <= crop.shape[0] and 0 <= l < r <= crop.shape[1]


def test_faces_runs_the_whole_pipeline(grace):
    (found,) = faces(grace)
    assert found.box == detect(grace)[0]
    assert found.chip.shape == (150, 150, 3) and found.embedding.shape == (128,)
    assert found.landmarks.shape == (5, 2)
    assert faces(np.zeros((120, 100, 3), np.uint8)) == []


def test_load_image_converts_modes(tmp_path, grace):
    Image.fromarray(grace).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(grace).convert("P").save(tmp_path / "pal.png")
    for name in ("cmyk.jpg", "pal.png"):
        img = load_image(tmp_path / name)
        assert img.dtype == np.uint8 and img.shape == grace.shape


def test_non_image_and_bad_arrays(tmp_path, grace):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="not a readable image"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(ShapeError, match="uint8"):
        detect(grace.astype(np.float32))


def test_missing_models_package_says_how_to_fix(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "face_recognition_models" else real(name, *a),
    )
    with pytest.raises(DependencyError, match="pip install face_recognition_models"):
        model_file("resnet_v1")
    monkeypatch.undo()
    with pytest.raises(NotFoundError, match="unknown face model"):
        model_file("nope")


def test_missing_dlib_says_how_to_fix(monkeypatch, grace):
    monkeypatch.setitem(sys.modules, "dlib", None)
    detect_mod._hog_detector.cache_clear()
    try:
        with pytest.raises(DependencyError, match="pip install dlib-bin"):
            detect(grace)
    finally:
        monkeypatch.undo()
        detect_mod._hog_detector.cache_clear()


def test_subpixel_landmarks_equal_the_predictor_on_the_enlarged_image(grace):
    box = detect(grace, 0)[0]
    top, right, bottom, left = box
    size = (2 * grace.shape[1], 2 * grace.shape[0])
    big = np.asarray(Image.fromarray(grace).resize(size, Image.Resampling.BILINEAR))
    parts = detect_mod._shape_predictor()(
        big, dlib.rectangle(2 * left, 2 * top, 2 * right, 2 * bottom)
    ).parts()
    expected = (np.array([[p.x, p.y] for p in parts], float) + 0.5) / 2 - 0.5
    marks = landmarks(grace, box, upsample=1)
    np.testing.assert_array_equal(marks, expected)
    assert np.abs(marks - landmarks(grace, box)).max() < 6  # the same points, finer
    with pytest.raises(ValueError, match="upsample"):
        landmarks(grace, box, upsample=-1)
