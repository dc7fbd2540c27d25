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
    narrow digit's box, a fraction of a pixel, and the thickening of thin strokes)."""
    images = load_digits().images[:100]
    corr = [np.corrcoef(drawing_to_digit(_drawn(im)).ravel(), im.ravel())[0, 1] for im in images]
    assert np.median(corr) > 0.9 and np.percentile(corr, 10) > 0.75


def test_png_drawing_and_empty_canvas(tmp_path: Path) -> None:
    white = np.full((50, 50), 255, dtype=np.uint8)
    with pytest.raises(ShapeError, match="empty"):
        drawing_to_digit(white)
    white[10:40, 24:27] = 0  # a "1"
    Image.fromarray(white).save(tmp_path / "one.png")
    digit = drawing_to_digit(np.asarray(Image.open(tmp_path / "one.png")))
    assert digit.shape == (8, 8) and digit[:, 3:5].mean() > 0.5 and digit[:, 0].max() == 0


#: Ten digits as pen strokes on a 280x280 canvas, the way a person draws them with a mouse.
STROKES = {
    0: [[(140, 40), (80, 80), (70, 140), (85, 210), (140, 240), (195, 210), (210, 140),
         (195, 80), (140, 40)]],
    1: [[(120, 70), (150, 40), (150, 240)]],
    2: [[(70, 80), (110, 40), (170, 40), (200, 80), (190, 130), (70, 240), (210, 240)]],
    3: [[(70, 50), (190, 50), (130, 130), (200, 180), (160, 240), (70, 230)]],
    4: [[(160, 40), (60, 170), (210, 170)], [(170, 100), (170, 240)]],
    5: [[(200, 40), (90, 40), (80, 130), (160, 120), (200, 180), (160, 240), (70, 230)]],
    6: [[(180, 40), (90, 120), (80, 200), (130, 240), (190, 200), (180, 150), (90, 160)]],
    7: [[(70, 42), (201, 42), (117, 238)]],
    8: [[(140, 40), (90, 80), (190, 170), (140, 240), (90, 170), (190, 80), (140, 40)]],
    9: [[(190, 100), (140, 50), (90, 80), (100, 130), (190, 100), (170, 240)]],
}  # fmt: skip


def test_pen_drawings_of_any_stroke_width(model_and_root) -> None:
    """Thin or thick pens: strokes are thickened like the digits' own before classifying."""
    from PIL import ImageDraw

    model, _, _ = model_and_root
    hits = 0
    for width in (12, 20, 28, 40):
        for digit, lines in STROKES.items():
            img = Image.new("L", (280, 280), 255)
            pen = ImageDraw.Draw(img)
            for line in lines:
                pen.line(line, fill=0, width=width, joint="curve")
            hits += classify_drawing(model, np.asarray(img)).digit == digit
    assert hits >= 36  # of 40 (39 here; 31 without the thickening)
