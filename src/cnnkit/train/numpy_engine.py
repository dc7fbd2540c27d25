"""The NumPy engine: LeNet-5 trained with :mod:`cnnkit.conv`'s layers (forward/backward with
caches) and its SGD/Adam, no autograd.

The torch model built by the registry is translated layer by layer into a
:class:`cnnkit.conv.Sequential` holding the SAME initial weights, so both engines start from one
point and the NumPy weights go back into the torch model (and its checkpoint) under the torch
``state_dict`` names. ``cnnkit predict``/``evaluate`` therefore work on either engine's checkpoint.

Supported: ``lenet5`` (the 1998 paper's net) and ``lenet5_modern``. The convolutions and pools
are :mod:`cnnkit.conv`'s; this module adds only the glue the paper's net needs around them:

- :class:`ScaledTanh`     a[l] = A tanh(S z[l])           (on conv's ``Tanh``)
- :class:`ChannelAffine`  S2/S4's trainable coefficient and bias after conv's ``AvgPool2D``:
                          a = 4 * avg * w_c + b_c  (4 * avg = the sum of each 2x2 block)
- :class:`MaskedConv2D`   C3: conv's ``Conv2D`` whose filters are zero off the paper's table
                          (their gradient is masked, so they stay zero)
- :class:`RBFLogits`      output: logits_i = -||a - w_i||^2 / T with fixed prototypes w_i
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.conv import (
    SGD,
    Adam,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
)
from cnnkit.errors import CnnkitError
from cnnkit.train.config import NUMPY_MODELS, TrainConfig
from cnnkit.train.data import DataBundle, random_shift

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- glue layers


class ScaledTanh(Layer):
    """a = A tanh(S z);  dz = da * A * S * (1 - tanh(S z)^2)."""

    def __init__(self, amplitude: float, slope: float) -> None:
        super().__init__()
        self.amplitude, self.slope = float(amplitude), float(slope)
        self.tanh = Tanh()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.amplitude * self.tanh.forward(self.slope * x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self.tanh.backward(dout * self.amplitude) * self.slope


class ChannelAffine(Layer):
    """a[:, c] = gain * x[:, c] * w_c + b_c on (m, n_C, n_H, n_W); params ``w``, ``b`` (n_C,).

    After ``AvgPool2D(2)`` with gain 4 this is LeNet-5's subsampling (S2, S4).
    """

    def __init__(self, w: np.ndarray, b: np.ndarray, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = float(gain)
        self.params["w"] = np.asarray(w, dtype=np.float32).copy()
        self.params["b"] = np.asarray(b, dtype=np.float32).copy()

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = x
        w = self.params["w"][None, :, None, None]
        return self.gain * x * w + self.params["b"][None, :, None, None]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self.cache
        self.grads["w"] = self.gain * (dout * x).sum(axis=(0, 2, 3))
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        return dout * (self.gain * self.params["w"][None, :, None, None])


class MaskedConv2D(Conv2D):
    """A ``Conv2D`` whose filter entries with ``mask == 0`` are, and stay, zero (C3's table)."""

    def __init__(self, w: np.ndarray, b: np.ndarray, mask: np.ndarray) -> None:
        out_c, in_c, k, _ = w.shape
        super().__init__(in_c, out_c, k, rng=np.random.default_rng(0))
        self.mask = mask.astype(np.float32)
        self.params["W"] = (np.asarray(w, dtype=np.float32) * self.mask).copy()
        self.params["b"] = np.asarray(b, dtype=np.float32).copy()

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = super().backward(dout)
        self.grads["W"] = self.grads["W"] * self.mask
        return dx


class RBFLogits(Layer):
    """logits_i = -(1/T) sum_j (a_j - w_ij)^2 with fixed prototypes w (n_classes, n_features)
    and temperature T.

    d logits_i / d a = -(2/T)(a - w_i), so da = (2/T)(g @ w - (sum_i g_i) a) for upstream g.
    """

    def __init__(self, prototypes: np.ndarray, temperature: float = 2.0) -> None:
        super().__init__()
        self.prototypes = np.asarray(prototypes, dtype=np.float32)
        self.temperature = float(temperature)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.cache = x
        w = self.prototypes
        # ||x - w||^2 = ||x||^2 - 2 x.w + ||w||^2, (m, n_classes)
        d2 = (x * x).sum(1, keepdims=True) - 2.0 * x @ w.T + (w * w).sum(1)[None, :]
        return -d2 / self.temperature

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self.cache
        return (2.0 / self.temperature) * (dout @ self.prototypes - dout.sum(1, keepdims=True) * x)


# --------------------------------------------------------------------------- translation


@dataclass
class ParamLink:
    """One torch state-dict entry and where it lives in the NumPy net."""

    key: str  # torch state_dict key
    layer: Layer
    name: str  # key in layer.params
    to_torch: Callable[[np.ndarray], np.ndarray]  # NumPy layout -> torch layout
    from_torch: Callable[[np.ndarray], np.ndarray]  # torch layout -> NumPy layout


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32, copy=True)


