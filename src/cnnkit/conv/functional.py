"""conv2d forward and backward in NumPy, with the semantics of ``torch.nn.functional.conv2d``.

Shapes (NCHW, as PyTorch): x is (m, n_C_prev, n_H_prev, n_W_prev), weight is
(n_C, n_C_prev, f_h, f_w), bias is (n_C,), the output Z is (m, n_C, n_H, n_W) with
``n_H = floor((n_H_prev + 2p - f_h) / s) + 1`` (same for n_W), and

    Z[i, c, h, w] = b[c] + sum_{c', u, v} x_pad[i, c', h*s + u, w*s + v] * W[c, c', u, v]

(cross-correlation, as deep learning does; :func:`convolve2d` flips the kernel).

How it is computed, without a Python loop over pixels (layout in :mod:`cnnkit.conv.plan`):

* "offsets" (many input channels, larger images): one GEMM per kernel offset (u, v),
  ``Y[g] += W_uv (n_C, n_C_prev) @ Z[g, phase, :, shift : shift + L]``, reading the shifted window
  in place (strided BLAS) and accumulating in place (beta = 1): no im2col copy at all.
* "im2col" (few input channels, where a GEMM with an inner size of 3 would be memory bound, or
  small images, where the copy is cheap next to a GEMM with a long inner dimension): the
  f_h*f_w windows of each image are copied into a (f_h f_w n_C_prev + 1, n_H n_W) matrix whose
  last row is ones (for the bias), then one GEMM per image writes straight into the output
  (small images: one matrix and one GEMM for the whole batch).
* Backward uses the same layouts: dW_uv = dY[g] @ Z[g, phase, :, shift:shift+L]^T, and dx is the
  transposed convolution dZ[g, phase, :, shift:shift+L] += W_uv^T @ dY[g], then un-phased; for
  im2col, [dW | db] = dZ @ cols^T and dcols = W^T @ dZ is added back window by window (col2im).
* "winograd" (3x3, stride 1, float32, >= 32 channels in and out; :mod:`cnnkit.conv.winograd`):
  F(m x m, 3 x 3) tiles, (m + 2)^2 GEMMs of n_C x n_C_prev by tiles; dx is the Winograd
  convolution of dZ with the flipped, transposed filter, dW comes from the transformed tiles
  (those of the forward, which keeps them for layers with >= 128 output channels).
* "polyphase" (3x3, stride 2, float32, >= 32 channels in and 64 out, outputs from 24x24;
  :mod:`cnnkit.conv.polyphase`): the input's two row phases, Winograd F(2, 2) on the odd rows,
  three GEMMs per chunk of images with 0.83 of the direct multiplies; the backward (dW and dx)
  runs the same three products per pair of rows, transposed.
  ``algorithm="direct"`` keeps the exact paths above (the rules are in :mod:`cnnkit.conv.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cnnkit.conv.blas import gemm
from cnnkit.conv.plan import (
    WINOGRAD_KEEP_V_FROM,
    ConvPlan,
    choose_algorithm,
    from_phases,
    make_plan,
    nchw_to_wide,
    scratch,
    to_phases,
    use_polyphase,
    wide_to_nchw,
)
from cnnkit.conv.polyphase import conv2d_polyphase, conv2d_polyphase_backward
from cnnkit.conv.shapes import IntPair, Pad4, Padding, check_ndim, pair
from cnnkit.conv.winograd import conv2d_winograd, conv2d_winograd_grad_weight
from cnnkit.errors import ShapeError


def _float_dtype(*arrays: Any) -> np.dtype:
    dt = np.result_type(*arrays)
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def pad(x: np.ndarray, p: IntPair | Pad4, value: float = 0.0) -> np.ndarray:
    """Zero-pad the two spatial axes of an NCHW array.

    Args:
        x: (m, n_C, n_H, n_W).
        p: an int (all sides), a pair (p_h, p_w), or four ints (top, bottom, left, right).
        value: the fill value (0 for convolution, -inf for max pooling).

    Returns:
        (m, n_C, n_H + 2 p_h, n_W + 2 p_w), same dtype.

    >>> pad(np.ones((1, 1, 6, 6)), 1).shape
    (1, 1, 8, 8)
    """
    x = np.asarray(x)
    check_ndim(x, 4, "x", "NCHW (m, n_C, n_H, n_W)")
    if isinstance(p, (tuple, list)) and len(p) == 4:
        top, bottom, left, right = (int(v) for v in p)
    else:
        ph, pw = pair(p, "padding")  # type: ignore[arg-type]
        top, bottom, left, right = ph, ph, pw, pw
    if min(top, bottom, left, right) < 0:
        raise ShapeError(f"padding must be >= 0, got {p!r}")
    return np.pad(
        x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode="constant", constant_values=value
    )


@dataclass
class ConvCache:
    """What backward needs: the input in the wide layout (and its im2col), weight, geometry."""

    z: np.ndarray | None  # (G, P, n_C_prev, M_g) for the "offsets" strategy
    cols: np.ndarray | None  # (f_h f_w n_C_prev [+ 1], m n_H n_W) for merged "im2col"
    xp: np.ndarray | None  # padded x (m, n_C_prev, H_p, W_p) for per-image "im2col"
    weight: np.ndarray  # (n_C, n_C_prev, f_h, f_w)
    plan: ConvPlan
    has_bias: bool
    x: np.ndarray | None = None  # the input itself (not a copy), for the Winograd backward
    tile: int = 0  # m of the Winograd F(m x m, 3 x 3) forward, 0 for the direct paths
    wino_v: list[np.ndarray] | None = None  # the forward's transformed input V, per chunk
    polyphase: bool = False  # the forward took the stride-2 row-phase path (only x is kept)


def _w_offsets(weight: np.ndarray) -> np.ndarray:
    """(n_C, n_C_prev, f_h, f_w) -> (f_h f_w, n_C, n_C_prev): W_uv, contiguous per offset."""
    c_out, c_in, fh, fw = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 3, 0, 1)).reshape(fh * fw, c_out, c_in)


def _w_matrix(weight: np.ndarray) -> np.ndarray:
    """(n_C, n_C_prev, f_h, f_w) -> (n_C, f_h f_w n_C_prev), columns ordered (u, v, c')."""
    c_out = weight.shape[0]
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).reshape(c_out, -1)


