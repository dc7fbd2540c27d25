"""The face pipeline end to end: detect -> landmarks -> align -> embed, and distances.

Example:
    >>> from cnnkit import face
    >>> img = face.load_image("photo.jpg")
    >>> found = face.faces(img)                  # list of Face(box, landmarks, chip, embedding)
    >>> face.distance(found[0].embedding, known) # < 0.6: probably the same person
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.errors import ShapeError
from cnnkit.face.alignment import View, align_faces
from cnnkit.face.detection import Box, check_image, detect
from cnnkit.face.encoder import FaceEncoder

_default: FaceEncoder | None = None
_default_lock = threading.Lock()


def default_encoder() -> FaceEncoder:
    """dlib's encoder on the CPU, loaded on first call and kept for the process."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceEncoder.load()
        return _default


def load_encoder(
    model_path: str | Path | None = None, device: str = "cpu", precision: str = "fp32"
) -> FaceEncoder:
    """The default encoder when ``model_path`` is None (and device/precision are defaults),
    else a newly loaded one; what ``--model PATH`` should call."""
    if model_path is None and device == "cpu" and precision == "fp32":
        return default_encoder()
    return FaceEncoder.load(model_path, device=device, precision=precision)


def embed(chips: np.ndarray, encoder: FaceEncoder | None = None) -> np.ndarray:
    """Descriptors of aligned chips: (N, 150, 150, 3) or (150, 150, 3) uint8 -> (N, 128) float32."""
    return (encoder or default_encoder()).embed(chips)


#: A fused descriptor (views embedded by dlib's ResNet and by FaceNet) is
#: ``[sqrt(1 - w) * d, sqrt(w) * s * f]``: d the dlib part (mean over its views), f FaceNet's
#: (L2-normalised), w = FUSION_WEIGHT and s = FACENET_SCALE, dlib's typical same-person
#: distance (0.6) over FaceNet's (1.1), so that both parts count alike and the distance keeps
#: dlib's scale (a tau near 0.6). Chosen a priori (equal weights), measured in docs/face.md.
FUSION_WEIGHT = 0.5
FACENET_SCALE = 0.6 / 1.1
#: FaceNet's crop is embedded without its mirror image, even in a pipeline with ``flip``
#: (which the dlib views keep): on LFW-dev the mirror added nothing to the fused descriptor
#: (rank-1 97.45% with it, 97.51% without; pairs 99.43% / 99.53%) and costs a FaceNet pass,
#: the largest part of a fused descriptor's cost (bench/face_fusion.py).
FACENET_FLIP = False


def embed_chips(
    chips: np.ndarray,
    encoder: FaceEncoder | None = None,
    flip: bool = False,
    views: int | Sequence[View] = 1,
) -> np.ndarray:
    """:func:`embed`, and with ``flip`` the mean of each chip's descriptor and its mirror
    image's: (N, 150, 150, 3) uint8 -> (N, 128) float32. With ``views`` V > 1 (a count, or
    the views themselves), each run of V consecutive chips is one face
    (:func:`cnnkit.face.alignment.align_faces` with V views) and its descriptor the mean over
    them: (N * V, 150, 150, 3) -> (N, 128). When some views are FaceNet's
    (:class:`~cnnkit.face.alignment.View` ``net="facenet"``), the descriptor is fused:
    (N * V, ...) -> (N, 256), see :data:`FUSION_WEIGHT`."""
    enc = encoder or default_encoder()
    n_views = views if isinstance(views, int) else len(views)
    if n_views < 1 or len(chips) % n_views:
        raise ShapeError(f"{len(chips)} chips are not faces of {n_views} views each")
    if not isinstance(views, int) and any(v.net == "facenet" for v in views):
        return _fused(chips, enc, flip, tuple(views))
    return _dlib_part(chips, enc, flip, n_views)


def _dlib_part(chips: np.ndarray, enc: FaceEncoder, flip: bool, views: int) -> np.ndarray:
    if not flip or len(chips) == 0:
        e = enc.embed(chips)
    else:
        both = enc.embed(np.concatenate([chips, np.ascontiguousarray(chips[:, :, ::-1])]))
        n = len(chips)
        e = (both[:n] + both[n:]) / 2.0
    if views > 1:
        e = e.reshape(-1, views, e.shape[-1]).mean(axis=1)
    return e.astype(np.float32)


