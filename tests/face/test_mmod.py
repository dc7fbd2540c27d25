"""The MMOD CNN face detector read without dlib, against dlib's own ``cnn_face_detection_model_v1``.

Images are small (dlib's detector costs ~0.5 s per 300x300 image upsampled once on this CPU): the
shipped faces downscaled so the face lands on pyramid levels 0, 1 and 2, two faces side by side,
a turned face, and images without faces.
"""

from __future__ import annotations

import logging

import dlib  # the reference implementation
import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.face import detect, model_file
from cnnkit.face.detectors import CNN_AUTO_MAX_PIXELS, detect_with, resolve_detector
from cnnkit.face.dlib_format import DlibFormatError
from cnnkit.face.mmod import MmodDetector, parse_mmod, read_mmod
from cnnkit.face.pyramid import resize_rgb, tiled_layout
from cnnkit.io import sample_path
from tests.face.shipped import astronaut, grace, side_by_side

pytestmark = pytest.mark.slow  # dlib's CNN reference runs: ~5 s of CPU


@pytest.fixture(scope="module")
def reference():
    return dlib.cnn_face_detection_model_v1(str(model_file("mmod_detector")))


@pytest.fixture(scope="module")
def ours() -> MmodDetector:
    return MmodDetector.load()


@pytest.fixture(scope="module")
def expected(reference) -> dict[str, list[tuple[tuple[int, int, int, int], float]]]:
    """dlib's rectangles (left, top, right, bottom) and confidences for each test image."""
    return {
        name: [
            ((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence)
            for d in reference(image, upsample)
        ]
        for name, (image, upsample) in IMAGES.items()
    }


def _scaled(img: Image.Image, scale: float) -> np.ndarray:
    size = (round(img.width * scale), round(img.height * scale))
    return np.asarray(img.resize(size, Image.Resampling.BILINEAR))


def _iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return iw * ih / (area(a) + area(b) - iw * ih)


def _images() -> dict[str, tuple[np.ndarray, int]]:
    """name -> (image, upsample); the grace crop's face is ~164 px, so scale s puts it at
    164 s px: level 0 of the pyramid finds 80 px faces, level 1 96 px, level 2 115 px."""
    g = grace().crop((120, 80, 420, 380))
    a = astronaut().crop((90, 0, 346, 256))  # face ~96 px
    turned = g.rotate(20, resample=Image.Resampling.BILINEAR)
    return {
        "grace_level0": (_scaled(g, 0.5), 0),
        "grace_level1": (_scaled(g, 0.6), 0),
        "grace_level2": (_scaled(g, 0.7), 0),
        "grace_up1": (_scaled(g, 0.25), 1),
        "astronaut_up1": (_scaled(a, 0.45), 1),
        "two_faces": (np.asarray(side_by_side(g.resize((150, 150)), a.resize((230, 230)))), 0),
        "turned": (_scaled(turned, 0.6), 0),
        "brick": (_scaled(Image.open(sample_path("brick")).convert("RGB"), 0.3), 0),
        "noise": (np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8), 1),
        "gray_flat": (np.full((64, 64, 3), 128, np.uint8), 0),
    }


IMAGES = _images()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_detections_equal_dlibs(name, expected, ours):
    image, upsample = IMAGES[name]
    want = expected[name]
    got = ours.detect(image, upsample)
    assert len(got) == len(want), (got, want)
    for g, (rect, conf) in zip(got, want, strict=True):
        assert _iou(g.rect, rect) >= 0.95, (g.rect, rect)
        assert abs(g.confidence - conf) <= 1e-3, (g.confidence, conf)


def test_the_checks_find_faces_where_there_are_some(expected):
    counts = {n: len(found) for n, found in expected.items()}
    assert counts["two_faces"] == 2 and counts["grace_level2"] == 1
    assert counts["brick"] == 0 and counts["gray_flat"] == 0


def test_a_batch_equals_one_image_at_a_time(ours):
    a = IMAGES["grace_level0"][0]
    b = np.ascontiguousarray(a[:, ::-1])  # same size: one forward pass
    c = IMAGES["astronaut_up1"][0]  # another size: its own pass
    batch = ours.detect_batch([a, b, c], upsample=1)
    for image, found in zip([a, b, c], batch, strict=True):
        single = ours.detect(image, 1)
        assert [x.rect for x in found] == [x.rect for x in single]
        np.testing.assert_allclose(
            [x.confidence for x in found], [x.confidence for x in single], atol=1e-5
        )


def test_resize_is_dlibs_bit_for_bit(rng):
    for _ in range(60):
        h, w = rng.integers(2, 70, 2)
        oh, ow = rng.integers(1, 150, 2)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        want = dlib.resize_image(img, int(oh), int(ow))
        np.testing.assert_array_equal(resize_rgb(img, int(oh), int(ow)), want)


