"""Max and average pooling, forward and backward, with ``torch.nn.functional`` semantics.

x is (m, n_C, n_H_prev, n_W_prev); the output is (m, n_C, n_H, n_W) with
``n_H = floor((n_H_prev + 2p - f) / s) + 1``. Each channel is pooled on its own:

    max: A[i, c, h, w] = max_{u,v} x_pad[i, c, h*s + u, w*s + v]   (padding with -inf)
    avg: A[i, c, h, w] = mean_{u,v} x_pad[i, c, h*s + u, w*s + v]  (padding with 0, counted)

The stride defaults to the kernel size, as in PyTorch. Padding must be at most half the kernel.
Vectorised as a loop over the f_h * f_w kernel offsets, each a strided view of the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnkit.conv.shapes import IntPair, check_ndim, out_hw, pair
from cnnkit.errors import ShapeError


@dataclass
class PoolCache:
    """What a pooling backward needs."""

    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_hw: tuple[int, int]
    argmax: np.ndarray | None  # max pooling: the offset index u*f_w + v of each maximum (uint8/16)


def _geometry(x: np.ndarray, kernel: IntPair, stride: IntPair | None, padding: IntPair):
    check_ndim(x, 4, "x", "NCHW (m, n_C, n_H, n_W)")
    k = pair(kernel, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise ShapeError(f"need kernel >= 1, stride >= 1, padding >= 0; got {k}, {s}, {p}")
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise ShapeError(
            f"padding {p} is more than half the kernel {k}",
            hint="as in PyTorch, pooling padding must be at most kernel_size // 2",
        )
    oh, ow = out_hw(x.shape[2], x.shape[3], k, s, (p[0], p[0], p[1], p[1]))
    return k, s, p, (oh, ow)


def _window(xp: np.ndarray, u: int, v: int, s: tuple[int, int], o: tuple[int, int]) -> np.ndarray:
    """The (m, n_C, n_H, n_W) strided view x_pad[:, :, h*s + u, w*s + v]."""
    return xp[:, :, u : u + s[0] * (o[0] - 1) + 1 : s[0], v : v + s[1] * (o[1] - 1) + 1 : s[1]]


def _padded(x: np.ndarray, p: tuple[int, int], value: float) -> np.ndarray:
    if p == (0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=value)


def _float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def max_pool2d_forward(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> tuple[np.ndarray, PoolCache]:
    """:func:`max_pool2d` that also returns the cache for :func:`max_pool2d_backward`."""
    x = _float(x)
    k, s, p, o = _geometry(x, kernel_size, stride, padding)
    xp = _padded(x, p, -np.inf)
    out = _window(xp, 0, 0, s, o).copy()
    idx = np.zeros(out.shape, dtype=np.uint8 if k[0] * k[1] < 256 else np.uint16)
    for u in range(k[0]):
        for v in range(k[1]):
            if u == 0 and v == 0:
                continue
            win = _window(xp, u, v, s, o)
            better = win > out  # strict: the first maximum in row-major order wins, as torch
            np.copyto(out, win, where=better)
            np.copyto(idx, u * k[1] + v, where=better)
    return out, PoolCache(x.shape, k, s, p, o, idx)


def max_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """Max pooling of an NCHW batch, like ``torch.nn.functional.max_pool2d`` (ceil_mode=False).

    Args:
        x: (m, n_C, n_H_prev, n_W_prev).
        kernel_size: f or (f_h, f_w).
        stride: s or (s_h, s_w); defaults to kernel_size.
        padding: p or (p_h, p_w), filled with -inf; at most half the kernel.

    Returns:
        (m, n_C, n_H, n_W), same float dtype.

    >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    return max_pool2d_forward(x, kernel_size, stride, padding)[0]


def max_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """dx of max pooling: each dA[i, c, h, w] goes to the position of its window's maximum."""
    k, s, p, o = cache.kernel, cache.stride, cache.padding, cache.out_hw
    dout = np.asarray(dout)
    n, c, h, w = cache.x_shape
    dxp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=dout.dtype)
    assert cache.argmax is not None
    for u in range(k[0]):
        for v in range(k[1]):
            sel = cache.argmax == u * k[1] + v
            _window(dxp, u, v, s, o)[...] += np.where(sel, dout, 0)
    return dxp[:, :, p[0] : p[0] + h, p[1] : p[1] + w]


def avg_pool2d_forward(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> tuple[np.ndarray, PoolCache]:
    """:func:`avg_pool2d` that also returns the cache for :func:`avg_pool2d_backward`."""
    x = _float(x)
    k, s, p, o = _geometry(x, kernel_size, stride, padding)
    xp = _padded(x, p, 0.0)
    out = _window(xp, 0, 0, s, o).copy()
    for u in range(k[0]):
        for v in range(k[1]):
            if u or v:
                out += _window(xp, u, v, s, o)
    out *= out.dtype.type(1.0 / (k[0] * k[1]))
    return out, PoolCache(x.shape, k, s, p, o, None)


def avg_pool2d(
    x: np.ndarray, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
) -> np.ndarray:
    """Average pooling like ``torch.nn.functional.avg_pool2d`` (count_include_pad=True).

    Padded zeros count in the mean, so every window divides by f_h * f_w.
    Arguments and shapes as :func:`max_pool2d`.
    """
    return avg_pool2d_forward(x, kernel_size, stride, padding)[0]


def avg_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """dx of average pooling: each dA[i, c, h, w] / (f_h f_w) goes to every cell of its window."""
    k, s, p, o = cache.kernel, cache.stride, cache.padding, cache.out_hw
    dout = np.asarray(dout)
    n, c, h, w = cache.x_shape
    dxp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), dtype=dout.dtype)
    share = dout * dout.dtype.type(1.0 / (k[0] * k[1]))
    for u in range(k[0]):
        for v in range(k[1]):
            _window(dxp, u, v, s, o)[...] += share
    return dxp[:, :, p[0] : p[0] + h, p[1] : p[1] + w]
