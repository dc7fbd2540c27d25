"""detect(): the course's examples, hand-computed values, and independent references (SciPy,
scikit-image) up to their documented scale."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage import filters

from cnnkit.conv import pad
from cnnkit.edges import KERNEL_NAMES, detect, filter_image, get_kernels, to_grayscale
from cnnkit.errors import ShapeError


def course_image() -> np.ndarray:
    """The notes' 6x6 image: left half 10, right half 0."""
    image = np.zeros((6, 6))
    image[:, :3] = 10
    return image


# --- the course's examples -----------------------------------------------------------------


def test_course_vertical_edge_example() -> None:
    out = detect(course_image(), "vertical", padding="valid")
    assert out.shape == (4, 4)
    np.testing.assert_array_equal(out, np.tile([0.0, 30.0, 30.0, 0.0], (4, 1)))


def test_course_example_with_integer_pixels() -> None:
    out = detect(course_image().astype(np.uint8), "vertical", padding="valid")
    assert out.dtype == np.float32  # values are not rescaled, only cast
    np.testing.assert_array_equal(out[0], [0, 30, 30, 0])


def test_dark_to_bright_edge_is_negative() -> None:
    out = detect(course_image()[:, ::-1], "vertical", padding="valid")
    np.testing.assert_array_equal(out, np.tile([0.0, -30.0, -30.0, 0.0], (4, 1)))


def test_horizontal_detector_on_top_bottom_image() -> None:
    image = course_image().T  # top half 10, bottom half 0
    out = detect(image, "horizontal", padding="valid")
    np.testing.assert_array_equal(out, np.tile([[0.0], [30.0], [30.0], [0.0]], (1, 4)))
    # The vertical detector does not see a horizontal edge, and vice versa.
    np.testing.assert_array_equal(detect(image, "vertical", padding="valid"), 0.0)
    np.testing.assert_array_equal(detect(course_image(), "horizontal", padding="valid"), 0.0)


def test_course_padding_example_6x6_to_8x8_keeps_6x6() -> None:
    image = course_image()
    assert pad(image[None, None], 1).shape == (1, 1, 8, 8)  # p = 1: 6x6 -> 8x8
    out = detect(image, "vertical", padding=1, pad_mode="zeros")
    assert out.shape == (6, 6)  # n + 2p - f + 1 = 6 + 2 - 3 + 1
    # Worked by hand: columns see (left - right) of the padded image; rows 0 and 5 have one
    # row of padding zeros inside their window, so they count 2 rows instead of 3.
    inner = [-30.0, 0.0, 30.0, 30.0, 0.0, 0.0]
    border = [-20.0, 0.0, 20.0, 20.0, 0.0, 0.0]
    np.testing.assert_array_equal(out, [border, inner, inner, inner, inner, border])
    np.testing.assert_array_equal(out, detect(image, "vertical", padding="same", pad_mode="zeros"))


# --- hand-computed gradient kernels ---------------------------------------------------------


@pytest.mark.parametrize(("kernel", "weight"), [("sobel", 4), ("scharr", 16), ("prewitt", 3)])
def test_gradients_on_a_ramp(kernel: str, weight: float) -> None:
    ramp = np.tile(np.arange(3.0), (3, 1))  # image[i, j] = j: brighter to the right
    # g_x = sum_rows w_row * (left - right) = weight * (0 - 2); g_y = 0.
    np.testing.assert_array_equal(
        detect(ramp, kernel, padding="valid", direction="x"), [[-2 * weight]]
    )
    np.testing.assert_array_equal(detect(ramp, kernel, padding="valid", direction="y"), [[0.0]])
    np.testing.assert_array_equal(detect(ramp, kernel, padding="valid"), [[2 * weight]])


@pytest.mark.parametrize(("kernel", "weight"), [("sobel", 4), ("scharr", 16), ("prewitt", 3)])
def test_gradient_magnitude_on_a_diagonal_ramp(kernel: str, weight: float) -> None:
    i, j = np.mgrid[0:3, 0:3]
    image = (i + j).astype(np.float64)  # g_x = g_y = -2 * weight
    np.testing.assert_allclose(detect(image, kernel, padding="valid"), [[2 * weight * np.sqrt(2)]])


