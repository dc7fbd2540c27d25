"""Learn an edge detector: fit a filter's f x f numbers by gradient descent.

The course's step from hand-made edge detectors to CNNs: the nine numbers of a 3x3 filter need not
be chosen by hand, they can be learned. Given images x and target maps T (the output of some
filter, say Sobel's), minimise the squared error

    J(W, b) = 1 / (2M) * sum_{i,h,w} (Z[i, h, w] - T[i, h, w])^2,    Z = conv2d(x, W) + b

over the filter W (f, f) and the bias b, starting from random W, with the gradients of
:func:`cnnkit.conv.conv2d_backward` (dW = sum dZ * x windows, db = sum dZ, dZ = (Z - T) / M).

The descent runs on standardised inputs (x - mean) / std, which makes J's curvature close to
the same in every direction for noise-like images, and maps the result back to the raw images'
units: W = W' / std, b = b' - mean * sum(W') / std. J is quadratic, so its curvatures (the
Hessian's eigenvalues, from f^2 + 1 forward and backward passes) give the heavy-ball step and
momentum that converge fastest (Polyak): on a photo, whose neighbouring pixels are correlated
(curvatures 1000x apart), a few hundred steps; on noise, a few dozen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cnnkit.conv import conv2d_backward, conv2d_forward
from cnnkit.errors import ShapeError

log = logging.getLogger(__name__)

#: ``callback(step, loss, kernel, bias)`` after each step (kernel and bias in the raw units);
#: return False to stop early.
StepCallback = Callable[[int, float, np.ndarray, float], "bool | None"]


@dataclass
class LearnedKernel:
    """What :func:`learn_kernel` found."""

    kernel: np.ndarray  # (f, f) float64, to cross-correlate with the raw images
    bias: float
    losses: list[float] = field(default_factory=list)  # J after each step (index 0: start)
    steps: int = 0  # descent steps taken
    stopped: bool = False  # the callback asked to stop
    start: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (f, f) random start
    start_bias: float = 0.0  # and its bias (raw units)


def _as_batch(a: np.ndarray, name: str) -> np.ndarray:
    """(H, W) or (N, H, W) -> (N, H, W) float64."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ShapeError(f"{name} must be (H, W) or (N, H, W), got shape {a.shape}")
    return a


