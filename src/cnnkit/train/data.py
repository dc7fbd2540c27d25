"""Training data: image folders (one subfolder per class) and scikit-learn's shipped digits.

Both sources end up as :class:`ArrayDataset` or :class:`ImageFolderDataset`, which return
``(x, y)`` with ``x`` a float32 tensor of shape (n_C, n_H, n_W) normalised as
``x = (pixel - mean[c]) / std[c]`` and ``y`` the class index.

An image folder is scanned once, up front: every file with an image suffix is opened and decoded,
and the unreadable ones are dropped with ONE warning that counts and lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.errors import CnnkitError, ImageReadError, NotFoundError, shorten
from cnnkit.io import load_image_pil
from cnnkit.io.image import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

#: Mean and standard deviation used for 3-channel images (ImageNet's, so published weights fit).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: For 1-channel images: maps [0, 1] to [-1, 1].
GRAY_MEAN = (0.5,)
GRAY_STD = (0.5,)

#: The fixed digits split: stratified, this fraction held out as the test set, this seed.
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_CLASSES = [str(d) for d in range(10)]


def default_normalisation(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel: ImageNet's for 3 channels, (0.5, 0.5) per channel otherwise."""
    if channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    return GRAY_MEAN * channels, GRAY_STD * channels


# --------------------------------------------------------------------------- image folders


