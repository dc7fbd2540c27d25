"""Edge-detection kernels, as (f, f) float64 arrays to cross-correlate with an image.

Each kernel is written the way deep learning applies it: cross-correlation (no flip), so the
vertical detector ``[[1, 0, -1]] * 3`` responds positively where the image is bright on the left
and dark on the right, exactly the course's 6x6 example (output 30 on the edge).

Gradient pairs (Sobel, Scharr, Prewitt) return ``(k_x, k_y)``: ``k_x`` finds vertical edges (a
change along the width, x) and ``k_y = k_x.T`` finds horizontal edges (a change along the height,
y). With cross-correlation, ``k_x`` gives ``left - right`` and ``k_y`` gives ``top - bottom``.

All functions build a fresh array each call, so callers may modify what they get.
"""

from __future__ import annotations

import numpy as np

#: Names accepted by :func:`cnnkit.edges.detect` and ``cnnkit edges --kernel``.
KERNEL_NAMES: tuple[str, ...] = (
    "vertical",
    "horizontal",
    "sobel",
    "scharr",
    "prewitt",
    "laplacian",
)

#: The kernels that come as an x/y pair and default to the gradient magnitude.
GRADIENT_KERNELS: tuple[str, ...] = ("sobel", "scharr", "prewitt")


def vertical() -> np.ndarray:
    """The course's 3x3 vertical edge detector ``[[1, 0, -1]] * 3``.

    Bright-left/dark-right edges give a positive response, dark-left/bright-right negative.

    >>> vertical()
    array([[ 1.,  0., -1.],
           [ 1.,  0., -1.],
           [ 1.,  0., -1.]])
    """
    return np.array([[1.0, 0.0, -1.0]] * 3)


def horizontal() -> np.ndarray:
    """The 3x3 horizontal edge detector, the transpose of :func:`vertical`.

    Bright-top/dark-bottom edges give a positive response.

    >>> horizontal()
    array([[ 1.,  1.,  1.],
           [ 0.,  0.,  0.],
           [-1., -1., -1.]])
    """
    return vertical().T.copy()


def _pair(center_weight: float, side_weight: float) -> tuple[np.ndarray, np.ndarray]:
    column = np.array([side_weight, center_weight, side_weight])
    k_x = np.outer(column, [1.0, 0.0, -1.0])  # (3, 3): smooth along y, difference along x
    return k_x, k_x.T.copy()


def sobel() -> tuple[np.ndarray, np.ndarray]:
    """Sobel pair ``(k_x, k_y)``: the vertical detector with the centre row weighted 2.

    ``k_x = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]`` and ``k_y = k_x.T``.
    """
    return _pair(2.0, 1.0)


def scharr() -> tuple[np.ndarray, np.ndarray]:
    """Scharr pair ``(k_x, k_y)``: ``[[3, 0, -3], [10, 0, -10], [3, 0, -3]]`` and its transpose.

    Better rotational symmetry than Sobel: the magnitude depends less on the edge's angle.
    """
    return _pair(10.0, 3.0)


def prewitt() -> tuple[np.ndarray, np.ndarray]:
    """Prewitt pair ``(k_x, k_y)``: :func:`vertical` and :func:`horizontal` (equal weights)."""
    return _pair(1.0, 1.0)


def laplacian() -> np.ndarray:
    """The 4-neighbour Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``.

    A second derivative: zero on flat areas and on linear ramps, of opposite signs on the two
    sides of an edge (its zero crossing marks the edge).
    """
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def get_kernels(name: str) -> tuple[np.ndarray, ...]:
    """The kernel(s) for ``name``: two arrays ``(k_x, k_y)`` for a gradient kernel, else one.

    Raises:
        ValueError: an unknown name (the message lists the allowed ones).
    """
    builders = {
        "vertical": lambda: (vertical(),),
        "horizontal": lambda: (horizontal(),),
        "sobel": sobel,
        "scharr": scharr,
        "prewitt": prewitt,
        "laplacian": lambda: (laplacian(),),
    }
    if name not in builders:
        raise ValueError(f"kernel should be one of {', '.join(KERNEL_NAMES)}. Got {name!r}")
    return tuple(builders[name]())
