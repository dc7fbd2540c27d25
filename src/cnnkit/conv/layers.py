"""Layers with explicit caches, for training small networks in pure NumPy (numpy-ml style).

Every layer has ``forward(x)`` that stores what backward needs in ``self.cache``, and
``backward(dout)`` that returns dx and, for layers with parameters, fills ``self.grads`` (same
keys as ``self.params``). Shapes are NCHW, as in PyTorch, and parameter layouts match PyTorch
(Conv2D W is (n_C, n_C_prev, f_h, f_w); Dense W is (out, in)) so weights can be copied across.

>>> rng = np.random.default_rng(0)
>>> net = Sequential([Conv2D(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
...                   Dense(4 * 4 * 4, 10, rng=rng)])
>>> loss_fn = SoftmaxCrossEntropy()
>>> x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
>>> loss = loss_fn.forward(net.forward(x), np.array([3, 7]))
>>> dx = net.backward(loss_fn.backward())
>>> sorted(net.layers[0].grads)
['W', 'b']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from cnnkit.conv.functional import conv2d_backward, conv2d_forward
from cnnkit.conv.pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from cnnkit.conv.shapes import IntPair, Padding, check_ndim, pair
from cnnkit.errors import ShapeError


class Layer:
    """Base class: no parameters, identity."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.cache: Any = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _uniform(rng: np.random.Generator, bound: float, shape, dtype) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Conv2D(Layer):
    """Z = conv2d(A_prev, W) + b; W (n_C, n_C_prev, f_h, f_w), b (n_C,).

    Initialised like ``torch.nn.Conv2d``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = n_C_prev * f_h * f_w.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: Padding = 0,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        fh, fw = pair(kernel_size, "kernel_size")
        self.stride, self.padding = stride, padding
        bound = 1.0 / np.sqrt(in_channels * fh * fw)
        self.params["W"] = _uniform(rng, bound, (out_channels, in_channels, fh, fw), dtype)
        if bias:
            self.params["b"] = _uniform(rng, bound, (out_channels,), dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self.cache = conv2d_forward(
            x, self.params["W"], self.params.get("b"), self.stride, self.padding
        )
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx, dw, db = conv2d_backward(dout, self.cache)
        self.grads["W"] = dw
        if db is not None:
            self.grads["b"] = db
        return dx

    def __repr__(self) -> str:
        o, c, fh, fw = self.params["W"].shape
        return f"Conv2D({c}, {o}, ({fh}, {fw}), stride={self.stride}, padding={self.padding!r})"


class MaxPool2D(Layer):
    """A = max over each f_h x f_w window (stride defaults to the kernel)."""

    def __init__(
        self, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self.cache = max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return max_pool2d_backward(dout, self.cache)

    def __repr__(self) -> str:
        return f"MaxPool2D({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class AvgPool2D(MaxPool2D):
    """A = mean over each f_h x f_w window (padded zeros count, as PyTorch's default)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self.cache = avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return avg_pool2d_backward(dout, self.cache)

    def __repr__(self) -> str:
        return f"AvgPool2D({self.kernel_size}, stride={self.stride}, padding={self.padding})"


class ReLU(Layer):
    """A = max(0, Z); dZ = dA * (Z > 0)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = x > 0
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.cache


class Tanh(Layer):
    """A = tanh(Z); dZ = dA * (1 - A^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = np.tanh(x)
        return self.cache

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1 - self.cache * self.cache)


class Flatten(Layer):
    """(m, n_C, n_H, n_W) -> (m, n_C * n_H * n_W), in C order like ``torch.flatten(x, 1)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.cache)


class Dense(Layer):
    """Fully connected: Z = A_prev @ W.T + b; W (out, in) as ``torch.nn.Linear``, b (out,)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng()
        bound = 1.0 / np.sqrt(in_features)
        self.params["W"] = _uniform(rng, bound, (out_features, in_features), dtype)
        if bias:
            self.params["b"] = _uniform(rng, bound, (out_features,), dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        w = self.params["W"]
        if x.ndim != 2 or x.shape[1] != w.shape[1]:
            raise ShapeError(
                f"Dense expects (m, {w.shape[1]}), got {tuple(x.shape)}",
                hint="put a Flatten before it, or fix in_features",
            )
        self.cache = x
        out = x @ w.T
        if "b" in self.params:
            out += self.params["b"]
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self.cache
        self.grads["W"] = dout.T @ x
        if "b" in self.params:
            self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"]

    def __repr__(self) -> str:
        o, i = self.params["W"].shape
        return f"Dense({i}, {o})"


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient.

    L = -(1/m) sum_i log softmax(z_i)[y_i];  dL/dz = (softmax(z) - onehot(y)) / m.
    """

    def __init__(self) -> None:
        self.cache: Any = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        logits = np.asarray(logits)
        labels = np.asarray(labels)
        check_ndim(logits, 2, "logits", "(m, n_classes)")
        m, k = logits.shape
        if labels.shape != (m,) or not np.issubdtype(labels.dtype, np.integer):
            raise ShapeError(f"labels must be {m} integers, got {labels.dtype} {labels.shape}")
        if m and (labels.min() < 0 or labels.max() >= k):
            raise ShapeError(f"labels must be in [0, {k}), got {labels.min()}..{labels.max()}")
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self.cache = (logp, labels)
        return float(-logp[np.arange(m), labels].mean())

    def backward(self, dloss: float = 1.0) -> np.ndarray:
        logp, labels = self.cache
        m = logp.shape[0]
        d = np.exp(logp)
        d[np.arange(m), labels] -= 1
        return d * (dloss / m)

    def __call__(self, logits: np.ndarray, labels: np.ndarray) -> float:
        return self.forward(logits, labels)


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> Iterator[tuple[Layer, str]]:
        """(layer, name) for every parameter, in order."""
        for layer in self.layers:
            if isinstance(layer, Sequential):
                yield from layer.parameters()
            else:
                for name in layer.params:
                    yield layer, name

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Logits for x, in batches (caches are overwritten)."""
        outs = [self.forward(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0,))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"
