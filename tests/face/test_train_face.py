"""Triplet training of the encoder: it learns, checkpoints atomically, resumes, and its result
works with --model."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.errors import CnnkitError
from cnnkit.face.encoder import FaceEncoder
from cnnkit.face.gallery import Gallery
from cnnkit.face.losses import mined_triplet_loss
from cnnkit.face.train import FaceSet, TrainConfig, _sample_batch, load_face_folder, train_encoder
from tests.face import shipped


@pytest.fixture(scope="module")
def faceset() -> FaceSet:
    g, a = shipped.grace(), shipped.astronaut()
    gv, av = shipped.variants(g), shipped.variants(a)
    images = [g, gv["flip"], gv["rot"], a, av["flip"], av["bright"]]
    labels = np.array([0] * 3 + [1] * 3)
    names = list(np.array(["grace", "astro"]))  # numpy strings, as read back from an .npz
    return FaceSet(shipped.chips_of(images), labels, names)


def _batch_loss(model, chips: np.ndarray, labels: np.ndarray, margin: float) -> float:
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        loss, _, _ = mined_triplet_loss(model(x), torch.from_numpy(labels), margin, "batch-hard")
    return float(loss)


@pytest.fixture(scope="module")
def trained(faceset, tmp_path_factory) -> tuple[Path, list[dict]]:
    """dlib's encoder fine-tuned for one epoch of 2 steps on a 2 x 2 batch."""
    out = tmp_path_factory.mktemp("train") / "tuned.pt"
    config = TrainConfig(
        data=out.parent,
        out=out,
        margin=1.0,
        epochs=1,
        mining="batch-hard",
        persons_per_batch=2,
        photos_per_person=2,
        steps_per_epoch=2,
        augment=False,
        lr=1e-4,
        optimizer="adam",
    )
    return out, train_encoder(config, faceset)


def test_training_lowers_the_loss_and_loads_with_model(faceset, trained) -> None:
    from cnnkit.face.pipeline import default_encoder

    out, history = trained
    assert [r["epoch"] for r in history] == [1]
    assert 0.0 <= history[0]["active"] <= 1.0 and history[0]["loss"] > 0
    base = default_encoder()
    tuned = FaceEncoder.load(out)
    assert tuned.model_id == history[-1]["model_id"]
    assert tuned.model_id.startswith("dlib_resnet_v1-ft:") and tuned.model_id != base.model_id
    rows = [0, 1, 3, 4]
    chips, labels = faceset.chips[rows], faceset.labels[rows]
    before = _batch_loss(base.model, chips, labels, 1.0)
    after = _batch_loss(tuned.model, chips, labels, 1.0)
    assert before > 0 and after < before
    emb = tuned.embed(chips[:2])
    assert emb.shape == (2, 128) and np.all(np.isfinite(emb))
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["arch"] == "dlib_resnet_v1" and ckpt["epoch"] == 1
    assert not list(out.parent.glob(".*tmp"))  # no temp files left by the atomic writes


def test_resume_continues_and_refuses_to_overwrite(faceset, trained, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    out.write_bytes(trained[0].read_bytes())
    kw = dict(
        data=tmp_path,
        out=out,
        epochs=1,
        persons_per_batch=2,
        photos_per_person=2,
        steps_per_epoch=1,
        mining="semi-hard",
    )
    with pytest.raises(CnnkitError, match="exists already"):
        train_encoder(TrainConfig(**kw), faceset)
    kw.update(epochs=2, resume=True)
    run = train_encoder(TrainConfig(**kw), faceset)
    assert [r["epoch"] for r in run] == [2]
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["epoch"] == 2 and [h["epoch"] for h in ckpt["history"]] == [1, 2]
    assert train_encoder(TrainConfig(**kw), faceset) == []  # already done


def test_scratch_init_and_bad_options(faceset, tmp_path: Path) -> None:
    run = train_encoder(
        TrainConfig(
            data=tmp_path,
            out=tmp_path / "s.pt",
            init="scratch",
            epochs=1,
            steps_per_epoch=1,
            persons_per_batch=2,
            photos_per_person=2,
        ),
        faceset,
    )
    assert len(run) == 1 and np.isfinite(run[0]["loss"])
    with pytest.raises(CnnkitError, match="mining"):
        train_encoder(TrainConfig(data=tmp_path, out=tmp_path / "x.pt", mining="easy"), faceset)
    with pytest.raises(CnnkitError, match="no such model file"):
        train_encoder(
            TrainConfig(data=tmp_path, out=tmp_path / "y.pt", init=str(tmp_path / "nope.pt")),
            faceset,
        )


def test_sample_batch_is_p_by_k() -> None:
    rng = np.random.default_rng(0)
    by_person = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5]), np.array([6, 7, 8, 9])]
    rows = _sample_batch(rng, by_person, p=2, k=3)
    labels = np.concatenate([[i] * len(x) for i, x in enumerate(by_person)])[rows]
    assert len(rows) == 6 and len(set(labels)) == 2
    assert all((labels == lab).sum() == 3 for lab in set(labels))
    assert 1 not in labels  # persons with one photo only join when needed as negatives


