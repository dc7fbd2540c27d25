"""The face use cases (:mod:`cnnkit.face.usecases`) called for HTTP, their results as JSON.

No face logic lives here: each function calls one use case with the request's gallery (a
:class:`~cnnkit.serve.replica.GalleryStore`) and the batching encoder, and serialises the result
dataclass. Boxes become ``{"top", "right", "bottom", "left"}``; an infinite distance (empty
gallery) becomes null; a face nobody matches within tau is named ``"unknown"``.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

import numpy as np

from cnnkit.face.identification import Threshold, identification_threshold
from cnnkit.face.recognize import NoFaceError, SeveralFacesError
from cnnkit.face.store import PersonStore
from cnnkit.face.usecases import detect_faces, enroll, identify_image, verify_photo
from cnnkit.serve.problems import ApiError

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # (top, right, bottom, left)

#: What an HTTP client does instead of the CLI's flags named in the use cases' hints.
_API_HINTS = {
    NoFaceError: "send a frontal photo where the face is at least 40 px wide, or ?upsample=2",
    SeveralFacesError: "crop the photo, or pass ?largest=true to take the largest face",
}


def box_json(box: Box) -> dict[str, int]:
    top, right, bottom, left = (int(v) for v in box)
    return {"top": top, "right": right, "bottom": bottom, "left": left}


def _distance(d: float) -> float | None:
    return None if not math.isfinite(d) else float(d)


def _api_hint(exc: NoFaceError | SeveralFacesError) -> Exception:
    """The same error with the API's way out instead of the CLI's flag."""
    return type(exc)(exc.what, path=exc.path, hint=_API_HINTS[type(exc)])


def enroll_photo(
    store: PersonStore,
    name: str,
    image: np.ndarray,
    *,
    sha256: str,
    source: str | None,
    largest: bool,
    upsample: int,
    encoder: Any,
    detector: str = "hog",
) -> dict[str, Any]:
    """One-shot enrollment of one uploaded photo (the rules of ``cnnkit face enroll``).

    Raises NoFaceError / SeveralFacesError (422), and 409 when this very file is already
    enrolled for the person.
    """
    try:
        report = enroll(
            store,
            name,
            [image],
            encoder=lambda: encoder,
            largest=largest,
            upsample=upsample,
            detector=detector,
            sources=[source],
            sha256s=[sha256],
        )
    except (NoFaceError, SeveralFacesError) as exc:
        raise _api_hint(exc) from exc
    photo = report.photos[0]
    if not photo.added:
        raise ApiError(
            409,
            "already-enrolled",
            f"{source or 'this photo'}: already enrolled for {name!r} (same file, sha256)",
            hint="send another photo of this person",
        )
    return {
        "faces": photo.faces,
        "box": box_json(photo.box) if photo.box else None,
        "sha256": sha256,
        "also_enrolled_as": list(photo.enrolled_as),
        "min_distance": photo.min_distance,  # to the person's earlier photos
        "far": photo.far,  # farther than tau from every earlier photo: the same person?
        "tau": report.tau,
    }


def verify(
    store: PersonStore,
    image: np.ndarray,
    name: str,
    *,
    tolerance: float | None,
    upsample: int,
    encoder: Any,
    detector: str = "hog",
) -> dict[str, Any]:
    """1:1: is the (largest) face of the photo ``name``?"""
    try:
        v = verify_photo(
            store,
            image,
            name,
            tolerance=tolerance,
            upsample=upsample,
            encoder=lambda: encoder,
            detector=detector,
        )
    except NoFaceError as exc:
        raise _api_hint(exc) from exc
    return {
        "match": bool(v.match),
        "distance": float(v.distance),
        "tau": float(v.tau),
        "person": v.name,
        "faces": v.faces,
        "box": box_json(v.box),
    }


def identify(
    store: PersonStore,
    image: np.ndarray,
    *,
    tolerance: float | None,
    k: int,
    upsample: int,
    encoder: Any,
    detector: str = "hog",
) -> dict[str, Any]:
    """1:K: every face of the photo, its name or "unknown", and the next-best candidates.

    The threshold is ``identify``'s (:func:`identification_threshold`): the gallery's
    identification tau and its score when one is stored; the response says which was used.
    """
    threshold = identification_threshold(store, tolerance, log_warning=False)
    warn_once(threshold, getattr(store, "gallery", None))
    found = identify_image(
        store,
        image,
        k=k,
        upsample=upsample,
        encoder=lambda: encoder,
        detector=detector,
        threshold=threshold,
    )
    faces = []
    for face in found:
        # A named face's candidates are the next-best persons; an unknown face's, the nearest.
        rest = face.candidates[1:] if face.name is not None else face.candidates
        faces.append(
            {
                "box": box_json(face.box),
                "name": face.name if face.name is not None else "unknown",
                "distance": _distance(face.distance),
                "score": None if face.score is None else _distance(face.score),
                "candidates": [
                    {"name": m.name, "distance": _distance(m.distance)}
                    for m in rest
                    if m.name is not None
                ],
            }
        )
    return {"faces": faces, **threshold_json(threshold)}


def threshold_json(threshold: Threshold) -> dict[str, Any]:
    """Which tau identify applies, to what score, where it came from, and any warning."""
    return {
        "tau": float(threshold.tau),
        "tau_source": threshold.source,  # given, identification, pair or default
        "score": threshold.norm,  # none: the distance; tnorm: its T-norm; snorm: S-norm
        "warning": threshold.warning,
    }


_warned: set[tuple[str | None, float, str]] = set()
_warned_lock = threading.Lock()


def warn_once(threshold: Threshold, gallery: str | None) -> None:
    """Log a threshold's warning (the gallery outgrew its identification tau) once per gallery
    and calibration in this process, not on every request."""
    if threshold.warning is None:
        return
    key = (gallery, threshold.tau, threshold.norm)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("gallery %r: %s", gallery, threshold.warning)


def detect(image: np.ndarray, *, upsample: int, detector: str = "hog") -> dict[str, Any]:
    return {"faces": [{"box": box_json(b)} for b in detect_faces(image, upsample, detector)]}
