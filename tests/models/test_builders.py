"""Every registered builder: exact parameter counts, output shapes, plain vs residual."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import NotFoundError, ShapeError
from cnnkit.models import create_model, list_models, model_info

#: Published parameter counts at 1000 classes (torchvision's, and the papers').
COUNTS = {
    "lenet5": 60_000,
    "alexnet": 61_100_840,
    "alexnet2012": 60_965_224,
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def n_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def meta_model(name: str, **kw):
    with torch.device("meta"):
        return create_model(name, **kw)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_count_at_1000_classes(name: str) -> None:
    assert n_trainable(meta_model(name, num_classes=1000)) == COUNTS[name]


def test_alexnet2012_count_from_layer_arithmetic() -> None:
    # conv: n_C * (f*f*n_C_prev/groups) + n_C ; fc: n_in * n_out + n_out
    conv = [(96, 11, 3, 1), (256, 5, 96, 2), (384, 3, 256, 1), (384, 3, 384, 2), (256, 3, 384, 2)]
    fc = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
    expected = sum(c * f * f * cp // g + c for c, f, cp, g in conv)
    expected += sum(i * o + o for i, o in fc)
    assert expected == COUNTS["alexnet2012"]


def test_lenet5_layer_counts_follow_the_paper() -> None:
    m = create_model("lenet5")
    per_layer = {
        name: sum(p.numel() for p in mod.parameters())
        for name, mod in m.named_children()
        if any(True for _ in mod.parameters())
    }
    # C1 6*(25+1); S2 6*2; C3 60 connections * 25 + 16; S4 16*2; C5 120*(400+1); F6 84*(120+1)
    assert per_layer == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    assert m.output.prototypes.shape == (10, 84)
    assert not m.output.prototypes.requires_grad
    assert set(m.output.prototypes.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("name", list_models())
def test_every_builder_seeded_forward(name: str) -> None:
    c, h, w = model_info(name).input_size
    if h == 224:  # ImageNet nets: a small input is enough to check the graph
        h = w = 64 if name.startswith("alexnet") else 32
    elif name == "alexnet2012":
        h = w = 67  # smallest input that survives conv1 (no padding) and three 3x3/2 pools
    on_meta = meta_model(name, num_classes=5).eval()
    size = n_trainable(on_meta)
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(0))
    if size > 12_000_000:  # building 25-140 M parameters takes seconds: check the graph on meta
        y = on_meta(x.to("meta"))
        assert y.shape == (2, 5)
        return
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 5)
    assert torch.isfinite(y).all()
    if size > 1_000_000:
        return
    torch.manual_seed(0)
    again = create_model(name, num_classes=5).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), y)  # seeded builds are reproducible


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(NotFoundError, match="resnet50"):
        create_model("resnet05")


def test_list_models_pattern() -> None:
    assert list_models("vgg1[69]") == ["vgg16", "vgg19"]
    assert "lenet5" in list_models()
    assert list_models("nothing*") == []


def test_plain_resnet_has_no_shortcuts_and_differs_from_residual() -> None:
    plain = meta_model("resnet50", residual=False)
    keys = plain.state_dict().keys()
    assert not any("downsample" in k for k in keys)
    resid_keys = meta_model("resnet50").state_dict().keys()
    assert set(keys) == {k for k in resid_keys if "downsample" not in k}

    torch.manual_seed(0)
    net = create_model("resnet8", num_classes=3, residual=False).eval()
    torch.manual_seed(0)
    res = create_model("resnet8", num_classes=3).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(net(x), res(x))


def test_cifar_resnets_depth_and_option_a() -> None:
    for depth in (8, 20, 56):
        m = meta_model(f"resnet{depth}")
        convs = [k for k, v in m.state_dict().items() if k.endswith("weight") and v.dim() == 4]
        assert len(convs) + 1 == depth  # 6n+1 convolutions + the FC layer
        plain = meta_model(f"plain{depth}")
        # option A shortcuts have no parameters: same parameters plain and residual
        assert n_trainable(plain) == n_trainable(m)
    # He et al. Table 6: ResNet-20 has 0.27 M parameters at 10 classes. Conv weights
    # 3*16*9 + 6*16*16*9 + (16*32 + 5*32*32)*9 + (32*64 + 5*64*64)*9, BN 2*(7*16 + 6*32 + 6*64),
    # FC 64*10 + 10.
    convs = 3 * 16 * 9 + 6 * 16 * 16 * 9 + (16 * 32 + 5 * 32 * 32) * 9 + (32 * 64 + 5 * 64 * 64) * 9
    expected = convs + 2 * (7 * 16 + 6 * 32 + 6 * 64) + 64 * 10 + 10
    assert n_trainable(meta_model("resnet20")) == expected == 269_722
    with pytest.raises(ValueError, match="6n\\+2"):
        create_model("resnet20").__class__(depth=21)


def test_residual_block_adds_its_input() -> None:
    from cnnkit.models.resnet import BasicBlock

    block = BasicBlock(4, 4).eval()
    torch.nn.init.zeros_(block.bn2.weight)  # residual branch outputs 0 -> block = relu(x)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))
    plain = BasicBlock(4, 4, residual=False).eval()
    torch.nn.init.zeros_(plain.bn2.weight)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), torch.zeros_like(x))


def test_lenet_in_channels_and_input_check() -> None:
    m = create_model("lenet5", in_channels=3, num_classes=4)
    assert m(torch.zeros(1, 3, 32, 32)).shape == (1, 4)
    with pytest.raises(ShapeError, match="32, 32"):
        m(torch.zeros(1, 3, 28, 28))
    modern = create_model("lenet5_modern")
    assert n_trainable(modern) == 61_706
