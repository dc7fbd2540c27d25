"""Winograd convolution F(m x m, 3 x 3) for stride-1 3x3 layers (Lavin and Gray, 2016).

One dimension first. F(m, r) computes m outputs of a 1-D correlation with an r-tap filter g,
``y_k = sum_{j<r} d_{k+j} g_j`` (k < m), from a tile of alpha = m + r - 1 inputs d, as

    y = A^T [ (G g) * (B^T d) ]        (* elementwise: alpha multiplies instead of m r)

where B^T (alpha x alpha), G (alpha x r) and A^T (m x alpha) are small constant matrices (built by
:func:`toom_cook` below from alpha - 1 interpolation points and the point at infinity). Nesting it
over rows and columns gives the 2-D algorithm for an m x m output tile and an r x r filter:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        d: alpha x alpha input tile, Y: m x m output tile

For F(2x2, 3x3) (points 0, 1, -1) the matrices are, up to one sign per point (its row of B^T, its
row of G and its column of A^T, whose product is what counts)::

    B^T = [[1,  0, -1,  0],    G = [[ 1,    0,   0 ],    A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],         [ 1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],         [ 1/2, -1/2, 1/2],
           [0,  1,  0, -1]]         [ 0,    0,   1 ]]

and B^T d B needs only additions. F(4x4, 3x3) adds the points 2, -2 and F(6x6, 3x3) also 1/2, -1/2.

Output size and tiles, in the notation of the notes: an input (m_b, n_C_prev, n_H_prev, n_W_prev)
with padding p (top/bottom, left/right) and f = 3, s = 1 gives n_H = n_H_prev + 2p - f + 1. The
output is cut into tH x tW tiles of m x m, tH = ceil(n_H / m) (the last tile is cropped); tile
(t, u) reads the alpha x alpha input window at rows t m .. t m + alpha - 1 of the padded input
(zeros past its end), so neighbouring input tiles overlap by r - 1 = 2.

Multiply count: per output tile and per (n_C, n_C_prev) pair, the direct method multiplies
m^2 r^2 times, Winograd (m + r - 1)^2 times (the elementwise product). With r = 3: F(2, 3)
16 / 36 = 0.44 of the direct multiplies, F(4, 3) 36 / 144 = 0.25, F(6, 3) 64 / 324 = 0.20. Summed
over input channels, the elementwise stage becomes one GEMM per tile position (xi, nu):

    M[xi, nu] (n_C, P) = U[xi, nu] (n_C, n_C_prev) @ V[xi, nu] (n_C_prev, P),   P = tiles

with U = G g G^T (once per filter) and V = B^T d B: alpha^2 GEMMs that NumPy's BLAS runs near its
peak. The transforms grow with m, and so does the float32 error (the points 2 and 1/2 amplify
rounding; measured in docs/conv.md).

Layout. The transforms are done chunk by chunk (a few images, or a band of tile rows of one
image) so that the transformed tiles stay in the CPU's cache. A chunk of the padded input is split
into its m x m phases, phase (a, b) holding x_pad[t m + a, u m + b] at (t, u), flattened
channel-major over (n_C_prev, images, tH + 1, tW + 1): input-tile element (i, j) of every tile is
then phase (i % m, j % m) shifted by (i // m) (tW + 1) + j // m columns (the "wide" trick of
:mod:`cnnkit.conv.plan`). Each 1-D pass of a transform is then one small GEMM (B^T times alpha
such rows) over blocks of columns. V is then copied without the spare row and column of tiles
(one copy: on a 7 x 7 tile grid they are 31% of the wide columns, which the GEMMs, the output
transform and the weight gradient would otherwise compute for nothing).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from cnnkit.conv.plan import phase_axis, scratch
from cnnkit.conv.shapes import Pad4

#: Interpolation points, in the order they are used (plus the point at infinity): F(m, r)
#: takes the first m + r - 2, so F(2, 3) uses 0, 1, -1, F(4, 3) adds 2, -2, F(6, 3) 1/2, -1/2;
#: F(4, 2) (a 2 x 2 filter, e.g. a stride-2 3x3 layer split into its stride phases, which
#: measured slower than the direct path: docs/conv.md) uses 0, 1, -1, 2.
POINTS: tuple[Fraction, ...] = tuple(
    Fraction(p) for p in (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))
)
#: Columns of a chunk's wide layout that the GEMMs should see at least / the transforms at most.
CHUNK_MIN_COLS = 256
CHUNK_BYTES = 2**20


def _poly_mul(a: list[Fraction], b: list[Fraction]) -> list[Fraction]:
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


@functools.cache
def toom_cook(m: int, r: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T, G, A^T) of F(m, r) from the first m + r - 2 POINTS, exact in rationals, as float64.

    Linear convolution s = h * g (h: m taps, g: r taps, s: alpha = m + r - 1 taps) is evaluation
    at the points a_i (h(a_i) = A h, g(a_i) / f_i = G g with f_i = prod_{j != i} (a_i - a_j)),
    an elementwise product, and Lagrange interpolation s = C [...], with the point at infinity
    supplying the leading coefficient h_{m-1} g_{r-1}. Column i of C holds the coefficients of
    prod_{j != i} (x - a_j), the last column those of prod_j (x - a_j). Correlation is the
    transpose of convolution in h, so y = A^T [(G g) * (C^T d)], i.e. B^T = C^T.
    """
    alpha = m + r - 1
    if not 1 <= alpha - 1 <= len(POINTS) or r < 2:
        raise ValueError(f"F({m}, {r}) needs {alpha - 1} finite points, have {len(POINTS)}")
    pts = POINTS[: alpha - 1]
    bt = np.zeros((alpha, alpha))
    g = np.zeros((alpha, r))
    at = np.zeros((m, alpha))
    for i, a in enumerate(pts):
        poly = [Fraction(1)]
        f_i = Fraction(1)
        for j, b in enumerate(pts):
            if j != i:
                poly = _poly_mul(poly, [-b, Fraction(1)])
                f_i *= a - b
        bt[i, : len(poly)] = [float(c) for c in poly]
        g[i] = [float(a**k / f_i) for k in range(r)]
        at[:, i] = [float(a**k) for k in range(m)]
    full = [Fraction(1)]
    for b in pts:
        full = _poly_mul(full, [-b, Fraction(1)])
    bt[alpha - 1] = [float(c) for c in full]
    g[alpha - 1, r - 1] = 1.0
    at[m - 1, alpha - 1] = 1.0
    return bt, g, at