def _window(xp: np.ndarray, u: int, v: int, plan: ConvPlan) -> np.ndarray:
    """The (m, C, n_H, n_W) strided view x_pad[:, :, h*s_h + u, w*s_w + v]."""
    (sh, sw), oh, ow = plan.stride, plan.out_h, plan.out_w
    return xp[:, :, u : u + sh * (oh - 1) + 1 : sh, v : v + sw * (ow - 1) + 1 : sw]


def _fill_cols(cols: np.ndarray, xp: np.ndarray, plan: ConvPlan) -> None:
    """Fill the im2col rows of ``cols`` (>= K rows, m' n_H n_W columns) from x_pad (m', C, ., .).

    Row (u, v, c') holds x_pad[i, c', h s_h + u, w s_w + v] at column (i, h, w); rows past
    K = f_h f_w n_C_prev (the bias row of ones) are left alone.
    """
    (fh, fw), c, oh, ow = plan.kernel, plan.c_in, plan.out_h, plan.out_w
    n = xp.shape[0]
    for u in range(fh):
        for v in range(fw):
            r = (u * fw + v) * c
            win = _window(xp, u, v, plan)  # (m', C, n_H, n_W)
            cols[r : r + c].reshape(c, n, oh, ow)[...] = win.transpose(1, 0, 2, 3)


