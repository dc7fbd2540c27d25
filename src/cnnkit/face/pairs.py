"""The LFW pairs policy: one descriptor per image, with a fallback when no face is found.

LFW images are 250x250 and centred on the person, so the face to use is the detected one nearest
the centre; when HOG finds none even with one more upsampling, the landmarks are predicted in a
centred box (:func:`centre_box`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.face.descriptors import Pipeline, get_pipeline
from cnnkit.face.detection import Box, box_area

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder


def centre_box(shape: tuple[int, ...], fraction: float = 0.42) -> Box:
    """A centred square box of side ``fraction * min(H, W)``: where LFW puts the face."""
    h, w = shape[:2]
    side = fraction * min(h, w)
    top, left = int(round((h - side) / 2)), int(round((w - side) / 2))
    return (top, int(round(left + side)), int(round(top + side)), left)


def pick_centred(boxes: Sequence[Box], shape: tuple[int, ...]) -> Box:
    """The box whose centre is nearest the image centre (ties: the larger box)."""
    h, w = shape[:2]

    def key(b: Box) -> tuple[float, int]:
        cy, cx = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        return ((cy - h / 2) ** 2 + (cx - w / 2) ** 2, -box_area(b))

    return min(boxes, key=key)


@dataclass
class PairStats:
    """How the pair images were handled."""

    images: int = 0
    several: int = 0  # images with several faces (the centred one was used)
    retried: int = 0  # images whose face was found only with one more upsampling
    fallback: int = 0  # images with no face found (landmarks in the centre box)


def pair_embedder(
    encoder: FaceEncoder,
    upsample: int = 1,
    stats: PairStats | None = None,
    detector: str = "hog",
    pipeline: Pipeline | str = "dlib",
) -> Callable[[list[Path]], np.ndarray]:
    """Return paths -> (n, d) descriptors, one per image, for pairs benchmarks (LFW).

    Policy: the detected face nearest the image centre; when HOG finds none, it tries once more
    with one more upsampling; when it still finds none, the 5 landmarks are predicted inside
    :func:`centre_box` and the chip aligned from them (LFW images are centred on the person).
    ``pipeline``: how a face becomes a descriptor (a :class:`~cnnkit.face.descriptors.Pipeline`
    or its name; ``dlib``, the default here, is dlib's own); ``detector``: hog, cnn or auto
    (see :func:`cnnkit.face.detect`).
    """
    from cnnkit.face.alignment import align_faces
    from cnnkit.face.detection import detect, load_image
    from cnnkit.face.pipeline import embed_chips

    stats = stats if stats is not None else PairStats()
    pipe = get_pipeline(pipeline)

    def embed_images(paths: list[Path]) -> np.ndarray:
        chips = []
        for p in paths:
            image = load_image(p)
            boxes = detect(image, upsample, detector)
            stats.images += 1
            if not boxes:
                boxes = detect(image, upsample + 1, detector)
                stats.retried += bool(boxes)
            if not boxes:
                stats.fallback += 1
                box = centre_box(image.shape)
            else:
                stats.several += len(boxes) > 1
                box = pick_centred(boxes, image.shape)
            chips.append(align_faces(image, [box], pipe.landmark_upsample, pipe.views)[1])
        return embed_chips(np.concatenate(chips), encoder, pipe.flip, pipe.views)

    return embed_images
