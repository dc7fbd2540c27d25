"""cnnkit.edges.learn_kernel: gradient descent recovers a filter from its outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cnnkit.cli.main import main
from cnnkit.edges import detect, learn_kernel, sobel, vertical
from cnnkit.errors import ShapeError


def test_recovers_the_vertical_detector(rng: np.random.Generator) -> None:
    images = rng.random((8, 16, 16))
    targets = np.stack([detect(im, "vertical", padding="valid") for im in images])
    result = learn_kernel(images, targets)
    assert np.abs(result.kernel - vertical()).max() < 1e-3
    assert abs(result.bias) < 1e-3
    assert result.losses[-1] < 1e-8 < result.losses[0]


def test_matches_least_squares_for_a_random_filter_and_bias(rng: np.random.Generator) -> None:
    """The reference: PyTorch makes the targets, NumPy's lstsq solves the same problem."""
    images = rng.random((5, 12, 10))
    w, b = rng.standard_normal((3, 3)), 0.7
    x = torch.from_numpy(images[:, None])
    targets = F.conv2d(x, torch.from_numpy(w)[None, None], torch.tensor([b], dtype=torch.float64))[
        :, 0
    ].numpy()
    targets = targets + 0.01 * rng.standard_normal(targets.shape)  # no exact fit
    result = learn_kernel(images, targets, steps=600)
    windows = np.lib.stride_tricks.sliding_window_view(images, (3, 3), axis=(1, 2))
    a = np.concatenate([windows.reshape(-1, 9), np.ones((windows[..., 0, 0].size, 1))], axis=1)
    solution = np.linalg.lstsq(a, targets.reshape(-1), rcond=None)[0]
    assert np.abs(result.kernel.ravel() - solution[:9]).max() < 1e-4
    assert abs(result.bias - solution[9]) < 1e-4


def test_same_padding_learns_sobel_from_a_photo_sized_map(rng: np.random.Generator) -> None:
    image = rng.random((20, 24))
    target = detect(image, "sobel", direction="x")  # "same", replicated border
    result = learn_kernel(image, target, padding="same", steps=400)
    assert np.abs(result.kernel - sobel()[0]).max() < 1e-3


def test_callback_sees_every_step_and_can_stop(rng: np.random.Generator) -> None:
    images = rng.random((2, 8, 8))
    targets = np.stack([detect(im, "vertical", padding="valid") for im in images])
    seen: list[tuple[int, float]] = []

    def on_step(step: int, loss: float, kernel: np.ndarray, bias: float) -> bool:
        seen.append((step, loss))
        assert kernel.shape == (3, 3)
        return step < 5

    result = learn_kernel(images, targets, callback=on_step)
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5]
    assert result.stopped and result.steps == 5
    assert [loss for _, loss in seen] == result.losses[1:]


def test_wrong_target_size_names_the_expected_size(rng: np.random.Generator) -> None:
    with pytest.raises(ShapeError, match="targets must be 6x6"):
        learn_kernel(rng.random((8, 8)), rng.random((8, 8)))


def test_cli_learn_from(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(3)
    gray = rng.random((24, 24))
    target = detect(gray, "vertical")  # same size, replicated border: learnable exactly
    scale = 3.0  # vertical's response lies in [-3, 3]; map it into [0, 1] for a PNG
    image_path, target_path = tmp_path / "x.png", tmp_path / "t.png"
    Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(image_path)
    Image.fromarray(np.round((target / scale + 1) / 2 * 255).astype(np.uint8)).save(target_path)
    out = tmp_path / "learned.png"
    code = main(["edges", str(image_path), "--learn-from", str(target_path), "-o", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    numbers = np.array([float(v) for v in text.split("kernel:")[1].split("bias")[0].split()])
    # PNG rounding (1/255) and the [0, 1] mapping: the kernel is vertical / (2 * scale)
    assert np.abs(numbers.reshape(3, 3) - vertical() / (2 * scale)).max() < 0.02
    assert out.exists()
