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
from numpy.lib.stride_tricks import sliding_window_view

from cnnkit.conv.blas import gemm
from cnnkit.conv.plan import ConvPlan, scratch

#: Images per chunk: as many as keep the chunk's V blocks (15 n_C_prev rows) under this many
#: bytes (at least one image); one image of the 64x56x56 stride-2 layer is 1.5 MB.
CHUNK_BYTES = 2 * 2**20


def _row_taps(a: np.ndarray, first: int, step: int, pairs: int, n_w: int) -> np.ndarray:
    """(m', C, R, W_p) rows ``first + step t`` -> view (3, C, m', pairs, n_W) of a[..., 2w + v].

    Element [v, c, i, t, w] is a[i, c, first + step t, 2w + v]: the im2col of those rows along
    the width for a 1 x 3, stride-2 filter.
    """
    rows = a[:, :, first : first + step * (pairs - 1) + 1 : step]  # (m', C, pairs, W_p)
    win = sliding_window_view(rows, 3, axis=3)[:, :, :, : 2 * n_w - 1 : 2]  # (m', C, t, w, v)
    return win.transpose(4, 1, 0, 2, 3)


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
    top, _, left, _ = plan.pad4
    pairs = (oh + 1) // 2
    hp = 4 * pairs + 1  # rows of x_pad that the pairs read (zero past the real padding)
    wp = 2 * ow + 1
    k3, j = 3 * c, pairs * ow

    wt = weight.transpose(0, 2, 3, 1)  # (n_C, u, v, n_C_prev): U_u = wt[:, u] as (n_C, 3 C)
    u0, u1, u2 = (wt[:, u].reshape(o, k3) for u in range(3))
    w_even = np.concatenate([u1, u0], axis=1)  # [U_1 | U_0]
    w_odd = np.concatenate([u1, -u2], axis=1)  # [U_1 | -U_2]
    w_mid = np.ascontiguousarray(u0 + u2)  # U_b

    nb = max(1, min(n, CHUNK_BYTES // (5 * k3 * j * dt.itemsize)))
    out = np.empty((n, o, oh, ow), dtype=dt)
    xp = scratch("poly_xp", (nb, c, hp, wp), dt)
    diff = scratch("poly_d", (nb, c, 2 * pairs, wp), dt)
    cols = scratch("poly_v", (5, 3, c, nb, pairs, ow), dt)  # blocks E0, a, E1, c, b; rows (v, c')
    t_even = scratch("poly_t0", (o, nb * j), dt)
    t_odd = scratch("poly_t1", (o, nb * j), dt)
    bias3 = None if bias is None else bias[:, None, None, None]
    r1, c1 = max(top, min(hp, top + plan.h)), max(left, min(wp, left + plan.w))
    views: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for i0 in range(0, n, nb):
        m = min(nb, n - i0)
        mj = m * j
        xc, dc = xp[:m], diff[:m]
        if m not in views:  # (V block, its im2col view of x_pad or D), built once per size
            v = cols[:, :, :, :m]  # (5, 3, C, m', pairs, n_W)
            srcs = ((xc, 1, 4), (dc, 0, 2), (xc, 3, 4), (dc, 1, 2), (xc, 2, 4))
            views[m] = [(v[b], _row_taps(a, f, s, pairs, ow)) for b, (a, f, s) in enumerate(srcs)]
        # x_pad of the chunk: only the rows and columns that the windows read.
        xc[:, :, :top] = 0
        xc[:, :, r1:] = 0
        xc[:, :, top:r1, :left] = 0
        xc[:, :, top:r1, c1:] = 0
        xc[:, :, top:r1, left:c1] = x[i0 : i0 + m, :, : r1 - top, : c1 - left]
        np.subtract(xc[:, :, 0 : 4 * pairs : 2], xc[:, :, 2 : 4 * pairs + 1 : 2], out=dc)
        for dst, src in views[m]:
            np.copyto(dst, src)
        # Fortran terms: T (mj x n_C) = V^T (mj x K) @ U^T (K x n_C), V rows 3C apart.
        ld = nb * j
        gemm(False, False, mj, o, k3, cols, 4 * k3 * ld, ld, w_mid, 0, k3, 0.0, t_even, 0, ld)
        t_odd[:, :mj] = t_even[:, :mj]
        gemm(False, False, mj, o, 2 * k3, cols, 0, ld, w_even, 0, 2 * k3, 1.0, t_even, 0, ld)
        gemm(False, False, mj, o, 2 * k3, cols, 2 * k3 * ld, ld, w_odd, 0, 2 * k3, 1.0, t_odd, 0, ld)
        for t, rows in ((t_even, slice(0, oh, 2)), (t_odd, slice(1, oh, 2))):
            res = t[:, :mj].reshape(o, m, pairs, ow)[:, :, : (oh - rows.start + 1) // 2]
            dst = out[i0 : i0 + m, :, rows].transpose(1, 0, 2, 3)  # (n_C, m', rows, n_W)
            if bias3 is None:
                np.copyto(dst, res)
            else:
                np.add(res, bias3, out=dst)
    return out
