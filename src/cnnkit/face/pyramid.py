"""dlib's image pyramid geometry and resizing: the input side of the MMOD face detector.

dlib's ``input_rgb_image_pyramid<pyramid_down<6>>`` (dlib/dnn/input.h) turns one (H, W, 3) uint8
image into one tensor: the image normalised, (pixel - mean) / 256, and its pyramid levels, each
5/6 the size of the one before (``pyramid_down<6>``: floor(5/6 * n)), down to 5 rows, tiled side by
side with ``padding`` = 10 between levels and ``outer_padding`` = 11 around, the rest 0
(``compute_tiled_image_pyramid_details`` in dlib/image_transforms/image_pyramid.h:
:func:`tiled_layout`). In current dlib (the 20.x the tests compare with) the levels are made in
tensor space, each from the previous one by a float
bilinear resize with corners aligned (``tt::resize_bilinear``), which
``torch.nn.functional.interpolate(..., align_corners=True)`` reproduces.

``upsample`` in dlib's binding doubles the uint8 image first with ``pyramid_up``, dlib's bilinear
``resize_image`` on uint8 RGB, whose SSE path computes in float32 and truncates;
:func:`resize_rgb` does the same arithmetic in NumPy, bit for bit.

A point p in level i of the tiled picture maps back to the image by ``point_up`` i times,
p -> p * 6/5 + 0.3, after subtracting the level's top-left corner (``tiled_pyramid_to_image``).

Rectangles here are dlib's: (left, top, right, bottom), inclusive, in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: pyramid_down<6>: each level is (N - 1) / N = 5/6 of the previous one.
PYRAMID_N = 6
#: dlib's defaults for input_rgb_image_pyramid (the .dat file predates storing them).
PADDING = 10
OUTER_PADDING = 11
#: A level shorter than this many rows ends the pyramid.
MIN_HEIGHT = 5

Rect = tuple[int, int, int, int]  # (left, top, right, bottom), inclusive


def _f32(x: np.ndarray | float | list[float]) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def resize_rgb(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """dlib's ``resize_image(in, out, interpolate_bilinear)`` for uint8 RGB, exactly.

    dlib walks x and y by repeated addition (y in double; x in float32 lanes of 4, advanced by
    4 * x_scale), weighs the four neighbours in float32 and truncates; the last columns, where
    a lane of 4 would read past the right edge, are computed in double. (H, W, 3) -> (out_h,
    out_w, 3) uint8.
    """
    in_h, in_w = img.shape[:2]
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    if out_h == 0 or out_w == 0 or in_h == 0 or in_w == 0:
        return out
    xs = (in_w - 1) / max(out_w - 1, 1)
    ys = (in_h - 1) / max(out_h - 1, 1)
    y = np.add.accumulate(np.r_[-ys, np.full(out_h, ys)])[1:]  # sequential double sums
    top = np.floor(y).astype(np.int64)
    bottom = np.minimum(top + 1, in_h - 1)
    tb = y - top  # (out_h,) double

    # The float32 lanes: lane j starts at float(-4 xs + j xs) and adds float(4 xs) n + 1 times.
    n_groups = out_w // 4 + 2
    start = _f32([-4 * xs, -4 * xs + xs, -4 * xs + 2 * xs, -4 * xs + 3 * xs])
    steps = np.concatenate([start[None, :], np.broadcast_to(_f32(4 * xs), (n_groups, 4))])
    lanes = np.add.accumulate(steps, axis=0, dtype=np.float32)[1:]  # (n_groups, 4)
    left = lanes.astype(np.int32)  # truncation, as _mm_cvttps_epi32
    right_last = left[:, 3] + 1
    bad = np.nonzero(right_last >= in_w)[0]
    n_simd = int(bad[0]) if len(bad) else n_groups  # the lanes stop at the right edge only
    c_simd = min(4 * n_simd, out_w)

    src = img.astype(np.float32)
    if c_simd > 0:
        xl = lanes.reshape(-1)[:c_simd]  # (c_simd,) float32
        li = xl.astype(np.int32)
        lr = xl - li.astype(np.float32)
        inv_lr = _f32(1) - lr
        tbf = tb.astype(np.float32)[:, None]
        inv_tbf = (1 - tb).astype(np.float32)[:, None]
        tlf, trf = inv_tbf * inv_lr, inv_tbf * lr
        blf, brf = tbf * inv_lr, tbf * lr
        for ch in range(3):
            plane = src[:, :, ch]
            tl = plane[top][:, li]
            tr = plane[top][:, li + 1]
            bl = plane[bottom][:, li]
            br = plane[bottom][:, li + 1]
            v = tlf * tl + trf * tr
            v = v + blf * bl
            v = v + brf * br
            out[:, :c_simd, ch] = v.astype(np.int32).astype(np.uint8)
    if c_simd < out_w:
        x0 = -xs + c_simd * xs
        x = np.add.accumulate(np.r_[x0, np.full(out_w - c_simd, xs)])[1:]
        li = np.floor(x).astype(np.int64)
        ri = np.minimum(li + 1, in_w - 1)
        lr = x - li
        t = tb[:, None]
        d64 = img.astype(np.float64)
        for ch in range(3):
            plane64 = d64[:, :, ch]
            v = (1 - t) * ((1 - lr) * plane64[top][:, li] + lr * plane64[top][:, ri]) + t * (
                (1 - lr) * plane64[bottom][:, li] + lr * plane64[bottom][:, ri]
            )
            out[:, c_simd:, ch] = v.astype(np.int64).astype(np.uint8)
    return out


def pyramid_up2(img: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_up(img, pyramid_down<2>)``: (H, W, 3) -> (2H + 1, 2W + 2, 3) bilinear.

    The size is ``rect_up`` of the image rectangle, (p + (1.25, 0.75)) * 2, rounded.
    """
    h, w = img.shape[:2]
    return resize_rgb(img, 2 * h + 1, 2 * w + 2)


