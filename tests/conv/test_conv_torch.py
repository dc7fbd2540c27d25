"""conv2d and pooling, forward and backward, against torch on shapes drawn by hypothesis."""

from __future__ import annotations

import functools
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import cnnkit.conv.functional as fn
from cnnkit.conv import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    conv2d_backward,
    conv2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from cnnkit.conv.plan import make_plan

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}


@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    c = draw(st.sampled_from([1, 2, 3, 5, 33]))
    o = draw(st.integers(1, 6))
    h, w = draw(st.integers(1, 11)), draw(st.integers(1, 11))
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    s2 = stride if isinstance(stride, tuple) else (stride, stride)
    pads = [st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)), st.just("valid")]
    if s2 == (1, 1):
        pads.append(st.just("same"))
    padding = draw(st.one_of(*pads))
    if padding == "same":
        tot_h, tot_w = h + fh - 1, w + fw - 1
    elif padding == "valid":
        tot_h, tot_w = h, w
    else:
        ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
        tot_h, tot_w = h + 2 * ph, w + 2 * pw
    assume(tot_h >= fh and tot_w >= fw)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return n, c, h, w, o, fh, fw, stride, padding, dtype


def _torch_conv(x, wt, b, stride, padding, g):
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding)
    ty.backward(torch.tensor(g))
    return ty.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=60, deadline=None)
@given(
    case=conv_cases(),
    seed=st.integers(0, 2**16),
    layout=st.sampled_from([None, (False, False), (False, True), (True, False), (True, True)]),
)
def test_conv2d_forward_backward_match_torch(case, seed, layout):
    """layout: (merge, im2col) forced, or None for what the heuristics pick."""
    n, c, h, w, o, fh, fw, stride, padding, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    if layout is None:
        y, cache = conv2d_forward(x, wt, b, stride, padding)
    else:
        forced = functools.partial(make_plan, merge=layout[0], im2col=layout[1])
        with mock.patch.object(fn, "make_plan", forced):
            y, cache = conv2d_forward(x, wt, b, stride, padding)
        assert (cache.plan.merged, cache.plan.im2col) == layout
    g = rng.standard_normal(y.shape).astype(dtype)
    ty, tdx, tdw, tdb = _torch_conv(x, wt, b, stride, padding, g)
    assert y.shape == ty.shape and y.dtype == dtype
    np.testing.assert_allclose(y, ty, **TOL[dtype])
    dx, dw, db = conv2d_backward(g, cache)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    np.testing.assert_allclose(dx, tdx, **TOL[dtype])
    np.testing.assert_allclose(dw, tdw, **TOL[dtype])
    np.testing.assert_allclose(db, tdb, **TOL[dtype])


@pytest.mark.parametrize("im2col", [True, False])
@pytest.mark.parametrize("merge", [True, False])
@pytest.mark.parametrize(
    "case", [(2, 4, 33, 35, 3, 3, 2, (1, 2), 1), (3, 6, 9, 8, 5, 2, 3, 2, (2, 1))]
)
def test_every_gemm_strategy_matches_torch(case, merge, im2col, monkeypatch, rng):
    """Both GEMM strategies and both group layouts, whatever the heuristics would pick."""
    n, c, h, w, o, fh, fw, stride, padding = case
    monkeypatch.setattr(fn, "make_plan", lambda *a: make_plan(*a, merge=merge, im2col=im2col))
    x, wt, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, fh, fw)), np.ones(o)
    y, cache = conv2d_forward(x, wt, b, stride, padding)
    assert cache.plan.merged == merge and cache.plan.im2col == im2col
    g = rng.standard_normal(y.shape)
    for mine, ref in zip(
        (y, *conv2d_backward(g, cache)), _torch_conv(x, wt, b, stride, padding, g), strict=True
    ):
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-9)


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(
        st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))
    )
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    assume(h + 2 * ph >= kh and w + 2 * pw >= kw)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return n, c, h, w, (kh, kw), stride, (ph, pw), dtype


@settings(max_examples=40, deadline=None)
@given(case=pool_cases(), seed=st.integers(0, 2**16), mode=st.sampled_from(["max", "avg"]))
def test_pool_forward_backward_match_torch(case, seed, mode):
    n, c, h, w, k, stride, padding, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    fwd, bwd = {
        "max": (max_pool2d_forward, max_pool2d_backward),
        "avg": (avg_pool2d_forward, avg_pool2d_backward),
    }[mode]
    y, cache = fwd(x, k, stride, padding)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch.nn.functional, f"{mode}_pool2d")(tx, k, stride, padding)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), **TOL[dtype])
    g = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    dx = bwd(g, cache)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL[dtype])
