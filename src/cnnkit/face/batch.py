"""Many images at once: detection and alignment in worker processes, embedding in batches.

:func:`identify_many` is what ``cnnkit face identify DIR`` runs: images are read, detected and
aligned (optionally in ``cpus`` spawned processes), then the chips of several images are embedded
together, ``batch_size`` at a time, and searched in the person store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.errors import CnnkitError
from cnnkit.face.descriptors import Pipeline, get_pipeline
from cnnkit.face.detection import Box

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.identification import Threshold
    from cnnkit.face.store import PersonStore


@dataclass
class Detected:
    """The faces of one image, before embedding."""

    path: Path
    boxes: list[Box]
    chips: np.ndarray  # (n * V, 150, 150, 3) uint8: V = len(views) chips per face
    error: str | None = None  # the one-line message when the image could not be read


def detect_and_align(
    path: str | Path,
    upsample: int = 1,
    detector: str = "hog",
    pipeline: Pipeline | str = "dlib",
) -> Detected:
    """Read one image, find its faces (``detector``: hog, cnn or auto) and align them for
    ``pipeline`` (its landmarks and views; a name or a
    :class:`~cnnkit.face.descriptors.Pipeline`); errors are captured, not raised."""
    from cnnkit.face.alignment import align_faces
    from cnnkit.face.detection import detect, load_image

    p = get_pipeline(pipeline)
    path = Path(path)
    try:
        image = load_image(path)
        boxes = detect(image, upsample, detector)
        _, chips = align_faces(image, boxes, p.landmark_upsample, p.views)
    except (CnnkitError, OSError) as exc:  # OSError: a read failing below the loader's checks
        message = exc.message if isinstance(exc, CnnkitError) else f"{path}: {exc}"
        return Detected(path, [], np.zeros((0, 150, 150, 3), np.uint8), message)
    return Detected(path, list(boxes), chips)


def _detect_star(args: tuple[str, int, str, Pipeline]) -> Detected:
    return detect_and_align(*args)


def detect_many(
    paths: Sequence[Path],
    upsample: int = 1,
    cpus: int = 1,
    detector: str = "hog",
    pipeline: Pipeline | str = "dlib",
) -> Iterator[Detected]:
    """:func:`detect_and_align` over many images, in order; ``cpus`` > 1 uses worker processes."""
    p = get_pipeline(pipeline)
    if cpus <= 1 or len(paths) < 2:
        for path in paths:
            yield detect_and_align(path, upsample, detector, p)
        return
    import multiprocessing as mp

    jobs = [(str(path), upsample, detector, p) for path in paths]
    with mp.get_context("spawn").Pool(min(cpus, len(paths))) as pool:
        yield from pool.imap(_detect_star, jobs, chunksize=2)


def identify_many(
    paths: Sequence[Path],
    gallery: PersonStore,
    encoder: FaceEncoder,
    tolerance: float | None = None,
    upsample: int = 1,
    batch_size: int = 32,
    cpus: int = 1,
    threshold: Threshold | None = None,
    detector: str = "hog",
) -> Iterator[tuple[Path, Box | None, str | None, float, str | None]]:
    """(file, box, name or None, distance, error) for every face of every image, in file order.

    Faces are embedded ``batch_size`` at a time, with the store's descriptor pipeline; tau is
    :func:`cnnkit.face.identification_threshold`'s (or ``threshold``). An unreadable image
    yields one row with its error message and no box.
    """
    from cnnkit.face.descriptors import checked_pipeline
    from cnnkit.face.identification import identification_threshold, named_distance
    from cnnkit.face.pipeline import embed_chips

    pipeline = get_pipeline(checked_pipeline(gallery, encoder))
    threshold = threshold or identification_threshold(gallery, tolerance)
    pending: list[Detected] = []

    def flush() -> Iterator[tuple[Path, Box | None, str | None, float, str | None]]:
        chips = [d.chips for d in pending if len(d.chips)]
        if chips:
            emb = embed_chips(np.concatenate(chips), encoder, pipeline.flip, pipeline.views)
            matches = iter(gallery.nearest(emb, threshold.k))
        else:
            matches = iter([])
        for d in pending:
            if d.error is not None:
                yield d.path, None, None, float("nan"), d.error
            for box in d.boxes:
                near = next(matches)
                name, _ = threshold.decide(near, gallery)
                yield d.path, box, name, named_distance(near, name), None
        pending.clear()

    n_chips = 0
    for detected in detect_many(paths, upsample, cpus, detector, pipeline):
        pending.append(detected)
        n_chips += len(detected.boxes)
        if n_chips >= batch_size:
            yield from flush()
            n_chips = 0
    yield from flush()
