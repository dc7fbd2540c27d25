"""conv2d against torch on fixed shapes, and the course's 6x6 vertical-edge example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.conv import conv2d, conv2d_backward, conv2d_forward, convolve2d

CASES = [
    # n, c, h, w, o, fh, fw, stride, padding
    (2, 3, 7, 9, 4, 3, 3, 1, 1),
    (2, 5, 11, 8, 3, 2, 4, 2, (1, 2)),
    (2, 70, 9, 10, 5, 3, 3, 3, 1),
    (1, 2, 5, 5, 3, 4, 2, 1, "same"),
    (3, 40, 12, 13, 7, 5, 3, 2, 2),
    (2, 4, 10, 10, 3, 1, 1, 2, "valid"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_conv2d_matches_torch(case, dtype, rng):
    n, c, h, w, o, fh, fw, s, p = case
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p)
    y = conv2d(x, wt, b, stride=s, padding=p)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    g = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    dx, dw, db = conv2d_backward(g, x, wt, s, p)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=tol, atol=tol)


def test_course_vertical_edge_example():
    x = np.zeros((1, 1, 6, 6))
    x[..., :3] = 10.0
    k = np.array([[1.0, 0.0, -1.0]] * 3)[None, None]
    y = conv2d(x, k)[0, 0]
    assert y.shape == (4, 4)
    np.testing.assert_array_equal(y, np.tile([0.0, 30.0, 30.0, 0.0], (4, 1)))


def test_course_horizontal_edge_example():
    x = np.zeros((1, 1, 6, 6), np.float32)
    x[:, :, :3, :] = 10.0
    k = np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.float32)[None, None]
    y = conv2d(x, k)[0, 0]
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.tile([[0.0], [30.0], [30.0], [0.0]], (1, 4)))
    # "same" padding keeps 6x6 (the 6x6 -> 8x8 padded input gives a 6x6 output)
    assert conv2d(x, k, padding=1).shape == conv2d(x, k, padding="same").shape == (1, 1, 6, 6)


def test_convolve2d_flips_kernel(rng):
    x = rng.standard_normal((1, 2, 6, 7))
    k = rng.standard_normal((3, 2, 3, 2))
    np.testing.assert_allclose(convolve2d(x, k), conv2d(x, k[:, :, ::-1, ::-1]))
    assert not np.allclose(convolve2d(x, k), conv2d(x, k))


@pytest.mark.parametrize("c", [2, 40])
def test_empty_batch(c):
    x, w = np.zeros((0, c, 5, 5), np.float32), np.ones((3, c, 3, 3), np.float32)
    y, cache = conv2d_forward(x, w, np.zeros(3, np.float32), 2, 1)
    assert y.shape == tuple(
        torch.nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1
        ).shape
    )
    dx, dw, db = conv2d_backward(y, cache)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


def test_outputs_do_not_alias_reused_scratch_buffers(rng):
    """The wide temporaries are reused between calls; results must not change afterwards."""
    x1, x2 = rng.standard_normal((2, 2, 40, 36, 36)).astype(np.float32)
    w = rng.standard_normal((8, 40, 3, 3)).astype(np.float32)
    y1, c1 = conv2d_forward(x1, w, None, 1, 1)
    assert not c1.plan.im2col  # the path that uses the scratch buffers
    g1 = rng.standard_normal(y1.shape).astype(np.float32)
    dx1, dw1, _ = conv2d_backward(g1, c1)
    keep = [a.copy() for a in (y1, dx1, dw1)]
    y2, c2 = conv2d_forward(x2, w, None, 1, 1)
    conv2d_backward(-g1, c2)
    for before, after in zip(keep, (y1, dx1, dw1), strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(y2, conv2d(x2, w, padding=1), rtol=1e-6)
