"""Convolution, step by step: the numbers behind one conv2d, for teaching (the web app's
Convolution tab).

:func:`explain_conv2d` takes one 2-D input and one filter and returns the padded input, the
output (computed by :func:`cnnkit.conv.conv2d`), the size formula with the numbers filled in,

    n_H = floor((n_H_prev + 2p - f) / s) + 1,

and, for every output cell (h, w), the f x f window x_pad[h*s : h*s + f, w*s : w*s + f], the f^2
products window * W and their sum. :func:`explain_volume` does convolution over volume: an
(n_C_prev, n_H, n_W) input, n_C filters of (n_C_prev, f, f), output (n_C, n_H', n_W'), with each
channel's share of the sum.

>>> import numpy as np
>>> x = np.zeros((6, 6)); x[:, :3] = 10
>>> e = explain_conv2d(x, [[1, 0, -1]] * 3)
>>> e.output[0].tolist(), e.formula_h
([0.0, 30.0, 30.0, 0.0], 'floor((6 + 2*0 - 3) / 1) + 1 = 4')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnkit.conv.functional import conv2d, pad
from cnnkit.conv.shapes import output_size
from cnnkit.errors import ShapeError

#: Largest input side the step-through lists every window for (n_H n_W cells of f^2 numbers).
MAX_SIDE = 64


@dataclass
class ConvStep:
    """One output cell: Z[h, w] = sum(window * W) + b."""

    h: int
    w: int
    top: int  # the window's first row in the padded input: h * s
    left: int  # its first column: w * s
    window: np.ndarray  # (f, f)
    products: np.ndarray  # (f, f): window * W
    total: float  # products.sum() + b


@dataclass
class ConvExplanation:
    """Everything the step-through shows."""

    input: np.ndarray  # (n_H_prev, n_W_prev)
    padded: np.ndarray  # (n_H_prev + 2p, n_W_prev + 2p)
    kernel: np.ndarray  # (f, f)
    bias: float
    p: int
    s: int
    output: np.ndarray  # (n_H, n_W), from cnnkit.conv.conv2d
    formula_h: str  # "floor((6 + 2*0 - 3) / 1) + 1 = 4"
    formula_w: str
    steps: list[ConvStep]


def _formula(n: int, f: int, p: int, s: int) -> str:
    return f"floor(({n} + 2*{p} - {f}) / {s}) + 1 = {output_size(n, f, p, s)}"


def resolve_p(p: int | str, f: int) -> int:
    """p as an int: ``"valid"`` -> 0, ``"same"`` -> (f - 1) / 2 (odd f), an int unchanged."""
    if p == "valid":
        return 0
    if p == "same":
        if f % 2 == 0:
            raise ShapeError(f"no 'same' padding for an even filter size {f}", hint="use odd f")
        return (f - 1) // 2
    if isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0:
        return int(p)
    raise ShapeError(f"p must be 'valid', 'same' or an int >= 0, got {p!r}")


def _square_kernel(kernel: np.ndarray, ndim: int, what: str) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != ndim or kernel.shape[-1] != kernel.shape[-2]:
        raise ShapeError(f"{what} must be square, got shape {kernel.shape}")
    return kernel


def explain_conv2d(
    x: np.ndarray, kernel: np.ndarray, *, p: int | str = 0, s: int = 1, bias: float = 0.0
) -> ConvExplanation:
    """Convolve one (n_H_prev, n_W_prev) input with one (f, f) filter and list every step.

    Raises:
        ShapeError: a filter that does not fit, bad p or s, or an input over :data:`MAX_SIDE`.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ShapeError(f"the input must be a 2-D grid, got shape {x.shape}")
    if max(x.shape) > MAX_SIDE:
        raise ShapeError(f"the input is {x.shape[0]}x{x.shape[1]}, over {MAX_SIDE}x{MAX_SIDE}")
    kernel = _square_kernel(kernel, 2, "the filter")
    f = kernel.shape[0]
    p = resolve_p(p, f)
    if not (isinstance(s, (int, np.integer)) and s >= 1):
        raise ShapeError(f"s must be an int >= 1, got {s!r}")
    formula_h = _formula(x.shape[0], f, p, s)  # raises when the filter does not fit
    formula_w = _formula(x.shape[1], f, p, s)
    out = conv2d(x[None, None], kernel[None, None], np.array([bias]), stride=s, padding=p)[0, 0]
    padded = pad(x[None, None], p)[0, 0]
    steps = []
    for h in range(out.shape[0]):
        for w in range(out.shape[1]):
            window = padded[h * s : h * s + f, w * s : w * s + f]
            products = window * kernel
            steps.append(
                ConvStep(h, w, h * s, w * s, window, products, float(products.sum()) + bias)
            )
    return ConvExplanation(x, padded, kernel, float(bias), p, s, out, formula_h, formula_w, steps)


@dataclass
class VolumeExplanation:
    """Convolution over volume: n_C filters over an n_C_prev-channel input."""

    input: np.ndarray  # (n_C_prev, n_H_prev, n_W_prev)
    filters: np.ndarray  # (n_C, n_C_prev, f, f)
    p: int
    s: int
    output: np.ndarray  # (n_C, n_H, n_W), from cnnkit.conv.conv2d
    per_channel: np.ndarray  # (n_C, n_C_prev, n_H, n_W): each input channel's share; sums to output
    shape: str  # "(6, 6, 3) * 2 filters (3, 3, 3) -> (4, 4, 2)"


def explain_volume(
    x: np.ndarray, filters: np.ndarray, *, p: int | str = 0, s: int = 1
) -> VolumeExplanation:
    """Convolve an (n_C_prev, n_H, n_W) volume with (n_C, n_C_prev, f, f) filters.

    Each filter spans every input channel: Z[c] = sum_{c'} conv(x[c'], W[c, c']), one output
    channel per filter, so the output depth n_C is the number of filters.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ShapeError(f"the input must be (n_C_prev, n_H, n_W), got shape {x.shape}")
    filters = _square_kernel(filters, 4, "the filters")
    if filters.shape[1] != x.shape[0]:
        raise ShapeError(
            f"each filter must have {x.shape[0]} channels like the input, got {filters.shape[1]}",
            hint="a filter spans the whole depth of its input",
        )
    f = filters.shape[-1]
    p = resolve_p(p, f)
    out = conv2d(x[None], filters, stride=s, padding=p)[0]
    # each input channel alone, through the same conv2d: (n_C_prev, 1, H, W) * (n_C, 1, f, f)
    n_c, n_cp = filters.shape[:2]
    share = np.stack(
        [
            conv2d(x[cp][None, None], filters[:, cp : cp + 1], stride=s, padding=p)[0]
            for cp in range(n_cp)
        ],
        axis=1,
    )  # (n_C, n_C_prev, n_H, n_W)
    shape = (
        f"({x.shape[1]}, {x.shape[2]}, {n_cp}) * {n_c} filters ({f}, {f}, {n_cp}) -> "
        f"({out.shape[1]}, {out.shape[2]}, {n_c})"
    )
    return VolumeExplanation(x, filters, p, s, out, share, shape)
