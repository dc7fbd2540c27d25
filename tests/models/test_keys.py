"""Parameter names and shapes equal torchvision's, built here from the published architectures.

The expected lists are written from the papers' tables (VGG configuration D; ResNet Table 1) and
torchvision's naming convention, independently of the model code, so that published checkpoints
load unchanged.
"""

from __future__ import annotations

import pytest
import torch

from cnnkit.models import create_model

Spec = list[tuple[str, tuple[int, ...]]]


def _conv(spec: Spec, name: str, c_out: int, c_in: int, k: int, bias: bool) -> None:
    spec.append((f"{name}.weight", (c_out, c_in, k, k)))
    if bias:
        spec.append((f"{name}.bias", (c_out,)))


def _bn(spec: Spec, name: str, c: int) -> None:
    for s in ("weight", "bias", "running_mean", "running_var"):
        spec.append((f"{name}.{s}", (c,)))
    spec.append((f"{name}.num_batches_tracked", ()))


def expected_vgg(widths: list[int | str], batch_norm: bool, num_classes: int = 1000) -> Spec:
    """VGG: 3x3 convs (bias) [+ BN] + ReLU, 'M' pools, in one Sequential; 3 FC layers."""
    spec: Spec = []
    index, c_in = 0, 3
    for v in widths:
        if v == "M":
            index += 1
            continue
        assert isinstance(v, int)
        _conv(spec, f"features.{index}", v, c_in, 3, bias=True)
        if batch_norm:
            _bn(spec, f"features.{index + 1}", v)
        index += 3 if batch_norm else 2
        c_in = v
    for i, (n_out, n_in) in zip(
        (0, 3, 6), [(4096, 512 * 7 * 7), (4096, 4096), (num_classes, 4096)], strict=True
    ):
        spec += [(f"classifier.{i}.weight", (n_out, n_in)), (f"classifier.{i}.bias", (n_out,))]
    return spec


def expected_resnet(bottleneck: bool, blocks: list[int], num_classes: int = 1000) -> Spec:
    """He et al. Table 1: 7x7/2 conv 64, then stages of 64/128/256/512 (x4 for bottlenecks);
    a projection shortcut (1x1 conv + BN) in the first block of a stage that changes shape."""
    spec: Spec = []
    _conv(spec, "conv1", 64, 3, 7, bias=False)
    _bn(spec, "bn1", 64)
    c_in = 64
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
        c_out = width * 4 if bottleneck else width
        for b in range(n):
            p = f"layer{stage}.{b}"
            if bottleneck:
                _conv(spec, f"{p}.conv1", width, c_in, 1, bias=False)
                _bn(spec, f"{p}.bn1", width)
                _conv(spec, f"{p}.conv2", width, width, 3, bias=False)
                _bn(spec, f"{p}.bn2", width)
                _conv(spec, f"{p}.conv3", c_out, width, 1, bias=False)
                _bn(spec, f"{p}.bn3", c_out)
            else:
                _conv(spec, f"{p}.conv1", width, c_in, 3, bias=False)
                _bn(spec, f"{p}.bn1", width)
                _conv(spec, f"{p}.conv2", width, width, 3, bias=False)
                _bn(spec, f"{p}.bn2", width)
            if b == 0 and (stage > 1 or c_in != c_out):
                _conv(spec, f"{p}.downsample.0", c_out, c_in, 1, bias=False)
                _bn(spec, f"{p}.downsample.1", c_out)
            c_in = c_out
    spec += [("fc.weight", (num_classes, c_in)), ("fc.bias", (num_classes,))]
    return spec


CFG_D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
CFG_E = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M"] + [512] * 4 + ["M"] + [512] * 4
CFG_E = [*CFG_E, "M"]


def actual(name: str, **kw) -> Spec:
    with torch.device("meta"):
        model = create_model(name, **kw)
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize(
    ("name", "spec"),
    [
        ("vgg16", lambda: expected_vgg(CFG_D, batch_norm=False)),
        ("vgg16_bn", lambda: expected_vgg(CFG_D, batch_norm=True)),
        ("vgg19", lambda: expected_vgg(CFG_E, batch_norm=False)),
        ("resnet18", lambda: expected_resnet(False, [2, 2, 2, 2])),
        ("resnet50", lambda: expected_resnet(True, [3, 4, 6, 3])),
        ("resnet152", lambda: expected_resnet(True, [3, 8, 36, 3])),
    ],
)
def test_state_dict_matches_published_architecture(name: str, spec) -> None:
    assert actual(name, num_classes=1000) == spec()


def test_resnet_head_follows_num_classes() -> None:
    assert actual("resnet50", num_classes=7) == expected_resnet(True, [3, 4, 6, 3], 7)


def test_vgg19_conv_indices_used_by_style_transfer() -> None:
    # conv1_1 .. conv5_4 of VGG-19 sit at these torchvision indices (conv4_2 = features.21)
    convs = [k[: -len(".weight")] for k, s in actual("vgg19") if len(s) == 4]
    assert convs == [
        f"features.{i}" for i in (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    ]


def test_alexnet_keys_match_torchvision() -> None:
    expected = [
        ("features.0.weight", (64, 3, 11, 11)),
        ("features.3.weight", (192, 64, 5, 5)),
        ("features.6.weight", (384, 192, 3, 3)),
        ("features.8.weight", (256, 384, 3, 3)),
        ("features.10.weight", (256, 256, 3, 3)),
        ("classifier.1.weight", (4096, 9216)),
        ("classifier.4.weight", (4096, 4096)),
        ("classifier.6.weight", (1000, 4096)),
    ]
    weights = [(k, s) for k, s in actual("alexnet") if k.endswith("weight")]
    assert weights == expected


def test_alexnet2012_two_towers() -> None:
    weights = dict(actual("alexnet2012"))
    # grouped convolutions: conv2/4/5 filters see half the channels (one tower's)
    assert weights["features.4.weight"] == (256, 48, 5, 5)
    assert weights["features.8.weight"] == (384, 256, 3, 3)  # conv3 connects both towers
    assert weights["features.10.weight"] == (384, 192, 3, 3)
    assert weights["features.12.weight"] == (256, 192, 3, 3)