def _cols_buffer(plan: ConvPlan, images: int, ones_row: bool, dtype: Any) -> np.ndarray:
    k = plan.kernel[0] * plan.kernel[1] * plan.c_in
    cols = np.empty((k + ones_row, images * plan.out_h * plan.out_w), dtype=dtype)
    if ones_row:
        cols[k] = 1
    return cols


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    algorithm: str = "auto",
) -> tuple[np.ndarray, ConvCache]:
    """:func:`conv2d` that also returns the cache for :func:`conv2d_backward`.

    The cache holds x (or a view of it): do not change x in place before the backward pass.
    """
    x, weight = np.asarray(x), np.asarray(weight)
    check_ndim(x, 4, "x", "NCHW (m, n_C_prev, n_H_prev, n_W_prev)")
    check_ndim(weight, 4, "weight", "(n_C, n_C_prev, f_h, f_w)")
    dt = _float_dtype(x, weight) if bias is None else _float_dtype(x, weight, np.asarray(bias))
    x, weight = x.astype(dt, copy=False), weight.astype(dt, copy=False)
    plan = make_plan(x.shape, weight.shape, stride, padding)
    if bias is not None:
        bias = np.asarray(bias, dtype=dt)
        if bias.shape != (plan.c_out,):
            raise ShapeError(f"bias must have shape ({plan.c_out},), got {bias.shape}")
    tile = choose_algorithm(plan, dt, algorithm)
    if tile:
        keep: list[np.ndarray] | None = [] if plan.c_out >= WINOGRAD_KEEP_V_FROM else None
        out = conv2d_winograd(x, weight, bias, plan.pad4, tile, keep)
        return out, ConvCache(None, None, None, weight, plan, bias is not None, x, tile, keep)
    if use_polyphase(plan, dt, algorithm):
        out = conv2d_polyphase(x, weight, bias, plan)
        return out, ConvCache(None, None, None, weight, plan, bias is not None, x, polyphase=True)
    out, cache = (_forward_im2col if plan.im2col else _forward_offsets)(x, weight, bias, plan)
    cache.x = x
    return out, cache


def _forward_im2col(x, weight, bias, plan: ConvPlan) -> tuple[np.ndarray, ConvCache]:
    """Z = [W | b] (n_C, K + 1) @ cols (K + 1, M_c): one GEMM for the batch (small images), or
    one per image with a cols buffer that stays in cache."""
    xp = pad(x, plan.pad4) if any(plan.pad4) else x
    wm = _w_matrix(weight)
    if bias is not None:
        wm = np.concatenate([wm, bias[:, None]], axis=1)
    kk, o, n = wm.shape[1], plan.c_out, plan.n
    hw = plan.out_h * plan.out_w
    if plan.merged:
        cols = _cols_buffer(plan, n, bias is not None, x.dtype)
        _fill_cols(cols, xp, plan)
        mc = n * hw
        ym = np.empty((o, mc), dtype=x.dtype)
        gemm(False, False, mc, o, kk, cols, 0, mc, wm, 0, kk, 0.0, ym, 0, mc)
        out = np.ascontiguousarray(ym.reshape(o, n, plan.out_h, plan.out_w).swapaxes(0, 1))
        return out, ConvCache(None, cols, None, weight, plan, bias is not None)
    out = np.empty((n, o, plan.out_h, plan.out_w), dtype=x.dtype)
    buf = _cols_buffer(plan, 1, bias is not None, x.dtype)
    for i in range(n):
        _fill_cols(buf, xp[i : i + 1], plan)
        # Fortran terms: out[i] (HW x n_C) = cols (HW x K) @ W (K x n_C).
        gemm(False, False, hw, o, kk, buf, 0, hw, wm, 0, kk, 0.0, out, i * o * hw, hw)
    return out, ConvCache(None, None, xp, weight, plan, bias is not None)


