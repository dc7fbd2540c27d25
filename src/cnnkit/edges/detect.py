"""Edge detection: grayscale, pad, cross-correlate with edge kernels through ``cnnkit.conv``.

``detect(image, "sobel")`` returns an (H, W) float array: the gradient magnitude
``sqrt(g_x^2 + g_y^2)`` for the gradient kernels (Sobel, Scharr, Prewitt), the signed response for
the vertical/horizontal detectors and the Laplacian. ``to_display`` turns any of these into a
picture: signed responses become red (positive) and blue (negative) on white, magnitudes become
white edges on black.

The convolution is :func:`cnnkit.conv.conv2d` on a (1, 1, n_H, n_W) tensor with the kernels
stacked as (n_K, 1, f, f) filters, so a gradient pair costs one call. Large images go through in
horizontal strips, so the im2col buffer stays small (a 4000x3000 photo needs no more than a few
tens of MB of scratch memory).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from cnnkit.conv import conv2d
from cnnkit.edges.kernels import GRADIENT_KERNELS, KERNEL_NAMES, get_kernels
from cnnkit.errors import ShapeError

log = logging.getLogger(__name__)

#: ITU-R BT.601 luma weights for (R, G, B): ``Y = 0.299 R + 0.587 G + 0.114 B``.
LUMA_601 = np.array([0.299, 0.587, 0.114])

#: Output pixels per strip handed to ``conv2d`` (bounds its scratch memory).
TILE_PIXELS = 1 << 18

#: Responses up to this fraction of the input's value range count as zero in :func:`to_display`:
#: float32 rounding leaves ~1e-7 on a flat image (2e-6 at most, with Scharr's weights), while a
#: one-level step of a 16-bit image gives at least 1.5e-5 (8-bit: 3.9e-3).
NOISE_TOLERANCE = 1e-5

PadMode = Literal["replicate", "zeros", "reflect"]
Direction = Literal["both", "x", "y"]
_NP_PAD_MODES: dict[str, Any] = {"zeros": "constant", "replicate": "edge", "reflect": "reflect"}


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W) float.

    RGB becomes luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601); an alpha channel is
    ignored. Values keep their scale (an image in [0, 1] gives luma in [0, 1]). float64 stays
    float64; any other dtype becomes float32.

    Raises:
        ShapeError: any other shape.
    """
    image = np.asarray(image)
    dtype = np.float64 if image.dtype == np.float64 else np.float32
    if image.ndim == 2:
        return image.astype(dtype, copy=False)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0].astype(dtype, copy=False)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[:, :, :3]
        weights = LUMA_601.astype(dtype)
        # Y = 0.299 R + 0.587 G + 0.114 B, one channel at a time (no (H, W, 3) float copy).
        gray = rgb[:, :, 0].astype(dtype) * weights[0]
        gray += rgb[:, :, 1] * weights[1]
        gray += rgb[:, :, 2] * weights[2]
        return gray
    raise ShapeError(
        f"expected an (H, W) grayscale or (H, W, 3) RGB image, got shape {image.shape}",
        hint="give an image array such as cnnkit.io.load_image(path) returns",
    )


def _resolve_padding(padding: int | tuple[int, int] | str, f: int) -> tuple[int, int]:
    """(p_H, p_W) for a square odd f x f kernel."""
    if isinstance(padding, str):
        if padding == "same":
            return (f - 1) // 2, (f - 1) // 2
        if padding == "valid":
            return 0, 0
        raise ValueError(f"padding should be 'same', 'valid', an int or a pair. Got {padding!r}")
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        p_h = p_w = int(padding)
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        p_h, p_w = (int(v) for v in padding)
    else:
        raise ValueError(f"padding should be 'same', 'valid', an int or a pair. Got {padding!r}")
    if p_h < 0 or p_w < 0:
        raise ValueError(f"padding should be >= 0. Got {padding!r}")
    return p_h, p_w


