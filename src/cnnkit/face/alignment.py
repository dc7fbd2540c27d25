"""Face alignment: dlib's ``get_face_chip_details`` + ``extract_image_chip`` ported to NumPy.

Recipe (dlib/image_transforms/interpolation.h, image_pyramid.h), for 5 landmarks, a chip of
``size`` pixels and a ``padding`` fraction:

1. The template of the 5 landmarks in unit coordinates, mapped to the chip:
   p' = (padding + p) / (2 padding + 1) * size.
2. The least-squares similarity transform (Umeyama) from the chip points to the image landmarks
   gives a rotation angle and a scale.
3. The crop rectangle is centred on the image of the chip centre (size/2, size/2), with width and
   height size * scale - 1.
4. When that rectangle is much larger than the chip, the image is first reduced by dlib's
   ``pyramid_down<2>`` (5-tap [1 4 6 4 1] filter, 2:1) until it is not, since bilinear sampling
   would otherwise skip pixels.
5. The chip's corners map to the (rotated) rectangle by an affine transform; each chip pixel is a
   bilinear sample, 0 outside the image, truncated to uint8.

The output is byte-identical to ``dlib.get_face_chip(image, shape, size, padding)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnkit.errors import ShapeError

#: dlib's 5-point template on the unit square, in the order of the 5-point predictor's parts.
TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

Rect = tuple[float, float, float, float]  # (left, top, right, bottom), dlib's inclusive drectangle


@dataclass(frozen=True)
class ChipDetails:
    """Where a chip comes from: dlib's ``chip_details`` (rect, angle, rows, cols)."""

    rect: Rect
    angle: float
    rows: int
    cols: int


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991, eq. 34-43): dst ~ M @ src + t.

    src, dst: (P, 2) points. Returns M (2, 2) = c R and t (2,).
    """
    n = len(src)
    mean_src = src.sum(0) / n
    mean_dst = dst.sum(0) / n
    ds, dd = src - mean_src, dst - mean_dst
    sigma_src = float((ds**2).sum()) / n
    cov = dd.T @ ds / n  # (2, 2) = sum (dst - mean)(src - mean)^T / n
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    det_cov = np.linalg.det(cov)
    if det_cov < 0 or (det_cov == 0 and np.linalg.det(u) * np.linalg.det(vt) < 0):
        s[1, 1] = -1  # d is sorted descending
    r = u @ s @ vt
    c = 1.0 if sigma_src == 0 else float(np.trace(np.diag(d) @ s)) / sigma_src
    m = c * r
    return m, mean_dst - m @ mean_src


def face_chip_details(
    landmarks5: np.ndarray, size: int = 150, padding: float = 0.25
) -> ChipDetails:
    """dlib's ``get_face_chip_details`` for a 5-point shape: (5, 2) (x, y) -> ChipDetails."""
    pts = np.asarray(landmarks5, dtype=np.float64)
    if pts.shape != (5, 2):
        raise ShapeError(
            f"expected 5 landmarks of shape (5, 2), got {pts.shape}",
            hint="use cnnkit.face.landmarks(image, box)",
        )
    if size <= 0 or padding < 0:
        raise ShapeError(f"need size > 0 and padding >= 0, got size={size}, padding={padding}")
    chip_pts = (padding + TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity_transform(chip_pts, pts)
    px, py = m[0, 0], m[1, 0]  # M @ (1, 0)
    angle = math.atan2(py, px)
    scale = math.sqrt(px * px + py * py)
    half = size / 2.0
    cx = m[0, 0] * half + m[0, 1] * half + t[0]
    cy = m[1, 0] * half + m[1, 1] * half + t[1]
    side = size * scale - 1
    rect = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    return ChipDetails(rect, angle, size, size)


def _area(r: Rect) -> float:
    left, top, right, bottom = r
    if top > bottom or left > right:
        return 0.0
    return (right - left + 1) * (bottom - top + 1)


def _rect_down(r: Rect) -> Rect:
    """pyramid_down<2>::rect_down: each corner p -> p / 2 - (1.25, 0.75)."""
    return (r[0] / 2 - 1.25, r[1] / 2 - 0.75, r[2] / 2 - 1.25, r[3] / 2 - 0.75)


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def _rotate(center: tuple[float, float], p: tuple[float, float], angle: float) -> np.ndarray:
    """dlib's rotate_point: p rotated by ``angle`` about ``center``."""
    ca, sa = math.cos(angle), math.sin(angle)
    x, y = p[0] - center[0], p[1] - center[1]
    return np.array([ca * x - sa * y + center[0], sa * x + ca * y + center[1]])


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` on an (H, W, 3) uint8 image -> (~H/2, ~W/2, 3) uint8.

    Separable 5-tap [1 4 6 4 1] filter in integers: rows first (output column j reads input
    columns 2j..2j+4), then columns (output row i reads rows 2i..2i+4), then // 256.
    Images with a side <= 8 give an empty result, as in dlib.
    """
    h, w = image.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0, 3), dtype=np.uint8)
    x = image.astype(np.uint32)
    n_w = (w - 3) // 2
    taps = (1, 4, 6, 4, 1)
    tmp = np.zeros((h, n_w, 3), dtype=np.uint32)
    for i, k in enumerate(taps):
        tmp += k * x[:, i : i + 2 * n_w : 2]  # (h, n_w, 3)
    n_h = (h - 3) // 2
    out = np.zeros((n_h, n_w, 3), dtype=np.uint32)
    for i, k in enumerate(taps):
        out += k * tmp[i : i + 2 * n_h : 2]  # (n_h, n_w, 3)
    return (out // 256).astype(np.uint8)


def _affine_from_3(to: list[np.ndarray], rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Affine map of chip corners (0,0), (cols-1,0), (0,rows-1) onto ``to``: M (2,2), b (2,)."""
    p = np.array([[0.0, cols - 1.0, 0.0], [0.0, 0.0, rows - 1.0], [1.0, 1.0, 1.0]])
    q = np.stack(to, axis=1)  # (2, 3)
    m = q @ np.linalg.pinv(p)  # (2, 3)
    return m[:, :2], m[:, 2]


def _bilinear(src: np.ndarray, m: np.ndarray, b: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Sample chip pixel (c, r) at M (c, r) + b with dlib's interpolate_bilinear; 0 outside."""
    chip = np.zeros((rows, cols, 3), dtype=np.uint8)
    h, w = src.shape[:2]
    if h == 0 or w == 0:
        return chip
    cc, rr = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
    x = m[0, 0] * cc + m[0, 1] * rr + b[0]
    y = m[1, 0] * cc + m[1, 1] * rr + b[1]
    left, top = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    ok = (left >= 0) & (top >= 0) & (left + 1 < w) & (top + 1 < h)
    left, top, x, y = left[ok], top[ok], x[ok], y[ok]
    lr = (x - left)[:, None]
    tb = (y - top)[:, None]
    f = src.astype(np.float64)
    tl, tr = f[top, left], f[top, left + 1]
    bl, br = f[top + 1, left], f[top + 1, left + 1]
    value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
    chip[ok] = value.astype(np.uint8)  # static_cast<unsigned char>: truncation
    return chip


def extract_chip(image: np.ndarray, details: ChipDetails) -> np.ndarray:
    """dlib's ``extract_image_chip`` with bilinear sampling: (H, W, 3) uint8 -> (rows, cols, 3)."""
    h, w = image.shape[:2]
    rows, cols = details.rows, details.cols
    rect = details.rect
    # Pyramid depth and the border the filter needs (grow), from the rectangle alone.
    depth, grow, r = 0, 2.0, _rect_down(rect)
    while _area(r) > rows * cols:
        r = _rect_down(r)
        depth += 1
        grow = grow * 2 + 2
    # Bounding box of the rotated rectangle, grown and clipped to the image, then rounded.
    center = ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2)
    corners = [(rect[0], rect[1]), (rect[2], rect[1]), (rect[0], rect[3]), (rect[2], rect[3])]
    rot = np.array([_rotate(center, p, details.angle) for p in corners])
    left = max(rot[:, 0].min() - grow, 0.0)
    top = max(rot[:, 1].min() - grow, 0.0)
    right = min(rot[:, 0].max() + grow, float(w - 1))
    bottom = min(rot[:, 1].max() + grow, float(h - 1))
    if left > right or top > bottom:
        box = (0, 0, -1, -1)
    else:
        box = (_round(left), _round(top), _round(right), _round(bottom))
    # The pyramid level for this chip, on the rectangle in box coordinates.
    local: Rect = (rect[0] - box[0], rect[1] - box[1], rect[2] - box[0], rect[3] - box[1])
    level = -1
    while _area(_rect_down(local)) > rows * cols:
        level += 1
        local = _rect_down(local)
    src = image[max(box[1], 0) : box[3] + 1, max(box[0], 0) : box[2] + 1]
    for _ in range(level + 1):
        src = pyramid_down(src)
    lc = ((local[0] + local[2]) / 2, (local[1] + local[3]) / 2)
    to = [
        _rotate(lc, (local[0], local[1]), details.angle),
        _rotate(lc, (local[2], local[1]), details.angle),
        _rotate(lc, (local[0], local[3]), details.angle),
    ]
    m, b = _affine_from_3(to, rows, cols)
    return _bilinear(src, m, b, rows, cols)


def align(
    image: np.ndarray, landmarks5: np.ndarray, size: int = 150, padding: float = 0.25
) -> np.ndarray:
    """The aligned face chip, as ``dlib.get_face_chip(image, shape, size, padding)`` makes it.

    Args:
        image: (H, W, 3) uint8 RGB.
        landmarks5: (5, 2) (x, y) from :func:`cnnkit.face.landmarks`.
        size: chip side in pixels (the encoder takes 150).
        padding: border around the landmark template, as a fraction (the encoder was trained
            on 0.25).

    Returns:
        (size, size, 3) uint8 chip.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ShapeError(
            f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}",
            hint="use cnnkit.face.load_image(path)",
        )
    return extract_chip(image, face_chip_details(landmarks5, size, padding))


@dataclass(frozen=True)
class View:
    """One aligned chip of a face: from which landmarks, at which template padding.

    ``points`` 5: the 5-point predictor's landmarks (integer or sub-pixel, as the caller's
    ``landmark_upsample`` says) and :func:`face_chip_details`; 68: dlib's 68-point predictor
    (``shape_predictor_68_face_landmarks.dat``, integer points), started from the HOG-style box
    of the 5 landmarks (:func:`cnnkit.face.detection.hog_box_from_landmarks`, whatever the
    detector), and dlib's own
    ``get_face_chip_details``, which fits its mean face to 51 of them (brows, nose, eyes,
    mouth): a second, independent estimate of the same alignment (the two predictors were
    trained to give the same chip), so averaging both views' descriptors averages out some of
    each predictor's error (docs/face.md, "Landmarks").
    """

    padding: float = 0.25
    points: int = 5
    #: which network embeds the chip: ``"dlib"`` (the chips above) or ``"facenet"``: an
    #: upright crop of the HOG-style box of the 5 landmarks, ``padding`` of its side added
    #: on each side (:func:`box_crop`), for :mod:`cnnkit.face.facenet`
    net: str = "dlib"

    @staticmethod
    def of(view: View | float) -> View:
        """A View, or a bare padding meaning a 5-point view at that padding."""
        return view if isinstance(view, View) else View(float(view))


def chip_details_68(landmarks68: np.ndarray, size: int = 150, padding: float = 0.25) -> ChipDetails:
    """dlib's ``get_face_chip_details`` for a 68-point shape: (68, 2) integer (x, y) points."""
    from cnnkit.face.models_files import require_dlib

    pts = np.asarray(landmarks68)
    if pts.shape != (68, 2):
        raise ShapeError(f"expected 68 landmarks of shape (68, 2), got {pts.shape}")
    dlib = require_dlib()
    xs, ys = pts[:, 0], pts[:, 1]
    rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    shape = dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in pts])
    d = dlib.get_face_chip_details(shape, size, padding)
    r = d.rect
    return ChipDetails((r.left(), r.top(), r.right(), r.bottom()), d.angle, d.rows, d.cols)


def box_crop(
    image: np.ndarray, box: tuple[int, int, int, int], padding: float, size: int = 150
) -> np.ndarray:
    """An upright square crop around ``box`` (top, right, bottom, left), ``padding`` of its
    side added on each side, as a (size, size, 3) uint8 chip (dlib's chip extraction: large
    faces are first scaled down by its pyramid, so nothing aliases; outside the image is 0)."""
    top, right, bottom, left = box
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half = max(bottom - top, right - left) * (0.5 + padding)
    rect = (cx - half, cy - half, cx + half, cy + half)
    return extract_chip(image, ChipDetails(rect, 0.0, size, size))


def align_faces(
    image: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    landmark_upsample: int = 0,
    views: Sequence[View | float] = (0.25,),
) -> tuple[list[np.ndarray], np.ndarray]:
    """Landmarks -> aligned chips for the faces in ``boxes`` (the one copy of that routine).

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes: (top, right, bottom, left) boxes, e.g. from :func:`cnnkit.face.detect`.
        landmark_upsample: see :func:`cnnkit.face.landmarks` (0: dlib's integer points); for
            the 5-point views.
        views: the chips of each face (:class:`View`; a float is a 5-point view at that
            padding), face by face: the ``V = len(views)`` chips of face i are rows ``i * V``
            .. ``i * V + V - 1`` (what :func:`cnnkit.face.embed_chips` averages with
            ``views=V``).

    Returns:
        The (5, 2) landmarks of each face and their (n * V, 150, 150, 3) uint8 chips.
    """
    from cnnkit.face.detection import hog_box_from_landmarks, landmarks, landmarks68

    if not views:
        raise ShapeError("align_faces needs at least one view")
    vs = [View.of(v) for v in views]
    need68 = any(v.points == 68 and v.net == "dlib" for v in vs)
    if any(v.points not in (5, 68) for v in vs):
        raise ShapeError(f"a view's points must be 5 or 68, got {[v.points for v in vs]}")
    if any(v.net not in ("dlib", "facenet") for v in vs):
        raise ShapeError(f"a view's net must be dlib or facenet, got {[v.net for v in vs]}")
    marks = [landmarks(image, b, landmark_upsample) for b in boxes]
    chips = []
    for m5 in marks:
        hog_box = hog_box_from_landmarks(m5)  # where the 68-point and FaceNet views start
        m68 = landmarks68(image, hog_box) if need68 else None
        for v in vs:
            if v.net == "facenet":
                chips.append(box_crop(image, hog_box, v.padding))
            elif m68 is not None and v.points == 68:
                chips.append(extract_chip(image, chip_details_68(m68, padding=v.padding)))
            else:
                chips.append(align(image, m5, padding=v.padding))
    return marks, np.stack(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)
