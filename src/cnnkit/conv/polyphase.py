"""Stride-2 3x3 forward with fewer multiplies: row phases and Winograd F(2, 2).

A stride-2 layer reads row ``2h + u`` of the padded input x_pad for output row h and filter row
u (u = 0, 1, 2). Split x_pad's rows into their two stride phases, even rows E and odd rows O:
output row h is ``g_1 * E_h + (g_0 * O_h + g_2 * O_{h+1})``, where g_u (n_C, n_C_prev, 3) is
filter row u and each product is a 1 x 3 stride-2 correlation along the row (the three taps v
and the input channels, the inner dimension of a GEMM). The odd phase is a stride-1 correlation
with the two-tap filter (g_0, g_2), and two neighbouring output rows, h = 2t and 2t + 1, share
its middle input row. Winograd's F(2, 2) (Lavin and Gray 2016, with points 0, 1 and infinity)
computes those two outputs from d = (O_h, O_{h+1}, O_{h+2}) with three products instead of four:

    m_a = g_0 (d_0 - d_1)     m_b = (g_0 + g_2) d_1     m_c = -g_2 (d_1 - d_2)
    y_{2t}     = g_1 E_{2t}     + m_a + m_b          (= g_0 d_0 + g_1 E_{2t} + g_2 d_1)
    y_{2t + 1} = g_1 E_{2t + 1} + m_c + m_b          (= g_0 d_1 + g_1 E_{2t+1} + g_2 d_2)

In x_pad's rows (pair t, 0-based): d_0, E_{2t}, d_1, E_{2t+1}, d_2 are rows 4t .. 4t + 4.
Multiplies per pair of output rows and per channel pair: 5 row products of 3 taps instead of 6,
so 15 / 18 = 0.83 of the direct method's; the input "transform" is one subtraction of
neighbouring odd rows, D_k = x_pad[2k] - x_pad[2k + 2] (d_0 - d_1 for k = 2t, d_1 - d_2 for
k = 2t + 1), and the output transform is one copy, because m_b enters both rows with weight 1.

As GEMMs (images in chunks; J = pairs * n_W columns per image, n_W = output width):

    T_0 (n_C, J) = U_b @ V_b                        U_b = [g_0 + g_2]   V_b: rows d_1
    T_1 = T_0
    T_0 += [U_1 | U_0] @ [V_E0 ; V_a]               V_a: rows D_2t, V_E0: rows E_2t
    T_1 += [U_1 | -U_2] @ [V_E1 ; V_c]              V_c: rows D_2t+1, V_E1: rows E_2t+1

where U_u (n_C, 3 n_C_prev) is g_u with columns (v, c') and each V block (3 n_C_prev, J) is an
im2col of one row set along the width (tap v, channel c'; column (t, w) holds the row's element
2w + v). T_0 and T_1 are the even and odd output rows; the bias is added as they are interleaved
into Z. An odd n_H computes one spare row (the input is padded with zero rows) and drops it.

The backward (:func:`conv2d_polyphase_backward`) runs the same products transposed: dW sums
dT V^T over the pixels for the five blocks (with dT_0, dT_1 the even and odd rows of dZ, and
dT_0 + dT_1 for V_b), dx puts U^T dT back through the subtraction and the copies. The rules for
when ``algorithm="auto"`` takes the path are in :mod:`cnnkit.conv.plan`; the float32 error is
that of the direct path (docs/conv.md).
"""

from __future__ import annotations

import numpy as np

from cnnkit.conv.blas import gemm
from cnnkit.conv.plan import ConvPlan, scratch

#: Images per chunk: as many as keep the chunk's V blocks (15 n_C_prev rows) under CHUNK_BYTES,
#: but at least CHUNK_MIN_COLS GEMM columns (small images) and at least one image. One image of
#: the 64x56x56 stride-2 layer is 1.5 MB.
CHUNK_BYTES = 2 * 2**20
CHUNK_MIN_COLS = 512


