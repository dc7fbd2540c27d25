"""VGG (Simonyan & Zisserman 2014): stacks of 3x3 convolutions, "same" padding, 2x2 max pools.

Architecture as data: ``cfgs`` lists each configuration's layers (an int is a 3x3 conv with that
many filters n_C, ``"M"`` a 2x2/2 max pool halving n_H and n_W), and :func:`make_layers` turns a
list into ``features``. Parameter names equal torchvision's (``features.0.weight``,
``classifier.0/3/6``), so its published checkpoints load unchanged; the index of each conv in
``features`` is the torchvision index the style-transfer literature uses (VGG-19 ``conv1_1`` is
``features.0``, ``conv4_2`` is ``features.21``).

Shapes: input (N, 3, 224, 224) -> features (N, 512, 7, 7) -> logits (N, num_classes).
VGG-16 has 138,357,544 parameters and ~15.5 G multiply-adds at 224x224.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from cnnkit.models.registry import register_model
from cnnkit.models.weights import load_pretrained

__all__ = ["VGG", "cfgs", "make_layers", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16"]
__all__ += ["vgg16_bn", "vgg19", "vgg19_bn"]

#: Layer lists of the paper's configurations A (11 layers), B (13), D (16), E (19).
# fmt: off
cfgs: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}
# fmt: on


def make_layers(
    cfg: list[int | str], batch_norm: bool = False, in_channels: int = 3
) -> nn.Sequential:
    """``features`` of a VGG: each int v is Conv2d(n_C_prev, v, 3, padding=1) [+ BatchNorm] +
    ReLU (n_H, n_W kept: (n + 2*1 - 3)/1 + 1 = n); each ``"M"`` is MaxPool2d(2, 2) (n -> n/2)."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        v = cast(int, v)
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` -> adaptive average pool to 7x7 -> three fully connected layers.

    Args:
        features: the convolutional part, from :func:`make_layers`.
        num_classes: outputs of the last layer (``classifier.6``).
        dropout: dropout probability before FC7 and FC8.
        init_weights: He (fan-out) init for convs, N(0, 0.01) for linears, as torchvision.
    """

    head_prefixes = ("classifier.6.",)

    def __init__(
        self,
        features: nn.Module,
        num_classes: int = 1000,
        dropout: float = 0.5,
        init_weights: bool = True,
    ) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights and not self.classifier[0].weight.is_meta:  # meta: nothing to fill
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)  # type: ignore[arg-type]
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, n_H/32, n_W/32)
        x = self.avgpool(x)  # (N, 512, 7, 7)
        x = torch.flatten(x, 1)  # (N, 25088)
        return self.classifier(x)  # (N, num_classes)


def _vgg(
    arch: str,
    cfg: str,
    batch_norm: bool,
    weights: Any,
    num_classes: int,
    in_channels: int = 3,
    progress: bool = True,
    download: bool = False,
    **kwargs: Any,
) -> VGG:
    model = VGG(
        make_layers(cfgs[cfg], batch_norm=batch_norm, in_channels=in_channels),
        num_classes=num_classes,
        init_weights=weights is None,
        **kwargs,
    )
    return load_pretrained(model, arch, weights, num_classes, progress=progress, download=download)


@register_model
def vgg11(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-11 (configuration A), 132,863,336 parameters."""
    return _vgg("vgg11", "A", False, weights, num_classes, **kw)


@register_model
def vgg11_bn(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-11 (configuration A) with batch normalisation."""
    return _vgg("vgg11_bn", "A", True, weights, num_classes, **kw)


@register_model
def vgg13(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-13 (configuration B)."""
    return _vgg("vgg13", "B", False, weights, num_classes, **kw)


@register_model
def vgg13_bn(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-13 (configuration B) with batch normalisation."""
    return _vgg("vgg13_bn", "B", True, weights, num_classes, **kw)


@register_model
def vgg16(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-16 (configuration D), 138,357,544 parameters, ~15.5 GMACs at 224x224."""
    return _vgg("vgg16", "D", False, weights, num_classes, **kw)


@register_model
def vgg16_bn(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-16 (configuration D) with batch normalisation, 138,365,992 parameters."""
    return _vgg("vgg16_bn", "D", True, weights, num_classes, **kw)


@register_model
def vgg19(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-19 (configuration E), 143,667,240 parameters; the style-transfer backbone."""
    return _vgg("vgg19", "E", False, weights, num_classes, **kw)


@register_model
def vgg19_bn(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> VGG:
    """VGG-19 (configuration E) with batch normalisation."""
    return _vgg("vgg19_bn", "E", True, weights, num_classes, **kw)