def rect_down2(rect: tuple[float, float, float, float], levels: int) -> Rect:
    """``pyramid_down<2>::rect_down`` ``levels`` times, p / 2 - (1.25, 0.75), then rounded."""
    left, top, right, bottom = (float(v) for v in rect)
    for _ in range(levels):
        left, right = left / 2 - 1.25, right / 2 - 1.25
        top, bottom = top / 2 - 0.75, bottom / 2 - 0.75
    return round_rect((left, top, right, bottom))


def round_rect(r: tuple[float, float, float, float]) -> Rect:
    """dlib's drectangle -> rectangle: each side floor(v + 0.5)."""
    return tuple(int(np.floor(v + 0.5)) for v in r)  # type: ignore[return-value]


@dataclass(frozen=True)
class TiledLayout:
    """Where each pyramid level sits in the tiled picture: ``rects[i]`` for level i."""

    height: int
    width: int
    rects: tuple[Rect, ...]


def tiled_layout(
    nr: int, nc: int, padding: int = PADDING, outer: int = OUTER_PADDING
) -> TiledLayout:
    """dlib's ``compute_tiled_image_pyramid_details`` for pyramid_down<6>."""
    if nr * nc == 0:
        return TiledLayout(0, 0, ())
    sizes = [(nc, nr)]  # (width, height) per level
    while True:
        nr = (PYRAMID_N - 1) * nr // PYRAMID_N
        nc = (PYRAMID_N - 1) * nc // PYRAMID_N
        if nr * nc == 0 or nr < MIN_HEIGHT:
            break
        sizes.append((nc, nr))
    w0, h0 = sizes[0]
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    height = 0
    prev_width = 0
    for w, h in sizes:
        if w <= w0 - prev_width - padding and (height - h0) * 2 >= total_height - h0:
            break
        height += h + padding
        prev_width = w
    height -= padding
    rects: list[Rect] = []
    y = outer
    i = 0
    while y < height + outer and i < len(sizes):
        w, h = sizes[i]
        rects.append((outer, y, outer + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    first = rects[0]
    while i < len(sizes):
        w, h = sizes[i]
        right, bottom = outer + w0 - 1, y - 1
        rect = (right - w + 1, bottom - h + 1, right, bottom)
        if _intersects(first, rect):
            break
        rects.append(rect)
        y -= h + padding
        i += 1
    return TiledLayout(height + 2 * outer, w0 + 2 * outer, tuple(rects))


def _intersects(a: Rect, b: Rect) -> bool:
    return max(a[0], b[0]) <= min(a[2], b[2]) and max(a[1], b[1]) <= min(a[3], b[3])


def nearest_rect(rects: tuple[Rect, ...], x: float, y: float) -> int:
    """dlib's ``nearest_rect``: the first rect containing (x, y), else the closest one."""
    best, best_d = 0, np.inf
    for i, (left, top, right, bottom) in enumerate(rects):
        if left <= x <= right and top <= y <= bottom:
            return i
        nx, ny = min(max(x, left), right), min(max(y, top), bottom)
        d = float(np.hypot(nx - x, ny - y))
        if d < best_d:
            best, best_d = i, d
    return best


def tiled_to_image(
    layout: TiledLayout, rect: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """``tiled_pyramid_to_image<pyramid_down<6>>``: a rectangle in the tiled picture -> image."""
    left, top, right, bottom = rect
    level = nearest_rect(layout.rects, round((left + right) / 2), round((top + bottom) / 2))
    ox, oy = layout.rects[level][:2]
    pts = [left - ox, top - oy, right - ox, bottom - oy]
    ratio = PYRAMID_N / (PYRAMID_N - 1.0)
    for _ in range(level):
        pts = [p * ratio + 0.3 for p in pts]
    return (pts[0], pts[1], pts[2], pts[3])
