"""Checkpoint records and load_weights, on small checkpoints written here. Nothing downloads."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import pytest
import torch

from cnnkit.errors import WeightsError
from cnnkit.models import WEIGHTS, WeightsRecord, create_model, list_models, load_weights
from cnnkit.models import weights as W


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $TORCH_HOME; any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_download(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert W.checkpoint_dir() == folder
    return folder


def small_model(seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("resnet8", num_classes=5, **kw)


def save_with_hash(state: dict, folder: Path, stem: str) -> Path:
    """Save a checkpoint and name it <stem>-<sha256[:8]>.pth, as torchvision names its files."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{stem}.tmp"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = folder / f"{stem}-{digest[:8]}.pth"
    tmp.rename(path)
    return path


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k])


def test_records_name_published_files() -> None:
    for arch, rec in WEIGHTS.items():
        assert arch in list_models()
        assert re.fullmatch(
            rf"{arch.replace('alexnet', 'alexnet-owt')}-[0-9a-f]{{8}}\.pth", rec.file
        )
        assert rec.url == f"https://download.pytorch.org/models/{rec.file}"
        assert rec.file.endswith(f"-{rec.sha256_prefix}.pth")
        assert rec.input_size == (3, 224, 224) and rec.resize == 256
        assert rec.mean == (0.485, 0.456, 0.406) and rec.std == (0.229, 0.224, 0.225)
    assert WEIGHTS["vgg19"].file == "vgg19-dcbb9e9d.pth"
    assert WEIGHTS["resnet50"].sha256_prefix == "0676ba61"


def test_load_from_path_with_hash(torch_home: Path, tmp_path: Path) -> None:
    src = small_model(0)
    path = save_with_hash(src.state_dict(), tmp_path / "ckpt", "resnet8-digits")
    dst = small_model(1)
    assert load_weights(dst, path) is dst
    assert_same_weights(src, dst)


def test_registered_name_resolves_in_torch_hub_cache(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = small_model(0)
    path = save_with_hash(src.state_dict(), torch_home, "resnet8")
    record = WeightsRecord(arch="resnet8", file=path.name, num_classes=5)
    monkeypatch.setitem(WEIGHTS, "resnet8", record)
    dst = small_model(1)
    load_weights(dst, "resnet8")
    assert_same_weights(src, dst)
    # the builders take the same sources: "DEFAULT", a record file name, a path
    assert_same_weights(src, create_model("resnet8", num_classes=5, weights="DEFAULT"))
    assert_same_weights(src, create_model("resnet8", num_classes=5, weights=path.name))
    assert_same_weights(src, create_model("resnet8", num_classes=5, weights=str(path)))


def test_missing_record_file_names_file_folder_and_url(torch_home: Path) -> None:
    with pytest.raises(WeightsError) as err:
        load_weights(small_model(), "vgg19")
    msg = err.value.message
    assert "vgg19-dcbb9e9d.pth" in msg
    assert str(torch_home) in msg
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in msg
    with pytest.raises(WeightsError, match="vgg16-397923af.pth"):
        create_model("vgg16", weights="DEFAULT")


def test_download_only_when_asked(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = small_model(0)
    staged = save_with_hash(src.state_dict(), torch_home.parent / "staging", "resnet8")
    record = WeightsRecord(arch="resnet8", file=staged.name, num_classes=5)
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        Path(dst).write_bytes(staged.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    with pytest.raises(WeightsError, match="--download"):
        load_weights(small_model(1), record)
    assert calls == []
    dst = load_weights(small_model(1), record, download=True, progress=False)
    assert calls == [(record.url, record.sha256_prefix)]
    assert (torch_home / record.file).is_file()
    assert_same_weights(src, dst)


def test_wrong_hash_is_refused(torch_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "resnet8-deadbeef.pth"
    torch.save(small_model().state_dict(), path)
    with pytest.raises(WeightsError, match="does not match deadbeef"):
        load_weights(small_model(), path)
    load_weights(small_model(), path, check_hash=False)  # the caller may opt out


def test_truncated_file(torch_home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save(small_model().state_dict(), good)
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint.*truncated"):
        load_weights(small_model(), bad)


def test_no_hash_in_name_loads_and_logs(
    torch_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = small_model(0)
    path = tmp_path / "mine.pt"
    torch.save({"model": src.state_dict(), "epoch": 3}, path)  # a training checkpoint
    with caplog.at_level(logging.INFO, logger="cnnkit.models.weights"):
        dst = load_weights(small_model(1), path)
    assert "without a hash check" not in caplog.text  # a user's own file: not worth a line
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="cnnkit.models.weights"):
        load_weights(small_model(1), path)
    assert "without a hash check" in caplog.text
    assert_same_weights(src, dst)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"hello world\n", "unrecognised file format"),
        (b"\x00\x01garbage", "unrecognised file format"),
    ],
)
def test_not_a_checkpoint_says_so(
    torch_home: Path, tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "notes.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=needle) as info:
        load_weights(small_model(), path)
    assert "101" not in str(info.value)  # not the raw pickle byte of "e"


def test_ddp_prefix_is_stripped(torch_home: Path, tmp_path: Path) -> None:
    src = small_model(0)
    path = tmp_path / "ddp.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    assert_same_weights(src, load_weights(small_model(1), path))


def test_mismatch_lists_keys(torch_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "r8.pt"
    src = small_model(0)
    torch.save(src.state_dict(), path)
    with pytest.raises(
        WeightsError, match=r"shape mismatch fc\.weight \(5, 64\) vs model \(7, 64\)"
    ):
        load_weights(create_model("resnet8", num_classes=7), path)
    with pytest.raises(WeightsError, match=r"missing layer1\.1\.conv1\.weight.*\(\+\d+ more\)"):
        load_weights(create_model("resnet20", num_classes=5), path)
    with pytest.raises(WeightsError, match=r"missing c1\.weight.*unexpected conv1\.weight"):
        load_weights(create_model("lenet5", num_classes=5), path)
    # fine-tuning: a new head for 7 classes, everything else from the checkpoint
    dst = load_weights(create_model("resnet8", num_classes=7), path, replace_head=True)
    torch.testing.assert_close(dst.conv1.weight, src.conv1.weight)
    assert dst.fc.weight.shape == (7, 64)


def test_unsafe_pickle_is_refused(torch_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "unsafe.pt"
    torch.save({"state_dict": small_model().state_dict(), "extra": logging.getLogger("x")}, path)
    with pytest.raises(WeightsError, match="not a readable.*logging.getLogger.*unsafe"):
        load_weights(small_model(), path)


def test_not_a_file_nor_a_name(torch_home: Path) -> None:
    with pytest.raises(WeightsError, match="no such checkpoint file"):
        load_weights(small_model(), "does-not-exist.pth")
    with pytest.raises(WeightsError, match="no published checkpoint for lenet5"):
        create_model("lenet5", weights="DEFAULT")


def test_legacy_serialization_loads(torch_home: Path, tmp_path: Path) -> None:
    # torchvision's VGG files (vgg19-dcbb9e9d.pth, 2017) predate the zip format
    src = small_model(0)
    path = tmp_path / "legacy.pth"
    torch.save(src.state_dict(), path, _use_new_zipfile_serialization=False)
    assert_same_weights(src, load_weights(small_model(1), path))
