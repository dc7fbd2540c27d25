"""Every user error of cnnkit.conv is a ShapeError with a message that says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.conv import (
    Dense,
    SoftmaxCrossEntropy,
    conv2d,
    conv2d_backward,
    max_pool2d,
    output_size,
    pad,
    same_padding,
)
from cnnkit.errors import CnnkitError, ShapeError


def test_output_size_formula():
    assert output_size(6, 3) == 4
    assert output_size(6, 3, p=1) == 6
    assert output_size(7, 3, p=0, s=2) == 3
    assert output_size(224, 3, p=1, s=2) == 112
    assert output_size(5, 5) == 1


@pytest.mark.parametrize("n,f,p", [(2, 3, 0), (4, 7, 1), (0, 1, 0)])
def test_output_size_filter_does_not_fit(n, f, p):
    with pytest.raises(ShapeError, match=f"filter of size {f} does not fit an input of size {n}"):
        output_size(n, f, p)


def test_output_size_rejects_bad_numbers():
    with pytest.raises(ShapeError, match="invalid sizes"):
        output_size(5, 3, 0, 0)
    with pytest.raises(ShapeError, match="invalid sizes"):
        output_size(5, 3, -1, 1)


def test_same_padding():
    assert [same_padding(f) for f in (1, 3, 5, 7)] == [0, 1, 2, 3]
    with pytest.raises(ShapeError, match="even filter size 4"):
        same_padding(4)
    with pytest.raises(ShapeError, match="must be >= 1"):
        same_padding(0)


def test_pad_6x6_to_8x8():
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    y = pad(x, 1)
    assert y.shape == (1, 1, 8, 8)
    np.testing.assert_array_equal(y[0, 0, 1:-1, 1:-1], x[0, 0])
    assert y[0, 0, 0].sum() == y[0, 0, -1].sum() == y[0, 0, :, 0].sum() == y[0, 0, :, -1].sum() == 0
    assert pad(x, (1, 2)).shape == (1, 1, 8, 10)
    assert pad(x, (0, 1, 2, 3)).shape == (1, 1, 7, 11)
    with pytest.raises(ShapeError, match="padding must be >= 0"):
        pad(x, -1)


def test_conv2d_filter_does_not_fit():
    with pytest.raises(ShapeError, match="filter 5x5 does not fit the padded input 4x4"):
        conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 5, 5)))


@pytest.mark.parametrize(
    "x_shape,w_shape,match",
    [
        ((3, 8, 8), (2, 3, 3, 3), r"x must be 4-D NCHW .* got shape \(3, 8, 8\)"),
        ((1, 3, 8, 8), (3, 3, 3), r"weight must be 4-D"),
        ((1, 3, 8, 8), (2, 4, 3, 3), "input has 3 channels but the weight expects 4"),
    ],
)
def test_conv2d_wrong_shapes(x_shape, w_shape, match):
    with pytest.raises(ShapeError, match=match):
        conv2d(np.zeros(x_shape), np.zeros(w_shape))


def test_conv2d_missing_batch_axis_hint():
    with pytest.raises(ShapeError) as err:
        conv2d(np.zeros((3, 8, 8)), np.zeros((2, 3, 3, 3)))
    assert "x[None]" in str(err.value)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(padding="full"), "padding string must be 'valid' or 'same', got 'full'"),
        (dict(padding="same", stride=2), "padding='same' needs stride 1"),
        (dict(padding=-1), "padding must be >= 0"),
        (dict(padding=(1, 2, 3)), "padding must be an int or a pair of ints"),
        (dict(stride=0), "stride must be >= 1"),
        (dict(bias=np.zeros(3)), r"bias must have shape \(2,\)"),
    ],
)
def test_conv2d_bad_arguments(kwargs, match):
    with pytest.raises(ShapeError, match=match):
        conv2d(np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3)), **kwargs)


def test_conv2d_backward_bad_arguments():
    x, w = np.zeros((1, 3, 8, 8)), np.zeros((2, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"dout must have shape \(1, 2, 6, 6\)"):
        conv2d_backward(np.zeros((1, 2, 5, 5)), x, w)
    with pytest.raises(ShapeError, match="needs a ConvCache"):
        conv2d_backward(np.zeros((1, 2, 6, 6)), x)


def test_pool_errors():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ShapeError, match="more than half the kernel"):
        max_pool2d(x, 2, padding=2)
    with pytest.raises(ShapeError, match="does not fit"):
        max_pool2d(x, 5)
    with pytest.raises(ShapeError, match="x must be 4-D"):
        max_pool2d(x[0], 2)


def test_layer_errors():
    with pytest.raises(ShapeError, match=r"Dense expects \(m, 5\), got \(2, 4\)"):
        Dense(5, 3).forward(np.zeros((2, 4), np.float32))
    ce = SoftmaxCrossEntropy()
    with pytest.raises(ShapeError, match=r"labels must be in \[0, 3\)"):
        ce(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ShapeError, match="labels must be 2 integers"):
        ce(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_shape_error_is_a_cnnkit_error_and_a_value_error():
    with pytest.raises(ShapeError) as err:
        conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    assert isinstance(err.value, CnnkitError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)