@dataclass
class FolderIndex:
    """The result of scanning an image folder.

    Attributes:
        root: the folder given by the user.
        classes: class names (subfolder names), sorted; the class index is the position here.
        samples: (image path, class index) for every readable image, sorted by path.
        skipped: (path, reason) for every file that has an image suffix but could not be read.
    """

    root: Path
    classes: list[str]
    samples: list[tuple[Path, int]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def targets(self) -> np.ndarray:
        return np.array([y for _, y in self.samples], dtype=np.int64)


def _is_image_name(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def scan_image_folder(root: str | Path, *, validate: bool = True) -> FolderIndex:
    """Find the classes and images of ``root/<class>/**/<image>``.

    With ``validate`` every image is opened and decoded; unreadable ones are skipped and reported
    in one warning (count plus list). Errors are raised for a missing folder, a folder without
    class subfolders holding images, and a single class.
    """
    root = Path(root)
    hint = (
        "give a folder with one subfolder of images per class, e.g. data/cat/*.jpg data/dog/*.jpg"
    )
    if not root.exists():
        raise NotFoundError("no such folder", path=root, hint=hint)
    if not root.is_dir():
        raise CnnkitError("not a folder", path=root, hint=hint)
    class_dirs = sorted(
        (d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    per_class: list[tuple[str, list[Path]]] = []
    for d in class_dirs:
        files = sorted(p for p in d.rglob("*") if _is_image_name(p))
        if files:
            per_class.append((d.name, files))
    if not per_class:
        raise CnnkitError("no class subfolders with images", path=root, hint=hint)
    if len(per_class) == 1:
        raise CnnkitError(
            f"only one class ({per_class[0][0]!r}); a classifier needs at least two",
            path=root,
            hint="add a subfolder of images for each other class",
        )
    classes = [name for name, _ in per_class]
    samples: list[tuple[Path, int]] = []
    skipped: list[tuple[Path, str]] = []
    for label, (_, files) in enumerate(per_class):
        for path in files:
            if validate:
                try:
                    load_image_pil(path)
                except ImageReadError as exc:
                    skipped.append((path, exc.what))
                    continue
            samples.append((path, label))
    if skipped:
        listing = "\n".join(f"  {p}: {why}" for p, why in skipped)
        log.warning("skipped %d unreadable image(s) in %s:\n%s", len(skipped), root, listing)
    if not samples:
        raise CnnkitError("no readable images", path=root, hint="every image failed to decode")
    present = {y for _, y in samples}
    if len(present) < 2:
        raise CnnkitError(
            "readable images in only one class; a classifier needs at least two",
            path=root,
            hint="check the unreadable images listed above",
        )
    return FolderIndex(root=root, classes=classes, samples=samples, skipped=skipped)


def stratified_split(
    targets: Sequence[int] | np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, held-out), ``fraction`` of each class held out, deterministic.

    A class with at least 2 samples keeps at least one on each side. ``fraction=0`` holds nothing.
    """
    if not 0.0 <= fraction < 1.0:
        raise CnnkitError(f"--val-split must be in [0, 1), got {fraction}")
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held: list[int] = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        idx = idx[rng.permutation(len(idx))]
        n_held = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            n_held = min(max(n_held, 1), len(idx) - 1)
        held.extend(idx[:n_held].tolist())
        train.extend(idx[n_held:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(held), dtype=np.int64)


@dataclass(frozen=True)
class ImageTransform:
    """Resize to ``size`` x ``size``, convert to ``channels`` (1 = grayscale, 3 = RGB), normalise.

    Returns a float32 array (n_C, size, size): ``(pixel / 255 - mean[c]) / std[c]``.
    """

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, img: Any) -> np.ndarray:
        from PIL import Image

        img = img.convert("L" if self.channels == 1 else "RGB")
        img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (n_C, n_H, n_W)
        if self.channels not in (1, 3):
            arr = np.repeat(arr[:1], self.channels, axis=0)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return np.ascontiguousarray((arr - mean) / std, dtype=np.float32)

    def load(self, path: str | Path) -> np.ndarray:
        """Read ``path`` (via :func:`cnnkit.io.load_image_pil`) and transform it."""
        return self(load_image_pil(path))


class ImageFolderDataset:
    """A map-style dataset over ``samples``; item ``i`` is (tensor (n_C, n_H, n_W), label)."""

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: ImageTransform):
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        path, label = self.samples[i]
        return torch.from_numpy(self.transform.load(path)), label

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Everything decoded at once: X (N, n_C, n_H, n_W) float32 and y (N,) int64."""
        x = np.stack([self.transform.load(p) for p, _ in self.samples])
        y = np.array([label for _, label in self.samples], dtype=np.int64)
        return x, y


class ArrayDataset:
    """In-memory dataset: X (N, n_C, n_H, n_W) float32, y (N,) int64."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        if len(x) != len(y):
            raise ValueError(f"x and y lengths differ: {len(x)} != {len(y)}")
        self.x = np.ascontiguousarray(x, dtype=np.float32)
        self.y = np.asarray(y, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torch

        return torch.from_numpy(self.x[i]), int(self.y[i])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x, self.y


def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image of x (m, n_C, n_H, n_W) by its own random (dy, dx) in
    [-max_shift, max_shift], filling the uncovered border by repeating the edge pixels.

    Training-time augmentation: the network sees the digit a few pixels off centre, which
    cuts overfitting on small datasets. Returns a new array of the same shape and dtype.
    """
    if max_shift <= 0:
        return x
    m, _, n_h, n_w = x.shape
    s = max_shift
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, m))
    rows = dy[:, None] + np.arange(n_h)[None, :]  # (m, n_H)
    cols = dx[:, None] + np.arange(n_w)[None, :]  # (m, n_W)
    idx = np.arange(m)[:, None, None]
    # (m, n_H, n_W, n_C) after the advanced indexing, back to NCHW
    out = padded.transpose(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------- digits


def _resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) float -> (N, size, size) by bilinear interpolation (half-pixel centres)."""
    n, h, w = images.shape

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    r0, r1, fr = axis(h)
    c0, c1, fc = axis(w)
    rows = images[:, r0, :] * (1 - fr)[None, :, None] + images[:, r1, :] * fr[None, :, None]
    return rows[:, :, c0] * (1 - fc)[None, None, :] + rows[:, :, c1] * fc[None, None, :]


@dataclass
class Digits:
    """scikit-learn's digits (1,797 8x8 images, 0..16), upsampled and split.

    Attributes:
        train, test: datasets of (n_C, size, size) images normalised with ``mean``/``std``.
        classes: "0".."9".
    """

    train: ArrayDataset
    test: ArrayDataset
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def digits_to_input(
    images: np.ndarray, size: int = 32, channels: int = 1, margin: int | None = None
) -> np.ndarray:
    """8x8 digit images in [0, 1] (N, 8, 8) -> network inputs (N, channels, size, size).

    Upsampled bilinearly to ``size - 2 * margin``, framed by ``margin`` pixels of background,
    normalised to ``(x - 0.5) / 0.5``; see :func:`load_digits_split` (which uses this).
    """
    if size < 8:
        raise CnnkitError(f"--image-size for digits must be at least 8, got {size}")
    if margin is None:
        margin = size // 8 if size >= 32 else 0
    inner = size - 2 * margin
    if inner < 8:
        raise CnnkitError(f"digits margin {margin} leaves less than 8x8 of a {size}x{size} image")
    images = np.asarray(images, dtype=np.float32)
    if inner != 8:
        images = _resize_bilinear(images, inner)
    if margin:
        images = np.pad(images, ((0, 0), (margin, margin), (margin, margin)))
    x = (images[:, None] - 0.5) / 0.5  # (N, 1, size, size)
    return np.repeat(x, channels, axis=1) if channels != 1 else x


def load_digits_split(size: int = 32, channels: int = 1, margin: int | None = None) -> Digits:
    """Digits as (N, channels, size, size) float32, split 80/20 (stratified, seed 0).

    Pixels are scaled to [0, 1] (divided by 16) and upsampled bilinearly to ``size - 2 * margin``,
    then framed by ``margin`` pixels of background (as MNIST's 28x28 digits sit inside LeNet-5's
    32x32 input), and normalised to ``(x - 0.5) / 0.5``: background -1, ink up to +1. The default
    margin is ``size // 8`` from 32x32 up (4 for 32x32), else 0 (8x8 stays as shipped).
    The split is scikit-learn's ``train_test_split(test_size=0.2, random_state=0, stratify=y)``:
    1,437 train, 360 test.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = digits_to_input(bunch.images.astype(np.float32) / 16.0, size, channels, margin)
    mean, std = GRAY_MEAN * channels, GRAY_STD * channels
    y = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)),
        test_size=DIGITS_TEST_FRACTION,
        random_state=DIGITS_SPLIT_SEED,
        stratify=y,
    )
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return Digits(
        train=ArrayDataset(x[train_idx], y[train_idx]),
        test=ArrayDataset(x[test_idx], y[test_idx]),
        classes=list(DIGITS_CLASSES),
        mean=mean,
        std=std,
    )


