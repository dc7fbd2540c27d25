"""The training loop: it learns, checkpoints atomically, resumes, stops cleanly on Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnkit.errors import WeightsError
from cnnkit.train import TrainConfig, learning_rate, load_checkpoint, train
from cnnkit.train.build import create, head_keys, transfer_state
from cnnkit.train.checkpoint import save_checkpoint
from tests.train.conftest import make_shapes


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        model="lenet5_modern", data=str(data), epochs=2, batch_size=8, lr=3e-3, out=str(out)
    )
    base.update(kw)
    return TrainConfig(device="cpu", **base)  # type: ignore[arg-type]


def test_training_learns_and_checkpoint_loads_safely(trained_ckpt: Path) -> None:
    ckpt = load_checkpoint(trained_ckpt)  # weights_only=True inside
    history = ckpt["history"]
    assert ckpt["epoch"] == 6 and len(history) == 6
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert history[-1]["acc"] > 0.6  # chance is 1/3
    assert ckpt["classes"] == ["circle", "square", "triangle"]
    assert ckpt["model"] == "lenet5_modern" and ckpt["in_channels"] == 1
    assert ckpt["image_size"] == 32 and not ckpt["interrupted"]
    assert {"val_loss", "val_acc", "images_per_s"} <= set(history[-1])
    leftovers = [p.name for p in trained_ckpt.parent.iterdir() if p.name != trained_ckpt.name]
    assert leftovers == []  # no temp files left behind


def test_resume_continues_the_epoch_count(shapes_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.pt"
    first = train(_cfg(shapes_dir, out, epochs=1))
    assert first.epochs_done == 1
    second = train(_cfg(shapes_dir, out, epochs=2, resume=True))
    ckpt = load_checkpoint(out)
    assert ckpt["epoch"] == 2 and [h["epoch"] for h in ckpt["history"]] == [1, 2]
    assert ckpt["history"][0] == first.history[0]
    assert second.epochs_done == 2
    with pytest.raises(WeightsError, match="model"):
        train(_cfg(shapes_dir, out, epochs=3, resume=True, model="lenet5"))


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, f, *a, **k):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_ctrl_c_saves_and_returns(shapes_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "int.pt"

    def interrupt(event: str, info: dict) -> None:
        if event == "batch_end" and info["epoch"] == 1 and info["step"] == 1:
            raise KeyboardInterrupt

    result = train(_cfg(shapes_dir, out, epochs=3), callback=interrupt)
    assert result.interrupted and result.epochs_done == 1
    ckpt = load_checkpoint(out)
    assert ckpt["interrupted"] and ckpt["epoch"] == 1
    resumed = train(_cfg(shapes_dir, out, epochs=2, resume=True))
    assert not resumed.interrupted and load_checkpoint(out)["epoch"] == 2


def test_weights_replace_the_head_when_classes_differ(trained_ckpt: Path, tmp_path: Path) -> None:
    two = make_shapes(tmp_path / "two", classes=("circle", "square"), per_class=4)
    source = load_checkpoint(trained_ckpt)["state_dict"]
    model = create("lenet5_modern", 2)
    replaced = transfer_state(source, model)
    assert replaced == head_keys(model) == ["classifier.4.weight", "classifier.4.bias"]
    state = model.state_dict()
    assert torch.equal(state["features.0.weight"], source["features.0.weight"])
    assert state["classifier.4.weight"].shape == (2, 84)
    with pytest.raises(WeightsError, match="does not fit"):
        transfer_state(source, create("lenet5", 2))
    result = train(_cfg(two, tmp_path / "ft.pt", epochs=1, weights=str(trained_ckpt)))
    assert result.classes == ["circle", "square"]


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(lr=0.1, epochs=10).resolved()
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 5) == pytest.approx(0.1 / 100 + (0.1 - 0.001) / 2)
    assert all(learning_rate(cfg, e) > learning_rate(cfg, e + 1) for e in range(9))
    flat = TrainConfig(lr=0.1, epochs=10, schedule="constant").resolved()
    assert learning_rate(flat, 9) == 0.1


def test_numpy_engine_resumes_with_its_optimizer_state(shapes_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "np.pt"
    train(_cfg(shapes_dir, out, epochs=1, engine="numpy"))
    first = load_checkpoint(out)
    assert first["engine"] == "numpy" and first["optimizer_state"]["kind"] == "adam"
    steps = first["optimizer_state"]["t"]
    assert steps == 4  # 30 training images in batches of 8
    train(_cfg(shapes_dir, out, epochs=2, engine="numpy", resume=True))
    second = load_checkpoint(out)
    assert second["epoch"] == 2 and second["optimizer_state"]["t"] == 2 * steps
    assert second["history"][0] == first["history"][0]
