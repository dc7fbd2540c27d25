"""Image folders, the digits, the split and the augmentation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import CnnkitError, NotFoundError
from cnnkit.train.data import (
    ImageTransform,
    load_data,
    load_digits_split,
    random_shift,
    scan_image_folder,
    stratified_split,
)
from tests.train.conftest import make_shapes


def test_scan_skips_unreadable_with_one_warning(shapes_dir: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="cnnkit.train.data"):
        index = scan_image_folder(shapes_dir)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "skipped 2 unreadable" in text
    assert "broken.png" in text and "empty.jpg" in text
    assert index.classes == ["circle", "square", "triangle"]
    assert len(index.samples) == 36
    assert sorted(p.name for p, _ in index.skipped) == ["broken.png", "empty.jpg"]
    assert np.bincount(index.targets).tolist() == [12, 12, 12]


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such folder"):
        scan_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnkitError, match="no class subfolders with images"):
        scan_image_folder(tmp_path / "empty")
    one = make_shapes(tmp_path / "one", classes=("circle",), per_class=2)
    with pytest.raises(CnnkitError, match="only one class"):
        scan_image_folder(one)


@settings(max_examples=20, deadline=None)
@given(
    counts=st.lists(st.integers(1, 9), min_size=2, max_size=4),
    fraction=st.sampled_from([0.0, 0.2, 0.5]),
    seed=st.integers(0, 3),
)
def test_stratified_split_partitions_each_class(counts, fraction, seed) -> None:
    targets = np.repeat(np.arange(len(counts)), counts)
    train, held = stratified_split(targets, fraction, seed)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(targets)))
    again = stratified_split(targets, fraction, seed)
    assert train.tolist() == again[0].tolist() and held.tolist() == again[1].tolist()
    for c, n in enumerate(counts):
        n_held = int((targets[held] == c).sum())
        if fraction == 0:
            assert n_held == 0
        elif n >= 2:
            assert 1 <= n_held <= n - 1


def test_random_shift_moves_each_image_within_range(rng) -> None:
    x = np.zeros((16, 2, 9, 9), dtype=np.float32)
    x[:, :, 4, 4] = 1.0  # one bright pixel in the centre of every image
    out = random_shift(x, 2, rng)
    assert out.shape == x.shape and out.dtype == x.dtype
    moves = set()
    for img in out:
        ys, xs = np.nonzero(img[0])
        assert len(ys) == 1 and abs(ys[0] - 4) <= 2 and abs(xs[0] - 4) <= 2
        assert np.array_equal(img[0], img[1])  # both channels moved together
        moves.add((ys[0], xs[0]))
    assert len(moves) > 1
    assert random_shift(x, 0, rng) is x


def test_digits_split_is_fixed_and_normalised() -> None:
    d = load_digits_split(32)
    assert d.train.x.shape == (1437, 1, 32, 32) and d.test.x.shape == (360, 1, 32, 32)
    assert d.train.x.min() >= -1.0 and d.train.x.max() <= 1.0
    assert np.all(d.train.x[:, :, :4, :] == -1.0)  # the 4-pixel background frame
    assert np.bincount(d.test.y).min() >= 35  # stratified: 36 (or 35) of each digit
    again = load_digits_split(32)
    assert np.array_equal(d.test.y, again.test.y)
    assert load_digits_split(8, channels=3).train.x.shape == (1437, 3, 8, 8)


def test_transform_grayscale_and_load_data(shapes_dir: Path) -> None:
    t = ImageTransform(20, 1, (0.5,), (0.5,))
    x = t.load(shapes_dir / "circle" / "circle00.png")
    assert x.shape == (1, 20, 20) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    bundle = load_data(
        data=shapes_dir, dataset=None, image_size=24, channels=3, val_split=0.25, seed=1
    )
    assert len(bundle.train) == 27 and len(bundle.val) == 9
    img, label = bundle.train[0]
    assert tuple(img.shape) == (3, 24, 24) and label in (0, 1, 2)
    with pytest.raises(CnnkitError, match="exactly one"):
        load_data(data=None, dataset=None, image_size=8, channels=1, val_split=0.2, seed=0)
