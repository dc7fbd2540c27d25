"""Alignment: byte-identical to dlib.get_face_chip, including large faces (pyramid_down)."""

from __future__ import annotations

import dlib  # the reference implementation (cnnkit[face] depends on dlib-bin)
import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import ShapeError
from cnnkit.face import align, detect, landmarks, load_image
from cnnkit.face.alignment import face_chip_details, pyramid_down
from cnnkit.face.detection import box_area
from cnnkit.face.video import iou
from cnnkit.io import sample_path


def _dlib_chip(img: np.ndarray, marks: np.ndarray, size: int = 150, padding: float = 0.25):
    h, w = img.shape[:2]
    parts = [dlib.point(int(x), int(y)) for x, y in marks]
    shape = dlib.full_object_detection(dlib.rectangle(0, 0, w - 1, h - 1), parts)
    return dlib.get_face_chip(img, shape, size=size, padding=padding)


@pytest.fixture(scope="module")
def shipped() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(image, landmarks of its first face) for the two shipped faces."""
    out = {}
    for name in ("grace_hopper", "astronaut"):
        img = load_image(sample_path(name))
        box = detect(img, 1)[0]
        out[name] = (img, landmarks(img, box))
    return out


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut"])
def test_chip_is_byte_identical_to_dlib(shipped, name):
    img, marks = shipped[name]
    chip = align(img, marks)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    np.testing.assert_array_equal(chip, _dlib_chip(img, marks))


@pytest.mark.parametrize("factor", [3, 4])
def test_large_face_uses_the_pyramid_like_dlib(shipped, factor):
    img, marks = shipped["grace_hopper"]
    h, w = img.shape[:2]
    big = np.asarray(Image.fromarray(img).resize((w * factor, h * factor), Image.BILINEAR))
    big_marks = marks * factor
    details = face_chip_details(big_marks)
    width = details.rect[2] - details.rect[0] + 1
    assert width > 2 * 150  # the face is more than twice the chip: pyramid_down runs
    np.testing.assert_array_equal(align(big, big_marks), _dlib_chip(big, big_marks))


def test_rotated_face_at_the_border_and_other_sizes(shipped):
    img, marks = shipped["astronaut"]
    rotated = np.asarray(Image.fromarray(img).rotate(25, resample=Image.BILINEAR))
    box = detect(rotated, 1)
    rot_marks = landmarks(rotated, box[0]) if box else marks
    np.testing.assert_array_equal(align(rotated, rot_marks), _dlib_chip(rotated, rot_marks))
    # Crop so the face touches the image edge: outside pixels are black, as in dlib.
    x0 = int(marks[:, 0].mean())
    crop = np.ascontiguousarray(img[:, x0 - 10 :])
    crop_marks = marks - [x0 - 10, 0]
    np.testing.assert_array_equal(align(crop, crop_marks), _dlib_chip(crop, crop_marks))
    chip = align(img, marks, size=80, padding=0.4)
    np.testing.assert_array_equal(chip, _dlib_chip(img, marks, 80, 0.4))


def test_pyramid_down_matches_dlib(rng):
    img = rng.integers(0, 256, size=(37, 52, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pyramid_down(img), dlib.pyramid_down(2)(img))


def test_bad_inputs_are_shape_errors(shipped):
    img, marks = shipped["grace_hopper"]
    with pytest.raises(ShapeError, match=r"5 landmarks"):
        align(img, marks[:4])
    with pytest.raises(ShapeError, match=r"uint8"):
        align(img.astype(np.float32), marks)


def test_align_faces_one_chip_per_padding_like_dlib(shipped):
    from cnnkit.face.alignment import align_faces

    img, _ = shipped["grace_hopper"]
    boxes = detect(img, 1)[:1]
    marks, chips = align_faces(img, boxes, 0, (0.25, 0.2, 0.3))
    assert chips.shape == (3, 150, 150, 3)
    for chip, padding in zip(chips, (0.25, 0.2, 0.3), strict=True):
        np.testing.assert_array_equal(chip, _dlib_chip(img, marks[0], padding=padding))
    assert not np.array_equal(chips[1], chips[2])
    with pytest.raises(ShapeError, match="at least one view"):
        align_faces(img, boxes, 0, ())


def test_68_point_view_is_dlibs_own_chip(shipped):
    """The 68-point view: dlib's 68-point predictor from the 5 landmarks' HOG-style box, and
    dlib's get_face_chip, byte for byte."""
    from cnnkit.face.alignment import View, align_faces
    from cnnkit.face.detection import hog_box_from_landmarks
    from cnnkit.face.models_files import model_file

    img, _ = shipped["astronaut"]
    boxes = detect(img, 1)[:1]
    marks, chips = align_faces(img, boxes, 1, (View(0.25), View(0.3, points=68)))
    assert chips.shape == (2, 150, 150, 3)
    top, right, bottom, left = hog_box_from_landmarks(marks[0])
    sp68 = dlib.shape_predictor(str(model_file("shape_predictor_68")))
    shape = sp68(img, dlib.rectangle(left, top, right, bottom))
    np.testing.assert_array_equal(chips[1], dlib.get_face_chip(img, shape, size=150, padding=0.3))
    assert not np.array_equal(chips[0], chips[1])
    with pytest.raises(ShapeError, match="5 or 68"):
        align_faces(img, boxes, 0, (View(points=7),))


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut"])
def test_hog_box_from_landmarks_is_where_hog_puts_it(shipped, name):
    """The box the 68-point predictor starts from is HOG's box, from the landmarks alone: the
    same from the CNN detector's box (another shape and place) as from HOG's."""
    from cnnkit.face.detection import hog_box_from_landmarks, landmarks

    img, _ = shipped[name]
    hog = detect(img, 1, "hog")
    cnn = detect(img, 1, "cnn")
    h = max(hog, key=box_area)
    c = max(cnn, key=lambda b: iou(b, h))
    from_hog = hog_box_from_landmarks(landmarks(img, h, 1))
    from_cnn = hog_box_from_landmarks(landmarks(img, c, 1))
    assert iou(from_hog, h) > 0.6 and iou(from_cnn, h) > 0.6  # LFW-dev: median 0.83
    assert iou(from_hog, from_cnn) > 0.9  # the detector hardly matters any more
    with pytest.raises(ShapeError, match="5 landmarks"):
        hog_box_from_landmarks(np.zeros((4, 2)))
