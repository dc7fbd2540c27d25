"""SGD (with momentum) and Adam for the NumPy layers: they update ``layer.params`` in place
from ``layer.grads``, as ``torch.optim.SGD`` and ``torch.optim.Adam`` do for tensors."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cnnkit.conv.layers import Layer, Sequential


def _slots(model: Layer | Iterable[Layer]) -> list[tuple[Layer, str]]:
    if isinstance(model, Sequential):
        return list(model.parameters())
    layers = [model] if isinstance(model, Layer) else list(model)
    return [(layer, name) for layer in layers for name in layer.params]


class Optimizer:
    """Holds (layer, name) slots; ``step()`` after ``backward``."""

    def __init__(self, model: Layer | Iterable[Layer], lr: float) -> None:
        self.slots = _slots(model)
        self.lr = lr

    def zero_grad(self) -> None:
        for layer, _ in self.slots:
            layer.grads.clear()

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """v = mu * v + (g + wd * w);  w -= lr * v  (torch's SGD, dampening 0)."""

    def __init__(self, model, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(model, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity: dict[int, np.ndarray] = {}

    def step(self) -> None:
        for i, (layer, name) in enumerate(self.slots):
            if name not in layer.grads:
                continue
            w, g = layer.params[name], layer.grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * w
            if self.momentum:
                v = self.velocity.get(i)
                if v is None:
                    v = self.velocity[i] = g.astype(w.dtype, copy=True)
                else:
                    v *= self.momentum
                    v += g
                g = v
            w -= (self.lr * g).astype(w.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as torch.optim.Adam (L2 weight decay)."""

    def __init__(
        self,
        model,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(model, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}
        self.t = 0

    def step(self) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for i, (layer, name) in enumerate(self.slots):
            if name not in layer.grads:
                continue
            w, g = layer.params[name], layer.grads[name]
            if self.weight_decay:
                g = g + self.weight_decay * w
            m = self.m.setdefault(i, np.zeros_like(w))
            v = self.v.setdefault(i, np.zeros_like(w))
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            w -= (self.lr / c1 * m / (np.sqrt(v / c2) + self.eps)).astype(w.dtype, copy=False)
