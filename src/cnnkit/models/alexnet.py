"""AlexNet: torchvision's one-tower variant and the 2012 paper's two-tower network.

``alexnet`` is torchvision's model (Krizhevsky 2014, "One weird trick"): 64/192/384/256/256
filters, no normalisation, 61,100,840 parameters; its published checkpoint loads unchanged.

``alexnet2012`` is the network of Krizhevsky, Sutskever & Hinton (2012) for a 227x227 input
(the paper says 224; 227 makes (227 - 11)/4 + 1 = 55 work). The paper split it over two GPUs;
here the split is grouped convolutions (``groups=2``) in conv2, conv4 and conv5, whose filters see
only the 48 (resp. 192) channels of their own tower; conv3 and the FC layers connect both towers.
Local response normalisation (k=2, n=5, alpha=1e-4, beta=0.75) follows ReLU 1 and 2, and pools
overlap (3x3, stride 2). 60,965,224 parameters:

=========  ===================  ====================================
layer      output n_H x n_W x n_C  parameters
=========  ===================  ====================================
conv1      55 x 55 x 96          96 (11*11*3) + 96      = 34,944
conv2      27 x 27 x 256         256 (5*5*48) + 256     = 307,456
conv3      13 x 13 x 384         384 (3*3*256) + 384    = 885,120
conv4      13 x 13 x 384         384 (3*3*192) + 384    = 663,936
conv5      13 x 13 x 256         256 (3*3*192) + 256    = 442,624
fc6        4096                  9216 * 4096 + 4096     = 37,752,832
fc7        4096                  4096 * 4096 + 4096     = 16,781,312
fc8        1000                  4096 * 1000 + 1000     = 4,097,000
=========  ===================  ====================================
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnkit.models.registry import register_model
from cnnkit.models.weights import load_pretrained

__all__ = ["AlexNet", "AlexNet2012", "alexnet", "alexnet2012"]


def _classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout -> FC6 (4096) -> ReLU -> Dropout -> FC7 (4096) -> ReLU -> FC8 (num_classes)."""
    return nn.Sequential(
        nn.Dropout(p=dropout),
        nn.Linear(in_features, 4096),
        nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


class AlexNet(nn.Module):
    """torchvision's AlexNet: (N, 3, 224, 224) -> features (N, 256, 6, 6) -> (N, num_classes)."""

    head_prefixes = ("classifier.6.",)

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, in_channels: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(256 * 6 * 6, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (N, 256, 6, 6)
        return self.classifier(torch.flatten(x, 1))  # (N, 9216) -> (N, num_classes)


class AlexNet2012(nn.Module):
    """The 2012 paper's two-tower AlexNet: (N, 3, 227, 227) -> (N, 256, 6, 6) -> (N, classes).

    Weights are initialised as in the paper: N(0, 0.01), biases 1 in conv2, conv4, conv5 and
    the hidden FC layers, 0 elsewhere.
    """

    head_prefixes = ("classifier.6.",)

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, in_channels: int = 3):
        super().__init__()

        def lrn() -> nn.LocalResponseNorm:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4),  # 55x55x96
            nn.ReLU(inplace=True),
            lrn(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 27x27x96
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),  # 27x27x256
            nn.ReLU(inplace=True),
            lrn(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 13x13x256
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # 13x13x384, both towers
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),  # 13x13x384
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),  # 13x13x256
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 6x6x256
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = _classifier(256 * 6 * 6, num_classes, dropout)
        if not self.classifier[1].weight.is_meta:  # meta (shapes only): nothing to fill
            self._init_as_in_paper()

    def _init_as_in_paper(self) -> None:
        one_bias = {4, 10, 12}  # conv2, conv4, conv5
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 1.0 if i in one_bias else 0.0)  # type: ignore[arg-type]
        for i, m in enumerate(self.classifier):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.constant_(m.bias, 0.0 if i == 6 else 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # (N, 256, 6, 6)
        return self.classifier(torch.flatten(x, 1))  # (N, 9216) -> (N, num_classes)


def _alexnet(
    cls: type[AlexNet] | type[AlexNet2012],
    arch: str,
    weights: Any,
    num_classes: int,
    progress: bool = True,
    download: bool = False,
    **kwargs: Any,
) -> nn.Module:
    model = cls(num_classes=num_classes, **kwargs)
    return load_pretrained(model, arch, weights, num_classes, progress=progress, download=download)


@register_model
def alexnet(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> AlexNet:
    """AlexNet as torchvision (one tower), 61,100,840 parameters."""
    return _alexnet(AlexNet, "alexnet", weights, num_classes, **kw)  # type: ignore[return-value]


@register_model(input_size=(3, 227, 227))
def alexnet2012(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> AlexNet2012:
    """AlexNet of the 2012 paper (two towers as groups=2, LRN, 227 input), 60,965,224 params."""
    return _alexnet(AlexNet2012, "alexnet2012", weights, num_classes, **kw)  # type: ignore[return-value]
