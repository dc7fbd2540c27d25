"""Layers against torch modules, optimizers against torch.optim, and a tiny training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit.conv import (
    SGD,
    Adam,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
    conv2d,
)


def make_pair(seed: int = 0):
    """The same small LeNet-like network in cnnkit and in torch (weights copied)."""
    rng = np.random.default_rng(seed)
    net = Sequential(
        [
            Conv2D(1, 4, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2D(2),
            Conv2D(4, 6, (3, 2), stride=(1, 2), rng=rng),
            Tanh(),
            AvgPool2D(2, stride=1),
            Flatten(),
            Dense(6 * 1 * 1, 5, rng=rng),
        ]
    )
    ref = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, (3, 2), stride=(1, 2)),
        nn.Tanh(),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(6, 5),
    )
    with torch.no_grad():
        for mine, theirs in zip(
            [l for l in net.layers if l.params],
            [m for m in ref if hasattr(m, "weight")],
            strict=True,
        ):
            theirs.weight.copy_(torch.from_numpy(mine.params["W"]))
            theirs.bias.copy_(torch.from_numpy(mine.params["b"]))
    return net, ref


def test_sequential_forward_backward_match_torch(rng):
    net, ref = make_pair()
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    labels = np.array([0, 4, 2])
    ce = SoftmaxCrossEntropy()
    loss = ce(net.forward(x), labels)
    net.backward(ce.backward())
    tloss = nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(labels))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    params = [m for m in ref if hasattr(m, "weight")]
    for mine, theirs in zip([l for l in net.layers if l.params], params, strict=True):
        np.testing.assert_allclose(mine.grads["W"], theirs.weight.grad.numpy(), atol=1e-5)
        np.testing.assert_allclose(mine.grads["b"], theirs.bias.grad.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "mine,theirs",
    [
        (lambda n: SGD(n, lr=0.1, momentum=0.9, weight_decay=1e-3),
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)),
        (lambda n: Adam(n, lr=0.01, weight_decay=1e-3),
         lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3)),
    ],
    ids=["sgd", "adam"],
)  # fmt: skip
def test_optimizers_match_torch(mine, theirs, rng):
    net, ref = make_pair()
    opt, topt = mine(net), theirs(ref.parameters())
    ce = SoftmaxCrossEntropy()
    for _ in range(3):
        x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
        labels = rng.integers(0, 5, 4)
        ce(net.forward(x), labels)
        opt.zero_grad()
        net.backward(ce.backward())
        opt.step()
        topt.zero_grad()
        nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
        topt.step()
    for mine_l, theirs_m in zip(
        [l for l in net.layers if l.params], [m for m in ref if hasattr(m, "weight")], strict=True
    ):
        np.testing.assert_allclose(mine_l.params["W"], theirs_m.weight.detach().numpy(), atol=1e-5)


def test_layers_keep_dtype_and_conv_layer_equals_function(rng):
    for dtype in (np.float32, np.float64):
        layer = Conv2D(2, 3, 3, stride=2, padding=1, rng=rng, dtype=dtype)
        x = rng.standard_normal((2, 2, 7, 7)).astype(dtype)
        y = layer(x)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, conv2d(x, layer.params["W"], layer.params["b"], 2, 1))
        assert layer.backward(np.ones_like(y)).dtype == dtype
        assert layer.grads["W"].dtype == dtype


def test_tiny_network_learns(rng):
    """Two separable classes (vertical vs horizontal bars): loss must fall and accuracy reach 1."""
    x = np.zeros((32, 1, 6, 6), np.float32)
    y = np.arange(32) % 2
    for i in range(32):
        j = rng.integers(0, 6)
        if y[i]:
            x[i, 0, j, :] = 1
        else:
            x[i, 0, :, j] = 1
    net = Sequential(
        [Conv2D(1, 4, 3, rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(16, 2, rng=rng)]
    )
    opt, ce = Adam(net, lr=0.05), SoftmaxCrossEntropy()
    first = ce(net.forward(x), y)
    for _ in range(40):
        ce(net.forward(x), y)
        net.backward(ce.backward())
        opt.step()
    assert ce(net.forward(x), y) < 0.2 * first
    assert (net.predict(x).argmax(1) == y).all()