def test_laplacian_by_hand() -> None:
    image = np.zeros((3, 3))
    image[1, 1] = 1.0  # a single bright pixel
    out = detect(image, "laplacian", padding=1, pad_mode="zeros")
    np.testing.assert_array_equal(out, [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    ramp = np.tile(np.arange(5.0), (5, 1))
    np.testing.assert_array_equal(detect(ramp, "laplacian", padding="valid"), 0.0)  # linear


# --- independent references ------------------------------------------------------------------


def test_sobel_x_y_match_scipy_ndimage(rng: np.random.Generator) -> None:
    image = rng.random((37, 53))
    # scipy's sobel is the derivative d/dx (right - left); ours is the course's left - right.
    expected_x = -ndimage.sobel(image, axis=1, mode="nearest")
    expected_y = -ndimage.sobel(image, axis=0, mode="nearest")
    np.testing.assert_allclose(detect(image, "sobel", direction="x"), expected_x, atol=1e-12)
    np.testing.assert_allclose(detect(image, "sobel", direction="y"), expected_y, atol=1e-12)


@pytest.mark.parametrize(
    ("kernel", "scale"),
    [("sobel", 4 * np.sqrt(2)), ("scharr", 16 * np.sqrt(2)), ("prewitt", 3 * np.sqrt(2))],
)
def test_magnitude_matches_scikit_image_up_to_scale(
    rng: np.random.Generator, kernel: str, scale: float
) -> None:
    # scikit-image normalises the smoothing weights (sum 1) and averages the squared
    # gradients over the 2 axes; its mode="reflect" equals our replicate padding for 3x3.
    image = rng.random((41, 29))
    reference = getattr(filters, kernel)(image)
    np.testing.assert_allclose(detect(image, kernel), scale * reference, rtol=1e-10, atol=1e-12)


def test_laplacian_matches_scipy(rng: np.random.Generator) -> None:
    image = rng.random((17, 23))
    expected = ndimage.laplace(image, mode="nearest")
    np.testing.assert_allclose(detect(image, "laplacian"), expected, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kernel=st.sampled_from(KERNEL_NAMES),
    mode=st.sampled_from(["zeros", "replicate", "reflect"]),
    tile=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_strips_match_scipy_correlate(
    h: int, w: int, kernel: str, mode: str, tile: int, seed: int
) -> None:
    # Any strip height gives the same result as SciPy's correlate on the whole image.
    if mode == "reflect" and (h < 2 or w < 2):
        h, w = max(h, 2), max(w, 2)
    image = np.random.default_rng(seed).standard_normal((h, w))
    weight = np.stack(get_kernels(kernel))
    got = filter_image(image, weight, "same", mode, tile_pixels=tile)
    scipy_mode = {"zeros": "constant", "replicate": "nearest", "reflect": "mirror"}[mode]
    for k in range(len(weight)):
        expected = ndimage.correlate(image, weight[k], mode=scipy_mode)
        np.testing.assert_allclose(got[k], expected, atol=1e-12)


# --- grayscale, dtypes, shapes ----------------------------------------------------------------


def test_rgb_goes_through_itu_601_luma(rng: np.random.Generator) -> None:
    rgb = rng.random((9, 11, 3)).astype(np.float32)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(to_grayscale(rgb), luma, rtol=1e-6)
    np.testing.assert_allclose(detect(rgb, "sobel"), detect(luma, "sobel"), rtol=1e-5, atol=1e-6)
    rgba = np.concatenate([rgb, np.zeros((9, 11, 1), np.float32)], axis=2)
    np.testing.assert_allclose(to_grayscale(rgba), luma, rtol=1e-6)  # alpha ignored


def test_green_weighs_more_than_blue() -> None:
    image = np.zeros((5, 6, 3))
    image[:, :3, 1] = 1.0  # green | black
    green = detect(image, "vertical", padding="valid")
    image[:, :3] = [0, 0, 1.0]  # blue | black
    blue = detect(image, "vertical", padding="valid")
    np.testing.assert_allclose(green.max(), 3 * 0.587)
    np.testing.assert_allclose(blue.max(), 3 * 0.114)


def test_dtypes_and_shapes(rng: np.random.Generator) -> None:
    image64 = rng.random((8, 10))
    assert detect(image64).dtype == np.float64
    assert detect(image64.astype(np.float32)).dtype == np.float32
    assert detect(image64[:, :, None]).shape == (8, 10)
    assert detect(image64, padding="valid").shape == (6, 8)
    assert detect(image64, padding=(2, 0)).shape == (10, 8)


def test_flat_image_has_no_edges_with_replicate_padding() -> None:
    flat = np.full((7, 9), 0.8)
    np.testing.assert_allclose(detect(flat, "sobel"), 0.0, atol=1e-12)
    framed = detect(flat, "sobel", pad_mode="zeros")  # zero padding invents a frame
    assert framed[0].min() > 3.0 and abs(framed[3, 4]) < 1e-12


def test_bad_inputs() -> None:
    with pytest.raises(ShapeError, match="shape"):
        detect(np.zeros((4, 4, 2)))
    with pytest.raises(ShapeError, match="does not fit"):
        detect(np.zeros((2, 5)), padding="valid")
    with pytest.raises(ValueError, match="kernel should be one of"):
        detect(np.zeros((4, 4)), "canny")
    with pytest.raises(ValueError, match="padding"):
        detect(np.zeros((4, 4)), padding="full")
    with pytest.raises(ValueError, match="pad_mode"):
        detect(np.zeros((4, 4)), pad_mode="wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction"):
        detect(np.zeros((4, 4)), direction="z")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        detect(np.zeros((4, 4)), threshold=-1)


# --- threshold --------------------------------------------------------------------------------


def test_threshold_gives_a_binary_map(rng: np.random.Generator) -> None:
    image = rng.random((12, 15))
    magnitude = detect(image, "sobel")
    t = float(np.median(magnitude))
    binary = detect(image, "sobel", threshold=t)
    assert binary.dtype == np.bool_ and binary.shape == magnitude.shape
    np.testing.assert_array_equal(binary, magnitude >= t)
    assert 0 < binary.sum() < binary.size
    assert detect(image, "sobel", threshold=0).all()
    assert not detect(image, "sobel", threshold=magnitude.max() + 1).any()


def test_threshold_counts_both_signs_of_a_signed_response() -> None:
    image = np.zeros((6, 9))
    image[:, 3:6] = 10  # a bright stripe: a negative edge then a positive one
    response = detect(image, "vertical", padding="valid")
    assert response.min() == -30 and response.max() == 30
    binary = detect(image, "vertical", threshold=30, padding="valid")
    np.testing.assert_array_equal(binary, np.abs(response) >= 30)
    np.testing.assert_array_equal(binary[0], [False, True, True, False, True, True, False])