# --- geometry and chunks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Images n0:n1 and tile rows t0:t1 of a Winograd convolution."""

    n0: int
    n1: int
    t0: int
    t1: int

    @property
    def images(self) -> int:
        return self.n1 - self.n0

    @property
    def rows(self) -> int:
        return self.t1 - self.t0


def tiles(out_h: int, out_w: int, m: int) -> tuple[int, int]:
    """(tH, tW) = (ceil(n_H / m), ceil(n_W / m))."""
    return -(-out_h // m), -(-out_w // m)


def chunks(
    n: int, t_h: int, t_w: int, channels: int, m: int, itemsize: int, r: int = 3
) -> list[Chunk]:
    """Split (images, tile rows) so a chunk's transformed tiles stay near CHUNK_BYTES.

    A chunk holds whole images when one image's tiles are small, else a band of tile rows of one
    image; never fewer than CHUNK_MIN_COLS wide-layout columns when the layer has that many.
    Smaller chunks measured faster (the transforms stay in cache), also for the weight gradient,
    whose GEMMs sum over the columns.
    """
    alpha = m + r - 1
    cols = max(CHUNK_MIN_COLS, CHUNK_BYTES // (alpha * alpha * channels * itemsize))
    per_image = (t_h + 1) * (t_w + 1)
    if per_image <= cols:
        step = max(1, cols // per_image)
        return [Chunk(i, min(n, i + step), 0, t_h) for i in range(0, n, step)]
    band = max(1, cols // (t_w + 1) - 1)
    return [Chunk(i, i + 1, t, min(t_h, t + band)) for i in range(n) for t in range(0, t_h, band)]


# --- the transforms, as small GEMMs over blocks of columns ------------------------------------
#
# Each 1-D pass of a transform multiplies a small matrix (alpha x alpha, m x alpha, alpha x m)
# by a (rows x columns) block whose columns are every tile of the chunk and every channel.
# OpenBLAS runs these at 1-4 ns per column when the block stays in the L1/L2 cache, 3-5x
# faster than the same sums as NumPy additions (measured; see docs/conv.md), so the columns go
# through in BLOCK-sized pieces and every pass is one np.matmul over strided views (no copies).

#: Columns per block of the transforms: a block's operands stay in the L1/L2 cache.
BLOCK = 4096
#: V is compacted (spare tiles dropped) when they are at least this fraction of the wide columns:
#: 7x7 tile grids (31% spare, 14x14 layers with F(2, 3)) gained 5-10% in the forward, 14x14
#: grids (13%, 56x56 layers with F(4, 3)) lost about as much to the copy (docs/conv.md).
COMPACT_FROM = 0.2


class Workspace:
    """Scratch buffers of one chunk of ``images`` x ``rows`` x tW tiles, reused across chunks and
    calls (cnnkit.conv.plan.scratch: fresh pages cost a page fault on first touch).

    The input side is wide, cols = images (rows + 1) (tW + 1) columns (the spare row and column
    of tiles that the shifted phases need). When the spare tiles are at least COMPACT_FROM of
    them, V is copied to the tiles' tcols = images rows tW columns, so that the GEMMs and the
    output side do no spare work; ``grid`` is the (rows, columns) of tiles they see.
    """

    def __init__(
        self, m: int, c: int, k: int, ch: Chunk, t_w: int, dtype: np.dtype, r: int = 3
    ) -> None:
        alpha = m + r - 1
        cols = ch.images * (ch.rows + 1) * (t_w + 1)
        self.m, self.alpha, self.cols, self.t_w, self.ch = m, alpha, cols, t_w, ch
        self.compact = 1 - ch.rows * t_w / ((ch.rows + 1) * (t_w + 1)) >= COMPACT_FROM
        self.grid = (ch.rows, t_w) if self.compact else (ch.rows + 1, t_w + 1)
        self.tcols = ch.images * self.grid[0] * self.grid[1]
        bt, _, at = toom_cook(m, r)
        self.bt, self.at, self.a = (np.ascontiguousarray(t, dtype) for t in (bt, at, at.T))
        # input rows: zr[b, i] = phase (i % m, b) shifted by i // m tile rows
        self.zr = scratch("wg_z", (m, alpha, c * cols), dtype)
        self.v = scratch("wg_v", (alpha * alpha, c, cols), dtype)  # V = B^T d B, wide
        self.vt = (  # V of the GEMMs
            scratch("wg_vt", (alpha * alpha, c, self.tcols), dtype) if self.compact else self.v
        )
        self.mm = scratch("wg_m", (alpha * alpha, k, self.tcols), dtype)  # M = U V (or dYt)
        self.o = scratch("wg_o", (m, k * self.tcols, m), dtype)  # A^T M A (or dZ), see
        # output_transform
        self.stage = scratch("wg_s", (alpha * alpha * (BLOCK + 1),), dtype)  # between the passes


def input_transform(ws: Workspace, c: int) -> np.ndarray:
    """V (alpha^2, C, tcols) = B^T d B for every tile of the input rows in ws.zr, block by block.

    Rows first, R[xi, j] = sum_i B^T[xi, i] zr[j, i] (j < m: the column phases), then columns,
    V[xi, nu] = sum_j B^T[nu, j] R[xi, j] with R[xi, j] for j >= m being R[xi, j - m] shifted by
    one column (the next tile's first columns).
    """
    m, t_w = ws.m, ws.t_w
    alpha, size = ws.alpha, c * ws.cols
    total = size - (t_w + 1) - 1  # the last valid column comes before this
    vf = ws.v.reshape(alpha, alpha, size)
    vf[:, :, total:] = 0
    for lo in range(0, total, BLOCK):
        n = min(BLOCK, total - lo)
        rr = ws.stage[: alpha * alpha * (n + 1)].reshape(alpha, alpha, n + 1)  # R[xi, j]
        # (m_b, alpha_i, n+1) -> R[:, b] for b < m
        np.matmul(ws.bt, ws.zr[:, :, lo : lo + n + 1], out=rr[:, :m].transpose(1, 0, 2))
        rr[:, m:, :n] = rr[:, : alpha - m, 1:]
        np.matmul(ws.bt, rr[:, :, :n], out=vf[:, :, lo : lo + n])
    if not ws.compact:
        return ws.v
    ch, t_w, a2 = ws.ch, ws.t_w, alpha * alpha
    wide = ws.v.reshape(a2, c, ch.images, ch.rows + 1, t_w + 1)[:, :, :, : ch.rows, :t_w]
    np.copyto(ws.vt.reshape(a2, c, ch.images, ch.rows, t_w), wide)
    return ws.vt


def extend_rows(ws: Workspace, c: int) -> None:
    """zr[:, i] for i >= m: the row phase i - m, one tile row (tW + 1 columns) further on."""
    m, shift = ws.m, ws.t_w + 1
    ws.zr[:, m:, : c * ws.cols - shift] = ws.zr[:, : ws.zr.shape[1] - m, shift:]


def output_transform(ws: Workspace, k: int) -> np.ndarray:
    """O (m, K tcols, m) = A^T M A for every tile of ws.mm (alpha^2, K, tcols).

    O[r, p, q] is output pixel (r, q) of the tile in column p: the last axis interleaves the
    m columns of a tile, so that O[r] reads as (K, images, rows, tW m): whole output
    rows, which the caller copies out with long contiguous runs.
    """
    m = ws.m
    alpha, size = ws.alpha, k * ws.tcols
    mf = ws.mm.reshape(alpha, alpha, size)
    for lo in range(0, size, BLOCK):
        n = min(BLOCK, size - lo)
        s = ws.stage[: alpha * m * n].reshape(alpha, m, n)  # S[nu, r] = sum_xi A^T[r, xi] M[xi, nu]
        np.matmul(ws.at, mf[:, :, lo : lo + n].transpose(1, 0, 2), out=s)
        np.matmul(s.transpose(1, 2, 0), ws.at.T, out=ws.o[:, lo : lo + n, :])
    return ws.o


def dz_transform(ws: Workspace, k: int) -> np.ndarray:
    """dYt (alpha^2, K, tcols) = A dY A^T for the m x m tiles of dZ in ws.o (as output_transform
    leaves O): the transpose of the output transform, for the weight gradient."""
    m = ws.m
    alpha, size = ws.alpha, k * ws.tcols
    dyt = ws.mm.reshape(alpha, alpha, size)
    for lo in range(0, size, BLOCK):
        n = min(BLOCK, size - lo)
        t = ws.stage[: m * alpha * n].reshape(m, alpha, n)  # T[r, nu] = sum_q A[nu, q] dY[r, q]
        np.matmul(ws.a, ws.o[:, lo : lo + n, :].transpose(0, 2, 1), out=t)
        np.matmul(ws.a, t.transpose(1, 0, 2), out=dyt[:, :, lo : lo + n].transpose(1, 0, 2))
    return ws.mm


def _phases(x: np.ndarray, ws: Workspace, ch: Chunk, pad4: Pad4) -> None:
    """Input rows zr[b, a] (C, images, rows + 1, tW + 1) for a < m: phase (a, b) of the chunk's
    padded input, x_pad[t m + a, u m + b] at (t, u); then the rows a >= m (extend_rows)."""
    m, t_w = ws.m, ws.t_w
    c = x.shape[1]
    zr6 = ws.zr.reshape(m, ws.alpha, c, ch.images, ch.rows + 1, t_w + 1)
    top, _, left, _ = pad4
    h, w = x.shape[2:]
    for a in range(m):
        rows = phase_axis(a, m, top - ch.t0 * m, h, ch.rows + 1)
        for b in range(m):
            cols = phase_axis(b, m, left, w, t_w + 1)
            zp = zr6[b, a]  # (C, images, rows + 1, tW + 1)
            if rows is None or cols is None:
                zp.fill(0)
                continue
            (dr, dc), (sr, sc) = (rows[0], cols[0]), (rows[1], cols[1])
            zp[:, :, : dr.start] = 0  # zeros only around the copy: each element written once
            zp[:, :, dr.stop :] = 0
            zp[:, :, dr, : dc.start] = 0
            zp[:, :, dr, dc.stop :] = 0
            zp[:, :, dr, dc] = x[ch.n0 : ch.n1, :, sr, sc].transpose(1, 0, 2, 3)
    extend_rows(ws, c)


# --- the convolution and its weight gradient --------------------------------------------------


def filter_transform(weight: np.ndarray, m: int) -> np.ndarray:
    """U (alpha^2, n_C, n_C_prev) = G g G^T for every filter g = weight[c, c'] (r x r).

    As one GEMM: U[(a, b), (c, c')] = sum_{i, j} (G kron G)[(a, b), (i, j)] g[(c, c'), (i, j)].
    """
    k, c, r = weight.shape[:3]
    g = toom_cook(m, r)[1]
    u = np.matmul(
        np.kron(g, g).astype(weight.dtype), np.ascontiguousarray(weight).reshape(k * c, r * r).T
    )
    return u.reshape(len(g) ** 2, k, c)


def filter_transform_grad(du: np.ndarray, m: int, r: int = 3) -> np.ndarray:
    """dW (n_C, n_C_prev, r, r) = G^T dU G from dU (alpha^2, n_C, n_C_prev): the transpose of
    :func:`filter_transform`."""
    g = toom_cook(m, r)[1]
    k, c = du.shape[1:]
    gg = np.kron(g, g).astype(du.dtype)
    return np.matmul(du.reshape(len(g) ** 2, k * c).T, gg).reshape(k, c, r, r)


def _workspace(
    ch: Chunk, m: int, c: int, k: int, t_w: int, dtype: np.dtype, r: int = 3
) -> Workspace:
    return Workspace(m, c, k, ch, t_w, dtype, r)


def _out_slices(ch: Chunk, r: int, q: int, m: int, out_h: int, out_w: int):
    """(rows, cols) of output pixel (r, q) of every tile of the chunk, and their counts."""
    rows = range(ch.t0 * m + r, min(ch.t1 * m, out_h), m)
    cols = range(q, out_w, m)
    return slice(rows.start, rows.stop, m), slice(q, out_w, m), len(rows), len(cols)


def conv2d_winograd(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    pad4: Pad4,
    m: int,
    keep: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Z (m_b, n_C, n_H, n_W) of a stride-1 r x r convolution by F(m x m, r x r).

    x is (m_b, n_C_prev, n_H_prev, n_W_prev), weight (n_C, n_C_prev, r, r) with r = 3 (or 2:
    F(m x m, 2 x 2), the same code with alpha = m + 1), bias (n_C,) or None, pad4 = (top,
    bottom, left, right) zeros. With a list ``keep``, the transformed input V of every chunk is
    appended to it (fresh arrays, not scratch), for
    :func:`conv2d_winograd_grad_weight` to reuse.
    """
    n, c, h, w = x.shape
    k, r = weight.shape[0], weight.shape[2]
    out_h, out_w = h + pad4[0] + pad4[1] - r + 1, w + pad4[2] + pad4[3] - r + 1
    t_h, t_w = tiles(out_h, out_w, m)
    u = filter_transform(weight, m)
    out = np.empty((n, k, out_h, out_w), dtype=x.dtype)
    for ch in chunks(n, t_h, t_w, max(c, k), m, x.itemsize, r):
        ws = _workspace(ch, m, c, k, t_w, x.dtype, r)
        if keep is not None:
            ws.vt = np.empty_like(ws.vt)  # a fresh V (compact, or wide: then the transform's own)
            ws.v = ws.v if ws.compact else ws.vt
            keep.append(ws.vt)
        _phases(x, ws, ch, pad4)
        np.matmul(u, input_transform(ws, c), out=ws.mm)
        if bias is not None:  # column 1 of A^T (point 1) is all ones: b on M[1, 1] adds b to Y
            ws.mm[ws.alpha * 1 + 1] += bias[:, None]
        o = output_transform(ws, k)
        for row in range(m):
            rs, _, nr, _ = _out_slices(ch, row, 0, m, out_h, out_w)
            src = o[row].reshape(k, ch.images, ws.grid[0], ws.grid[1] * m)[:, :, :nr, :out_w]
            out[ch.n0 : ch.n1, :, rs] = src.transpose(1, 0, 2, 3)
    return out


def conv2d_winograd_grad_weight(
    dout: np.ndarray,
    x: np.ndarray,
    pad4: Pad4,
    m: int,
    r: int = 3,
    kept: list[np.ndarray] | None = None,
) -> np.ndarray:
    """dW (n_C, n_C_prev, r, r) = G^T [sum over tiles (A dY A^T) * (B^T d B)] G.

    The forward is linear in U = G g G^T with Y = A^T (U * V) A per tile, so
    dL/dU[xi, nu] (n_C, n_C_prev) = sum_tiles dYt[xi, nu] (n_C, P) @ V[xi, nu]^T (P, n_C_prev),
    alpha^2 GEMMs again, with dYt = A dY A^T (the m x m tile of dZ, zero outside the output).
    ``kept``: the V chunks that :func:`conv2d_winograd` kept for this x (else V is recomputed).
    """
    n, c, h, w = x.shape
    k, out_h, out_w = dout.shape[1:]
    t_h, t_w = tiles(out_h, out_w, m)
    alpha = m + r - 1
    du = np.zeros((alpha * alpha, k, c), dtype=x.dtype)
    for i, ch in enumerate(chunks(n, t_h, t_w, max(c, k), m, x.itemsize, r)):
        ws = _workspace(ch, m, c, k, t_w, x.dtype, r)
        if kept is not None:
            v = kept[i]
        else:
            _phases(x, ws, ch, pad4)
            v = input_transform(ws, c)
        dyp = ws.o  # (m, K tcols, m): dZ in the layout of output_transform, zero elsewhere
        dyp.fill(0)
        for row in range(m):
            rs, _, nr, _ = _out_slices(ch, row, 0, m, out_h, out_w)
            dst = dyp[row].reshape(k, ch.images, ws.grid[0], ws.grid[1] * m)[:, :, :nr, :out_w]
            dst[...] = dout[ch.n0 : ch.n1, :, rs].transpose(1, 0, 2, 3)
        dz_transform(ws, k)
        if ch.n0 == 0 and ch.t0 == 0:
            np.matmul(ws.mm, v.transpose(0, 2, 1), out=du)
        else:
            du += np.matmul(ws.mm, v.transpose(0, 2, 1), out=scratch("wg_du", du.shape, x.dtype))
    return filter_transform_grad(du, m, r)
