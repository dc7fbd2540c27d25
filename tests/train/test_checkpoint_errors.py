"""Checkpoints that do not fit: another data set's classes, or a file that is not a cnnkit
checkpoint at all. Each gives one `error:` line that says what to do, never PyTorch's text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.cli.main import main
from cnnkit.errors import WeightsError
from cnnkit.models.weights import read_state_dict
from cnnkit.train.checkpoint import load_checkpoint


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_evaluate_on_a_data_set_with_other_classes(trained_ckpt: Path, capsys) -> None:
    # the shapes checkpoint has 3 classes; digits has 10 (this was an IndexError traceback)
    code = main(["evaluate", "--weights", str(trained_ckpt), "--dataset", "digits"])
    line = _one_error_line(capsys)
    assert code == 2
    assert "3 classes" in line and "10" in line and "digits" in line, line
    assert "(" in line and "--data" in line, line  # what to do


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "garbage": tmp_path / "garbage.pt",
        "text": tmp_path / "notes.pt",
        "unsafe": tmp_path / "unsafe.pt",
        "truncated": tmp_path / "cut.pt",
    }
    files["garbage"].write_bytes(np.random.default_rng(0).bytes(3000))
    files["text"].write_text("hello world\n")
    torch.save({"a": np.zeros(3)}, files["unsafe"])  # a NumPy array: refused by weights_only
    torch.save({"w": torch.zeros(1000)}, files["truncated"])
    data = files["truncated"].read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    return files


_PYTORCH_WORDS = ("weights_only", "Weights only", "torch.load", "\x1b[")


@pytest.mark.parametrize("kind", ["garbage", "text", "unsafe", "truncated"])
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_not_a_checkpoint_says_so(tmp_path: Path, capsys, kind: str, command: str) -> None:
    path = _bad_files(tmp_path)[kind]
    if command == "predict":
        argv = ["predict", "--weights", str(path), "x.png"]
    else:
        argv = ["evaluate", "--weights", str(path), "--dataset", "digits"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {path}: not a cnnkit checkpoint"), line
    assert "cnnkit train" in line, line  # what to do
    for words in _PYTORCH_WORDS:
        assert words not in line, line


@pytest.mark.parametrize("kind", ["garbage", "text", "unsafe", "truncated"])
def test_library_loaders_do_not_echo_pytorch(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    for load in (load_checkpoint, read_state_dict):
        with pytest.raises(WeightsError) as info:
            load(path)
        message = info.value.message
        assert len(message.splitlines()) == 1
        for words in _PYTORCH_WORDS:
            assert words not in message, message
