"""Geometry and memory layout shared by the conv2d forward and backward passes.

The engine never loops over pixels. It rewrites the padded input x_pad (m, n_C_prev, H_p, W_p)
as ``s_h * s_w`` stride phases, phase (a, b) holding x_pad[a + y*s_h, b + x*s_w] at (y, x), each
H_q x W_q, flattened row by row and stored channel-major:

    Z: (G, P, n_C_prev, M_g)      P = s_h * s_w phases, M_g = H_q * W_q (one image per group)
                                  or m * H_q * W_q (the whole batch in one group: "merged")

In this layout the window of output (h, w) at kernel offset (u, v) starts at column
``(h + u // s_h) * W_q + (w + v // s_w)`` of phase ``(u % s_h, v % s_w)``: every offset is the
same matrix shifted by ``shift(u, v) = (u // s_h) * W_q + v // s_w`` columns. So the output in the
"wide" layout Y (G, n_C, M_g) is ``sum_{u,v} W_uv @ Z[g, phase, :, shift : shift + L]``, with
``L = M_g - max shift``; columns whose (h, w) lies outside (n_H, n_W) are computed and dropped.
For stride 1 and no padding Z is x itself (no copy).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cnnkit.conv.shapes import IntPair, Pad4, Padding, out_hw, pair, resolve_padding
from cnnkit.errors import ShapeError

# Strategy and layout heuristics, measured at one thread (bench/conv.py and docs/conv.md):
# im2col (+ one GEMM with a long inner dimension) when there are few input channels, where a
# GEMM per offset with an inner size of n_C_prev is memory bound, or when the image is small, where
# the im2col copy is cheap next to the GEMM; one GEMM per kernel offset otherwise.
IM2COL_BELOW_CHANNELS = 32
# "Small": fewer wide-layout cells (H_q * W_q) than this. Small images also merge the whole batch
# into one GEMM group (fewer, larger GEMMs); larger images get one group each, which needs no
# transpose of batch and channels.
MERGE_BELOW = 1024
# im2col merges the batch below this many output cells per image, unless the merged matrix would
# hold more than MERGED_COLS_MAX elements (it then goes image by image through one buffer).
MERGE_BELOW_IM2COL = 4096
MERGED_COLS_MAX = 16 * 2**20


@dataclass(frozen=True)
class ConvPlan:
    """Shapes of one convolution (or pooling) and of its wide layout."""

    n: int  # m, the batch size
    c_in: int  # n_C_prev
    h: int  # n_H_prev
    w: int  # n_W_prev
    c_out: int  # n_C
    kernel: tuple[int, int]  # (f_h, f_w)
    stride: tuple[int, int]  # (s_h, s_w)
    pad4: Pad4  # (top, bottom, left, right)
    out_h: int  # n_H
    out_w: int  # n_W
    hq: int  # rows of one phase image
    wq: int  # columns of one phase image
    merged: bool  # whole batch in one group
    im2col: bool  # strategy: im2col + one GEMM per group, else one GEMM per kernel offset

    @property
    def groups(self) -> int:
        return 1 if self.merged else self.n

    @property
    def phases(self) -> int:
        return self.stride[0] * self.stride[1]

    @property
    def mg(self) -> int:
        """Columns M_g of one group in the wide layout."""
        return (self.n if self.merged else 1) * self.hq * self.wq

    @property
    def length(self) -> int:
        """Columns L of the wide output that are computed: M_g minus the largest shift."""
        (fh, fw), (sh, sw) = self.kernel, self.stride
        return self.mg - ((fh - 1) // sh) * self.wq - (fw - 1) // sw

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """(phase, shift) for each kernel offset (u, v), row-major over (u, v)."""
        (fh, fw), (sh, sw) = self.kernel, self.stride
        return [
            ((u % sh) * sw + v % sw, (u // sh) * self.wq + v // sw)
            for u in range(fh)
            for v in range(fw)
        ]

    def phase_slices(self) -> Iterator[tuple[int, tuple[slice, slice], tuple[slice, slice]]]:
        """(phase, (rows, cols) in the phase image, (rows, cols) in x) for each non-empty phase."""
        (sh, sw), (top, _, left, _) = self.stride, self.pad4
        for a in range(sh):
            rows = phase_axis(a, sh, top, self.h, self.hq)
            for b in range(sw):
                cols = phase_axis(b, sw, left, self.w, self.wq)
                if rows is not None and cols is not None:
                    yield a * sw + b, (rows[0], cols[0]), (rows[1], cols[1])


def phase_axis(a: int, s: int, before: int, n: int, nq: int) -> tuple[slice, slice] | None:
    """Slices (in the phase image, in x) of phase a along one axis, or None if it is empty.

    Phase index y holds x index ``a + y*s - before``; it must lie in [0, n) and y in [0, nq).
    """
    y0 = max(0, -((a - before) // s))  # ceil((before - a) / s)
    last = n - 1 - a + before
    y1 = min(nq, last // s + 1) if last >= 0 else 0
    if y1 <= y0:
        return None
    src0 = a + y0 * s - before
    return slice(y0, y1), slice(src0, src0 + (y1 - y0 - 1) * s + 1, s)


def make_plan(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: IntPair,
    padding: Padding,
    merge: bool | None = None,
    im2col: bool | None = None,
) -> ConvPlan:
    """Check the shapes of x (m, n_C_prev, H, W) and W (n_C, n_C_prev, f_h, f_w); plan the layout.

    Raises:
        ShapeError: channel mismatch, empty kernel, bad stride/padding, or a filter that does
            not fit the padded input.
    """
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
    small = hq * wq < MERGE_BELOW
    if im2col is None:
        im2col = c_in < IM2COL_BELOW_CHANNELS or small
    if merge is None:
        if im2col:
            cols = (fh * fw * c_in + 1) * n * oh * ow
            merge = n > 1 and oh * ow < MERGE_BELOW_IM2COL and cols <= MERGED_COLS_MAX
        else:
            merge = n > 1 and small
    return ConvPlan(n, c_in, h, w, c_out, (fh, fw), st, p4, oh, ow, hq, wq, merge, im2col)


def to_phases(x: np.ndarray, plan: ConvPlan, fill: float = 0.0) -> np.ndarray:
    """x (m, C, H, W) -> Z (G, P, C, M_g), padded with ``fill``; a view of x when possible."""
    p = plan
    if (
        p.phases == 1
        and not p.merged
        and p.pad4 == (0, 0, 0, 0)
        and (p.hq, p.wq) == (p.h, p.w)
        and x.flags.c_contiguous
    ):
        return x.reshape(p.n, 1, p.c_in, p.h * p.w)
    # Write every element once: the copy of x, and `fill` only around it.
    z = np.empty((p.n, p.phases, p.c_in, p.hq, p.wq), dtype=x.dtype)
    zt = z.transpose(1, 2, 0, 3, 4)  # (P, C, m, H_q, W_q): the layout of a merged batch
    if p.merged:
        z = np.empty((p.phases, p.c_in, p.n, p.hq, p.wq), dtype=x.dtype)
        zt = z
    filled = set()
    for ph, (dr, dc), (sr, sc) in p.phase_slices():
        zp = zt[ph]  # (C, m, H_q, W_q)
        zp[:, :, : dr.start] = fill
        zp[:, :, dr.stop :] = fill
        zp[:, :, dr, : dc.start] = fill
        zp[:, :, dr, dc.stop :] = fill
        zp[:, :, dr, dc] = x[:, :, sr, sc].transpose(1, 0, 2, 3)
        filled.add(ph)
    for ph in set(range(p.phases)) - filled:
        zt[ph] = fill
    return z.reshape(p.groups, p.phases, p.c_in, p.mg)


def from_phases(dz: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """Gradient w.r.t. Z (G, P, C, M_g) -> gradient w.r.t. x (m, C, H, W); padding dropped."""
    p = plan
    dx = np.zeros((p.n, p.c_in, p.h, p.w), dtype=dz.dtype)
    if p.merged:
        d5 = dz.reshape(p.phases, p.c_in, p.n, p.hq, p.wq)
        for ph, (dr, dc), (sr, sc) in p.phase_slices():
            dx[:, :, sr, sc] = d5[ph, :, :, dr, dc].transpose(1, 0, 2, 3)
    else:
        d5 = dz.reshape(p.n, p.phases, p.c_in, p.hq, p.wq)
        for ph, (dr, dc), (sr, sc) in p.phase_slices():
            dx[:, :, sr, sc] = d5[:, ph, :, dr, dc]
    return dx


def wide_view(y: np.ndarray, plan: ConvPlan) -> np.ndarray:
    """The (m, n_C, n_H, n_W) view of the valid cells of a wide array Y (G, n_C, M_g)."""
    p = plan
    if p.merged:
        y4 = y.reshape(y.shape[1], p.n, p.hq, p.wq)[:, :, : p.out_h, : p.out_w]
        return y4.transpose(1, 0, 2, 3)
    return y.reshape(p.n, y.shape[1], p.hq, p.wq)[:, :, : p.out_h, : p.out_w]


def wide_to_nchw(y: np.ndarray, plan: ConvPlan, bias: np.ndarray | None = None) -> np.ndarray:
    """Wide Y (G, n_C, M_g) -> contiguous (m, n_C, n_H, n_W), adding bias (n_C,) on the way."""
    v = wide_view(y, plan)
    out = np.empty(v.shape, dtype=y.dtype)
    if bias is None:
        np.copyto(out, v)
    else:
        np.add(v, bias[None, :, None, None], out=out)
    return out


def nchw_to_wide(d: np.ndarray, plan: ConvPlan, out: np.ndarray | None = None) -> np.ndarray:
    """(m, n_C, n_H, n_W) -> wide (G, n_C, M_g), zero in the cells that are not outputs."""
    y = np.zeros((plan.groups, d.shape[1], plan.mg), dtype=d.dtype) if out is None else out
    if out is not None:
        y.fill(0)
    wide_view(y, plan)[...] = d
    return y


_scratch_local = threading.local()
SCRATCH_MAX = 16 * 2**20  # elements; larger temporaries are allocated per call


def scratch(slot: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A reusable, uninitialised temporary of ``shape`` (one buffer per slot and thread).

    Big temporaries (the wide output, the wide dZ, ...) are otherwise fresh allocations on every
    call, and the kernel's page faults on first touch cost several milliseconds per layer (about
    5% of a 64-channel 56x56 layer here). Never
    return a scratch array (or a view of it) to the caller, and never hold it across calls.
    """
    size = int(np.prod(shape))
    if size > SCRATCH_MAX:  # do not keep hundreds of MB alive between calls
        return np.empty(shape, dtype=dtype)
    pool = getattr(_scratch_local, "pool", None)
    if pool is None:
        pool = _scratch_local.pool = {}
    buf = pool.get((slot, np.dtype(dtype)))
    if buf is None or buf.size < size:
        buf = pool[(slot, np.dtype(dtype))] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