def _fill_padded(xs: np.ndarray, x: np.ndarray, plan: ConvPlan) -> None:
    """xs (m', C, R, 2, q) <- x_pad (m', C, R, 2 q) split into its two column phases.

    xs[..., r, a, q] = x_pad[..., r, 2q + a]: zero in the padding and past x's end.
    """
    top, _, left, _ = plan.pad4
    rows, q_n = xs.shape[2], xs.shape[4]
    r1 = max(top, min(rows, top + plan.h))
    xs[:, :, :top] = 0
    xs[:, :, r1:] = 0
    for a in (0, 1):  # x_pad column 2q + a is x column 2q + a - left
        q0 = (left - a + 1) // 2  # the first q with 2q + a >= left
        q1 = max(q0, min(q_n, (left + plan.w - a + 1) // 2))
        xs[:, :, top:r1, a, :q0] = 0
        xs[:, :, top:r1, a, q1:] = 0
        if q1 > q0:
            s0 = 2 * q0 + a - left
            xs[:, :, top:r1, a, q0:q1] = x[:, :, : r1 - top, s0 : s0 + 2 * (q1 - q0) - 1 : 2]


def _unfill_padded(dx: np.ndarray, dxs: np.ndarray, plan: ConvPlan) -> None:
    """dx (m', C, H, W) <- the x part of dxs (m', C, R, 2, q), the adjoint of _fill_padded
    (dx keeps its zeros where x_pad's rows past R were never read)."""
    top, _, left, _ = plan.pad4
    rows, q_n = dxs.shape[2], dxs.shape[4]
    r1 = max(top, min(rows, top + plan.h))
    for a in (0, 1):
        q0 = (left - a + 1) // 2
        q1 = max(q0, min(q_n, (left + plan.w - a + 1) // 2))
        if q1 > q0:
            s0 = 2 * q0 + a - left
            dx[:, :, : r1 - top, s0 : s0 + 2 * (q1 - q0) - 1 : 2] = dxs[:, :, top:r1, a, q0:q1]


def _tap_view(a: np.ndarray, first: int, step: int, pairs: int, n_w: int) -> list[np.ndarray]:
    """Rows ``first + step t`` (t < pairs) of a (m', C, R, 2, q) as three (C, m', pairs, n_W)
    views, one per tap v: element (t, w) of tap v is x_pad's column 2w + v, i.e. column phase
    v % 2 at q = w + v // 2."""
    rows = a[:, :, first : first + step * (pairs - 1) + 1 : step]  # (m', C, pairs, 2, q)
    return [rows[:, :, :, v % 2, v // 2 : v // 2 + n_w].transpose(1, 0, 2, 3) for v in range(3)]


class _VBlocks:
    """The five V blocks of a chunk of images, (5, 3, C, nb, pairs, n_W): E0, a, E1, c, b.

    Rows (v, c') of block E0 hold x_pad rows 4t + 1 (columns 2w + v), a the differences
    D_2t = x_pad[4t] - x_pad[4t + 2], E1 rows 4t + 3, c D_2t+1 = x_pad[4t + 2] - x_pad[4t + 4],
    b rows 4t + 2; column (i, t, w). As a GEMM operand block k starts k * 3C * ld elements in and
    its rows are ld = nb * pairs * n_W apart.
    """

    def __init__(self, plan: ConvPlan, dtype: np.dtype) -> None:
        c, oh, ow = plan.c_in, plan.out_h, plan.out_w
        self.plan, self.pairs = plan, (oh + 1) // 2  # rows 2t, 2t + 1 read x_pad rows 4t .. 4t + 4
        self.k3, self.j = 3 * c, self.pairs * ow  # rows of one block, columns per image
        by_bytes = CHUNK_BYTES // (5 * self.k3 * self.j * dtype.itemsize)
        self.nb = max(1, min(plan.n, max(by_bytes, -(-CHUNK_MIN_COLS // self.j))))
        self.ld = self.nb * self.j
        shape = (self.nb, c, 4 * self.pairs + 1, 2, ow + 1)
        self.xs = scratch("poly_x", shape, dtype)  # x_pad split into its column phases
        self.ds = scratch("poly_d", (self.nb, c, 2 * self.pairs, 2, ow + 1), dtype)  # D_k
        self.v = scratch("poly_v", (5, 3, c, self.nb, self.pairs, ow), dtype)
        self._copies: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # per chunk size

    def chunks(self) -> range:
        return range(0, self.plan.n, self.nb)

    def fill(self, x: np.ndarray, i0: int) -> int:
        """Fill the blocks from images i0 .. i0 + m' - 1 of x; returns m'."""
        m, pairs, ow = min(self.nb, self.plan.n - i0), self.pairs, self.plan.out_w
        xc, dc = self.xs[:m], self.ds[:m]
        if m not in self._copies:  # (block rows, their view of x_pad or D) per block and tap
            srcs = ((xc, 1, 4), (dc, 0, 2), (xc, 3, 4), (dc, 1, 2), (xc, 2, 4))
            self._copies[m] = [
                (self.v[b, v, :, :m], view)
                for b, (a, first, step) in enumerate(srcs)
                for v, view in enumerate(_tap_view(a, first, step, pairs, ow))
            ]
        _fill_padded(xc, x[i0 : i0 + m], self.plan)
        np.subtract(xc[:, :, 0 : 4 * pairs : 2], xc[:, :, 2 : 4 * pairs + 1 : 2], out=dc)
        for dst, src in self._copies[m]:
            np.copyto(dst, src)
        return m

    def offset(self, block: int) -> int:
        return block * self.k3 * self.ld


def _filter_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """U_0, U_1, U_2 (n_C, 3 n_C_prev): filter row u with columns (v, c')."""
    o, c = weight.shape[:2]
    wt = weight.transpose(0, 2, 3, 1)  # (n_C, u, v, n_C_prev)
    u0, u1, u2 = (np.ascontiguousarray(wt[:, u]).reshape(o, 3 * c) for u in range(3))
    return u0, u1, u2


def conv2d_polyphase(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, plan: ConvPlan
) -> np.ndarray:
    """Z = conv2d(x, weight, bias, stride=2, padding=plan.pad4) for a 3x3 filter.

    Args:
        x: (m, n_C_prev, n_H_prev, n_W_prev), float32 or float64.
        weight: (n_C, n_C_prev, 3, 3), same dtype.
        bias: (n_C,) or None.
        plan: the layer's plan (kernel 3x3, stride (2, 2)).

    Returns:
        Z (m, n_C, n_H, n_W), n_H = floor((n_H_prev + 2p - 3) / 2) + 1.
    """
    assert plan.kernel == (3, 3) and plan.stride == (2, 2), "polyphase: 3x3 stride 2 only"
    dt, o, oh, ow = x.dtype, plan.c_out, plan.out_h, plan.out_w
    vb = _VBlocks(plan, dt)
    k3, ld, pairs = vb.k3, vb.ld, vb.pairs
    u0, u1, u2 = _filter_rows(weight)
    w_even = np.concatenate([u1, u0], axis=1)  # [U_1 | U_0]
    w_odd = np.concatenate([u1, -u2], axis=1)  # [U_1 | -U_2]
    w_mid = u0 + u2  # U_b
    out = np.empty((plan.n, o, oh, ow), dtype=dt)
    t_even = scratch("poly_t0", (o, ld), dt)
    t_odd = scratch("poly_t1", (o, ld), dt)
    bias4 = None if bias is None else bias[:, None, None, None]
    for i0 in vb.chunks():
        m = vb.fill(x, i0)
        mj = m * vb.j
        # Fortran terms: T (mj x n_C) = V^T (mj x K) @ U^T (K x n_C); V's rows are ld apart.
        gemm(False, False, mj, o, k3, vb.v, vb.offset(4), ld, w_mid, 0, k3, 0.0, t_even, 0, ld)
        t_odd[:, :mj] = t_even[:, :mj]
        gemm(False, False, mj, o, 2 * k3, vb.v, 0, ld, w_even, 0, 2 * k3, 1.0, t_even, 0, ld)
        v_odd = vb.offset(2)
        gemm(False, False, mj, o, 2 * k3, vb.v, v_odd, ld, w_odd, 0, 2 * k3, 1.0, t_odd, 0, ld)
        for t, first in ((t_even, 0), (t_odd, 1)):  # interleave the rows, adding the bias
            res = t[:, :mj].reshape(o, m, pairs, ow)[:, :, : (oh - first + 1) // 2]
            dst = out[i0 : i0 + m, :, first::2].transpose(1, 0, 2, 3)  # (n_C, m', rows, n_W)
            if bias4 is None:
                np.copyto(dst, res)
            else:
                np.add(res, bias4, out=dst)
    return out


def _scatter_views(
    dxs: np.ndarray, p: np.ndarray, pairs: int, n_w: int
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(view of dxs, block tap of p, add?) that put the V blocks' gradients p back into x_pad's
    rows and columns: rows 4t (dV_a), 4t + 1 (E0), 4t + 2 (b, already combined), 4t + 3 (E1)
    are written by their block alone, taps 0 and 1 assigned and tap 2 (the column of tap 0 of
    the next w) added; then dV_c is added to rows 4t + 4. Every cell of rows 0 .. 4 pairs - 1
    and columns q < n_W is written, so dxs needs no zeroing there."""
    out = []
    for block, first in ((1, 0), (0, 1), (4, 2), (2, 3), (3, 4)):
        views = _tap_view(dxs, first, 4, pairs, n_w)
        for v in (0, 1, 2):
            out.append((views[v], p[block, v], block == 3 or v == 2))
    return out


def conv2d_polyphase_backward(
    dout: np.ndarray, x: np.ndarray, weight: np.ndarray, plan: ConvPlan
) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dW) of :func:`conv2d_polyphase`, by the same three products per pair of rows.

    With dT_0, dT_1 the even and odd rows of dZ and S = dT_0 + dT_1 (m_b is in both rows):

        dW: dU_1 = dT_0 V_E0^T + dT_1 V_E1^T,  dU_0 = dT_0 V_a^T + S V_b^T,
            dU_2 = S V_b^T - dT_1 V_c^T                     (GEMMs summing over the pixels)
        dx: dV_E0 = U_1^T dT_0, dV_E1 = U_1^T dT_1, dV_a = U_0^T dT_0, dV_b = U_b^T S,
            dV_c = -U_2^T dT_1, added back into x_pad's rows (V_a = x_pad[4t] - x_pad[4t + 2],
            so row 4t gets dV_a and row 4t + 2 gets -dV_a; likewise for V_c) and along the
            row to the columns 2w + v they were copied from.

    5 products per pair of output rows instead of 6, for dW and for dx. dout is (m, n_C, n_H,
    n_W); returns dx (m, n_C_prev, n_H_prev, n_W_prev) and dW (n_C, n_C_prev, 3, 3).
    """
    dt, o, oh, ow = x.dtype, plan.c_out, plan.out_h, plan.out_w
    vb = _VBlocks(plan, dt)
    k3, ld, pairs = vb.k3, vb.ld, vb.pairs
    u0, u1, u2 = _filter_rows(weight)
    u_mid = u0 + u2
    g = np.zeros((4, o, k3), dtype=dt)  # dU_b, dU_1, dT_0 V_a^T, dT_1 V_c^T
    dx = np.zeros((plan.n, plan.c_in, plan.h, plan.w), dtype=dt)
    d_t = scratch("poly_dt", (o, 2, ld), dt)  # dT_0 | dT_1 per row of n_C
    d_s = scratch("poly_s", (o, ld), dt)  # S = dT_0 + dT_1
    d_t5 = d_t.reshape(o, 2, vb.nb, pairs, ow)
    scatter: dict[int, list[tuple[np.ndarray, np.ndarray, bool]]] = {}  # per chunk size
    for i0 in vb.chunks():
        m = vb.fill(x, i0)
        mj = m * vb.j
        d_t5[:, 0, :m] = dout[i0 : i0 + m, :, 0::2].transpose(1, 0, 2, 3)
        d_t5[:, 1, :m, : oh // 2] = dout[i0 : i0 + m, :, 1::2].transpose(1, 0, 2, 3)
        d_t5[:, 1, :m, oh // 2 :] = 0  # the spare row of an odd n_H
        np.add(d_t[:, 0, :mj], d_t[:, 1, :mj], out=d_s[:, :mj])
        # dW, Fortran terms: dU^T (3C x n_C) = V (3C x mj) @ dT^T (mj x n_C), summed over chunks.
        for gi, block, src, off, ld_src in (
            (0, 4, d_s, 0, ld),
            (1, 0, d_t, 0, 2 * ld),
            (1, 2, d_t, ld, 2 * ld),
            (2, 1, d_t, 0, 2 * ld),
            (3, 3, d_t, ld, 2 * ld),
        ):
            gemm(True, False, k3, o, mj, vb.v, vb.offset(block), ld, src, off, ld_src, 1.0,
                 g, gi * o * k3, k3)  # fmt: skip
        # dx: the V blocks' gradients, written over V (Fortran: dV^T = dT^T (mj x n_C) @ U).
        for block, u, src, off, ld_src in (
            (0, u1, d_t, 0, 2 * ld),
            (1, u0, d_t, 0, 2 * ld),
            (2, u1, d_t, ld, 2 * ld),
            (3, u2, d_t, ld, 2 * ld),  # U_2^T dT_1 = -dV_c
            (4, u_mid, d_s, 0, ld),
        ):
            gemm(
                False, True, mj, k3, o, src, off, ld_src, u, 0, k3, 0.0, vb.v, vb.offset(block), ld
            )
        p = vb.v[:, :, :, :m]  # (5, 3, C, m', pairs, n_W)
        p[4] -= p[1]  # row 4t + 2: dV_b - dV_a + dV_c
        p[4] -= p[3]
        dxs = vb.xs[:m]  # x_pad's gradient, column phases (x_pad itself is no longer needed)
        if m not in scatter:
            scatter[m] = _scatter_views(dxs, p, pairs, ow)
        dxs[:, :, 4 * pairs] = 0  # the last row gets only dV_c; spare columns get nothing
        dxs[:, :, :, :, ow] = 0
        for view, part, add in scatter[m]:
            if add:
                view += part
            else:
                np.copyto(view, part)
        _unfill_padded(dx[i0 : i0 + m], dxs, plan)
    du0, du1, du2 = g[2] + g[0], g[1], g[0] - g[3]
    dw = np.stack([du0, du1, du2], axis=1).reshape(o, 3, 3, plan.c_in).transpose(0, 3, 1, 2)
    return dx, np.ascontiguousarray(dw)
