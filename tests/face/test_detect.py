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


def _enlarged_predictor(image: np.ndarray, box: tuple, margin: int | None) -> np.ndarray:
    """Reference sub-pixel landmarks: dlib's predictor on the image (or the box with ``margin``
    px around it, the previous implementation's crop) enlarged 2x, points mapped back."""
    top, right, bottom, left = box
    h, w = image.shape[:2]
    m = max(h, w) if margin is None else margin
    y0, x0 = max(top - m, 0), max(left - m, 0)
    y1, x1 = min(bottom + m + 1, h), min(right + m + 1, w)
    region = Image.fromarray(image[y0:y1, x0:x1])
    big = np.asarray(
        region.resize((2 * region.width, 2 * region.height), Image.Resampling.BILINEAR)
    )
    rect = dlib.rectangle(2 * (left - x0), 2 * (top - y0), 2 * (right - x0), 2 * (bottom - y0))
    parts = detect_mod._shape_predictor()(big, rect).parts()
    return (np.array([[p.x, p.y] for p in parts], float) + 0.5) / 2 - 0.5 + [x0, y0]


def _shipped_faces() -> dict[str, tuple[np.ndarray, tuple]]:
    from tests.face.shipped import astronaut, grace, variants

    found = {"astronaut": np.asarray(astronaut())}
    found.update({k: np.asarray(v) for k, v in [("grace", grace()), *variants(grace()).items()]})
    return {k: (img, detect(img, 1)[0]) for k, img in found.items()}


def test_subpixel_landmarks_read_only_near_the_box_on_shipped_faces():
    # the margin enlarged with the face (half its box side) gives the points of the whole image
    # enlarged, bit for bit, as the previous margin (a whole box side) did
    for name, (image, box) in _shipped_faces().items():
        expected = _enlarged_predictor(image, box, None)
        np.testing.assert_array_equal(landmarks(image, box, upsample=1), expected, err_msg=name)


def test_subpixel_landmarks_of_a_large_face_enlarge_a_bounded_region(monkeypatch):
    from tests.face.shipped import GRACE_BOX, PHONE_AT, PHONE_SCALE, phone_photo

    image = np.asarray(phone_photo())  # 4000x3000, the face's box ~710 px
    x0, y0 = PHONE_AT
    offsets = (y0, x0, y0, x0)
    box = tuple(round(v * PHONE_SCALE) + o for v, o in zip(GRACE_BOX, offsets, strict=True))
    side = max(box[2] - box[0], box[1] - box[3])
    expected = _enlarged_predictor(image, box, side)  # the previous implementation
    predictor, seen = detect_mod._shape_predictor(), []

    def spy(img, rect):
        seen.append(img.shape)
        return predictor(img, rect)

    monkeypatch.setattr(detect_mod, "_shape_predictor", lambda: spy)
    np.testing.assert_array_equal(landmarks(image, box, upsample=1), expected)
    # the box and half its side around it, enlarged 2x (the previous crop: 3 box sides)
    assert max(seen[0][:2]) <= 2 * (2 * side + 7), (seen, side)