# Winograd rules (measured at one thread, bench/conv.py and docs/conv.md): F(m x m, 3 x 3)
# replaces the direct GEMMs for 3x3, stride-1 float32 layers with enough channels on both sides
# (with few channels the transforms cost more than the GEMMs they save), and padding of at most
# 2 (f - 1), so that dx is again a padded 3x3 convolution.
WINOGRAD_MIN_CHANNELS = 32
# Output sizes (min(n_H, n_W)): below WINOGRAD_MIN_SIZE the direct im2col path wins (7x7 and 8x8
# layers: Winograd's backward was 1.3-1.9x slower, its tile grid mostly spare tiles); F(2x2, 3x3)
# up to F4_FROM - 1 (14x14: forward 0.85-0.91x of direct, backward even), F(4x4, 3x3) from
# there on (28x28 to 112x112: 0.63-0.9x of direct, forward and backward).
WINOGRAD_MIN_SIZE = 10
F4_FROM = 16
# The forward keeps its transformed input V for the weight gradient (which then skips the phase
# split and the input transform: 256x14x14 dW 17 -> 12 ms) from this many output channels on.
# V is 2.25-4 n_C_prev floats per output pixel in fresh memory: with few output channels, i.e.
# little GEMM work per kept element, writing it costs the forward more than the backward saves
# (64x56x56 -> 64: forward 18 -> 23 ms, dW 21 -> 14 ms; 256x14x14 -> 256: forward unchanged).
WINOGRAD_KEEP_V_FROM = 128
#: float64 keeps the exact direct path under "auto" (it is the precise mode); "winograd" forces.
WINOGRAD_DTYPES = (np.dtype(np.float32),)
ALGORITHMS = ("auto", "direct", "winograd", "winograd2", "winograd4", "winograd6", "polyphase")
# Stride-2 3x3 layers (cnnkit.conv.polyphase: row phases + F(2, 2), 0.83 of the direct
# multiplies, float32 error as the direct path's): taken under "auto" in float32 from
# POLYPHASE_MIN_C_IN channels in, POLYPHASE_MIN_C_OUT out and n_H, n_W >= POLYPHASE_MIN_SIZE.
# Measured forward time against the direct path (one thread, batch 8): 0.85-0.9x on 28x28 and
# 56x56 outputs (64 -> 128, 64 -> 64, 32 -> 64 channels), even at batch 1-2 and on 14x14 outputs
# (128 -> 256), slower on 16x16 outputs with 32 channels and on 7x7 outputs (256 -> 512), where
# the copies of the V blocks weigh more than the GEMM work they save.
POLYPHASE_MIN_C_IN = 32
POLYPHASE_MIN_C_OUT = 64
POLYPHASE_MIN_SIZE = 24