def _forward_offsets(x, weight, bias, plan: ConvPlan) -> tuple[np.ndarray, ConvCache]:
    """Y[g] = sum_{u,v} W_uv @ Z[g, phase(u,v), :, shift(u,v) : shift(u,v) + L], then cropped."""
    z = to_phases(x, plan)
    L, mg, o, c = plan.length, plan.mg, plan.c_out, plan.c_in
    p_stride = plan.phases * c * mg  # elements per group of z
    y = scratch("y", (plan.groups, o, mg), x.dtype)  # wide output, cropped into `out`
    wk = _w_offsets(weight)
    for g in range(plan.groups):
        for k, (ph, sh) in enumerate(plan.offsets):
            a_off = g * p_stride + ph * c * mg + sh
            beta = 0.0 if k == 0 else 1.0
            gemm(False, False, L, o, c, z, a_off, mg, wk, k * o * c, c, beta, y, g * o * mg, mg)
    out = wide_to_nchw(y, plan, bias)
    return out, ConvCache(z, None, None, weight, plan, bias is not None)


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    algorithm: str = "auto",
) -> np.ndarray:
    """2-D cross-correlation of an NCHW batch, like ``torch.nn.functional.conv2d``.

    Args:
        x: (m, n_C_prev, n_H_prev, n_W_prev).
        weight: (n_C, n_C_prev, f_h, f_w).
        bias: (n_C,) or None.
        stride: s, an int or (s_h, s_w).
        padding: an int, (p_h, p_w), "valid" (no padding) or "same" (stride 1 only; for an even
            filter the extra zero goes to the bottom/right, as in PyTorch).
        algorithm: "auto" (the fastest measured path, see :mod:`cnnkit.conv.plan`), "direct"
            (the exact GEMM paths), "winograd" (F(m x m, 3 x 3), m chosen by the plan) or
            "winograd2" / "winograd4" / "winograd6" (that m). Winograd needs a 3x3 filter,
            stride 1 and padding <= 2; in float32 its error grows with m (docs/conv.md).
            "polyphase" (3x3, stride 2): row phases with F(2, 2), the direct path's accuracy.

    Returns:
        Z of shape (m, n_C, n_H, n_W), n_H = floor((n_H_prev + 2 p_h - f_h) / s_h) + 1. float32
        stays float32, float64 stays float64 (other dtypes are computed in float64).

    Raises:
        ShapeError: wrong number of dimensions, channel mismatch, a filter that does not fit,
            or a bad padding/stride.

    >>> x = np.zeros((1, 1, 6, 6)); x[..., :3] = 10
    >>> k = np.array([[1, 0, -1]] * 3, dtype=float)[None, None]
    >>> conv2d(x, k)[0, 0, 0].tolist()
    [0.0, 30.0, 30.0, 0.0]
    """
    return conv2d_forward(x, weight, bias, stride, padding, algorithm)[0]


def convolve2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
) -> np.ndarray:
    """The mathematician's convolution: :func:`conv2d` with the kernel flipped in both axes."""
    weight = np.asarray(weight)
    check_ndim(weight, 4, "weight", "(n_C, n_C_prev, f_h, f_w)")
    return conv2d(x, weight[:, :, ::-1, ::-1], bias, stride, padding)


