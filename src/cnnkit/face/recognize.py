"""Verification (1:1) and recognition (1:K) against the person database.

- ``verify(photo, "Ada", db)``: is the face in the photo Ada? True when
  d(f(photo), f(Ada's photo)) <= tau for the closest of Ada's enrolled photos.
- ``identify(photo, db)``: for every face in the photo, the nearest enrolled person, or None
  when nobody is within tau ("not recognized").

tau is ``tolerance`` when given, else the database's calibrated tau, else 0.6 (dlib's threshold).
Inputs are a path, an (H, W, 3) uint8 image, or already-computed descriptors.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.errors import CnnkitError
from cnnkit.face.descriptors import checked_pipeline
from cnnkit.face.detection import Box, box_area
from cnnkit.face.gallery import Gallery

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.pipeline import Face

log = logging.getLogger(__name__)

ImageLike = str | Path | np.ndarray


class NoFaceError(CnnkitError):
    """No face found where one was needed."""


class SeveralFacesError(CnnkitError):
    """Several faces where exactly one was needed."""


def _open(db: Gallery | str | Path | None) -> tuple[Gallery, bool]:
    if isinstance(db, Gallery):
        return db, False
    return Gallery(db, create=False), True


def _is_embedding(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.ndim in (1, 2)


def _encoder(encoder: FaceEncoder | None) -> FaceEncoder:
    if encoder is not None:
        return encoder
    from cnnkit.face.pipeline import default_encoder

    return default_encoder()


def _path(image: ImageLike) -> Path | None:
    return Path(image) if isinstance(image, str | Path) else None


def load(image: ImageLike) -> np.ndarray:
    """A path or an array -> (H, W, 3) uint8 RGB."""
    from cnnkit.face.detection import check_image, load_image

    if isinstance(image, str | Path):
        return load_image(image)
    return check_image(image)


def find_faces(
    image: ImageLike,
    upsample: int = 1,
    encoder: FaceEncoder | None = None,
    pipeline: str | None = None,
    detector: str = "hog",
) -> list[Face]:
    """Every face in an image: detected (``detector``: hog, cnn or auto), aligned and embedded
    (see :func:`cnnkit.face.faces`) with the descriptor ``pipeline`` (None: the default; see
    :mod:`cnnkit.face.descriptors`)."""
    from cnnkit.face.descriptors import get_pipeline
    from cnnkit.face.pipeline import faces

    p = get_pipeline(pipeline)
    return faces(
        load(image),
        upsample=upsample,
        encoder=_encoder(encoder),
        landmark_upsample=p.landmark_upsample,
        flip=p.flip,
        detector=detector,
        views=p.views,
    )


def one_face(
    image: ImageLike,
    upsample: int = 1,
    encoder: FaceEncoder | None = None,
    largest: bool = False,
    detector: str = "hog",
    pipeline: str | None = None,
) -> Face:
    """The single face of a photo; with ``largest``, the largest of several (``detector`` and
    ``pipeline`` as in :func:`find_faces`).

    Raises:
        NoFaceError: no face found.
        SeveralFacesError: several faces and ``largest`` is False.
    """
    path = image if isinstance(image, str | Path) else None
    return pick_face(find_faces(image, upsample, encoder, pipeline, detector), path, largest)


def pick_face(found: list[Face], path: str | Path | None = None, largest: bool = False) -> Face:
    """The one face of ``found`` (with ``largest``, the largest of several), or the error that
    says why there is none: the one copy of the no-face / several-faces rule.

    Raises:
        NoFaceError: no face found.
        SeveralFacesError: several faces and ``largest`` is False.
    """
    if not found:
        raise NoFaceError(
            "no face found",
            path=path,
            hint="use a frontal photo where the face is at least 40 px wide, or raise --upsample",
        )
    if len(found) > 1 and not largest:
        raise SeveralFacesError(
            f"{len(found)} faces found, expected one",
            path=path,
            hint="crop the photo, or pass --largest to take the largest face",
        )
    return max(found, key=lambda f: box_area(f.box))


def verify(
    image_or_embedding: ImageLike,
    name: str,
    db: Gallery | str | Path | None = None,
    tolerance: float | None = None,
    *,
    encoder: FaceEncoder | None = None,
    upsample: int = 1,
    detector: str = "hog",
) -> tuple[bool, float]:
    """Is this face ``name``? Returns (match, distance to name's closest enrolled photo).

    Args:
        image_or_embedding: a path, an (H, W, 3) uint8 image (its largest face is used) or a
            (128,) float descriptor.
        name: an enrolled person.
        db: a :class:`Gallery` or its path (None: the default database).
        tolerance: tau; None uses the database's calibrated tau, else 0.6. Lower is stricter.

    Raises:
        NotFoundError: unknown name. NoFaceError: no face in the image. DatabaseError: a
        database of another encoder.
    """
    gallery, owned = _open(db)
    try:
        gallery.vectors_of(name)  # unknown name fails before any image work
        if _is_embedding(image_or_embedding):
            query = np.asarray(image_or_embedding, dtype=np.float32).reshape(-1)
        else:
            enc = _encoder(encoder)
            pipeline = checked_pipeline(gallery, enc)
            found = find_faces(image_or_embedding, upsample, enc, pipeline, detector)
            query = pick_face(found, _path(image_or_embedding), largest=True).embedding
        d = gallery.distance_to(query, name)
        return d <= gallery.tolerance(tolerance), d
    finally:
        if owned:
            gallery.close()


def identify(
    image_or_embeddings: ImageLike,
    db: Gallery | str | Path | None = None,
    tolerance: float | None = None,
    *,
    encoder: FaceEncoder | None = None,
    upsample: int = 1,
    detector: str = "hog",
) -> list[tuple[Box | None, str | None, float]]:
    """Who is in this photo? One (box, name or None, distance) per face.

    ``name`` is None when no enrolled person is within tau. For descriptors (n, 128) (or one
    (128,)) instead of an image, boxes are None.
    """
    gallery, owned = _open(db)
    try:
        tau = gallery.tolerance(tolerance)
        boxes: list[Box | None]
        if _is_embedding(image_or_embeddings):
            q = np.asarray(image_or_embeddings, dtype=np.float32)
            q = q[None] if q.ndim == 1 else q
            boxes = [None] * len(q)
        else:
            enc = _encoder(encoder)
            pipeline = checked_pipeline(gallery, enc)
            found = find_faces(image_or_embeddings, upsample, enc, pipeline, detector)
            if not found:
                return []
            q = np.stack([f.embedding for f in found])
            boxes = [f.box for f in found]
        matches = gallery.search(q)
        return [
            (box, m.name if m.distance <= tau else None, m.distance)
            for box, m in zip(boxes, matches, strict=True)
        ]
    finally:
        if owned:
            gallery.close()