def filter_image(
    gray: np.ndarray,
    weight: np.ndarray,
    padding: int | tuple[int, int] | str = "same",
    pad_mode: PadMode = "replicate",
    *,
    tile_pixels: int | None = None,
) -> np.ndarray:
    """Cross-correlate one (H, W) channel with n_K kernels; return (n_K, n_H, n_W).

    ``weight`` is (n_K, f, f). Padding p is added on each side (filled per ``pad_mode``: zeros as
    in the notes, ``replicate`` repeats the border pixel, ``reflect`` mirrors without repeating
    it), then :func:`cnnkit.conv.conv2d` runs with stride 1 and no further padding, in strips of
    about ``tile_pixels`` output pixels (default :data:`TILE_PIXELS`).
    ``n_H = H + 2 p_H - f + 1`` and ``n_W = W + 2 p_W - f + 1``.
    """
    if gray.ndim != 2:
        raise ShapeError(f"expected an (H, W) channel, got shape {gray.shape}")
    if weight.ndim != 3 or weight.shape[1] != weight.shape[2] or weight.shape[1] % 2 == 0:
        raise ShapeError(f"expected (n_K, f, f) kernels with odd f, got shape {weight.shape}")
    if pad_mode not in _NP_PAD_MODES:
        raise ValueError(f"pad_mode should be one of {', '.join(_NP_PAD_MODES)}. Got {pad_mode!r}")
    n_k, f = weight.shape[0], weight.shape[1]
    p_h, p_w = _resolve_padding(padding, f)
    h, w = gray.shape
    if h + 2 * p_h < f or w + 2 * p_w < f:
        raise ShapeError(
            f"a {f}x{f} kernel does not fit an image of {h}x{w} with padding ({p_h}, {p_w})",
            hint="use padding='same' or a larger image",
        )
    if pad_mode == "reflect" and (p_h >= h or p_w >= w):
        raise ShapeError(
            f"reflect padding ({p_h}, {p_w}) needs an image larger than that, got {h}x{w}",
            hint="use pad_mode='replicate' or 'zeros'",
        )
    padded = np.pad(gray, ((p_h, p_h), (p_w, p_w)), mode=_NP_PAD_MODES[pad_mode])
    n_h, n_w = h + 2 * p_h - f + 1, w + 2 * p_w - f + 1
    w4 = np.ascontiguousarray(weight.astype(gray.dtype, copy=False)[:, None])  # (n_K, 1, f, f)
    out = np.empty((n_k, n_h, n_w), dtype=gray.dtype)
    rows = max(1, (tile_pixels or TILE_PIXELS) // max(n_w, 1))
    for top in range(0, n_h, rows):
        bottom = min(n_h, top + rows)
        strip = padded[top : bottom + f - 1][None, None]  # (1, 1, rows + f - 1, W + 2 p_W)
        out[:, top:bottom] = conv2d(strip, w4, padding=0)[0]  # (n_K, rows, n_W)
    return out


def detect(
    image: np.ndarray,
    kernel: str = "sobel",
    threshold: float | None = None,
    padding: int | tuple[int, int] | str = "same",
    *,
    pad_mode: PadMode = "replicate",
    direction: Direction = "both",
) -> np.ndarray:
    """Edge map of an image.

    Args:
        image: (H, W) grayscale or (H, W, 3) RGB array (e.g. from ``cnnkit.io.load_image``, in
            [0, 1]). RGB is converted to ITU-R 601 luma first; values are not rescaled.
        kernel: one of ``vertical``, ``horizontal``, ``sobel``, ``scharr``, ``prewitt``,
            ``laplacian`` (see :mod:`cnnkit.edges.kernels`).
        threshold: if given, return a boolean (n_H, n_W) map ``|response| >= threshold``
            instead of the response. In the response's units: a step of height h (0..1) across a
            straight edge gives ``3h`` with vertical/horizontal/prewitt, ``4h`` with Sobel and
            ``16h`` with Scharr, ``h`` with the Laplacian.
        padding: ``"same"`` (default, output size H x W), ``"valid"`` (no padding, output
            (H - 2) x (W - 2), as in the notes' 6x6 -> 4x4), or an int / pair p.
        pad_mode: how the padding is filled: ``"replicate"`` (default; repeats the border pixel,
            so the image frame is not detected as an edge), ``"zeros"`` (the notes' zero
            padding) or ``"reflect"``.
        direction: for gradient kernels only: ``"both"`` (default) gives the magnitude
            ``sqrt(g_x^2 + g_y^2)``; ``"x"`` the signed response to vertical edges; ``"y"`` to
            horizontal edges.

    Returns:
        (n_H, n_W) float32 (float64 for a float64 image): the magnitude (>= 0) for gradient
        kernels with ``direction="both"``, otherwise the signed response (positive where the
        left/top side is brighter for vertical/horizontal/x/y; for the Laplacian, positive on the
        dark side of an edge). A bool array when ``threshold`` is given.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((6, 6)); image[:, :3] = 10
        >>> detect(image, "vertical", padding="valid")[0]
        array([ 0., 30., 30.,  0.])
    """
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"kernel should be one of {', '.join(KERNEL_NAMES)}. Got {kernel!r}")
    if direction not in ("both", "x", "y"):
        raise ValueError(f"direction should be 'both', 'x' or 'y'. Got {direction!r}")
    if threshold is not None and not threshold >= 0:
        raise ValueError(f"threshold should be a number >= 0. Got {threshold!r}")
    gray = to_grayscale(image)
    kernels = get_kernels(kernel)
    if kernel in GRADIENT_KERNELS and direction != "both":
        kernels = (kernels[0],) if direction == "x" else (kernels[1],)
    weight = np.stack(kernels)  # (n_K, f, f)
    log.debug("edges: %s on %s image, padding %s (%s)", kernel, gray.shape, padding, pad_mode)
    responses = filter_image(gray, weight, padding, pad_mode)  # (n_K, n_H, n_W)
    if len(responses) == 2:
        g_x, g_y = responses
        result = np.multiply(g_x, g_x, out=g_x)
        result += g_y * g_y
        np.sqrt(result, out=result)  # sqrt(g_x^2 + g_y^2)
    else:
        result = responses[0]
    if threshold is not None:
        return np.abs(result) >= threshold
    return result


