"""How descriptors are made: the named pipelines, and the default (imports neither torch nor dlib).

A pipeline is what happens between a detected box and the descriptor f(chip) (128-d; 256-d fused):

- ``landmark_upsample`` k: the 5 landmarks are predicted on the face region enlarged 2**k times
  (k = 0: dlib's integer points; 1: sub-pixel points, see :func:`cnnkit.face.landmarks`);
- ``flip``: the descriptor is the mean of f(chip) and f(mirrored chip) (not renormalised);
- ``views``: the chips of each face (:class:`cnnkit.face.alignment.View`): aligned from the
  5-point landmarks or from dlib's 68-point ones, at a template padding (dlib's is 0.25; 0.2 /
  0.3 make the face a little larger / smaller in the chip); the descriptor is the mean over
  them (and their mirrors, with ``flip``).

Names: ``dlib`` (k = 0, no flip: dlib's own pipeline, byte-identical chips), ``flip``,
``subpixel``, ``subpixel+flip`` (99.10% on LFW-dev pairs against dlib's 98.80%),
``subpixel+flip+pad`` (paddings 0.25, 0.2 and 0.3: 6 encoder passes; an option) and
``subpixel+flip+68``: the ``subpixel+flip`` chip and a chip aligned from dlib's
68-point landmarks (two predictors' estimates of the same alignment), each with its mirror:
4 encoder passes. On LFW-dev (the default ``auto`` detector) it scores 99.27% on pairs and
open-set rank-1 94.55% against 93.74% (``subpixel+flip``) and 92.00% (dlib), at about 0.66x
``subpixel+flip``'s descriptors/s (docs/face.md, "The descriptor pipeline").
``subpixel+flip+68+facenet``, the default: that descriptor and FaceNet's
(:mod:`cnnkit.face.facenet`, a second network, of an upright crop of the face) side by side,
256 numbers (:func:`cnnkit.face.embed_chips`): pairs 99.53%, rank-1 97.51%, at about 0.5x the
descriptors/s of ``subpixel+flip+68`` (docs/face.md, "A second descriptor model").

A person database records the pipeline of its descriptors (meta key ``pipeline``; the service's
galleries too, :mod:`cnnkit.serve.storage.base`); a database from before that key holds ``dlib``
descriptors (:data:`LEGACY_PIPELINE`), and queries against it
use that pipeline, since descriptors of two pipelines are not comparable at the same tau.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnkit.errors import CnnkitError
from cnnkit.face.alignment import View


@dataclass(frozen=True)
class Pipeline:
    """One way of making descriptors (see the module doc)."""

    name: str
    landmark_upsample: int
    flip: bool
    #: the chips averaged (which landmarks, which template padding; the first one's chip is
    #: the face's ``chip``)
    views: tuple[View, ...] = (View(),)

    @property
    def fused(self) -> bool:
        """Whether FaceNet embeds some views (:mod:`cnnkit.face.facenet`): then a descriptor is
        the dlib part and the FaceNet part side by side (:func:`cnnkit.face.embed_chips`)."""
        return any(v.net == "facenet" for v in self.views)

    def dim(self, encoder_dim: int) -> int:
        """Descriptor length with an encoder of ``encoder_dim`` (128 for dlib's)."""
        return encoder_dim + (FACENET_DIM if self.fused else 0)


#: FaceNet's descriptor length (the second half of a fused descriptor)
FACENET_DIM = 128
#: FaceNet's view: the HOG-style box of the 5 landmarks with 0.15 of its side added each side
FACENET_VIEW = View(0.15, net="facenet")

PIPELINES = {
    p.name: p
    for p in (
        Pipeline("dlib", 0, False),
        Pipeline("flip", 0, True),
        Pipeline("subpixel", 1, False),
        Pipeline("subpixel+flip", 1, True),
        Pipeline("subpixel+flip+pad", 1, True, (View(0.25), View(0.2), View(0.3))),
        Pipeline("subpixel+flip+68", 1, True, (View(0.25), View(0.25, points=68))),
        Pipeline(
            "subpixel+flip+68+facenet",
            1,
            True,
            (View(0.25), View(0.25, points=68), FACENET_VIEW),
        ),
    )
}
#: What new databases, calibrate, evaluate and the server use.
DEFAULT_PIPELINE = "subpixel+flip+68+facenet"
#: What a database without a ``pipeline`` meta key was made with.
LEGACY_PIPELINE = "dlib"


def get_pipeline(name: str | Pipeline | None) -> Pipeline:
    """The named pipeline (None: the default; a Pipeline: itself); CnnkitError for an unknown
    name."""
    if isinstance(name, Pipeline):
        return name
    key = DEFAULT_PIPELINE if name is None else name
    try:
        return PIPELINES[key]
    except KeyError:
        raise CnnkitError(
            f"unknown descriptor pipeline {key!r}", hint=f"use one of {', '.join(PIPELINES)}"
        ) from None


def with_flip(name: str | None, flip: bool) -> str:
    """``name`` (None: the default) with flip averaging added when ``flip``."""
    p = get_pipeline(name)
    if not flip or p.flip:
        return p.name
    return next(
        q.name
        for q in PIPELINES.values()
        if q.landmark_upsample == p.landmark_upsample and q.views == p.views and q.flip
    )


def descriptor_dim(pipeline: str | None, encoder_dim: int) -> int:
    """Length of the named pipeline's descriptors (None: the default's)."""
    return get_pipeline(pipeline).dim(encoder_dim)


def store_pipeline(store: object) -> str:
    """The pipeline to use with a person store: the one its descriptors were made with, else
    (an empty store, or a store that records none) the default."""
    value = getattr(store, "pipeline", None)
    return value if isinstance(value, str) else DEFAULT_PIPELINE


def checked_pipeline(store: Any, encoder: Any, pipeline: str | None = None) -> str:
    """``pipeline``, else the store's (:func:`store_pipeline`), after ``store.check_model``: the
    store must hold ``encoder``'s descriptors of that pipeline's length (DatabaseError)."""
    name = pipeline or store_pipeline(store)
    store.check_model(encoder.model_id, descriptor_dim(name, encoder.dim))
    return name
