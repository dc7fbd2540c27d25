"""ResNets (He et al. 2016), residual or plain, for ImageNet and for CIFAR-sized inputs.

A residual block computes a[l+2] = g(z[l+2] + a[l]): the shortcut adds the block's input to its
output before the last ReLU. Where the block changes n_H, n_W or n_C, the shortcut is a projection
W_s a[l] (a 1x1 convolution with stride, plus batch norm; torchvision's ``downsample``).
``residual=False`` builds the *plain* network of the same depth: the same convolutions and no
shortcut at all (no identity, no projection), as the paper's plain baselines.

Reads top to bottom: helpers (:func:`conv3x3`, :func:`conv1x1`) -> blocks (:class:`BasicBlock`,
:class:`Bottleneck`, with ``expansion``) -> networks (:class:`ResNet` for 224x224 ImageNet,
:class:`CifarResNet` for the paper's sec. 4.2 3-stage nets) -> private builders -> one-line
public builders. Parameter names equal torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``), so its checkpoints load unchanged.

Shapes (ImageNet): (N, 3, 224, 224) -> stem (N, 64, 56, 56) -> layer4 (N, 512*expansion, 7, 7)
-> pool (N, 512*expansion) -> logits (N, num_classes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.models.registry import register_model
from cnnkit.models.weights import load_pretrained

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "ResNet",
    "ZeroPadShortcut",
    "conv1x1",
    "conv3x3",
    "resnet_cifar",
]

NormLayer = Callable[[int], nn.Module]


def conv3x3(
    in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1
) -> nn.Conv2d:
    """3x3 convolution, "same" padding, no bias (batch norm follows): n -> floor((n-1)/s) + 1."""
    return nn.Conv2d(
        in_planes,
        out_planes,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        groups=groups,
        bias=False,
        dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias: mixes channels (n_C -> out_planes), n -> floor((n-1)/s) + 1."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions: a = relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x)).

    Args:
        inplanes: n_C of the input.
        planes: n_C of the output (``expansion`` = 1).
        stride: stride of ``conv1`` (2 halves n_H and n_W).
        downsample: the shortcut W_s when shapes change (``None``: identity).
        residual: ``False`` drops the shortcut (plain block); then ``downsample`` must be None.
    """

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: NormLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise ValueError(f"BasicBlock only supports dilation=1. Got {dilation}")
        if downsample is not None and not residual:
            raise ValueError("a plain block (residual=False) has no shortcut; got a downsample")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, planes, n_H/s, n_W/s)
        out = self.bn2(self.conv2(out))  # z[l+2]
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)  # a[l+2] = g(z[l+2] + a[l])


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 (stride) -> 1x1 (expand x4), plus the shortcut.

    ``planes`` is the width of the 3x3 convolution; the block outputs ``planes * 4`` channels.
    The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5").
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: NormLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if downsample is not None and not residual:
            raise ValueError("a plain block (residual=False) has no shortcut; got a downsample")
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, width, n_H, n_W)
        out = self.relu(self.bn2(self.conv2(out)))  # (N, width, n_H/s, n_W/s)
        out = self.bn3(self.conv3(out))  # (N, 4*planes, n_H/s, n_W/s)
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


def _init_resnet(model: nn.Module, zero_init_residual: bool) -> None:
    if next(model.parameters()).is_meta:  # shapes only (cnnkit summary): nothing to fill
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck | BasicBlock):
                last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2
                nn.init.zeros_(last_bn.weight)  # type: ignore[arg-type]


class ResNet(nn.Module):
    """ImageNet ResNet: 7x7/2 conv stem + 3x3/2 max pool, four stages, global average pool, FC.

    Args:
        block: :class:`BasicBlock` (ResNet-18/34) or :class:`Bottleneck` (50/101/152).
        layers: blocks per stage, e.g. ``[3, 4, 6, 3]`` for ResNet-34/50.
        num_classes: outputs of ``fc``.
        residual: ``False`` builds the plain network (no shortcuts).
        in_channels: n_C of the input (3 for RGB).
        zero_init_residual: start each residual branch's last BN at gamma = 0.
    """

    head_prefixes = ("fc.",)

    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 1000,
        residual: bool = True,
        in_channels: int = 3,
        zero_init_residual: bool = False,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet needs 4 stage lengths. Got {layers}")
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.residual = residual
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        _init_resnet(self, zero_init_residual)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        out_planes = planes * block.expansion
        if self.residual and (stride != 1 or self.inplanes != out_planes):
            downsample = nn.Sequential(  # projection shortcut W_s
                conv1x1(self.inplanes, out_planes, stride), self._norm_layer(out_planes)
            )
        norm, res = self._norm_layer, self.residual
        layers = [block(self.inplanes, planes, stride, downsample, norm_layer=norm, residual=res)]
        self.inplanes = out_planes
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, norm_layer=norm, residual=res))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, n_H/4, n_W/4)
        x = self.layer1(x)  # (N, 64e, n_H/4, n_W/4)
        x = self.layer2(x)  # (N, 128e, n_H/8, n_W/8)
        x = self.layer3(x)  # (N, 256e, n_H/16, n_W/16)
        x = self.layer4(x)  # (N, 512e, n_H/32, n_W/32)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 512e)
        return self.fc(x)