def _fused(chips: np.ndarray, enc: FaceEncoder, flip: bool, views: tuple[View, ...]) -> np.ndarray:
    """The fused descriptors of faces of these views (see :data:`FUSION_WEIGHT`)."""
    from cnnkit.face.facenet import facenet_for

    per_face = chips.reshape(-1, len(views), *chips.shape[1:])
    mine = [i for i, v in enumerate(views) if v.net == "dlib"]
    theirs = [i for i, v in enumerate(views) if v.net == "facenet"]
    if not mine:
        raise ShapeError("a fused pipeline needs at least one dlib view")
    d = _dlib_part(per_face[:, mine].reshape(-1, *chips.shape[1:]), enc, flip, len(mine))
    crops = per_face[:, theirs].reshape(-1, *chips.shape[1:])
    f = facenet_for(enc).embed(crops, flip and FACENET_FLIP)
    f = f.reshape(len(per_face), len(theirs), -1).mean(axis=1)
    f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    w = FUSION_WEIGHT
    return np.hstack([np.sqrt(1 - w) * d, np.sqrt(w) * FACENET_SCALE * f]).astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Euclidean distance between descriptors; 0.6 is dlib's threshold (lower = stricter).

    (128,) vs (128,) -> float; (N, 128) vs (128,) -> (N,); (N, 128) vs (M, 128) -> (N, M).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1:] != b.shape[-1:]:
        raise ShapeError(
            f"descriptors of different lengths ({a.shape[-1]} vs {b.shape[-1]}): made by "
            "different pipelines, they cannot be compared"
        )
    if a.ndim == 1 and b.ndim == 1:
        return float(np.linalg.norm(a - b))
    if a.ndim == 1 or b.ndim == 1:
        return np.linalg.norm(np.atleast_2d(a) - np.atleast_2d(b), axis=-1)
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T  # (N, M)
    return np.sqrt(np.maximum(d2, 0.0))


@dataclass
class Face:
    """One face found in an image."""

    box: Box  # (top, right, bottom, left) pixels
    landmarks: np.ndarray  # (5, 2) float (x, y)
    chip: np.ndarray  # (150, 150, 3) uint8 aligned chip
    embedding: np.ndarray  # (128,) float32 descriptor


def faces(
    image: np.ndarray,
    upsample: int = 1,
    encoder: FaceEncoder | None = None,
    landmark_upsample: int = 0,
    flip: bool = False,
    detector: str = "hog",
    views: tuple[View, ...] = (View(),),
) -> list[Face]:
    """Every face in an (H, W, 3) uint8 RGB image: detected, aligned and embedded in one batch.

    ``upsample`` is the detector's (see :func:`detect`); ``landmark_upsample`` > 0 gives
    sub-pixel landmarks (see :func:`landmarks`), steadier for small faces; ``flip`` averages
    each descriptor with its mirror image's; ``detector`` is ``"hog"``, ``"cnn"`` or ``"auto"``
    (see :func:`detect`); ``views``: the chips of each face (:class:`cnnkit.face.alignment.View`:
    which landmarks, which padding), the descriptor their mean (``chip`` is the first view's).
    The defaults reproduce dlib's pipeline exactly on images up to 3 Mpx (a larger one is
    searched for faces on a scaled-down copy, its landmarks and chips taken from the full
    image: see :func:`detect`); the use cases (enroll, identify, ...) use
    :data:`cnnkit.face.descriptors.DEFAULT_PIPELINE`.
    """
    image = check_image(image)
    boxes = detect(image, upsample, detector)
    if not boxes:
        return []
    marks, chips = align_faces(image, boxes, landmark_upsample, views)
    v = len(views)
    emb = embed_chips(chips, encoder, flip, views)
    return [Face(b, m, c, e) for b, m, c, e in zip(boxes, marks, chips[::v], emb, strict=True)]
