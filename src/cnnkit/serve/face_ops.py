"""The face use cases as the routers call them, and their results as JSON-ready dicts.

TEMPORARY: until ``cnnkit.face.usecases`` (enroll, verify_photo, identify_image, detect_faces)
is merged, the four calls below are made here from the pipeline's public functions; afterwards
this module only calls the use cases and serialises their results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnkit.errors import CnnkitError
from cnnkit.face.store import PersonStore

Box = tuple[int, int, int, int]  # (top, right, bottom, left)


def box_json(box: Box) -> dict[str, int]:
    top, right, bottom, left = (int(v) for v in box)
    return {"top": top, "right": right, "bottom": bottom, "left": left}


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[1] - box[3])


@dataclass
class _Found:
    boxes: list[Box]
    embeddings: np.ndarray  # (F, d)


def _faces(image: np.ndarray, encoder: Any) -> _Found:
    from cnnkit.face.pipeline import faces

    found = faces(image, encoder=encoder)
    emb = np.stack([f.embedding for f in found]) if found else np.zeros((0, 128), np.float32)
    return _Found([f.box for f in found], emb)


@dataclass
class EnrollResult:
    photos: int  # the person's photos afterwards
    faces: int  # faces found in the photo
    box: Box
    also_enrolled_as: list[str] = field(default_factory=list)  # same file under other names


def enroll_photo(
    store: PersonStore,
    name: str,
    image: np.ndarray,
    *,
    sha256: str,
    source: str | None,
    largest: bool,
    encoder: Any,
) -> EnrollResult:
    """One-shot enrollment of one photo (the rules of ``cnnkit face enroll``)."""
    found = _faces(image, encoder)
    if not found.boxes:
        raise CnnkitError(
            "no face found in the photo", hint="send a photo where the face is clearly visible"
        )
    if len(found.boxes) > 1 and not largest:
        raise CnnkitError(
            f"{len(found.boxes)} faces found in the photo",
            hint="send a photo of this person alone, or pass ?largest=true",
        )
    i = max(range(len(found.boxes)), key=lambda j: _area(found.boxes[j]))
    store.check_model(encoder.model_id, found.embeddings.shape[1])
    others = [n for n in store.names_with_hash(sha256) if n != name]
    count = store.add(
        name,
        found.embeddings[i : i + 1],
        model_id=encoder.model_id,
        sources=[source],
        sha256s=[sha256],
    )
    return EnrollResult(count, len(found.boxes), found.boxes[i], others)


def verify(
    store: PersonStore, image: np.ndarray, name: str, *, tolerance: float | None, encoder: Any
) -> dict[str, Any]:
    """1:1: is the (largest) face of the photo ``name``?"""
    vectors = store.vectors_of(name)  # NotFoundError first: cheaper than the encoder
    if len(vectors) == 0:
        raise CnnkitError(f"{name!r} has no enrolled photo yet", hint="add a photo first")
    found = _faces(image, encoder)
    if not found.boxes:
        raise CnnkitError(
            "no face found in the photo", hint="send a photo where the face is clearly visible"
        )
    i = max(range(len(found.boxes)), key=lambda j: _area(found.boxes[j]))
    distance = store.distance_to(found.embeddings[i], name)
    tau = store.tolerance(tolerance)
    return {
        "match": bool(distance <= tau),
        "distance": distance,
        "tau": tau,
        "person": name,
        "faces": len(found.boxes),
        "box": box_json(found.boxes[i]),
    }


def identify(
    store: PersonStore, image: np.ndarray, *, tolerance: float | None, k: int, encoder: Any
) -> dict[str, Any]:
    """1:K: every face of the photo, its name or "unknown", and the next-best candidates."""
    found = _faces(image, encoder)
    tau = store.tolerance(tolerance)
    near = store.nearest(found.embeddings, k=k) if found.boxes else []
    faces = []
    for box, matches in zip(found.boxes, near, strict=True):
        best = matches[0]
        known = best.name is not None and best.distance <= tau
        faces.append(
            {
                "box": box_json(box),
                "name": best.name if known else "unknown",
                "distance": None if best.name is None else best.distance,
                "candidates": [
                    {"name": m.name, "distance": m.distance}
                    for m in matches[1 if known else 0 :]
                    if m.name is not None
                ],
            }
        )
    return {"faces": faces, "tau": tau}


def detect(image: np.ndarray) -> dict[str, Any]:
    from cnnkit.face.detection import detect as dlib_detect

    return {"faces": [{"box": box_json(b)} for b in dlib_detect(image)]}
