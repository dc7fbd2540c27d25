"""Naive loop versions, the tests' second opinion (slow: use tiny shapes only).

They spell out the formulas of the notes one output cell at a time, in float64.
"""

from __future__ import annotations

import numpy as np

from cnnkit.conv.shapes import IntPair, Padding, out_hw, pair, resolve_padding


def conv2d_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
) -> np.ndarray:
    """Z[i, c, h, w] = b[c] + sum_{c', u, v} x_pad[i, c', h s_h + u, w s_w + v] W[c, c', u, v]."""
    x, weight = np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    m, _, h, w = x.shape
    c_out, _, fh, fw = weight.shape
    s = pair(stride, "stride")
    top, bottom, left, right = resolve_padding(padding, (fh, fw), s)
    oh, ow = out_hw(h, w, (fh, fw), s, (top, bottom, left, right))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    z = np.zeros((m, c_out, oh, ow))
    for i in range(m):
        for c in range(c_out):
            for r in range(oh):
                for q in range(ow):
                    box = xp[i, :, r * s[0] : r * s[0] + fh, q * s[1] : q * s[1] + fw]
                    z[i, c, r, q] = np.sum(box * weight[c]) + (0 if bias is None else bias[c])
    return z


def conv2d_backward_naive(
    dout: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntPair = 1, padding: Padding = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) by looping over output cells and adding each one's share (the notes' way)."""
    x, weight = np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    m, _, h, w = x.shape
    c_out, _, fh, fw = weight.shape
    s = pair(stride, "stride")
    top, bottom, left, right = resolve_padding(padding, (fh, fw), s)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(weight)
    for i in range(m):
        for c in range(c_out):
            for r in range(dout.shape[2]):
                for q in range(dout.shape[3]):
                    rs, qs = slice(r * s[0], r * s[0] + fh), slice(q * s[1], q * s[1] + fw)
                    dxp[i, :, rs, qs] += weight[c] * dout[i, c, r, q]
                    dw[c] += xp[i, :, rs, qs] * dout[i, c, r, q]
    return dxp[:, :, top : top + h, left : left + w], dw, dout.sum(axis=(0, 2, 3))


def pool2d_naive(
    x: np.ndarray,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    mode: str = "max",
) -> np.ndarray:
    """Max (padding -inf) or average (padding 0, counted) over each window, one cell at a time."""
    x = np.asarray(x, dtype=np.float64)
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding")
    oh, ow = out_hw(x.shape[2], x.shape[3], k, s, (p[0], p[0], p[1], p[1]))
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    out = np.zeros(x.shape[:2] + (oh, ow))
    for r in range(oh):
        for q in range(ow):
            box = xp[:, :, r * s[0] : r * s[0] + k[0], q * s[1] : q * s[1] + k[1]]
            out[:, :, r, q] = box.max(axis=(2, 3)) if mode == "max" else box.mean(axis=(2, 3))
    return out
