"""conv2d forward and backward in NumPy, with the semantics of ``torch.nn.functional.conv2d``.

Shapes (NCHW, as PyTorch): x is (m, n_C_prev, n_H_prev, n_W_prev), weight is
(n_C, n_C_prev, f_h, f_w), bias is (n_C,), the output Z is (m, n_C, n_H, n_W) with
``n_H = floor((n_H_prev + 2p - f_h) / s) + 1`` (same for n_W), and

    Z[i, c, h, w] = b[c] + sum_{c', u, v} x_pad[i, c', h*s + u, w*s + v] * W[c, c', u, v]

(cross-correlation, as deep learning does; :func:`convolve2d` flips the kernel).

How it is computed (no Python loop over pixels, see docs/conv.md):

* The padded input is split into ``s_h * s_w`` stride phases and stored channels-last,
  flattened over (batch, rows, columns): ``Zf[phase]`` is (m * H_q * W_q, n_C_prev). A kernel
  offset (u, v) then reads one contiguous, shifted block of rows of one phase, so the output in a
  "wide" layout (m * H_q * W_q, n_C) is a sum over offsets of ``Zf[phase][shift:shift+L] @ W_uv``.
  Rows of the wide layout that fall outside (n_H, n_W) are computed and thrown away.
* Many input channels: one GEMM per offset, accumulated in place by BLAS (beta=1), no im2col copy.
* Few input channels: an im2col matrix (L, f_h*f_w*n_C_prev) made of the shifted blocks, then one
  GEMM, because a GEMM with an inner dimension of 3 is memory bound.
* Backward: dW_uv = Zf[phase][shift:shift+L]^T @ dZ_wide, one GEMM per offset; dx is the
  transposed convolution, dZf[phase][shift:shift+L] += dZ_wide @ W_uv^T, then un-phased.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.conv.shapes import IntPair, Pad4, Padding, check_ndim, out_hw, pair, resolve_padding
from cnnkit.errors import ShapeError

try:  # scipy ships with scikit-image; its BLAS wrappers let GEMMs accumulate in place.
    from scipy.linalg import blas as _blas
except ImportError:  # pragma: no cover - scipy is a dependency of scikit-image
    _blas = None

# Below this many values in the im2col row (f_h * f_w * n_C_prev) build im2col and do one GEMM.
IM2COL_MAX_K = 64


def _gemm_acc(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: float) -> None:
    """``c = a @ b + beta * c`` in place; a (L, K), b (K, N), c (L, N), all C-contiguous."""
    if _blas is not None and a.dtype in (np.float32, np.float64):
        fn = _blas.sgemm if a.dtype == np.float32 else _blas.dgemm
        # Fortran sees the transposes: c.T (N, L) = b.T (N, K) @ a.T (K, L); no copies.
        fn(1.0, b.T, a.T, beta=beta, c=c.T, overwrite_c=True)
    elif beta == 0.0:
        np.matmul(a, b, out=c)
    else:
        c += a @ b


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
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
class ConvPlan:
    """Geometry shared by forward and backward: phases, wide layout, offsets."""

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad4: Pad4
    out_h: int
    out_w: int
    hq: int  # rows of one phase image
    wq: int  # columns of one phase image
    length: int  # rows L of the wide output that are computed

    @property
    def offsets(self) -> list[tuple[int, int, int, int]]:
        """(u, v, phase, shift) for each kernel offset, row-major over (u, v)."""
        (fh, fw), (sh, sw) = self.kernel, self.stride
        return [
            (u, v, (u % sh) * sw + (v % sw), (u // sh) * self.wq + v // sw)
            for u in range(fh)
            for v in range(fw)
        ]

    def phase_slices(self):
        """Yield (phase, (dst rows, dst cols), (src rows, src cols)) copying x into phase images.

        Phase (a, b) holds x_pad[a + y*s_h, b + x*s_w] at (y, x); x_pad row r is x row r - top.
        """
        (sh, sw), (top, _, left, _) = self.stride, self.pad4
        for a in range(sh):
            rows = _phase_axis(a, sh, top, self.h, self.hq)
            for b in range(sw):
                cols = _phase_axis(b, sw, left, self.w, self.wq)
                if rows is not None and cols is not None:
                    yield a * sw + b, (rows[0], cols[0]), (rows[1], cols[1])


def _phase_axis(a: int, s: int, before: int, n: int, nq: int):
    """Slices (dst in phase image, src in x) for phase a along one axis, or None if empty."""
    # Phase index y maps to x index a + y*s - before; need 0 <= that < n and y < nq.
    y0 = max(0, -((a - before) // s))  # ceil((before - a) / s)
    last = n - 1 - a + before
    y1 = min(nq, last // s + 1) if last >= 0 else 0
    if y1 <= y0:
        return None
    src0 = a + y0 * s - before
    return slice(y0, y1), slice(src0, src0 + (y1 - y0 - 1) * s + 1, s)


def make_plan(x_shape, w_shape, stride: IntPair, padding: Padding) -> ConvPlan:
    """Check shapes and compute the geometry of a convolution (or pooling, with c_out = c_in)."""
    n, c_in, h, w = x_shape
    c_out, c_in_w, fh, fw = w_shape
    if c_in != c_in_w:
        raise ShapeError(
            f"input has {c_in} channels but the weight expects {c_in_w} "
            f"(weight shape {tuple(w_shape)})",
            hint="weight must be (n_C, n_C_prev, f_h, f_w) with n_C_prev = x.shape[1]",
        )
    if fh < 1 or fw < 1:
        raise ShapeError(f"kernel must be at least 1x1, got {fh}x{fw}")
    st = pair(stride, "stride")
    if st[0] < 1 or st[1] < 1:
        raise ShapeError(f"stride must be >= 1, got {stride!r}")
    p4 = resolve_padding(padding, (fh, fw), st)
    oh, ow = out_hw(h, w, (fh, fw), st, p4)
    hq, wq = oh + (fh - 1) // st[0], ow + (fw - 1) // st[1]
    length = n * hq * wq - ((fh - 1) // st[0]) * wq - (fw - 1) // st[1]
    return ConvPlan(n, c_in, h, w, c_out, (fh, fw), st, p4, oh, ow, hq, wq, length)


def to_phases(x: np.ndarray, plan: ConvPlan, fill: float = 0.0) -> np.ndarray:
    """(m, C, H, W) -> phase images (s_h*s_w, m*H_q*W_q, C), channels-last, padded with fill."""
    sh, sw = plan.stride
    z = np.full((sh * sw, plan.n, plan.hq, plan.wq, plan.c_in), fill, dtype=x.dtype)
    for ph, (dr, dc), (sr, sc) in plan.phase_slices():
        z[ph, :, dr, dc, :] = x[:, :, sr, sc].transpose(0, 2, 3, 1)
    return z.reshape(sh * sw, plan.n * plan.hq * plan.wq, plan.c_in)


def from_phases(dz: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """Inverse of :func:`to_phases` for gradients: (s_h*s_w, m*H_q*W_q, C) -> (m, C, H, W)."""
    dz = dz.reshape(-1, plan.n, plan.hq, plan.wq, plan.c_in)
    dx = np.zeros((plan.n, plan.c_in, plan.h, plan.w), dtype=dz.dtype)
    for ph, (dr, dc), (sr, sc) in plan.phase_slices():
        dx[:, :, sr, sc] = dz[ph, :, dr, dc, :].transpose(0, 3, 1, 2)
    return dx


def wide_to_nchw(y: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """Wide output (m*H_q*W_q, C) -> contiguous (m, C, n_H, n_W)."""
    y4 = y.reshape(plan.n, plan.hq, plan.wq, -1)[:, : plan.out_h, : plan.out_w, :]
    return np.ascontiguousarray(y4.transpose(0, 3, 1, 2))


def nchw_to_wide(d: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """(m, C, n_H, n_W) -> wide layout (m*H_q*W_q, C), zero where the wide layout has no output."""
    c = d.shape[1]
    y = np.zeros((plan.n, plan.hq, plan.wq, c), dtype=d.dtype)
    y[:, : plan.out_h, : plan.out_w, :] = d.transpose(0, 2, 3, 1)
    return y.reshape(plan.n * plan.hq * plan.wq, c)


@dataclass
class ConvCache:
    """What backward needs: the phase images of x, the weight, and the geometry."""

    zf: np.ndarray
    weight: np.ndarray
    plan: ConvPlan
    has_bias: bool


def _weight_offsets(weight: np.ndarray) -> np.ndarray:
    """(n_C, n_C_prev, f_h, f_w) -> (f_h*f_w, n_C_prev, n_C), contiguous: W_uv per offset."""
    c_out, c_in, fh, fw = weight.shape
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(fh * fw, c_in, c_out))


def _use_im2col(plan: ConvPlan) -> bool:
    return plan.kernel[0] * plan.kernel[1] * plan.c_in <= IM2COL_MAX_K


def _im2col(zf: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """(L, f_h*f_w*n_C_prev) matrix of shifted phase blocks, columns ordered (u, v, c')."""
    c, L = plan.c_in, plan.length
    offs = plan.offsets
    cols = np.empty((L, len(offs) * c), dtype=zf.dtype)
    for k, (_, _, ph, sh) in enumerate(offs):
        cols[:, k * c : (k + 1) * c] = zf[ph, sh : sh + L]
    return cols


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
) -> tuple[np.ndarray, ConvCache]:
    """:func:`conv2d` that also returns the cache for :func:`conv2d_backward`."""
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
    zf = to_phases(x, plan)
    wk = _weight_offsets(weight)
    L = plan.length
    y = np.empty((plan.n * plan.hq * plan.wq, plan.c_out), dtype=dt)
    if _use_im2col(plan):
        _gemm_acc(_im2col(zf, plan), wk.reshape(-1, plan.c_out), y[:L], 0.0)
    else:
        for k, (_, _, ph, sh) in enumerate(plan.offsets):
            _gemm_acc(zf[ph, sh : sh + L], wk[k], y[:L], 0.0 if k == 0 else 1.0)
    out = wide_to_nchw(y, plan)
    if bias is not None:
        out += bias[None, :, None, None]
    return out, ConvCache(zf, weight, plan, bias is not None)


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
) -> np.ndarray:
    """2-D cross-correlation of an NCHW batch, like ``torch.nn.functional.conv2d``.

    Args:
        x: (m, n_C_prev, n_H_prev, n_W_prev).
        weight: (n_C, n_C_prev, f_h, f_w).
        bias: (n_C,) or None.
        stride: s, an int or (s_h, s_w).
        padding: an int, (p_h, p_w), "valid" (no padding) or "same" (stride 1 only; for an even
            filter the extra zero goes to the bottom/right, as in PyTorch).

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
    return conv2d_forward(x, weight, bias, stride, padding)[0]


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of conv2d from the upstream gradient dZ.

    Either ``conv2d_backward(dZ, cache)`` with the cache of :func:`conv2d_forward`, or
    ``conv2d_backward(dZ, x, weight, stride, padding)``.

        dW[c, c', u, v] = sum_{i,h,w} dZ[i, c, h, w] * x_pad[i, c', h*s + u, w*s + v]
        dx_pad[i, c', h*s + u, w*s + v] += sum_c dZ[i, c, h, w] * W[c, c', u, v]
        db[c] = sum_{i,h,w} dZ[i, c, h, w]

    Args:
        dout: dZ, (m, n_C, n_H, n_W).

    Returns:
        (dx, dW, db): shapes of x, weight and (n_C,); db is None when the forward had no bias
        (cache form) or ``bias=False``.
    """
    if not isinstance(cache, ConvCache):
        if weight is None:
            raise ShapeError("conv2d_backward needs a ConvCache or both x and weight")
        _, cache = conv2d_forward(cache, weight, None, stride, padding)
        cache.has_bias = bias
    plan, wt = cache.plan, cache.weight
    dt = wt.dtype
    dout = np.asarray(dout, dtype=dt)
    expect = (plan.n, plan.c_out, plan.out_h, plan.out_w)
    if dout.shape != expect:
        raise ShapeError(f"dout must have shape {expect}, got {dout.shape}")
    L, zf = plan.length, cache.zf
    dy = nchw_to_wide(dout, plan)[:L]  # (L, n_C)
    wk = _weight_offsets(wt)  # (K, n_C_prev, n_C)
    dwk = np.empty_like(wk)
    dz = np.zeros_like(zf)
    if _use_im2col(plan):
        cols = _im2col(zf, plan)
        np.matmul(cols.T, dy, out=dwk.reshape(-1, plan.c_out))
        dcols = dy @ wk.reshape(-1, plan.c_out).T  # (L, K * n_C_prev)
        c = plan.c_in
        for k, (_, _, ph, sh) in enumerate(plan.offsets):
            dz[ph, sh : sh + L] += dcols[:, k * c : (k + 1) * c]
    else:
        wkt = np.ascontiguousarray(wk.transpose(0, 2, 1))  # (K, n_C, n_C_prev)
        for k, (_, _, ph, sh) in enumerate(plan.offsets):
            blk = zf[ph, sh : sh + L]
            np.matmul(blk.T, dy, out=dwk[k])
            _gemm_acc(dy, wkt[k], dz[ph, sh : sh + L], 1.0)
    c_out, c_in, fh, fw = wt.shape
    dw = dwk.reshape(fh, fw, c_in, c_out).transpose(3, 2, 0, 1)
    dx = from_phases(dz, plan)
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, np.ascontiguousarray(dw), db


def conv_flops(x_shape: Any, w_shape: Any, out_shape: Any) -> int:
    """Multiply-adds times two of a convolution: 2 * m * n_C * n_H * n_W * n_C_prev * f_h * f_w."""
    m, c_out, oh, ow = out_shape
    _, c_in, fh, fw = w_shape
    return 2 * m * c_out * oh * ow * c_in * fh * fw
