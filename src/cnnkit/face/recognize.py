"""Verification (1:1) and recognition (1:K) against the person database.

- ``verify(photo, "Ada", db)``: is the face in the photo Ada? True when
  d(f(photo), f(Ada's photo)) <= tau for the closest of Ada's enrolled photos.
- ``identify(photo, db)``: for every face in the photo, the nearest enrolled person, or None
  when nobody is within tau ("not recognized").

tau is ``tolerance`` when given, else the database's calibrated tau, else 0.6 (dlib's threshold).
Inputs are a path, an (H, W, 3) uint8 image, or already-computed descriptors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.errors import CnnkitError
from cnnkit.face.gallery import Gallery

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.pipeline import Face

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (top, right, bottom, left)
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


def box_area(box: Box) -> int:
    top, right, bottom, left = box
    return max(0, bottom - top) * max(0, right - left)


def load(image: ImageLike) -> np.ndarray:
    """A path or an array -> (H, W, 3) uint8 RGB."""
    from cnnkit.face.detection import check_image, load_image

    if isinstance(image, str | Path):
        return load_image(image)
    return check_image(image)


def find_faces(
    image: ImageLike, upsample: int = 1, encoder: FaceEncoder | None = None
) -> list[Face]:
    """Every face in an image: detected, aligned and embedded (see :func:`cnnkit.face.faces`)."""
    from cnnkit.face.pipeline import faces

    return faces(load(image), upsample=upsample, encoder=_encoder(encoder))


def one_face(
    image: ImageLike,
    upsample: int = 1,
    encoder: FaceEncoder | None = None,
    largest: bool = False,
) -> Face:
    """The single face of a photo; with ``largest``, the largest of several.

    Raises:
        NoFaceError: no face found.
        SeveralFacesError: several faces and ``largest`` is False.
    """
    path = image if isinstance(image, str | Path) else None
    found = find_faces(image, upsample, encoder)
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
            gallery.check_model(enc.model_id, enc.dim)
            query = one_face(image_or_embedding, upsample, enc, largest=True).embedding
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
            gallery.check_model(enc.model_id, enc.dim)
            found = find_faces(image_or_embeddings, upsample, enc)
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


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- many images: detection in worker processes, embedding in batches ----------------------
@dataclass
class Detected:
    """The faces of one image, before embedding."""

    path: Path
    boxes: list[Box]
    chips: np.ndarray  # (n, 150, 150, 3) uint8
    error: str | None = None  # the one-line message when the image could not be read


def detect_and_align(path: str | Path, upsample: int = 1) -> Detected:
    """Read one image, find its faces and align them; errors are captured, not raised."""
    from cnnkit.face.alignment import align
    from cnnkit.face.detection import detect, landmarks, load_image

    path = Path(path)
    try:
        image = load_image(path)
        boxes = detect(image, upsample)
        chips = [align(image, landmarks(image, b)) for b in boxes]
    except (CnnkitError, OSError) as exc:  # OSError: a read failing below the loader's checks
        message = exc.message if isinstance(exc, CnnkitError) else f"{path}: {exc}"
        return Detected(path, [], np.zeros((0, 150, 150, 3), np.uint8), message)
    stack = np.stack(chips) if chips else np.zeros((0, 150, 150, 3), np.uint8)
    return Detected(path, list(boxes), stack)


def _detect_star(args: tuple[str, int]) -> Detected:
    return detect_and_align(*args)


def detect_many(paths: Sequence[Path], upsample: int = 1, cpus: int = 1) -> Iterator[Detected]:
    """:func:`detect_and_align` over many images, in order; ``cpus`` > 1 uses worker processes."""
    if cpus <= 1 or len(paths) < 2:
        for p in paths:
            yield detect_and_align(p, upsample)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(min(cpus, len(paths))) as pool:
        yield from pool.imap(_detect_star, [(str(p), upsample) for p in paths], chunksize=2)


def identify_many(
    paths: Sequence[Path],
    gallery: Gallery,
    encoder: FaceEncoder,
    tolerance: float | None = None,
    upsample: int = 1,
    batch_size: int = 32,
    cpus: int = 1,
) -> Iterator[tuple[Path, Box | None, str | None, float, str | None]]:
    """(file, box, name or None, distance, error) for every face of every image, in file order.

    Faces are embedded ``batch_size`` at a time; an unreadable image yields one row with its
    error message and no box.
    """
    gallery.check_model(encoder.model_id, encoder.dim)
    tau = gallery.tolerance(tolerance)
    pending: list[Detected] = []

    def flush() -> Iterator[tuple[Path, Box | None, str | None, float, str | None]]:
        chips = [d.chips for d in pending if len(d.chips)]
        if chips:
            emb = encoder.embed(np.concatenate(chips))
            matches = iter(gallery.search(emb))
        else:
            matches = iter([])
        for d in pending:
            if d.error is not None:
                yield d.path, None, None, float("nan"), d.error
            for box in d.boxes:
                m = next(matches)
                yield d.path, box, (m.name if m.distance <= tau else None), m.distance, None
        pending.clear()

    n_chips = 0
    for detected in detect_many(paths, upsample, cpus):
        pending.append(detected)
        n_chips += len(detected.chips)
        if n_chips >= batch_size:
            yield from flush()
            n_chips = 0
    yield from flush()


# -- pairs: one descriptor per image, with a fallback when no face is found -----------------
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
    flip: bool = False,
    stats: PairStats | None = None,
) -> Callable[[list[Path]], np.ndarray]:
    """Return paths -> (n, 128) descriptors, one per image, for pairs benchmarks (LFW).

    Policy: the detected face nearest the image centre; when HOG finds none, it tries once more
    with one more upsampling; when it still finds none, the 5 landmarks are predicted inside
    :func:`centre_box` and the chip aligned from them (LFW images are centred on the person).
    With ``flip``, each descriptor is the mean of the chip's and its
    mirror image's.
    """
    from cnnkit.face.alignment import align
    from cnnkit.face.detection import detect, landmarks, load_image

    stats = stats if stats is not None else PairStats()

    def embed_images(paths: list[Path]) -> np.ndarray:
        chips = []
        for p in paths:
            image = load_image(p)
            boxes = detect(image, upsample)
            stats.images += 1
            if not boxes:
                boxes = detect(image, upsample + 1)
                stats.retried += bool(boxes)
            if not boxes:
                stats.fallback += 1
                box = centre_box(image.shape)
            else:
                stats.several += len(boxes) > 1
                box = pick_centred(boxes, image.shape)
            chips.append(align(image, landmarks(image, box)))
        batch = np.stack(chips)
        emb = encoder.embed(batch)
        if flip:
            emb = (emb + encoder.embed(np.ascontiguousarray(batch[:, :, ::-1]))) / 2.0
        return emb

    return embed_images
