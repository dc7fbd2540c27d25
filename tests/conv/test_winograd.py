"""Winograd F(m x m, 3 x 3): its matrices, forward and backward against torch and the float64
naive oracle, the float32 error bound per tile size, chunking, and the algorithm= option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnkit.conv.winograd as wg
from cnnkit.conv import conv2d, conv2d_backward, conv2d_forward
from cnnkit.conv.naive import conv2d_backward_naive, conv2d_naive
from cnnkit.errors import ShapeError

#: float32 error of each path, max |Z - Z_ref| / max |Z_ref| against the float64 naive loops,
#: for n_C_prev up to 256 (docs/conv.md has the measured values; these bounds are ~3x above).
F32_BOUND = {"direct": 3e-6, "winograd2": 3e-6, "winograd4": 3e-5, "winograd6": 6e-5}


@pytest.mark.parametrize("m", [2, 4, 6])
def test_one_dimensional_identity_is_correlation(m, rng):
    """y = A^T [(G g) * (B^T d)] is the correlation of d (m + 2 taps) with g (3 taps)."""
    bt, g, at = wg.toom_cook(m)
    assert bt.shape == (m + 2, m + 2) and g.shape == (m + 2, 3) and at.shape == (m, m + 2)
    np.testing.assert_array_equal(at[:, 1], 1.0)  # point 1: where conv2d_winograd adds the bias
    for _ in range(5):
        d, f = rng.standard_normal(m + 2), rng.standard_normal(3)
        np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), np.correlate(d, f, "valid"), 1e-12)


def test_f2_matrices_are_lavin_and_grays_up_to_signs_per_point():
    """For each point i, row i of B^T, row i of G and column i of A^T may change sign as long as
    their product (what the algorithm computes) does not."""
    bt, g, at = wg.toom_cook(2)
    lavin_bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
    lavin_g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    lavin_at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
    for i in range(4):
        signs = []
        for mine, ref in ((bt[i], lavin_bt[i]), (g[i], lavin_g[i]), (at[:, i], lavin_at[:, i])):
            s = 1.0 if np.allclose(mine, ref) else -1.0
            np.testing.assert_allclose(s * mine, ref)
            signs.append(s)
        assert np.prod(signs) == 1.0


def _torch(x, wt, b, padding, g):
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    y = torch.nn.functional.conv2d(tx, tw, tb, padding=padding)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 6),
    k=st.integers(1, 5),
    h=st.integers(1, 17),
    w=st.integers(1, 17),
    padding=st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2))),
    m=st.sampled_from([2, 4, 6]),
    seed=st.integers(0, 2**16),
)
def test_winograd_forward_backward_match_torch_float64(n, c, k, h, w, padding, m, seed):
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return  # the filter does not fit: test_errors covers that message
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, 3, 3))
    b = rng.standard_normal(k)
    y, cache = conv2d_forward(x, wt, b, 1, padding, algorithm=f"winograd{m}")
    assert cache.tile == m
    g = rng.standard_normal(y.shape)
    for mine, ref in zip(
        (y, *conv2d_backward(g, cache)), _torch(x, wt, b, padding, g), strict=True
    ):
        assert mine.shape == ref.shape and mine.dtype == np.float64
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("c", [16, 64, 256])
@pytest.mark.parametrize("algorithm", list(F32_BOUND))
def test_float32_error_bound_against_float64_naive(algorithm, c):
    """Forward, dx and dW in float32 against the float64 loops of the notes."""
    rng = np.random.default_rng(c)
    x = rng.standard_normal((2, c, 10, 9))
    wt = rng.standard_normal((3, c, 3, 3)) / np.sqrt(9 * c)
    g = rng.standard_normal((2, 3, 10, 9))
    x32, w32, g32 = (a.astype(np.float32) for a in (x, wt, g))
    y, cache = conv2d_forward(x32, w32, None, 1, 1, algorithm=algorithm)
    dx, dw, _ = conv2d_backward(g32, cache)
    refs = (conv2d_naive(x, wt, None, 1, 1), *conv2d_backward_naive(g, x, wt, 1, 1)[:2])
    for mine, ref in zip((y, dx, dw), refs, strict=True):
        assert mine.dtype == np.float32
        err = np.abs(mine - ref).max() / np.abs(ref).max()
        assert err <= F32_BOUND[algorithm], (algorithm, c, err)


def test_small_chunks_and_blocks_give_the_same_result(monkeypatch, rng):
    """Bands of tile rows, several images per chunk, many transform blocks, and V with or
    without its spare tiles all agree."""
    x, wt = rng.standard_normal((3, 5, 23, 19)), rng.standard_normal((4, 5, 3, 3))
    g = rng.standard_normal((3, 4, 23, 19))
    ref = _torch(x, wt, np.zeros(4), 1, g)
    for min_cols, block, compact_from in ((40, 7, 0.2), (200, 33, 1.0), (1, 5, 0.0)):
        monkeypatch.setattr(wg, "COMPACT_FROM", compact_from)  # V compacted, wide, compacted
        monkeypatch.setattr(wg, "CHUNK_MIN_COLS", min_cols)
        monkeypatch.setattr(wg, "CHUNK_BYTES", 1)
        monkeypatch.setattr(wg, "BLOCK", block)
        for m in (2, 4):
            chunks = wg.chunks(3, *wg.tiles(23, 19, m), 5, m, 8)
            y, cache = conv2d_forward(x, wt, None, 1, 1, algorithm=f"winograd{m}")
            dx, dw, _ = conv2d_backward(g, cache)
            for mine, want in zip((y, dx, dw), ref[:3], strict=True):
                np.testing.assert_allclose(mine, want, rtol=1e-9, atol=1e-9)
            assert len(chunks) > 1 or chunks[0].images > 1  # bands, or images together


def test_auto_picks_winograd_for_wide_float32_3x3_layers(rng):
    x = rng.standard_normal((1, 32, 12, 12)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    assert conv2d_forward(x, w, None, 1, 1, algorithm="direct")[1].tile == 0
    assert conv2d_forward(x.astype(np.float64), w, None, 1, 1)[1].tile == 0  # float64: exact
    assert conv2d_forward(x[:, :8], w[:, :8], None, 1, 1)[1].tile == 0  # few channels
    assert conv2d_forward(x, w, None, 2, 1)[1].tile == 0  # stride 2
    assert conv2d_forward(x[..., :8, :8], w, None, 1, 1)[1].tile == 0  # small output
    big = rng.standard_normal((1, 32, 16, 20)).astype(np.float32)
    assert conv2d_forward(big, w, None, 1, 1)[1].tile == 4
    assert conv2d_forward(x, w, None, 1, 1)[1].tile == 2  # 12x12


def test_direct_and_winograd_caches_cross_over(rng):
    """A Winograd forward with a direct backward (and the other way round) gives the same
    gradients as running one path throughout."""
    x = rng.standard_normal((2, 33, 9, 10)).astype(np.float32)
    w = rng.standard_normal((34, 33, 3, 3)).astype(np.float32) / 17
    b = rng.standard_normal(34).astype(np.float32)
    y_w, c_w = conv2d_forward(x, w, b, 1, 1, algorithm="winograd4")
    y_d, c_d = conv2d_forward(x, w, b, 1, 1, algorithm="direct")
    np.testing.assert_allclose(y_w, y_d, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal(y_w.shape).astype(np.float32)
    same = conv2d_backward(g, c_d)
    for got in (
        conv2d_backward(g, c_w, algorithm="direct"),
        conv2d_backward(g, c_d, algorithm="winograd2"),
    ):
        for a, b_ in zip(got, same, strict=True):
            np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-3)
    from_inputs = conv2d_backward(g, x, w, 1, 1, algorithm="winograd4")
    np.testing.assert_allclose(from_inputs[1], same[1], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(algorithm="fft"), "algorithm must be one of"),
        (dict(algorithm="winograd", stride=2), "needs a 3x3 filter, stride 1"),
        (dict(algorithm="winograd4", padding=3), "padding <= 2"),
    ],
)
def test_bad_algorithm_requests_raise_shape_error(kwargs, message, rng):
    x, w = rng.standard_normal((1, 2, 8, 8)), rng.standard_normal((2, 2, 3, 3))
    with pytest.raises(ShapeError, match=message):
        conv2d(x, w, **kwargs)
    with pytest.raises(ShapeError, match="needs a 3x3 filter"):
        conv2d(x, rng.standard_normal((2, 2, 5, 5)), padding=2, algorithm="winograd")


@pytest.mark.parametrize("compact_from", [0.0, 1.0])
def test_forward_keeps_v_for_wide_layers_and_backward_reuses_it(compact_from, monkeypatch, rng):
    """From WINOGRAD_KEEP_V_FROM output channels the cache holds V (compacted or wide); the
    gradients it gives equal torch's, and a backward forced to another tile size recomputes V."""
    from cnnkit.conv.plan import WINOGRAD_KEEP_V_FROM

    monkeypatch.setattr(wg, "COMPACT_FROM", compact_from)

    k = WINOGRAD_KEEP_V_FROM
    x, wt = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((k, 3, 3, 3))
    b = rng.standard_normal(k)
    y, cache = conv2d_forward(x, wt, b, 1, 1, algorithm="winograd4")
    assert cache.wino_v is not None and len(cache.wino_v) > 0
    assert conv2d_forward(x, wt[: k - 1], b[: k - 1], 1, 1, "winograd4")[1].wino_v is None
    g = rng.standard_normal(y.shape)
    ref = _torch(x, wt, b, 1, g)
    for algorithm in ("auto", "winograd2"):
        got = conv2d_backward(g, cache, algorithm=algorithm)
        for mine, want in zip((y, *got), ref, strict=True):
            np.testing.assert_allclose(mine, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("m", [2, 4])
def test_two_by_two_filters_f_m_2_match_torch(m, rng):
    """F(m x m, 2 x 2): the same code with alpha = m + 1 (r = 2), forward and weight gradient."""
    bt, g, at = wg.toom_cook(m, 2)
    d, f = rng.standard_normal(m + 1), rng.standard_normal(2)
    np.testing.assert_allclose(at @ ((g @ f) * (bt @ d)), np.correlate(d, f, "valid"), 1e-12)
    x, wt = rng.standard_normal((2, 3, 11, 9)), rng.standard_normal((4, 3, 2, 2))
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, wt))
    y_ref = torch.nn.functional.conv2d(tx, tw, padding=1)
    dy = rng.standard_normal(y_ref.shape)
    y_ref.backward(torch.tensor(dy))
    y = wg.conv2d_winograd(x, wt, None, (1, 1, 1, 1), m)
    np.testing.assert_allclose(y, y_ref.detach().numpy(), rtol=1e-9, atol=1e-9)
    dw = wg.conv2d_winograd_grad_weight(dy, x, (1, 1, 1, 1), m, r=2)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-9, atol=1e-9)