def is_signed(kernel: str, direction: Direction = "both") -> bool:
    """Whether :func:`detect` gives a signed response (True) or a magnitude (False)."""
    return not (kernel in GRADIENT_KERNELS and direction == "both")


def _robust_scale(values: np.ndarray, percentile: float) -> float:
    """The ``percentile`` of |values| (on a subsample for big arrays), or max(|values|) if 0."""
    flat = np.abs(values).ravel()
    if flat.size == 0:
        return 1.0
    step = max(1, flat.size // 1_000_000)
    scale = float(np.percentile(flat[::step], percentile))
    if not scale > 0:
        scale = float(flat.max())
    return scale if scale > 0 else 1.0


def to_display(
    response: np.ndarray,
    signed: bool | None = None,
    *,
    scale: float | None = None,
    percentile: float = 99.5,
    value_range: float = 1.0,
) -> np.ndarray:
    """Map an edge response to a uint8 picture.

    - A bool map (from ``threshold``): (H, W) uint8, edges white (255) on black (0).
    - ``signed=True``: (H, W, 3) uint8 on a white background, positive responses red and negative
      ones blue, saturating at ``|response| = scale``.
    - ``signed=False``: (H, W) uint8 grayscale, ``|response| / scale`` (white edges on black).

    Args:
        response: (H, W) array from :func:`detect`.
        signed: default: True when the response has negative values.
        scale: the response shown at full strength; default: the ``percentile`` of |response|
            (so a few very strong edges do not make every other edge faint).
        percentile: see ``scale``; 100 gives the maximum.
        value_range: the value range of the image that gave ``response``: 1 for images in
            [0, 1] (``cnnkit.io.load_image``), 255 for uint8 values. Responses up to
            ``NOISE_TOLERANCE * value_range`` are rounding noise and show as zero, so a flat
            image gives a blank map (black; white when signed), not stretched noise.
    """
    if not value_range > 0:
        raise ValueError(f"value_range should be > 0. Got {value_range!r}")
    response = np.asarray(response)
    if response.ndim != 2:
        raise ShapeError(f"expected an (H, W) edge map, got shape {response.shape}")
    if response.dtype == np.bool_:
        return response.astype(np.uint8) * np.uint8(255)
    if signed is None:
        signed = bool(response.size) and float(response.min()) < 0
    floor = NOISE_TOLERANCE * value_range
    response = np.where(np.abs(response) > floor, response, 0)  # a flat image has no edges
    if scale is None:
        scale = _robust_scale(response, percentile)
    if not scale > 0:
        raise ValueError(f"scale should be > 0. Got {scale!r}")
    from cnnkit.io import to_uint8

    v = np.clip(response.astype(np.float32) / np.float32(scale), -1.0, 1.0)
    if not signed:
        return to_uint8(np.abs(v))
    # White at 0; positive fades G and B (red), negative fades R and G (blue).
    fade_pos = 1.0 - np.maximum(v, 0.0)
    fade_neg = 1.0 + np.minimum(v, 0.0)
    return to_uint8(np.stack([fade_neg, fade_pos * fade_neg, fade_pos], axis=-1))


def views(image: np.ndarray, kernel: str = "sobel") -> tuple[np.ndarray, np.ndarray]:
    """The two pictures the web app shows side by side: the signed response and the magnitude.

    For a gradient pair (Sobel, Scharr, Prewitt) the signed picture is the x response (vertical
    edges) and the magnitude ``sqrt(g_x^2 + g_y^2)``; for the others, the response and its
    absolute value. Returns ``(signed (H, W, 3) uint8, magnitude (H, W) uint8)``.
    """
    signed = detect(image, kernel, direction="x") if kernel in GRADIENT_KERNELS else None
    response = detect(image, kernel)
    if signed is None:
        signed = response
        response = np.abs(response)
    return to_display(signed, signed=True), to_display(response, signed=False)
