"""Hidden-layer activations a[l] of a VGG ``features`` stack, by layer name.

The names follow the VGG papers and neural-style: ``conv{b}_{i}`` is the i-th convolution of block
b, ``relu{b}_{i}`` the ReLU after it and ``pool{b}`` the pooling that ends block b. They are derived
from the module order of ``model.features`` (torchvision's layout, as built by
:func:`cnnkit.models.create_model`), so ``conv1_1`` is ``features.0`` and, in VGG-19, ``conv4_2``
is ``features.21`` and ``conv5_1`` is ``features.28``.

:class:`FeatureExtractor` keeps only the layers up to the deepest one asked for, freezes them (no
parameter gradients, eval mode), normalises its [0, 1] RGB input with the checkpoint's mean and
std, and returns a dict of the requested activations, each ``(N, n_C, n_H, n_W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnkit.errors import NotFoundError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "FeatureExtractor", "layer_indices"]

#: torchvision's ImageNet preprocessing, used when a weights record gives none.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_indices(features: nn.Sequential) -> dict[str, int]:
    """Map layer names (``conv1_1``, ``relu1_1``, ..., ``pool5``) to indices in ``features``.

    Example (VGG-19): ``{"conv1_1": 0, "relu1_1": 1, "conv1_2": 2, ..., "conv5_1": 28, ...}``.
    """
    names: dict[str, int] = {}
    block, conv = 1, 0
    for index, module in enumerate(features):
        if isinstance(module, nn.Conv2d):
            conv += 1
            names[f"conv{block}_{conv}"] = index
        elif isinstance(module, nn.ReLU):
            names[f"relu{block}_{conv}"] = index
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            names[f"pool{block}"] = index
            block, conv = block + 1, 0
    return names


def _check_layers(requested: Sequence[str], valid: dict[str, int]) -> None:
    unknown = [name for name in requested if name not in valid]
    if unknown:
        raise NotFoundError(
            f"unknown layer name(s) {', '.join(unknown)}",
            hint=f"valid names: {', '.join(valid)}",
        )


class FeatureExtractor(nn.Module):
    """A frozen, truncated VGG ``features`` stack that returns the activations it is asked for.

    Args:
        features: ``model.features`` of a VGG (``nn.Sequential`` in torchvision's layout). It is
            not modified; the layers up to the deepest requested one are copied by reference.
        layers: names of the layers to return, e.g. ``["conv4_2", "conv1_1", "conv2_1"]``.
        mean, std: per-channel input normalisation the weights expect (ImageNet by default).
        pooling: ``"max"`` keeps the network's max pooling, ``"avg"`` swaps in 2x2 average
            pooling (smoother gradients; Gatys et al. prefer it for image synthesis).
        channels_last: run the convolutions in channels-last memory format (the input is an
            ordinary NCHW tensor; the returned maps are NCHW in shape, channels-last in memory).

    Input: ``(N, 3, H, W)`` RGB in [0, 1]. Output: ``{name: a[l]}`` with ``a[l]`` of shape
    ``(N, n_C, n_H, n_W)``.

    Raises:
        NotFoundError: a layer name that the network does not have (the message lists them all).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        features: nn.Sequential,
        layers: Sequence[str],
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pooling: str = "max",
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        valid = layer_indices(features)
        _check_layers(layers, valid)
        self.layers = list(dict.fromkeys(layers))
        self.index = {name: valid[name] for name in self.layers}
        last = max(self.index.values())
        body: list[nn.Module] = []
        returned = set(self.index.values())
        for index, module in enumerate(list(features)[: last + 1]):
            if isinstance(module, nn.ReLU):
                # in place saves one activation map per layer, except right after a returned
                # layer, whose output it would overwrite
                module = nn.ReLU(inplace=index - 1 not in returned)
            elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            body.append(module)
        self.body = nn.Sequential(*body)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self.channels_last = channels_last
        #: recompute the activations between returned layers in the backward instead of keeping
        #: them (torch.utils.checkpoint): less memory for large images, one more forward's time
        self.checkpoint = False
        self.requires_grad_(False)
        self.eval()

    @property
    def valid_layers(self) -> list[str]:
        return list(layer_indices(self.body))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 3, H, W)`` in [0, 1] -> ``{name: (N, n_C, n_H, n_W)}``."""
        x = (x - self.mean) / self.std
        dtype = self.body[0].weight.dtype if isinstance(self.body[0], nn.Conv2d) else x.dtype
        if x.dtype != dtype:  # a bf16 network (set_dtype): bf16 maps, the gradient cast back
            x = x.to(dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        wanted = {index: name for name, index in self.index.items()}
        out: dict[str, torch.Tensor] = {}
        if self.checkpoint and torch.is_grad_enabled() and x.requires_grad:
            from torch.utils.checkpoint import checkpoint

            start = 0
            for index in sorted(wanted):  # one segment up to each returned layer
                segment = self.body[start : index + 1]
                x = checkpoint(segment, x, use_reentrant=False)
                out[wanted[index]] = x
                start = index + 1
            return out
        for index, module in enumerate(self.body):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
        return out

    def set_dtype(self, dtype: torch.dtype) -> FeatureExtractor:
        """Run the convolutions in ``dtype`` (e.g. bf16): the weights are converted once, the
        input normalisation stays fp32. Unlike autocast, no weight is re-cast per forward."""
        self.body.to(dtype)
        return self

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Always stays in eval mode (the network is a fixed feature extractor)."""
        return super().train(False)