def translate(model: Any) -> tuple[Sequential, list[ParamLink]]:
    """Translate a torch LeNet-5 into a NumPy :class:`Sequential` with the same weights.

    Returns the net and the links between its parameters and the torch ``state_dict`` keys.

    Raises:
        CnnkitError: a module the NumPy engine does not know.
    """
    import torch.nn as nn

    from cnnkit.models.lenet import PartialConv2d, RBFOutput, Subsampling
    from cnnkit.models.lenet import ScaledTanh as TorchScaledTanh

    layers: list[Layer] = []
    links: list[ParamLink] = []
    flat = False  # has the activation been flattened to (m, features) yet?

    def leaves(module: nn.Module, prefix: str = "") -> Iterable[tuple[str, nn.Module]]:
        children = list(module.named_children())
        if not children or isinstance(module, (PartialConv2d, Subsampling, RBFOutput)):
            yield prefix, module
            return
        for name, child in children:
            yield from leaves(child, f"{prefix}{name}.")

    for prefix, m in leaves(model):
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.dilation != (1, 1):
                raise CnnkitError("the NumPy engine supports plain convolutions only")
            conv = Conv2D(
                m.in_channels,
                m.out_channels,
                (m.kernel_size[0], m.kernel_size[1]),
                stride=(m.stride[0], m.stride[1]),
                padding=m.padding if isinstance(m.padding, str) else (m.padding[0], m.padding[1]),
                bias=m.bias is not None,
                rng=np.random.default_rng(0),
            )
            conv.params["W"] = _np(m.weight)
            links.append(ParamLink(prefix + "weight", conv, "W", _same, _same))
            if m.bias is not None:
                conv.params["b"] = _np(m.bias)
                links.append(ParamLink(prefix + "bias", conv, "b", _same, _same))
            layers.append(conv)
        elif isinstance(m, PartialConv2d):
            k, cin, cout = m.kernel_size, m.in_channels, m.out_channels
            index = m.index.cpu().numpy()
            mask = np.zeros(cout * cin, dtype=np.float32)
            mask[index] = 1.0
            mask4 = np.broadcast_to(mask.reshape(cout, cin, 1, 1), (cout, cin, k, k))
            full = _np(m.full_weight())
            conv = MaskedConv2D(full, _np(m.bias), mask4)

            def to_t(w: np.ndarray, index: np.ndarray = index, k: int = k) -> np.ndarray:
                return w.reshape(-1, k, k)[index]  # (n_conn, k, k)

            def from_t(
                w: np.ndarray, index: np.ndarray = index, shape: tuple = full.shape
            ) -> np.ndarray:
                out = np.zeros((shape[0] * shape[1],) + shape[2:], dtype=np.float32)
                out[index] = w
                return out.reshape(shape)

            links.append(ParamLink(prefix + "weight", conv, "W", to_t, from_t))
            links.append(ParamLink(prefix + "bias", conv, "b", _same, _same))
            layers.append(conv)
        elif isinstance(m, Subsampling):
            affine = ChannelAffine(_np(m.weight), _np(m.bias), gain=4.0)
            layers += [AvgPool2D(2), affine]
            links.append(ParamLink(prefix + "weight", affine, "w", _same, _same))
            links.append(ParamLink(prefix + "bias", affine, "b", _same, _same))
        elif isinstance(m, nn.Linear):
            if not flat:
                layers.append(Flatten())
                flat = True
            dense = Dense(m.in_features, m.out_features, bias=m.bias is not None)
            dense.params["W"] = _np(m.weight)
            links.append(ParamLink(prefix + "weight", dense, "W", _same, _same))
            if m.bias is not None:
                dense.params["b"] = _np(m.bias)
                links.append(ParamLink(prefix + "bias", dense, "b", _same, _same))
            layers.append(dense)
        elif isinstance(m, RBFOutput):
            if not flat:
                layers.append(Flatten())
                flat = True
            layers.append(RBFLogits(_np(m.prototypes), getattr(m, "temperature", 2.0)))
        elif isinstance(m, TorchScaledTanh):
            layers.append(ScaledTanh(m.amplitude, m.slope))
        elif isinstance(m, nn.Tanh):
            layers.append(Tanh())
        elif isinstance(m, nn.ReLU):
            layers.append(ReLU())
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            cls = MaxPool2D if isinstance(m, nn.MaxPool2d) else AvgPool2D
            layers.append(cls(m.kernel_size, m.stride, m.padding))
        elif isinstance(m, nn.Flatten):
            layers.append(Flatten())
            flat = True
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        else:
            raise CnnkitError(
                f"the NumPy engine cannot translate {type(m).__name__} ({prefix.rstrip('.')})",
                hint=f"--engine numpy supports {', '.join(NUMPY_MODELS)}",
            )
    return Sequential(layers), links


