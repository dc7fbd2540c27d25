"""Face detection and landmarks with dlib: the HOG frontal face detector and 5-point predictor.

Boxes are ``(top, right, bottom, left)`` in pixels, as in face_recognition, clipped to the image.
Landmarks are a (5, 2) array of (x, y): the outer and inner corner of the subject's left eye
(image right), the outer and inner corner of the right eye, and the base of the nose.

The dlib models load lazily, once per process, on first use. dlib's HOG detector keeps scratch
buffers in the object: two threads running it at once (the service's inference threads) corrupt
memory, so calls to it take a lock (making another costs ~1 s; the 5-point predictor is safe).
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.face.models_files import model_file, require_dlib

Box = tuple[int, int, int, int]  # (top, right, bottom, left)


def box_area(box: Box) -> int:
    """Pixels inside a (top, right, bottom, left) box (0 for an empty one)."""
    top, right, bottom, left = box
    return max(0, bottom - top) * max(0, right - left)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (EXIF-rotated; CMYK, 16-bit, palette converted).

    Raises:
        ImageReadError: missing, corrupt or non-image file.
    """
    from cnnkit.io import load_image_pil

    return np.asarray(load_image_pil(path), dtype=np.uint8)


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB image (or (H, W) gray, made RGB); C-contiguous."""
    image = np.asarray(image)
    if image.ndim == 2 and image.dtype == np.uint8:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ShapeError(
            f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} {image.dtype}",
            hint="use cnnkit.face.load_image(path)",
        )
    return np.ascontiguousarray(image)


#: The margin around the box, as a fraction of its side, that :func:`landmarks` enlarges with
#: the face for sub-pixel points (plus 2 px, at least 8). dlib's 5-point predictor reads its
#: pixels at box-normalised offsets from its current shape: on LFW-dev they reach at most 0.36
#: of the box side beyond it (the predictor re-run from its model file), and the bilinear
#: enlargement differs from a larger crop's only in the outermost pixel. At 0.5 the points are
#: bit-identical to those of the margin of a whole box side used before, on all 3,811 LFW-dev
#: faces and 72 faces of 300-1,500 px (0.25 changed 22 LFW-dev faces by up to 0.5 px), and the
#: region enlarged is 2x the box side instead of 3x (2.25x fewer pixels): see docs/face.md.
LANDMARK_MARGIN = 0.5

#: Held while dlib's (not thread-safe) HOG detector runs.
_hog_lock = threading.Lock()


@lru_cache(maxsize=1)
def _hog_detector() -> Any:
    return require_dlib().get_frontal_face_detector()


@lru_cache(maxsize=1)
def _shape_predictor() -> Any:
    return require_dlib().shape_predictor(str(model_file("shape_predictor_5")))


@lru_cache(maxsize=1)
def _shape_predictor_68() -> Any:
    return require_dlib().shape_predictor(str(model_file("shape_predictor_68")))


def detect(
    image: np.ndarray, upsample: int = 1, detector: str = "hog", max_pixels: int | None = None
) -> list[Box]:
    """Faces found by dlib's HOG detector (or its CNN), as (top, right, bottom, left) boxes.

    Args:
        image: (H, W, 3) uint8 RGB.
        upsample: how many times to double the image first; 1 finds faces down to about
            40x40 px (0: 80x80), at 4x the time per step.
        detector: ``"hog"``; ``"cnn"`` for dlib's MMOD CNN (:mod:`cnnkit.face.mmod`: finds
            turned, small and poorly lit faces, ~10x HOG's cost on a CPU); ``"hog+cnn"`` for
            the CNN only where HOG finds nothing; ``"auto"`` for the
            CNN on a GPU or on small images (:mod:`cnnkit.face.detectors` says which ran).
        max_pixels: a larger image (a phone photo) is searched on a copy scaled down to this
            many pixels and the boxes mapped back (None: 3 Mpx, 0: never; see
            :func:`cnnkit.face.detectors.detect_with`), so faces under ~40 px / that scale are
            missed there unless ``upsample`` is raised.

    Returns:
        Boxes clipped to the image, in the detector's order (most confident first).
    """
    from cnnkit.face.detectors import detect_with

    return detect_with(image, upsample, detector, max_pixels).boxes


def detect_scored(image: np.ndarray, upsample: int = 1) -> list[tuple[Box, float]]:
    """dlib's HOG detector on ``image`` as it is (no scaling down), with each box's score
    (higher is surer)."""
    image = check_image(image)
    h, w = image.shape[:2]
    detector = _hog_detector()
    with _hog_lock:
        rects, scores, _ = detector.run(image, int(upsample), 0.0)
    return [
        ((max(r.top(), 0), min(r.right(), w), min(r.bottom(), h), max(r.left(), 0)), float(s))
        for r, s in zip(rects, scores, strict=True)
    ]


def landmarks(image: np.ndarray, box: Box, upsample: int = 0) -> np.ndarray:
    """The 5 landmarks of the face in ``box`` (top, right, bottom, left): (5, 2) float (x, y).

    Args:
        image: (H, W, 3) uint8 RGB.
        box: a box from :func:`detect`.
        upsample: 0 gives dlib's integer points (what ``dlib.get_face_chip`` is given). k > 0
            runs the predictor on the face's region enlarged 2**k times (bilinear) and maps the
            points back, x = (x' + 1/2) / 2**k - 1/2: sub-pixel landmarks, which align small
            faces (under ~100 px) more steadily. On LFW-dev (faces about 60 px) k = 1 with
            flip averaging lifts accuracy from 98.87% to 99.10%.
    """
    image = check_image(image)
    if len(box) != 4:
        raise ShapeError(f"expected a (top, right, bottom, left) box, got {box!r}")
    if upsample < 0:
        raise ValueError(f"upsample must be >= 0, got {upsample}")
    dlib = require_dlib()
    top, right, bottom, left = (int(v) for v in box)
    if upsample == 0:
        shape = _shape_predictor()(image, dlib.rectangle(left, top, right, bottom))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    from PIL import Image

    f = 2**upsample
    h, w = image.shape[:2]
    m = max(math.ceil(LANDMARK_MARGIN * max(bottom - top, right - left)) + 2, 8)
    y0, x0 = max(top - m, 0), max(left - m, 0)
    y1, x1 = min(bottom + m, h - 1), min(right + m, w - 1)
    region = Image.fromarray(image[y0 : y1 + 1, x0 : x1 + 1])
    size = (region.width * f, region.height * f)
    big = np.asarray(region.resize(size, Image.Resampling.BILINEAR))
    del region
    rect = dlib.rectangle(f * (left - x0), f * (top - y0), f * (right - x0), f * (bottom - y0))
    shape = _shape_predictor()(np.ascontiguousarray(big), rect)
    pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    return (pts + 0.5) / f - 0.5 + [x0, y0]


#: The HOG-style box of a face from its 5 landmarks (:func:`hog_box_from_landmarks`): centre =
#: the mid-point of the eyes + (X, Y) x the inter-ocular distance, side = SIDE x that distance.
#: Fitted (medians) on the 3,781 LFW-dev faces HOG finds at upsample 1, sub-pixel landmarks.
HOG_BOX_FROM_EYES = (0.0263, 0.5146, 2.5242)


def hog_box_from_landmarks(marks5: np.ndarray) -> Box:
    """The box dlib's HOG detector would give the face of these 5 landmarks (x, y): square,
    upright, placed and sized by the eyes (median IoU 0.83 with HOG's own boxes on LFW-dev,
    where the CNN detector's boxes reach 0.69).

    What the 68-point predictor is started from: it was trained on HOG's boxes and is worse
    from boxes aligned otherwise, such as the CNN detector's (the default ``auto`` runs it on
    small images); the 5-point predictor works from either. On LFW-dev, with CNN boxes, the
    ``subpixel+flip+68`` descriptors score 99.27% on pairs from this box, 99.03% from the CNN's.
    """
    p = np.asarray(marks5, dtype=np.float64)
    if p.shape != (5, 2):
        raise ShapeError(f"expected 5 landmarks of shape (5, 2), got {p.shape}")
    left_eye, right_eye = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2
    mid = (left_eye + right_eye) / 2
    iod = float(np.linalg.norm(left_eye - right_eye))
    dx, dy, side = HOG_BOX_FROM_EYES
    cx, cy, half = mid[0] + dx * iod, mid[1] + dy * iod, side * iod / 2
    top, right, bottom, left = np.round([cy - half, cx + half, cy + half, cx - half])
    return int(top), int(right), int(bottom), int(left)


def landmarks68(image: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 landmarks (iBUG 300-W order) of the face in ``box``: (68, 2) integer (x, y).
    ``box`` should be HOG-like (:func:`hog_box_from_landmarks`), as the predictor was trained."""
    image = check_image(image)
    top, right, bottom, left = (int(v) for v in box)
    rect = require_dlib().rectangle(left, top, right, bottom)
    shape = _shape_predictor_68()(image, rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.int64)
