"""The stride-2 3x3 row-phase path (Winograd F(2, 2) on the odd rows): forward and backward
against torch and the float64 naive oracle, chunking, the "auto" rule, mixing it with the direct
path, and the algorithm= option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnkit.conv.polyphase as pp
from cnnkit.conv import conv2d, conv2d_backward, conv2d_forward
from cnnkit.conv.naive import conv2d_backward_naive, conv2d_naive
from cnnkit.conv.plan import POLYPHASE_MIN_C_IN, POLYPHASE_MIN_C_OUT, POLYPHASE_MIN_SIZE
from cnnkit.errors import ShapeError

#: float32 error bound, max |Z - Z_ref| / max |Z_ref| against the float64 naive loops (that of
#: the direct path in test_winograd; docs/conv.md has the measured values).
F32_BOUND = 3e-6


def _torch(x, wt, b, padding, g):
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, wt))
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.conv2d(tx, tw, tb, stride=2, padding=padding)
    y.backward(torch.tensor(g))
    db = None if tb is None else tb.grad.numpy()
    return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), db


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 5),
    k=st.integers(1, 4),
    h=st.integers(1, 16),
    w=st.integers(1, 16),
    padding=st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3))),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_forward_and_backward_match_torch_float64(n, c, k, h, w, padding, bias, seed):
    """Odd and even sizes (an odd n_H computes a spare row), asymmetric and large padding."""
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return  # the filter does not fit: test_errors covers that message
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))
    b = rng.standard_normal(k) if bias else None
    y, cache = conv2d_forward(x, wt, b, 2, padding, algorithm="polyphase")
    assert cache.polyphase
    g = rng.standard_normal(y.shape)
    got = (y, *conv2d_backward(g, cache))
    for mine, ref in zip(got, _torch(x, wt, b, padding, g), strict=True):
        if ref is None:
            assert mine is None
            continue
        assert mine.shape == ref.shape and mine.dtype == np.float64
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("c", [16, 64, 256])
def test_float32_error_bound_against_float64_naive(c):
    """The forward in float32 (and the backward from its cache) against the loops of the notes;
    the direct path must meet the same bound."""
    rng = np.random.default_rng(c)
    x = rng.standard_normal((2, c, 13, 12))
    wt = rng.standard_normal((3, c, 3, 3)) / np.sqrt(9 * c)
    b = rng.standard_normal(3)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, wt, b))
    ref = conv2d_naive(x, wt, b, 2, 1)
    g = rng.standard_normal(ref.shape)
    refs = (ref, *conv2d_backward_naive(g, x, wt, 2, 1)[:2])
    for algorithm in ("polyphase", "direct"):
        y, cache = conv2d_forward(x32, w32, b32, 2, 1, algorithm=algorithm)
        dx, dw, _ = conv2d_backward(g.astype(np.float32), cache)
        for mine, want in zip((y, dx, dw), refs, strict=True):
            assert mine.dtype == np.float32
            err = np.abs(mine - want).max() / np.abs(want).max()
            assert err <= F32_BOUND, (algorithm, c, err)


@pytest.mark.parametrize(("chunk_bytes", "min_cols"), [(1, 1), (1, 30), (2**30, 1)])
def test_chunks_of_one_image_several_and_the_whole_batch_agree(chunk_bytes, min_cols, monkeypatch):
    """One image per chunk, two per chunk with a smaller last chunk (5 images), all at once:
    forward and backward."""
    monkeypatch.setattr(pp, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(pp, "CHUNK_MIN_COLS", min_cols)  # 30 columns: 2 images of 5 x 3 pairs
    rng = np.random.default_rng(1)
    x, wt = rng.standard_normal((5, 3, 11, 10)), rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    y, cache = conv2d_forward(x, wt, b, 2, 1, algorithm="polyphase")
    g = rng.standard_normal(y.shape)
    for mine, ref in zip((y, *conv2d_backward(g, cache)), _torch(x, wt, b, 1, g), strict=True):
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


def test_auto_picks_polyphase_for_wide_float32_stride2_3x3_layers(rng):
    c, k, s = POLYPHASE_MIN_C_IN, POLYPHASE_MIN_C_OUT, POLYPHASE_MIN_SIZE
    x = rng.standard_normal((1, c, 2 * s, 2 * s)).astype(np.float32)
    w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    assert conv2d_forward(x, w, None, 2, 1)[1].polyphase  # output s x s
    assert not conv2d_forward(x, w, None, 2, 1, algorithm="direct")[1].polyphase
    assert not conv2d_forward(x.astype(np.float64), w, None, 2, 1)[1].polyphase  # exact mode
    assert not conv2d_forward(x[:, :-1], w[:, :-1], None, 2, 1)[1].polyphase  # few in
    assert not conv2d_forward(x, w[:-1], None, 2, 1)[1].polyphase  # few out
    assert not conv2d_forward(x[..., :-4, :], w, None, 2, 1)[1].polyphase  # small output
    assert not conv2d_forward(x, w, None, 1, 1)[1].polyphase  # stride 1
    assert not conv2d_forward(x, w[..., :2, :2], None, 2, 1)[1].polyphase  # 2x2 filter


def test_polyphase_and_direct_backward_agree_from_either_cache(rng):
    """The polyphase backward (its own, or forced on a direct cache) and the direct one (its own,
    or forced on a polyphase cache, which keeps only x) give the same gradients, on a layer with
    an im2col plan and one with an "offsets" plan."""
    for shape in ((3, 33, 12, 14), (1, 32, 66, 64)):
        x = rng.standard_normal(shape)
        w = rng.standard_normal((5, shape[1], 3, 3))
        b = rng.standard_normal(5)
        y, cache = conv2d_forward(x, w, b, 2, 1, algorithm="polyphase")
        y_d, cache_d = conv2d_forward(x, w, b, 2, 1, algorithm="direct")
        np.testing.assert_allclose(y, y_d, rtol=1e-9, atol=1e-9)
        assert cache.xp is None and cache.cols is None and cache.z is None  # only x kept
        g = rng.standard_normal(y.shape)
        want = conv2d_backward(g, cache_d)
        for got in (
            conv2d_backward(g, cache),
            conv2d_backward(g, cache, algorithm="direct"),
            conv2d_backward(g, cache_d, algorithm="polyphase"),
            conv2d_backward(g, x, w, 2, 1, algorithm="polyphase"),
        ):
            for mine, ref in zip(got, want, strict=True):
                np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("stride", "f", "padding"),
    [(1, 3, 1), (2, 5, 2), ((2, 1), 3, 1)],
)
def test_polyphase_on_other_layers_raises_shape_error(stride, f, padding, rng):
    x, w = rng.standard_normal((1, 2, 9, 9)), rng.standard_normal((2, 2, f, f))
    with pytest.raises(ShapeError, match="needs a 3x3 filter and stride 2"):
        conv2d(x, w, None, stride, padding, algorithm="polyphase")
