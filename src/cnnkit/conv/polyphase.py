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

Only the forward: the backward of a layer that took this path is the direct im2col backward
(:func:`cnnkit.conv.functional.conv2d_backward`), from the input kept in the cache. The rules for
when ``algorithm="auto"`` takes it are in :mod:`cnnkit.conv.plan`; the float32 error is that of
the direct path (docs/conv.md).
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


def _tap_view(a: np.ndarray, first: int, step: int, pairs: int, n_w: int) -> list[np.ndarray]:
    """Rows ``first + step t`` (t < pairs) of a (m', C, R, 2, q) as three (C, m', pairs, n_W)
    views, one per tap v: element (t, w) of tap v is x_pad's column 2w + v, i.e. column phase
    v % 2 at q = w + v // 2."""
    rows = a[:, :, first : first + step * (pairs - 1) + 1 : step]  # (m', C, pairs, 2, q)
    return [rows[:, :, :, v % 2, v // 2 : v // 2 + n_w].transpose(1, 0, 2, 3) for v in range(3)]


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
    dt = x.dtype
    n, c, o, oh, ow = plan.n, plan.c_in, plan.c_out, plan.out_h, plan.out_w
    pairs = (oh + 1) // 2  # output rows 2t and 2t + 1 read x_pad rows 4t .. 4t + 4
    k3, j = 3 * c, pairs * ow  # rows of one V block, GEMM columns per image

    wt = weight.transpose(0, 2, 3, 1)  # (n_C, u, v, n_C_prev): U_u = wt[:, u] as (n_C, 3 C)
    u0, u1, u2 = (wt[:, u].reshape(o, k3) for u in range(3))
    w_even = np.concatenate([u1, u0], axis=1)  # [U_1 | U_0]
    w_odd = np.concatenate([u1, -u2], axis=1)  # [U_1 | -U_2]
    w_mid = np.ascontiguousarray(u0 + u2)  # U_b

    by_bytes = CHUNK_BYTES // (5 * k3 * j * dt.itemsize)
    nb = max(1, min(n, max(by_bytes, -(-CHUNK_MIN_COLS // j))))
    ld = nb * j  # columns of the V blocks and of T
    out = np.empty((n, o, oh, ow), dtype=dt)
    xs = scratch("poly_x", (nb, c, 4 * pairs + 1, 2, ow + 1), dt)  # x_pad, column phases
    ds = scratch("poly_d", (nb, c, 2 * pairs, 2, ow + 1), dt)  # D_k = x_pad[2k] - x_pad[2k + 2]
    cols = scratch("poly_v", (5, 3, c, nb, pairs, ow), dt)  # V blocks E0, a, E1, c, b
    t_even = scratch("poly_t0", (o, ld), dt)
    t_odd = scratch("poly_t1", (o, ld), dt)
    bias4 = None if bias is None else bias[:, None, None, None]
    copies: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # per chunk size m'
    for i0 in range(0, n, nb):
        m = min(nb, n - i0)
        mj = m * j
        xc, dc = xs[:m], ds[:m]
        if m not in copies:  # (V block row set, its view of x_pad or D) for each block and tap
            srcs = ((xc, 1, 4), (dc, 0, 2), (xc, 3, 4), (dc, 1, 2), (xc, 2, 4))
            copies[m] = [
                (cols[b, v, :, :m], view)
                for b, (a, first, step) in enumerate(srcs)
                for v, view in enumerate(_tap_view(a, first, step, pairs, ow))
            ]
        _fill_padded(xc, x[i0 : i0 + m], plan)
        np.subtract(xc[:, :, 0 : 4 * pairs : 2], xc[:, :, 2 : 4 * pairs + 1 : 2], out=dc)
        for dst, src in copies[m]:
            np.copyto(dst, src)
        # Fortran terms: T (mj x n_C) = V^T (mj x K) @ U^T (K x n_C); V's rows are ld apart.
        gemm(False, False, mj, o, k3, cols, 4 * k3 * ld, ld, w_mid, 0, k3, 0.0, t_even, 0, ld)
        t_odd[:, :mj] = t_even[:, :mj]
        gemm(False, False, mj, o, 2 * k3, cols, 0, ld, w_even, 0, 2 * k3, 1.0, t_even, 0, ld)
        v_odd = 2 * k3 * ld
        gemm(False, False, mj, o, 2 * k3, cols, v_odd, ld, w_odd, 0, 2 * k3, 1.0, t_odd, 0, ld)
        for t, first in ((t_even, 0), (t_odd, 1)):  # interleave the rows, adding the bias
            res = t[:, :mj].reshape(o, m, pairs, ow)[:, :, : (oh - first + 1) // 2]
            dst = out[i0 : i0 + m, :, first::2].transpose(1, 0, 2, 3)  # (n_C, m', rows, n_W)
            if bias4 is None:
                np.copyto(dst, res)
            else:
                np.add(res, bias4, out=dst)
    return out