def learn_kernel(
    images: np.ndarray,
    targets: np.ndarray,
    *,
    f: int = 3,
    padding: Literal["valid", "same"] = "valid",
    steps: int = 300,
    momentum: float | None = None,
    tol: float = 1e-14,
    seed: int = 0,
    callback: StepCallback | None = None,
) -> LearnedKernel:
    """Fit an f x f filter and a bias so that ``conv2d(images, W) + b`` reproduces ``targets``.

    Args:
        images: x, (H, W) or (N, H, W) grayscale.
        targets: T, (n_H, n_W) or (N, n_H, n_W): ``n = H - f + 1`` for ``padding="valid"``,
            ``n = H`` for ``"same"`` (the image's border pixels repeated, as
            :func:`cnnkit.edges.detect` pads).
        f: the filter size (odd for "same").
        steps: the most gradient-descent steps; it stops earlier when J < ``tol``.
        momentum: heavy-ball momentum; default: the fastest one for this problem (Polyak's,
            from the extreme curvatures of J), with the matching step.
        seed: seeds the random starting weights W ~ N(0, 1/f^2).
        callback: called after each step; returning False stops the descent.

    Returns:
        A :class:`LearnedKernel`: the kernel in the raw images' units, the bias, J per step.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.random((4, 12, 12))
        >>> from cnnkit.edges import detect, vertical
        >>> t = np.stack([detect(im, "vertical", padding="valid") for im in x])
        >>> np.abs(learn_kernel(x, t).kernel - vertical()).max() < 1e-3
        True
    """
    x, t = _as_batch(images, "images"), _as_batch(targets, "targets")
    if len(x) != len(t):
        raise ShapeError(f"{len(x)} images but {len(t)} target maps", hint="give one per image")
    if padding not in ("valid", "same"):
        raise ShapeError(f"padding must be 'valid' or 'same', got {padding!r}")
    if f < 1 or (padding == "same" and f % 2 == 0):
        raise ShapeError(f"filter size must be odd and >= 1, got {f}")
    if padding == "same":
        p = (f - 1) // 2
        x = np.pad(x, ((0, 0), (p, p), (p, p)), mode="edge")
    n_h, n_w = x.shape[1] - f + 1, x.shape[2] - f + 1
    if n_h < 1 or n_w < 1 or t.shape[1:] != (n_h, n_w):
        raise ShapeError(
            f"targets must be {n_h}x{n_w} for {x.shape[1]}x{x.shape[2]} images with a {f}x{f} "
            f"filter ({padding}), got {t.shape[1]}x{t.shape[2]}",
            hint="use padding='same' for maps the size of the image",
        )
    mean, std = float(x.mean()), float(x.std())
    std = std if std > 0 else 1.0
    xs = ((x - mean) / std)[:, None]  # (N, 1, H_p, W_p), standardised
    target = t[:, None]  # (N, 1, n_H, n_W)
    m = target.size

    def grads(w: np.ndarray, b: np.ndarray, against: np.ndarray | None):
        """J and its gradient (dW, db) at (w, b); ``against=None`` means T = 0."""
        z, cache = conv2d_forward(xs, w, b)  # (N, 1, n_H, n_W)
        err = z if against is None else z - against
        dw, db = conv2d_backward(err / m, cache)[1:]
        assert db is not None
        return 0.5 * float(np.mean(err * err)), dw, db

    # J is quadratic in p = (W', b'): its Hessian H has columns H e_i = grad J(e_i) with T = 0,
    # one forward and backward pass each. Its extreme eigenvalues L and mu give the heavy-ball
    # step and momentum that converge fastest: lr = 4 / (sqrt L + sqrt mu)^2,
    # momentum = ((sqrt L - sqrt mu) / (sqrt L + sqrt mu))^2 (Polyak), unless given.
    n_p = f * f + 1
    hessian = np.empty((n_p, n_p))
    for i in range(n_p):
        e = np.zeros(n_p)
        e[i] = 1.0
        _, hw, hb = grads(e[:-1].reshape(1, 1, f, f), e[-1:], None)
        hessian[:, i] = np.concatenate([hw.ravel(), hb])
    eig = np.linalg.eigvalsh(0.5 * (hessian + hessian.T))
    big, small = np.sqrt(max(eig[-1], 1e-300)), np.sqrt(max(eig[0], 0.0))
    lr = 4.0 / (big + small) ** 2
    if momentum is None:
        momentum = ((big - small) / (big + small)) ** 2
    else:
        lr = 1.0 / big**2  # a given momentum: the plain 1 / L step

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((1, 1, f, f)) / f  # W' ~ N(0, 1/f^2), the standardised units
    b = np.zeros(1)
    mw, mb = np.zeros_like(w), np.zeros_like(b)

    def raw(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
        kernel = w[0, 0] / std
        return kernel, float(b[0] - mean * kernel.sum())

    loss, dw, db = grads(w, b, target)
    result = LearnedKernel(*raw(w, b), losses=[loss])
    result.start, result.start_bias = result.kernel.copy(), result.bias
    for step in range(1, steps + 1):
        if loss < tol:
            break
        mw = momentum * mw - lr * dw
        mb = momentum * mb - lr * db
        w, b = w + mw, b + mb
        loss, dw, db = grads(w, b, target)
        result.kernel, result.bias = raw(w, b)
        result.losses.append(loss)
        result.steps = step
        if callback is not None and callback(step, loss, result.kernel, result.bias) is False:
            result.stopped = True
            break
    log.debug("learn_kernel: %d steps, J = %.3g, lr = %.3g", result.steps, loss, lr)
    return result
