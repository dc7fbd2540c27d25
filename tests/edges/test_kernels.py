"""The kernels: the course's values, transposes, zero sums, fresh arrays."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.edges import (
    GRADIENT_KERNELS,
    KERNEL_NAMES,
    get_kernels,
    horizontal,
    laplacian,
    prewitt,
    scharr,
    sobel,
    vertical,
)


def test_vertical_is_the_course_detector() -> None:
    np.testing.assert_array_equal(vertical(), [[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    assert vertical().dtype == np.float64


def test_horizontal_is_the_transpose() -> None:
    np.testing.assert_array_equal(horizontal(), [[1, 1, 1], [0, 0, 0], [-1, -1, -1]])


@pytest.mark.parametrize(
    ("pair", "center", "side"), [(sobel, 2, 1), (scharr, 10, 3), (prewitt, 1, 1)]
)
def test_gradient_pairs(pair, center: float, side: float) -> None:
    k_x, k_y = pair()
    expected = [[side, 0, -side], [center, 0, -center], [side, 0, -side]]
    np.testing.assert_array_equal(k_x, expected)
    np.testing.assert_array_equal(k_y, k_x.T)


def test_laplacian() -> None:
    np.testing.assert_array_equal(laplacian(), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_every_kernel_ignores_flat_regions(name: str) -> None:
    kernels = get_kernels(name)
    assert len(kernels) == (2 if name in GRADIENT_KERNELS else 1)
    for k in kernels:
        assert k.shape == (3, 3) and k.dtype == np.float64
        assert k.sum() == 0.0


def test_kernels_are_fresh_arrays() -> None:
    k = vertical()
    k[:] = 99
    np.testing.assert_array_equal(vertical()[0], [1, 0, -1])
    k_x, _ = sobel()
    k_x[:] = 0
    assert sobel()[0][1, 0] == 2


def test_unknown_kernel_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="sobel.*Got 'canny'"):
        get_kernels("canny")
