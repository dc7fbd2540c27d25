"""The convolution step-through: windows, products and sums agree with PyTorch's conv2d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnkit.conv import explain_conv2d, explain_volume
from cnnkit.errors import ShapeError


def notes_example() -> np.ndarray:
    x = np.zeros((6, 6))
    x[:, :3] = 10
    return x


def test_notes_example_gives_0_30_30_0_rows() -> None:
    e = explain_conv2d(notes_example(), [[1, 0, -1]] * 3)
    assert e.output.tolist() == [[0, 30, 30, 0]] * 4
    assert e.formula_h == e.formula_w == "floor((6 + 2*0 - 3) / 1) + 1 = 4"
    first = e.steps[1]  # (h, w) = (0, 1): window columns 1..3 = 10 10 0
    assert (first.h, first.w, first.top, first.left) == (0, 1, 0, 1)
    assert first.window.tolist() == [[10, 10, 0]] * 3
    assert first.products.tolist() == [[10, 0, 0]] * 3
    assert first.total == 30


@pytest.mark.parametrize(("p", "s"), [(0, 1), (1, 1), (2, 2), ("same", 1), (1, 3)])
def test_every_step_matches_torch(rng: np.random.Generator, p: int | str, s: int) -> None:
    x, k, b = rng.standard_normal((7, 9)), rng.standard_normal((3, 3)), 0.5
    e = explain_conv2d(x, k, p=p, s=s, bias=b)
    ref = F.conv2d(
        torch.from_numpy(x)[None, None],
        torch.from_numpy(k)[None, None],
        torch.tensor([b], dtype=torch.float64),
        stride=s,
        padding=e.p,
    )[0, 0].numpy()
    np.testing.assert_allclose(e.output, ref, atol=1e-12)
    assert len(e.steps) == ref.size
    for step in e.steps:
        assert step.total == pytest.approx(ref[step.h, step.w], abs=1e-12)
        np.testing.assert_allclose(step.products, step.window * k)
    n_h = (7 + 2 * e.p - 3) // s + 1
    assert e.formula_h == f"floor((7 + 2*{e.p} - 3) / {s}) + 1 = {n_h}"


def test_filter_that_does_not_fit_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match="does not fit"):
        explain_conv2d(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ShapeError, match="p must be"):
        explain_conv2d(np.ones((6, 6)), np.ones((3, 3)), p=-1)


def test_volume_output_depth_is_the_number_of_filters(rng: np.random.Generator) -> None:
    x, w = rng.standard_normal((3, 6, 6)), rng.standard_normal((2, 3, 3, 3))
    v = explain_volume(x, w, p=1, s=2)
    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), stride=2, padding=1)[0]
    np.testing.assert_allclose(v.output, ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(v.per_channel.sum(axis=1), v.output, atol=1e-12)
    assert v.shape == "(6, 6, 3) * 2 filters (3, 3, 3) -> (3, 3, 2)"
    with pytest.raises(ShapeError, match="3 channels"):
        explain_volume(x, rng.standard_normal((2, 1, 3, 3)))
