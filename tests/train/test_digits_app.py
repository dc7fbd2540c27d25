"""The drawn-digit classifier: LeNet-5 trained on first use, cached, and fed like training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from cnnkit.errors import ShapeError
from cnnkit.train.digits import (
    CACHE_FILE,
    classify_drawing,
    drawing_to_digit,
    load_digits_model,
)


@pytest.fixture(scope="module")
def model_and_root(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cache")
    epochs: list[int] = []
    model = load_digits_model(root, on_epoch=lambda done, total: epochs.append(done))
    return model, root, epochs


def test_trains_once_then_loads_from_the_cache(model_and_root) -> None:
    model, root, epochs = model_and_root
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 5
    path = root / CACHE_FILE
    stamp = path.stat().st_mtime_ns
    again = load_digits_model(root, on_epoch=lambda d, t: pytest.fail("trained twice"))
    assert path.stat().st_mtime_ns == stamp and again.dataset == "digits"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def _drawn(image8: np.ndarray, scale: int = 35) -> np.ndarray:
    """A digits image as a user would draw it: big, dark ink on white, with a wide margin."""
    big = np.kron(image8 / 16.0, np.ones((scale, scale)))
    canvas = np.zeros((400, 400))
    canvas[60 : 60 + big.shape[0], 90 : 90 + big.shape[1]] = big
    return 1.0 - canvas


def test_drawings_of_test_digits_are_classified(model_and_root) -> None:
    model, _, _ = model_and_root
    bunch = load_digits()
    # the last 50 digits: mostly test-split images; a drawing goes through the canvas mapping
    hits = sum(
        classify_drawing(model, _drawn(img)).digit == label
        for img, label in zip(bunch.images[-50:], bunch.target[-50:], strict=True)
    )
    assert hits >= 40


def test_prediction_has_probabilities_and_conv_feature_maps(model_and_root) -> None:
    model, _, _ = model_and_root
    pred = classify_drawing(model, _drawn(load_digits().images[0]))
    assert len(pred.probabilities) == 10 and abs(sum(pred.probabilities) - 1) < 1e-5
    assert pred.digit == int(np.argmax(pred.probabilities))
    shapes = {name: m.shape for name, m in pred.feature_maps.items()}
    assert shapes == {"c1": (6, 28, 28), "c3": (16, 10, 10), "c5": (120, 1, 1)}


def test_drawing_mapping_keeps_digits_images() -> None:
    """Digits images drawn big and framed map back to themselves (up to the re-centring of a
    narrow digit's box, a fraction of a pixel)."""
    images = load_digits().images[:100]
    corr = [np.corrcoef(drawing_to_digit(_drawn(im)).ravel(), im.ravel())[0, 1] for im in images]
    assert np.median(corr) > 0.99 and np.percentile(corr, 10) > 0.75


def test_png_drawing_and_empty_canvas(tmp_path: Path) -> None:
    white = np.full((50, 50), 255, dtype=np.uint8)
    with pytest.raises(ShapeError, match="empty"):
        drawing_to_digit(white)
    white[10:40, 24:27] = 0  # a "1"
    Image.fromarray(white).save(tmp_path / "one.png")
    digit = drawing_to_digit(np.asarray(Image.open(tmp_path / "one.png")))
    assert digit.shape == (8, 8) and digit[:, 3:5].mean() > 0.5 and digit[:, 0].max() == 0