# --------------------------------------------------------------------------- front door


@dataclass
class DataBundle:
    """What the training loop needs: datasets, class names, and how images were prepared."""

    train: Any
    val: Any | None
    classes: list[str]
    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # "digits" or the folder path


def load_data(
    *,
    data: str | Path | None,
    dataset: str | None,
    image_size: int,
    channels: int,
    val_split: float,
    seed: int,
) -> DataBundle:
    """Build the train/validation datasets from ``--data DIR`` or ``--dataset digits``.

    For digits the validation set is the fixed test split (``val_split`` and ``seed`` are not used
    for the split, so every run is compared on the same 360 images).
    """
    if (data is None) == (dataset is None):
        raise CnnkitError("give exactly one of --data DIR or --dataset digits")
    if dataset is not None:
        if dataset != "digits":
            raise NotFoundError(
                f"unknown dataset {shorten(dataset)}", hint="the built-in one is 'digits'"
            )
        d = load_digits_split(image_size, channels)
        return DataBundle(d.train, d.test, d.classes, image_size, channels, d.mean, d.std, "digits")
    index = scan_image_folder(data)  # type: ignore[arg-type]
    mean, std = default_normalisation(channels)
    transform = ImageTransform(image_size, channels, mean, std)
    train_idx, val_idx = stratified_split(index.targets, val_split, seed)
    train = ImageFolderDataset([index.samples[i] for i in train_idx], transform)
    val = (
        ImageFolderDataset([index.samples[i] for i in val_idx], transform) if len(val_idx) else None
    )
    return DataBundle(train, val, index.classes, image_size, channels, mean, std, str(data))