class ZeroPadShortcut(nn.Module):
    """Parameter-free shortcut (He et al. option A): subsample by ``stride`` and append zero
    channels, (N, n_C, n_H, n_W) -> (N, out_channels, n_H/s, n_W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"out_channels must be >= in_channels. Got {out_channels}")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zeros in the new channels


class CifarResNet(nn.Module):
    """He et al. sec. 4.2: 3x3 conv (16) -> 3 stages of n BasicBlocks (16, 32, 64 filters on
    32x32, 16x16, 8x8 maps) -> global average pool -> FC. Depth 6n + 2 weighted layers.

    Shortcuts are option A (zero-padded identity, :class:`ZeroPadShortcut`), so residual and
    plain nets of one depth have exactly the same parameters, as in the paper's comparison.
    """

    head_prefixes = ("fc.",)

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        residual: bool = True,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"a CIFAR ResNet has depth 6n+2 (8, 20, 32, 44, 56, 110). Got {depth}")
        n = (depth - 2) // 6
        self.depth = depth
        self.residual = residual
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n)
        self.layer2 = self._make_layer(32, n, stride=2)
        self.layer3 = self._make_layer(64, n, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        _init_resnet(self, zero_init_residual)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        shortcut = None
        if self.residual and (stride != 1 or self.inplanes != planes):
            shortcut = ZeroPadShortcut(self.inplanes, planes, stride)
        layers = [BasicBlock(self.inplanes, planes, stride, shortcut, residual=self.residual)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, residual=self.residual) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16, n_H, n_W)
        x = self.layer1(x)  # (N, 16, n_H, n_W)
        x = self.layer2(x)  # (N, 32, n_H/2, n_W/2)
        x = self.layer3(x)  # (N, 64, n_H/4, n_W/4)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 64)
        return self.fc(x)


def _resnet(
    arch: str,
    block: Block,
    layers: list[int],
    weights: Any,
    num_classes: int,
    progress: bool = True,
    download: bool = False,
    **kwargs: Any,
) -> ResNet:
    model = ResNet(block, layers, num_classes=num_classes, **kwargs)
    return load_pretrained(model, arch, weights, num_classes, progress=progress, download=download)


def resnet_cifar(
    depth: int,
    residual: bool = True,
    num_classes: int = 10,
    in_channels: int = 3,
    *,
    weights: Any = None,
    progress: bool = True,
    download: bool = False,
    **kwargs: Any,
) -> CifarResNet:
    """A CIFAR-style ResNet of depth 6n+2 (plain with ``residual=False``); 0.27 M parameters
    at depth 20, 0.85 M at 56 (10 classes). ``weights``: a path to a checkpoint of your own
    (no published CIFAR checkpoints are recorded)."""
    model = CifarResNet(
        depth, num_classes=num_classes, residual=residual, in_channels=in_channels, **kwargs
    )
    return load_pretrained(
        model, f"resnet{depth}", weights, num_classes, progress=progress, download=download
    )


@register_model
def resnet18(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]), 11,689,512 parameters."""
    return _resnet("resnet18", BasicBlock, [2, 2, 2, 2], weights, num_classes, **kw)


@register_model
def resnet34(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-34 (BasicBlock, [3, 4, 6, 3]), 21,797,672 parameters."""
    return _resnet("resnet34", BasicBlock, [3, 4, 6, 3], weights, num_classes, **kw)


@register_model
def resnet50(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]), 25,557,032 parameters."""
    return _resnet("resnet50", Bottleneck, [3, 4, 6, 3], weights, num_classes, **kw)


@register_model
def resnet101(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-101 (Bottleneck, [3, 4, 23, 3]), 44,549,160 parameters."""
    return _resnet("resnet101", Bottleneck, [3, 4, 23, 3], weights, num_classes, **kw)


@register_model
def resnet152(*, weights: Any = None, num_classes: int = 1000, **kw: Any) -> ResNet:
    """ResNet-152 (Bottleneck, [3, 8, 36, 3]), 60,192,808 parameters."""
    return _resnet("resnet152", Bottleneck, [3, 8, 36, 3], weights, num_classes, **kw)


_CIFAR_INPUT = (3, 32, 32)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def resnet8(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR ResNet-8 (3 stages x 1 block, 16/32/64 filters)."""
    return resnet_cifar(8, weights=weights, num_classes=num_classes, **kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def resnet20(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR ResNet-20 (3 stages x 3 blocks), 0.27 M parameters."""
    return resnet_cifar(20, weights=weights, num_classes=num_classes, **kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def resnet32(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR ResNet-32 (3 stages x 5 blocks)."""
    return resnet_cifar(32, weights=weights, num_classes=num_classes, **kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def resnet44(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR ResNet-44 (3 stages x 7 blocks)."""
    return resnet_cifar(44, weights=weights, num_classes=num_classes, **kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def resnet56(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR ResNet-56 (3 stages x 9 blocks), 0.85 M parameters."""
    return resnet_cifar(56, weights=weights, num_classes=num_classes, **kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def resnet110(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR ResNet-110 (3 stages x 18 blocks), 1.7 M parameters."""
    return resnet_cifar(110, weights=weights, num_classes=num_classes, **kw)


def _plain(depth: int, weights: Any, num_classes: int, kw: dict[str, Any]) -> CifarResNet:
    kw.setdefault("residual", False)
    return resnet_cifar(depth, weights=weights, num_classes=num_classes, **kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def plain8(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR plain-8: resnet8 without shortcuts."""
    return _plain(8, weights, num_classes, kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def plain20(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR plain-20: resnet20 without shortcuts."""
    return _plain(20, weights, num_classes, kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def plain32(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR plain-32: resnet32 without shortcuts."""
    return _plain(32, weights, num_classes, kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def plain44(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR plain-44: resnet44 without shortcuts."""
    return _plain(44, weights, num_classes, kw)


@register_model(input_size=_CIFAR_INPUT, default_num_classes=10)
def plain56(*, weights: Any = None, num_classes: int = 10, **kw: Any) -> CifarResNet:
    """CIFAR plain-56: resnet56 without shortcuts."""
    return _plain(56, weights, num_classes, kw)
