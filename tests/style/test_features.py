"""Layer names, truncation, freezing, the random backbone's normalisation, weights files."""

from __future__ import annotations

import pytest
import torch

from cnnkit.errors import NotFoundError, WeightsError
from cnnkit.style.backbone import (
    _vgg_features,
    build_extractor,
    normalize_unit_variance_,
    randomize_,
)
from cnnkit.style.features import FeatureExtractor, layer_indices


@pytest.fixture(scope="module")
def features() -> torch.nn.Sequential:
    features = _vgg_features("vgg19")
    randomize_(features[:8], seed=1)  # the tests use conv1_1 .. conv2_2 only
    return features


def test_layer_indices_match_torchvision(features) -> None:
    names = layer_indices(features)
    assert len(names) == 16 + 16 + 5
    assert names["conv1_1"] == 0 and names["relu1_1"] == 1 and names["pool1"] == 4
    assert names["conv4_2"] == 21 and names["conv5_1"] == 28
    assert names["conv5_4"] == 34 and names["pool5"] == 36


def test_extractor_truncated_frozen_and_unclobbered(features) -> None:
    ex = FeatureExtractor(features, ["conv2_1", "conv1_1"])
    assert len(ex.body) == 6  # features.0 .. features.5
    assert not any(p.requires_grad for p in ex.parameters())
    ex.train()
    assert not ex.training
    out = ex(torch.rand(1, 3, 20, 24))
    assert out["conv1_1"].shape == (1, 64, 20, 24)
    assert out["conv2_1"].shape == (1, 128, 10, 12)
    # conv outputs are returned before the ReLU: an in-place ReLU would have zeroed the negatives
    assert (out["conv1_1"] < 0).any()


def test_avg_pooling_swapped_in(features) -> None:
    ex = FeatureExtractor(features, ["conv2_1"], pooling="avg")
    assert isinstance(ex.body[4], torch.nn.AvgPool2d)
    assert isinstance(features[4], torch.nn.MaxPool2d)  # the source stack is untouched


def test_unknown_layer_lists_valid_names(features) -> None:
    with pytest.raises(NotFoundError, match="conv9_9") as info:
        FeatureExtractor(features, ["conv1_1", "conv9_9"])
    assert "conv4_2" in str(info.value) and "relu5_4" in str(info.value)


def test_unit_variance_per_channel(features) -> None:
    ex = FeatureExtractor(features, ["conv1_1", "conv2_1"])
    image = torch.rand(1, 3, 32, 32)
    randomize_(ex.body, seed=3)
    normalize_unit_variance_(ex, image, per_channel=True)
    out = ex(image)
    for name in ("conv1_1", "conv2_1"):
        std = out[name].std(dim=(0, 2, 3))
        torch.testing.assert_close(std, torch.ones_like(std), rtol=1e-3, atol=1e-3)


def test_random_backbone_is_reproducible() -> None:
    image = torch.rand(1, 3, 32, 32)
    a = build_extractor(["conv2_1"], image, backbone="random-vgg19")
    b = build_extractor(["conv2_1"], image, backbone="random-vgg19")
    assert a.name == "random-vgg19"
    for pa, pb in zip(a.extractor.parameters(), b.extractor.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_weights_file_round_trip(tmp_path, features) -> None:
    # a features-only checkpoint of the layers conv1_1..conv2_1 (features.0 .. features.5)
    state = {f"features.{k}": v for k, v in features.state_dict().items() if int(k[0]) <= 5}
    path = tmp_path / "vgg19-small.pth"
    torch.save(state, path)
    backbone = build_extractor(["conv1_1", "conv2_1"], backbone="vgg19", weights=path)
    assert backbone.name == "vgg19" and backbone.source == str(path)
    assert isinstance(backbone.extractor.body[4], torch.nn.MaxPool2d)
    torch.testing.assert_close(backbone.extractor.body[5].weight, features[5].weight)
    # 'auto' with a file given uses it too
    assert build_extractor(["conv1_1"], backbone="auto", weights=path).name == "vgg19"


def test_weights_file_errors_name_the_file(tmp_path, features) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match="nope.pth"):
        build_extractor(["conv1_1"], backbone="vgg19", weights=missing)
    bad = tmp_path / "wrong.pth"
    torch.save(
        {"features.0.weight": torch.zeros(8, 3, 3, 3), "features.0.bias": torch.zeros(8)},
        bad,
    )
    with pytest.raises(WeightsError, match=r"wrong.pth.*shape mismatch"):
        build_extractor(["conv1_1"], backbone="vgg19", weights=bad)
    short = tmp_path / "short.pth"
    torch.save({k: v for k, v in features.state_dict().items() if k.startswith("0.")}, short)
    with pytest.raises(WeightsError, match=r"short.pth.*missing features.2"):
        build_extractor(["conv2_1"], backbone="vgg19", weights=short)


def test_auto_backbone_uses_the_hub_cache(tmp_path, monkeypatch, features) -> None:
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    image = torch.rand(1, 3, 16, 16)
    # nothing cached: the offline default
    assert build_extractor(["conv1_1"], image, backbone="auto").name == "random-vgg19"
    with pytest.raises(WeightsError, match=r"vgg19-dcbb9e9d.pth.*--download"):
        build_extractor(["conv1_1"], image, backbone="vgg19")
    # a cached file with the published name is used, and hash-checked
    (tmp_path / "checkpoints").mkdir()
    cached = tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth"
    small = {f"features.{k}": v for k, v in features.state_dict().items() if k.startswith("0.")}
    torch.save(small, cached)
    with pytest.raises(WeightsError, match=r"vgg19-dcbb9e9d.pth.*SHA-256"):
        build_extractor(["conv1_1"], image, backbone="auto")
