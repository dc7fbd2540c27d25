"""Fixtures for the training tests: a tiny generated image folder of coloured shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


#: Each class has its own hue (red circles, green squares, blue triangles), jittered per image.
HUES = {"circle": (230, 40, 40), "square": (40, 220, 40), "triangle": (40, 40, 230)}


def draw_shape(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """A ``kind`` in its class hue on a random dark background, at a random place and size."""
    background = tuple(int(v) for v in rng.integers(0, 50, 3))
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    hue = HUES.get(kind, (200, 200, 200))
    color = tuple(int(np.clip(v + rng.integers(-25, 26), 0, 255)) for v in hue)
    r = int(rng.integers(8, 12))
    cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif kind == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    return img


def make_shapes(root: Path, classes=SHAPES, per_class: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for kind in classes:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            draw_shape(kind, rng).save(folder / f"{kind}{i:02d}.png")
    return root


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 12 PNGs of 32x32 shapes, plus two unreadable files posing as images."""
    root = make_shapes(tmp_path_factory.mktemp("shapes"))
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "square" / "empty.jpg").write_bytes(b"")
    return root


@pytest.fixture(scope="session")
def trained_ckpt(tmp_path_factory: pytest.TempPathFactory, shapes_dir: Path) -> Path:
    """A lenet5_modern checkpoint trained for a few epochs on the shapes (shared by tests)."""
    from cnnkit.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "shapes.pt"
    train(
        TrainConfig(
            "lenet5_modern",
            data=str(shapes_dir),
            epochs=6,
            batch_size=4,
            lr=3e-3,
            out=str(out),
            device="cpu",
            val_split=0.25,
        )
    )
    return out