def test_pyramid_levels_are_dlibs_pyramid_down_6():
    layout = tiled_layout(300, 256)
    img = np.zeros((300, 256, 3), np.uint8)
    pyr = dlib.pyramid_down(6)
    for left, top, right, bottom in layout.rects[1:5]:
        img = pyr(img)
        assert img.shape[:2] == (bottom - top + 1, right - left + 1)
    tops = [r[1] for r in layout.rects]
    assert layout.rects[0][:2] == (11, 11) and tops[1] == tops[0] + 300 + 10


def test_the_file_parses_whole():
    net = read_mmod()
    assert net.options.window == (80, 80)
    assert 0 < net.options.nms_iou < 1
    shapes = [w.shape for w, _, _, _ in net.convs]
    assert shapes == [
        (16, 3, 5, 5), (32, 16, 5, 5), (32, 32, 5, 5),
        (45, 32, 5, 5), (45, 45, 5, 5), (45, 45, 5, 5), (1, 45, 9, 9),
    ]  # fmt: skip
    assert [(s, p) for _, _, s, p in net.convs] == [(2, 0)] * 3 + [(1, 2)] * 3 + [(1, 4)]


def test_a_damaged_file_is_refused():
    data = model_file("mmod_detector").read_bytes()
    with pytest.raises(DlibFormatError):
        parse_mmod(data[: len(data) // 2])
    with pytest.raises(DlibFormatError):
        parse_mmod(model_file("resnet_v1").read_bytes()[:4096])


def test_detect_with_cnn_clips_and_names_the_detector(reference):
    image, _ = IMAGES["grace_level2"]
    crop = np.ascontiguousarray(image[40:, 40:])  # the face runs off the top-left
    found = detect_with(crop, 0, "cnn")
    assert found.detector == "cnn" and len(found.boxes) == len(reference(crop, 0)) >= 1
    for t, r, b, l in found.boxes:
        assert 0 <= t < b <= crop.shape[0] and 0 <= l < r <= crop.shape[1]
    assert detect(crop, 0, detector="cnn") == found.boxes


def test_auto_picks_by_size_and_device():
    small, big = (150, 150, 3), (2000, 2000, 3)
    assert resolve_detector("auto", small, 1) == "cnn"
    assert 150 * 150 * 4 <= CNN_AUTO_MAX_PIXELS < 2000 * 2000
    assert resolve_detector("auto", big, 1) == ("cnn" if torch.cuda.is_available() else "hog")
    assert resolve_detector("hog", small, 1) == "hog"
    assert resolve_detector("hog+cnn", small, 1) == "hog+cnn"
    with pytest.raises(ValueError, match=r"hog, cnn, hog\+cnn, auto"):
        resolve_detector("yolo", small, 1)


def test_hog_then_cnn_runs_the_cnn_only_where_hog_finds_nothing():
    frontal, _ = IMAGES["grace_level1"]
    hog = detect_with(frontal, 0, "hog")
    assert hog.boxes and detect_with(frontal, 0, "hog+cnn") == hog  # HOG's boxes, named hog
    assert detect_with(frontal, 0, "cnn").boxes != hog.boxes  # (the CNN's would differ)
    g = grace().crop((120, 80, 420, 380))
    tilted = np.asarray(g.rotate(50, resample=Image.Resampling.BILINEAR).resize((180, 180)))
    assert detect(tilted, 0) == []  # HOG misses a face tilted 50 degrees; the CNN finds it
    cnn = detect_with(tilted, 0, "cnn")
    assert len(cnn.boxes) == 1 and detect_with(tilted, 0, "hog+cnn") == cnn
    assert detect(tilted, 0, detector="hog+cnn") == cnn.boxes


def test_auto_reports_what_it_ran(caplog):
    image, _ = IMAGES["grace_level1"]
    with caplog.at_level(logging.DEBUG, logger="cnnkit.face.detectors"):
        found = detect_with(image, 0, "auto")
    assert found.detector == "cnn" and len(found.boxes) == 1
    assert "face detector auto: using cnn" in caplog.text
    hog = detect_with(image, 0, "hog")
    assert hog.detector == "hog" and hog.boxes == detect(image, 0)


def test_the_use_cases_take_the_detector(tmp_path):
    from cnnkit.face.batch import detect_and_align
    from cnnkit.face.usecases import detect_faces

    image, _ = IMAGES["turned"]
    path = tmp_path / "turned.png"
    Image.fromarray(image).save(path)
    cnn = detect_with(image, 0, "cnn").boxes
    assert detect_faces(path, 0, detector="cnn") == cnn and len(cnn) == 1
    assert detect_faces(path, 0, detector="hog") == detect(image, 0)
    assert detect_faces(path, 0) == cnn  # the default, auto: the CNN on a small image
    found = detect_and_align(path, 0, detector="cnn")
    assert found.boxes == cnn and found.chips.shape == (1, 150, 150, 3)