def conv2d_backward(
    dout: np.ndarray,
    cache: ConvCache | np.ndarray,
    weight: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    bias: bool = True,
    algorithm: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of conv2d from the upstream gradient dZ.

    Either ``conv2d_backward(dZ, cache)`` with the cache of :func:`conv2d_forward`, or
    ``conv2d_backward(dZ, x, weight, stride, padding)``.

        dW[c, c', u, v] = sum_{i,h,w} dZ[i, c, h, w] * x_pad[i, c', h*s + u, w*s + v]
        dx_pad[i, c', h*s + u, w*s + v] += sum_c dZ[i, c, h, w] * W[c, c', u, v]
        db[c] = sum_{i,h,w} dZ[i, c, h, w]

    Args:
        dout: dZ, (m, n_C, n_H, n_W).
        algorithm: as in :func:`conv2d`; "auto" follows the forward pass (the cache), "direct"
            "winograd*" and "polyphase" force a path (from the cache's x when the forward took
            another).

    Returns:
        (dx, dW, db): shapes of x, weight and (n_C,); db is None when the forward had no bias
        (cache form) or ``bias=False``.
    """
    if not isinstance(cache, ConvCache):
        if weight is None:
            raise ShapeError("conv2d_backward needs a ConvCache, or both x and weight")
        x, weight = np.asarray(cache), np.asarray(weight)
        b0 = np.zeros(weight.shape[:1], dtype=_float_dtype(x, weight)) if bias else None
        _, cache = conv2d_forward(x, weight, b0, stride, padding, algorithm)
    plan, wt = cache.plan, cache.weight
    dt = wt.dtype
    dout = np.asarray(dout, dtype=dt)
    expect = (plan.n, plan.c_out, plan.out_h, plan.out_w)
    if dout.shape != expect:
        raise ShapeError(f"dout must have shape {expect}, got {dout.shape}")
    tile = cache.tile if algorithm == "auto" else choose_algorithm(plan, dt, algorithm)
    if tile:
        return _backward_winograd(dout, cache, tile)
    if cache.polyphase if algorithm == "auto" else use_polyphase(plan, dt, algorithm):
        assert cache.x is not None
        dx, dw = conv2d_polyphase_backward(dout, cache.x, wt, plan)
        return dx, dw, dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    if cache.polyphase:  # a direct backward forced after a polyphase forward
        cache = _direct_cache(cache)
    elif cache.tile:  # the forward took Winograd: build the direct path's cache from x
        assert cache.x is not None
        b0 = np.zeros(plan.c_out, dtype=dt) if cache.has_bias else None
        b_fwd = (_forward_im2col if plan.im2col else _forward_offsets)(cache.x, wt, b0, plan)
        cache = b_fwd[1]
    if cache.plan.im2col:
        dx, dw, db = _backward_im2col(dout, cache)
    else:
        dx, dw = _backward_offsets(dout, cache)
        db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dw, db


def _backward_im2col(dout: np.ndarray, cache: ConvCache):
    """[dW | db] = sum dZ @ cols^T; dcols = W^T @ dZ, added back window by window (col2im)."""
    plan, wt = cache.plan, cache.weight
    o, c, n, oh, ow = plan.c_out, plan.c_in, plan.n, plan.out_h, plan.out_w
    (fh, fw), hw = plan.kernel, oh * ow
    wm = _w_matrix(wt)
    k = wm.shape[1]
    kk = k + cache.has_bias  # the bias row of ones
    dwm = np.zeros((o, kk), dtype=wt.dtype)  # zeros: an empty batch has no GEMM
    top, bottom, left, right = plan.pad4
    dxp = np.zeros((n, c, plan.h + top + bottom, plan.w + left + right), dtype=wt.dtype)

    def col2im(dcols: np.ndarray, images: slice, m: int) -> None:
        for u in range(fh):
            for v in range(fw):
                r = (u * fw + v) * c
                part = dcols[r : r + c].reshape(c, m, oh, ow).swapaxes(0, 1)
                _window(dxp[images], u, v, plan)[...] += part

    if plan.merged:
        cols = cache.cols
        assert cols is not None
        mc = n * hw
        dm = np.ascontiguousarray(dout.swapaxes(0, 1))  # (n_C, m, n_H, n_W)
        dcols = np.empty((k, mc), dtype=wt.dtype)
        # Fortran: dWm (KK x n_C) = cols^T (KK x M_c) @ dZ (M_c x n_C).
        gemm(True, False, kk, o, mc, cols, 0, mc, dm, 0, mc, 0.0, dwm, 0, kk)
        # Fortran: dcols (M_c x K) = dZ (M_c x n_C) @ W^T (n_C x K).
        gemm(False, True, mc, k, o, dm, 0, mc, wm, 0, k, 0.0, dcols, 0, mc)
        col2im(dcols, slice(None), n)
    else:
        xp = cache.xp
        assert xp is not None
        dm = np.ascontiguousarray(dout)
        buf = _cols_buffer(plan, 1, cache.has_bias, wt.dtype)
        dcols = np.empty((k, hw), dtype=wt.dtype)
        for i in range(n):
            _fill_cols(buf, xp[i : i + 1], plan)
            beta = 0.0 if i == 0 else 1.0
            gemm(True, False, kk, o, hw, buf, 0, hw, dm, i * o * hw, hw, beta, dwm, 0, kk)
            gemm(False, True, hw, k, o, dm, i * o * hw, hw, wm, 0, k, 0.0, dcols, 0, hw)
            col2im(dcols, slice(i, i + 1), 1)
    dx = np.ascontiguousarray(dxp[:, :, top : top + plan.h, left : left + plan.w])
    dw = np.ascontiguousarray(dwm[:, :k].reshape(o, fh, fw, c).transpose(0, 3, 1, 2))
    db = dwm[:, k].copy() if cache.has_bias else None
    return dx, dw, db


def _direct_cache(cache: ConvCache) -> ConvCache:
    """The direct backward's cache for a polyphase forward (which kept only x), when the direct
    backward is forced: one GEMM per kernel offset on the phase layout Z of x, image by image
    ("offsets", also where the forward's plan says im2col: on the 64x56x56 -> 128 layer it took
    23.9-24.3 ms of CPU time against 25.2-27.0 for im2col image by image)."""
    x = cache.x
    assert x is not None
    plan = replace(cache.plan, merged=False, im2col=False)
    return ConvCache(to_phases(x, plan), None, None, cache.weight, plan, cache.has_bias, x)


def _backward_winograd(dout: np.ndarray, cache: ConvCache, m: int):
    """dx = Winograd conv of dZ with W flipped and transposed (W'[c', c, u, v] =
    W[c, c', 2 - u, 2 - v]) and padding 2 - p; dW from the transformed tiles; db = sum dZ."""
    plan, wt, x = cache.plan, cache.weight, cache.x
    assert x is not None
    w_flip = np.ascontiguousarray(wt[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    pad_dx = (2 - plan.pad4[0], 2 - plan.pad4[1], 2 - plan.pad4[2], 2 - plan.pad4[3])
    dx = conv2d_winograd(dout, w_flip, None, pad_dx, m)
    kept = cache.wino_v if cache.tile == m else None  # V of the forward's own tile size
    dw = conv2d_winograd_grad_weight(dout, x, plan.pad4, m, kept=kept)
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dw, db


def _backward_offsets(dout: np.ndarray, cache: ConvCache):
    """dW_uv = sum_g dY[g] @ Z_shift^T; dZ_shift += W_uv^T @ dY[g]; dx = un-phased dZ."""
    plan, wt, z = cache.plan, cache.weight, cache.z
    assert z is not None
    L, mg, o, c = plan.length, plan.mg, plan.c_out, plan.c_in
    c_out, c_in, fh, fw = wt.shape
    dy = nchw_to_wide(dout, plan, scratch("dy", (plan.groups, o, mg), wt.dtype))  # (G, n_C, M_g)
    dz = scratch("dz", (plan.groups, plan.phases, c, mg), wt.dtype)
    dz.fill(0)
    p_stride = plan.phases * c * mg
    wk = _w_offsets(wt)  # (K, n_C, n_C_prev)
    dwk = np.zeros_like(wk)
    for g in range(plan.groups):
        for k, (ph, sh) in enumerate(plan.offsets):
            z_off = g * p_stride + ph * c * mg + sh
            beta = 0.0 if g == 0 else 1.0
            # dW_uv (n_C, n_C_prev) += dY[g] @ Z_shift^T; Fortran (C' x C) = Z_s'^T @ dY'.
            gemm(True, False, c, o, L, z, z_off, mg, dy, g * o * mg, mg, beta, dwk, k * o * c, c)
            # dZ_shift (C', L) += W_uv^T @ dY[g]; Fortran (L x C') = dY' @ W_uv'^T.
            gemm(False, True, L, c, o, dy, g * o * mg, mg, wk, k * o * c, c, 1.0, dz, z_off, mg)
    dw = dwk.reshape(fh, fw, c_out, c_in).transpose(2, 3, 0, 1)
    return from_phases(dz, plan), np.ascontiguousarray(dw)


def conv_flops(x_shape: Any, w_shape: Any, out_shape: Any) -> int:
    """2 * multiply-adds of a convolution: 2 m n_C n_H n_W n_C_prev f_h f_w."""
    m, c_out, oh, ow = out_shape
    _, c_in, fh, fw = w_shape
    return 2 * m * c_out * oh * ow * c_in * fh * fw