def _no_detection(*args, **kwargs):
    raise AssertionError("detect() called although the chips are cached")


def test_face_folder_and_cli_train(trained, tmp_path: Path, capsys, monkeypatch) -> None:
    data = tmp_path / "people"
    g, a = shipped.grace(), shipped.astronaut()
    for name, imgs in {
        "grace": [g, *list(shipped.variants(g).values())[:2]],
        "astro": [a, shipped.variants(a)["flip"]],
    }.items():
        (data / name).mkdir(parents=True)
        for i, im in enumerate(imgs):
            im.resize((im.width // 2, im.height // 2)).save(data / name / f"{i}.jpg")
    from PIL import Image

    from cnnkit.io import sample_path

    Image.open(sample_path("brick")).resize((160, 160)).save(data / "astro" / "brick.png")
    faceset = load_face_folder(data, upsample=1)
    assert faceset.names == ["astro", "grace"] and len(faceset.chips) == 5
    assert faceset.skipped == [str(data / "astro" / "brick.png")]
    out = tmp_path / "tuned.pt"
    out.write_bytes(trained[0].read_bytes())
    argv = [
        "face",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--steps",
        "1",
        "--persons",
        "2",
        "--photos",
        "2",
        "--resume",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "epoch 2: loss" in printed and "active triplets" in printed
    # The aligned chips were cached beside the checkpoint; a resumed run does not detect again.
    assert Path(f"{out}.chips.npz").is_file()
    detect_module = importlib.import_module("cnnkit.face.detection")
    monkeypatch.setattr(detect_module, "detect", _no_detection)
    assert main([*argv[:7], "3", *argv[8:]]) == 0
    assert "epoch 3: loss" in capsys.readouterr().out
    monkeypatch.undo()
    db = tmp_path / "tuned.sqlite3"
    assert (
        main(
            [
                "face",
                "enroll",
                "Grace",
                str(data / "grace" / "0.jpg"),
                "--model",
                str(out),
                "--db",
                str(db),
            ]
        )
        == 0
    )
    with Gallery(db, create=False) as gal:
        assert gal.model_id == FaceEncoder.load(out).model_id
    capsys.readouterr()
    # The default encoder is refused by the fine-tuned model's database.
    assert (
        main(["face", "verify", str(data / "grace" / "1.jpg"), "--as", "Grace", "--db", str(db)])
        == 2
    )
    assert "made with encoder" in capsys.readouterr().err
    assert (
        main(
            [
                "face",
                "verify",
                str(data / "grace" / "1.jpg"),
                "--as",
                "Grace",
                "--db",
                str(db),
                "--model",
                str(out),
            ]
        )
        == 0
    )  # the fine-tuned encoder still matches Grace's mirrored photo
    # One person only: refused.
    (tmp_path / "solo" / "grace").mkdir(parents=True)
    with pytest.raises(CnnkitError, match="at least 2 persons"):
        load_face_folder(tmp_path / "solo")


def test_freeze_keeps_early_layers_fixed(tmp_path: Path, faceset) -> None:
    from cnnkit.face.encoder import DlibFaceResNet
    from cnnkit.face.train import trainable_parameters

    model = DlibFaceResNet()
    params = trainable_parameters(model, freeze=13)
    expected = [*model.blocks[13].parameters(), *model.fc.parameters()]
    assert [id(p) for p in params] == [id(p) for p in expected]
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert len(trainable_parameters(model, 0)) == len(list(model.parameters()))
    with pytest.raises(CnnkitError, match="freeze must be in"):
        trainable_parameters(model, 15)
    with pytest.raises(CnnkitError, match="optimizer"):
        train_encoder(
            TrainConfig(data=tmp_path, out=tmp_path / "o.pt", optimizer="rmsprop"), faceset
        )
