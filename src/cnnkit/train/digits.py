"""A hand-drawn digit, classified by LeNet-5 trained on scikit-learn's digits (the web app's
Networks tab).

:func:`load_digits_model` trains LeNet-5 on the digits the first time (a few seconds on a CPU: the
short demo recipe) and caches the checkpoint atomically in the user cache folder
(``$CNNKIT_CACHE_DIR`` or platformdirs' ``user_cache_dir("cnnkit")``, file
``digits/lenet5-digits.pt``); later calls load it. :func:`classify_drawing` maps a drawing of any
size to the digits' format the way their 8x8 images were made (the digit's bounding box, squared,
into a 32x32 bitmap whose 4x4 blocks are counted into 8x8), prepares it exactly as training
did (:func:`cnnkit.train.data.digits_to_input`), and returns the prediction, the 10
probabilities and the feature maps a[l] of each convolutional layer.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import CnnkitError, ShapeError
from cnnkit.train.evaluate import LoadedModel, load_trained

log = logging.getLogger(__name__)

#: The cached model: LeNet-5 on the digits, this many epochs of the digits recipe (~97% test acc).
MODEL, EPOCHS = "lenet5", 12
CACHE_FILE = Path("digits") / "lenet5-digits.pt"
#: Strokes thinner than this (px of the 32x32 bitmap, ink area / skeleton length) are thickened:
#: the digits' pens drew about 1/5 of the digit's height (on ten pen drawings of widths 12-40 px
#: on a 280 px canvas, 39 of 40 are read right with 6 px, 31 of 40 without thickening).
STROKE_PX = 6.0

_lock = threading.Lock()


def cache_dir() -> Path:
    """``$CNNKIT_CACHE_DIR`` if set, else the user cache folder (platformdirs)."""
    env = os.environ.get("CNNKIT_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("cnnkit"))


def load_digits_model(
    root: str | Path | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
) -> LoadedModel:
    """LeNet-5 trained on the digits: from the cache, or trained now and cached.

    Args:
        root: the cache folder (default :func:`cache_dir`).
        on_epoch: ``on_epoch(done, total)`` after each training epoch (first use only).
    """
    path = Path(root or cache_dir()) / CACHE_FILE
    with _lock:  # one training per process; the file itself is replaced atomically
        if not path.exists():
            _train_into(path, on_epoch)
        return load_trained(path, MODEL)


def _train_into(path: Path, on_epoch: Callable[[int, int], None] | None) -> None:
    import torch

    from cnnkit.train import TrainConfig, train

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")

    def callback(event: str, info: dict[str, Any]) -> None:
        if event == "epoch_end" and on_epoch is not None:
            on_epoch(int(info["metrics"]["epoch"]), EPOCHS)

    log.info("training %s on the digits (first use), caching it in %s", MODEL, path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is fastest
    try:
        cfg = TrainConfig(MODEL, dataset="digits", epochs=EPOCHS, out=str(tmp), device="cpu")
        train(cfg, callback)
        os.replace(tmp, path)
    finally:
        torch.set_num_threads(threads)
        tmp.unlink(missing_ok=True)


def drawing_to_digit(drawing: np.ndarray) -> np.ndarray:
    """A drawing (H, W) (ink bright or dark, any size) -> (8, 8) in [0, 1], ink 1, like the
    digits' images / 16: the ink's bounding box, squared and centred, resampled to 32x32 by area,
    thin strokes thickened (:data:`STROKE_PX`), then the mean of each 4x4 block, stretched so
    the darkest block is 1.

    Raises:
        ShapeError: not 2-D, or nothing drawn.
    """
    from PIL import Image, ImageFilter

    a = np.asarray(drawing, dtype=np.float64)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=-1)
    if a.ndim != 2 or min(a.shape) < 1:
        raise ShapeError(f"a drawing must be a 2-D grayscale image, got shape {a.shape}")
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-6:
        raise ShapeError("the drawing is empty", hint="draw a digit first")
    a = (a - lo) / (hi - lo)
    if np.median(a) > 0.5:  # dark ink on a light background
        a = 1.0 - a
    rows, cols = np.nonzero(a > 0.2)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(bottom - top, right - left)
    square = np.zeros((side, side))
    r0, c0 = (side - (bottom - top)) // 2, (side - (right - left)) // 2
    square[r0 : r0 + bottom - top, c0 : c0 + right - left] = a[top:bottom, left:right]
    img = Image.fromarray((square * 255).astype(np.uint8)).resize((32, 32), Image.Resampling.BOX)
    # a stroke thinner than the digits' pens is thickened by 3x3 maximum filters (2 px each)
    from skimage.morphology import skeletonize

    for _ in range(3):
        ink = np.asarray(img) > 127
        length = int(skeletonize(ink).sum())
        if not length or ink.sum() / length >= STROKE_PX:
            break
        img = img.filter(ImageFilter.MaxFilter(3))
    bitmap = np.asarray(img, dtype=np.float64) / 255.0  # (32, 32)
    blocks = bitmap.reshape(8, 4, 8, 4).mean(axis=(1, 3))  # (8, 8)
    return blocks / max(float(blocks.max()), 1e-6)


@dataclass
class DigitPrediction:
    """What LeNet-5 makes of a drawing."""

    digit: int
    probabilities: list[float]  # 10, summing to 1
    digit8: np.ndarray  # (8, 8) the drawing in the digits' format, in [0, 1]
    feature_maps: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (n_C, n_H, n_W)


def classify_drawing(model: LoadedModel, drawing: np.ndarray) -> DigitPrediction:
    """Classify a drawing (see :func:`drawing_to_digit`) with a :func:`load_digits_model` model."""
    import torch

    from cnnkit.models.lenet import PartialConv2d
    from cnnkit.train.data import digits_to_input

    if model.dataset != "digits":
        raise CnnkitError(f"the model was trained on {model.dataset or 'images'}, not the digits")
    digit8 = drawing_to_digit(drawing)
    x = digits_to_input(digit8[None], model.transform.size, model.transform.channels)
    maps: dict[str, np.ndarray] = {}
    hooks = []
    for name, module in model.model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, PartialConv2d)):

            def keep(_m: Any, _i: Any, out: torch.Tensor, name: str = name) -> None:
                maps[name] = out[0].detach().cpu().numpy()

            hooks.append(module.register_forward_hook(keep))
    try:
        with torch.no_grad():
            logits = model.model(torch.from_numpy(np.ascontiguousarray(x)))
    finally:
        for h in hooks:
            h.remove()
    probs = torch.softmax(logits, dim=1)[0].numpy().astype(np.float64)
    return DigitPrediction(int(probs.argmax()), probs.tolist(), digit8, maps)


def example_digit(digit: int) -> np.ndarray:
    """The first of scikit-learn's digits showing ``digit``, (8, 8) in [0, 1] (ink 1)."""
    from sklearn.datasets import load_digits

    if not (isinstance(digit, int) and 0 <= digit <= 9):
        raise ShapeError(f"a digit is 0 to 9, got {digit!r}")
    bunch = load_digits()
    return bunch.images[int(np.argmax(bunch.target == digit))] / 16.0
