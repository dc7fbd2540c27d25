"""to_display(): signed responses in red/blue on white, magnitudes in gray, binary maps."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.edges import detect, is_signed, to_display
from cnnkit.errors import ShapeError


def test_signed_positive_red_negative_blue_zero_white() -> None:
    response = np.array([[30.0, -30.0, 0.0, 15.0]])
    rgb = to_display(response, signed=True, scale=30.0)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[0, 1], [0, 0, 255])
    np.testing.assert_array_equal(rgb[0, 2], [255, 255, 255])
    np.testing.assert_array_equal(rgb[0, 3], [255, 128, 128])  # half strength: pink


def test_signed_is_inferred_from_negative_values() -> None:
    assert to_display(np.array([[-1.0, 1.0]])).shape == (1, 2, 3)
    assert to_display(np.array([[0.0, 1.0]])).shape == (1, 2)


def test_course_example_shows_the_edge_in_red() -> None:
    image = np.zeros((6, 6))
    image[:, :3] = 10
    rgb = to_display(detect(image, "vertical", padding="valid"), signed=True)
    np.testing.assert_array_equal(rgb[:, 1:3], 255 * np.array([1, 0, 0]) + np.zeros((4, 2, 3)))
    np.testing.assert_array_equal(rgb[:, [0, 3]], 255)


def test_magnitude_is_grayscale_saturating_at_scale() -> None:
    gray = to_display(np.array([[0.0, 1.0, 2.0, 4.0]]), signed=False, scale=2.0)
    assert gray.dtype == np.uint8
    np.testing.assert_array_equal(gray, [[0, 128, 255, 255]])


def test_default_scale_is_a_high_percentile(rng: np.random.Generator) -> None:
    response = rng.random((100, 100))
    response[0, 0] = 1000.0  # one outlier does not make everything else black
    gray = to_display(response, signed=False)
    assert gray[0, 0] == 255 and np.median(gray) > 100
    full = to_display(response, signed=False, percentile=100)
    assert np.median(full) < 2


def test_binary_map_is_black_and_white() -> None:
    binary = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(to_display(binary), [[255, 0], [0, 255]])


def test_all_zero_response_does_not_divide_by_zero() -> None:
    np.testing.assert_array_equal(to_display(np.zeros((3, 3)), signed=False), 0)
    np.testing.assert_array_equal(to_display(np.zeros((3, 3)), signed=True), 255)


def test_bad_display_inputs() -> None:
    with pytest.raises(ShapeError):
        to_display(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="scale"):
        to_display(np.ones((2, 2)), scale=0.0)


@pytest.mark.parametrize(
    ("kernel", "signed"),
    [
        ("sobel", False),
        ("scharr", False),
        ("prewitt", False),
        ("vertical", True),
        ("laplacian", True),
    ],
)
def test_is_signed(kernel: str, signed: bool) -> None:
    assert is_signed(kernel) is signed
    assert is_signed(kernel, "x") is (True if kernel in ("sobel", "scharr", "prewitt") else signed)
