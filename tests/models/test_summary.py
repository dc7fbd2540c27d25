"""The layer table: shapes, parameters and multiply-adds against hand arithmetic."""

from __future__ import annotations

import json

import pytest
import torch

from cnnkit.errors import ShapeError
from cnnkit.models import create_model
from cnnkit.models.summary import parse_input_size, summarize, summarize_model


def test_vgg16_totals_and_rows() -> None:
    s = summarize_model("vgg16")
    assert s.total_params == 138_357_544
    # MACs by hand: each 3x3 conv costs n_H * n_W * n_C * 9 * n_C_prev; FC n_in * n_out
    convs = [(224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128)]
    convs += [(56, 128, 256)] + [(56, 256, 256)] * 2 + [(28, 256, 512)] + [(28, 512, 512)] * 2
    convs += [(14, 512, 512)] * 3
    expected = sum(n * n * c * 9 * cp for n, cp, c in convs)
    expected += 25088 * 4096 + 4096 * 4096 + 4096 * 1000
    assert s.total_macs == expected
    assert round(s.total_macs / 1e9, 1) == 15.5
    first = s.rows[0]
    assert (first.name, first.kind, first.shape_text, first.params) == (
        "features.0",
        "Conv2d",
        "224 x 224 x 64",
        3 * 3 * 3 * 64 + 64,
    )
    assert [r.shape_text for r in s.rows if r.kind == "MaxPool2d"] == [
        "112 x 112 x 64",
        "56 x 56 x 128",
        "28 x 28 x 256",
        "14 x 14 x 512",
        "7 x 7 x 512",
    ]
    assert sum(r.params for r in s.rows) == s.total_params
    assert not any(r.kind == "ReLU" for r in s.rows)
    table = s.format_table()
    assert "138,357,544" in table and "15.47 G" in table


def test_alexnet2012_shapes_of_the_paper() -> None:
    s = summarize_model("alexnet2012")
    convs = [r.shape_text for r in s.rows if r.kind == "Conv2d"]
    assert convs == [
        "55 x 55 x 96",
        "27 x 27 x 256",
        "13 x 13 x 384",
        "13 x 13 x 384",
        "13 x 13 x 256",
    ]
    assert s.rows[-1].shape_text == "1000"


def test_lenet5_table_and_meta_equals_real() -> None:
    meta = summarize_model("lenet5")
    assert [(r.name, r.output, r.params) for r in meta.rows] == [
        ("c1", (6, 28, 28), 156),
        ("s2", (6, 14, 14), 12),
        ("c3", (16, 10, 10), 1516),
        ("s4", (16, 5, 5), 32),
        ("c5", (120, 1, 1), 48120),
        ("f6", (84,), 10164),
        ("output", (10,), 0),
    ]
    # C3: 60 connected 5x5 filters at each of the 10x10 positions
    assert dict((r.name, r.macs) for r in meta.rows)["c3"] == 60 * 25 * 100
    real = summarize(create_model("lenet5"), (1, 32, 32), name="lenet5")
    assert real == meta


def test_resnet_macs_and_all_layers() -> None:
    s = summarize_model("resnet18")
    assert 1.80e9 < s.total_macs < 1.83e9  # the paper's 1.8 GFLOPs (multiply-adds)
    every = summarize_model("resnet18", all_layers=True)
    assert len(every.rows) > len(s.rows)
    assert every.total_macs == s.total_macs
    plain = summarize_model("resnet34", residual=False)
    assert not any("downsample" in r.name for r in plain.rows)


def test_json_round_trip() -> None:
    d = json.loads(json.dumps(summarize_model("resnet20").as_dict()))
    assert d["total_params"] == 269_722
    assert d["input_size"] == [3, 32, 32]
    assert d["rows"][0]["output_text"] == "32 x 32 x 16"


def test_too_small_input_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"3x16x16 is too small for vgg16.*at least 32x32") as e:
        summarize_model("vgg16", (3, 16, 16))
    assert "Calculated output size" not in str(e.value)  # no torch internals
    with pytest.raises(ShapeError) as e:
        summarize_model("lenet5", (1, 28, 28))
    # one hint (LeNet-5's own), not LeNet-5's and a generic one back to back
    assert str(e.value).endswith(f"({e.value.hint})") and "32x32" in str(e.value.hint)
    assert str(e.value).count(str(e.value.hint)) == 1 and "larger input" not in str(e.value)


def test_channel_mismatch_names_in_channels() -> None:
    with pytest.raises(ShapeError, match="has 1 channels but resnet18 was built for 3") as e:
        summarize_model("resnet18", (1, 64, 64))
    assert "in_channels=1" in str(e.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3x224x224", (3, 224, 224)),
        ("1x32x32", (1, 32, 32)),
        ("64x48", (3, 64, 48)),
        ("96", (3, 96, 96)),
    ],
)
def test_parse_input_size(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_input_size(text) == expected


@pytest.mark.parametrize("text", ["", "3x224x", "axbxc", "0x32x32", "1x2x3x4", "1x2", "3x224"])
def test_parse_input_size_rejects(text: str) -> None:
    with pytest.raises(ShapeError, match="CxHxW"):
        parse_input_size(text)


def test_summary_restores_training_mode() -> None:
    model = create_model("lenet5_modern").train()
    summarize(model, (1, 32, 32))
    assert model.training
    assert not any(m._forward_hooks for m in model.modules())
    x = torch.zeros(1, 1, 32, 32)
    assert model(x).shape == (1, 10)