def winograd_tile(out_h: int, out_w: int) -> int:
    """m of F(m x m, 3 x 3) for an n_H x n_W output: 4, or 2 below F4_FROM.

    A 4x4 tile grid on a small output is mostly spare (cropped) tiles and spare rows of the wide
    layout; F(6x6, 3x3) is never chosen: it is the least accurate in float32 and was not faster
    than F(4x4, 3x3) here (docs/conv.md).
    """
    return 4 if min(out_h, out_w) >= F4_FROM else 2


def choose_algorithm(plan: ConvPlan, dtype: np.dtype, algorithm: str) -> int:
    """The Winograd tile size m for this convolution, or 0 for the direct path.

    Raises:
        ShapeError: an unknown algorithm, or "winograd*" on a layer it cannot run.
    """
    if algorithm not in ALGORITHMS:
        raise ShapeError(
            f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}",
            hint="'auto' picks the fastest measured path",
        )
    eligible = plan.kernel == (3, 3) and plan.stride == (1, 1) and max(plan.pad4) <= 2
    if algorithm in ("direct", "polyphase"):
        return 0
    if algorithm.startswith("winograd"):
        if not eligible:
            raise ShapeError(
                f"algorithm={algorithm!r} needs a 3x3 filter, stride 1 and padding <= 2, got "
                f"{plan.kernel[0]}x{plan.kernel[1]}, stride {plan.stride}, padding {plan.pad4}",
                hint="use algorithm='auto' or 'direct'",
            )
        return int(algorithm[8:]) if algorithm[8:] else winograd_tile(plan.out_h, plan.out_w)
    if (
        eligible
        and np.dtype(dtype) in WINOGRAD_DTYPES
        and min(plan.c_in, plan.c_out) >= WINOGRAD_MIN_CHANNELS
        and min(plan.out_h, plan.out_w) >= WINOGRAD_MIN_SIZE
    ):
        return winograd_tile(plan.out_h, plan.out_w)
    return 0


def use_polyphase(plan: ConvPlan, dtype: np.dtype, algorithm: str) -> bool:
    """Whether the forward takes the stride-2 row-phase path (:mod:`cnnkit.conv.polyphase`).

    Raises:
        ShapeError: algorithm="polyphase" on a layer that is not 3x3 with stride 2.
    """
    eligible = plan.kernel == (3, 3) and plan.stride == (2, 2)
    if algorithm == "polyphase":
        if not eligible:
            raise ShapeError(
                f"algorithm='polyphase' needs a 3x3 filter and stride 2, got "
                f"{plan.kernel[0]}x{plan.kernel[1]}, stride {plan.stride}",
                hint="use algorithm='auto' or 'direct'",
            )
        return True
    return (
        algorithm == "auto"
        and eligible
        and np.dtype(dtype) in WINOGRAD_DTYPES
        and plan.c_in >= POLYPHASE_MIN_C_IN
        and plan.c_out >= POLYPHASE_MIN_C_OUT
        and min(plan.out_h, plan.out_w) >= POLYPHASE_MIN_SIZE
    )