# --------------------------------------------------------------------------- trainer


class NumpyTrainer:
    """The loop's :class:`~cnnkit.train.loop.Trainer` on NumPy arrays and cnnkit.conv layers."""

    def __init__(self, model: Any, cfg: TrainConfig, data: DataBundle):
        if cfg.model not in NUMPY_MODELS:
            raise CnnkitError(
                f"--engine numpy trains {' or '.join(NUMPY_MODELS)}, not {cfg.model!r}",
                hint="use --engine torch for other models",
            )
        if cfg.optimizer not in ("sgd", "adam"):
            raise CnnkitError(
                f"--engine numpy has sgd and adam, not {cfg.optimizer!r}",
                hint="use --optimizer adam",
            )
        self.cfg = cfg
        self.data = data
        self.model = model  # the torch twin: its buffers (e.g. RBF prototypes) go in checkpoints
        self.net, self.links = translate(model)
        self.loss_fn = SoftmaxCrossEntropy()
        wd = cfg.weight_decay or 0.0
        self.optimizer: SGD | Adam
        if cfg.optimizer == "sgd":
            self.optimizer = SGD(self.net, lr=cfg.lr or 0.01, momentum=0.9, weight_decay=wd)
        else:
            self.optimizer = Adam(self.net, lr=cfg.lr or 1e-3, weight_decay=wd)
        self.x, self.y = data.train.arrays()  # (N, n_C, n_H, n_W), (N,)
        self.rng = np.random.default_rng(cfg.seed)

    def batches(self, epoch: int) -> tuple[Iterable[tuple[np.ndarray, np.ndarray]], int]:
        bs = int(self.cfg.batch_size or 32)
        n = len(self.y)
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
        self.rng = np.random.default_rng([self.cfg.seed, epoch, 0])
        starts = list(range(0, n, bs))
        return ((self.x[order[s : s + bs]], self.y[order[s : s + bs]]) for s in starts), len(starts)

    def set_lr(self, lr: float) -> None:
        self.optimizer.lr = lr

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int, int]:
        if self.cfg.augment:
            x = random_shift(x, self.cfg.augment, self.rng)
        logits = self.net.forward(x)  # (m, n_classes)
        loss = self.loss_fn.forward(logits, y)
        self.optimizer.zero_grad()
        self.net.backward(self.loss_fn.backward())
        self.optimizer.step()
        correct = int((logits.argmax(1) == y).sum())
        return loss * len(y), correct, len(y)

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        return self.net.predict(np.ascontiguousarray(x, dtype=np.float32), batch_size)

    def evaluate(self, dataset: Any) -> tuple[float, float]:
        x, y = dataset.arrays()
        logits = self.logits(x)
        loss = SoftmaxCrossEntropy().forward(logits, y)
        return loss, float((logits.argmax(1) == y).mean())

    # ---- state, in the torch model's names and layouts

    def state_dict(self) -> dict[str, Any]:
        """The torch model's full ``state_dict`` (buffers too) with the NumPy parameters in."""
        import torch

        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        for link in self.links:
            state[link.key] = torch.from_numpy(link.to_torch(link.layer.params[link.name]).copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for link in self.links:
            value = link.from_torch(_np(state[link.key]))
            link.layer.params[link.name][...] = value

    def optimizer_state(self) -> dict[str, Any]:
        import torch

        def pack(d: dict[int, np.ndarray]) -> dict[str, Any]:
            return {str(i): torch.from_numpy(v.copy()) for i, v in d.items()}

        if isinstance(self.optimizer, Adam):
            return {
                "engine": "numpy",
                "kind": "adam",
                "t": self.optimizer.t,
                "m": pack(self.optimizer.m),
                "v": pack(self.optimizer.v),
            }
        return {"engine": "numpy", "kind": "sgd", "velocity": pack(self.optimizer.velocity)}

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        kind = "adam" if isinstance(self.optimizer, Adam) else "sgd"
        if state.get("engine") != "numpy" or state.get("kind") != kind:
            log.warning("optimizer state is from another engine or optimizer; starting it afresh")
            return

        def unpack(d: dict[str, Any]) -> dict[int, np.ndarray]:
            return {int(i): v.numpy().copy() for i, v in d.items()}

        if isinstance(self.optimizer, Adam):
            self.optimizer.t = int(state["t"])
            self.optimizer.m = unpack(state["m"])
            self.optimizer.v = unpack(state["v"])
        else:
            self.optimizer.velocity = unpack(state["velocity"])
