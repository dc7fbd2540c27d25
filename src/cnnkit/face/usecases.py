"""The face use cases: what the CLI and the HTTP service call, returning dataclasses.

Each function takes plain inputs (an (H, W, 3) uint8 RGB image or a path, a name, a
:class:`~cnnkit.face.store.PersonStore`) and returns a result object; neither adapter holds face
logic. ``encoder`` is a :class:`~cnnkit.face.encoder.FaceEncoder`, a zero-argument callable that
loads one (so bad input fails before the model loads), or None for dlib's default encoder.

Example::

    from cnnkit.face import Gallery, enroll, identify_image, verify_photo

    with Gallery("faces.sqlite3") as db:
        report = enroll(db, "Ada", ["ada1.jpg", "ada2.jpg"])
        print(report.total, [p.min_distance for p in report.photos])
        print(verify_photo(db, "door.jpg", "Ada"))          # Verification(match=True, ...)
        for face in identify_image(db, "party.jpg"):        # FaceMatch(box, name, distance, ...)
            print(face.box, face.name or "unknown", face.distance)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from cnnkit.errors import NotFoundError
from cnnkit.face.descriptors import checked_pipeline, descriptor_dim
from cnnkit.face.detection import Box
from cnnkit.face.detectors import DEFAULT_DETECTOR
from cnnkit.face.recognize import find_faces, load, pick_face
from cnnkit.face.store import Match, PersonStore

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.evaluate import Evaluation
    from cnnkit.face.identification import Threshold
    from cnnkit.face.pairs import PairStats

log = logging.getLogger(__name__)

ImageInput = str | Path | np.ndarray


def _encoder(encoder: FaceEncoder | Callable[[], FaceEncoder] | None) -> FaceEncoder:
    from cnnkit.face.encoder import FaceEncoder

    if encoder is None:
        from cnnkit.face.pipeline import default_encoder

        return default_encoder()
    if isinstance(encoder, FaceEncoder):
        return encoder
    return encoder()


def _path_of(image: ImageInput) -> Path | None:
    return Path(image) if isinstance(image, str | Path) else None


# -- enroll ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoReport:
    """What happened to one photo given to :func:`enroll`."""

    source: str | None  # the file name (None for an array without ``sources``)
    faces: int  # faces found in the photo
    added: bool  # a descriptor was stored
    reason: str | None = None  # why not: "no face", "several faces", "already enrolled"
    box: Box | None = None  # the face used (the largest when several)
    sha256: str | None = None  # of the file's bytes (None for an array without ``sha256s``)
    enrolled_as: tuple[str, ...] = ()  # other persons who already have a photo with this hash
    min_distance: float | None = None  # to the person's earlier photos (None: the first photo)
    mean_distance: float | None = None
    far: bool = False  # min_distance > tau: is it the same person?


@dataclass(frozen=True)
class EnrollReport:
    """The outcome of :func:`enroll`: one :class:`PhotoReport` per photo, in order."""

    name: str
    photos: list[PhotoReport]
    added: int  # descriptors stored by this call
    total: int  # descriptors the person has afterwards
    tau: float  # the tolerance the distance report was judged with


def enroll(
    store: PersonStore,
    name: str,
    images: Sequence[ImageInput],
    *,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    largest: bool = False,
    strict: bool = True,
    upsample: int = 1,
    detector: str = DEFAULT_DETECTOR,
    tolerance: float | None = None,
    sources: Sequence[str | None] | None = None,
    sha256s: Sequence[str | None] | None = None,
    pipeline: str | None = None,
) -> EnrollReport:
    """Enroll photos of ``name`` (created if new) in one transaction.

    Every photo is checked before anything is written. A photo must show one face (with
    ``largest``, the largest of several is taken). With ``strict`` (the CLI), a photo without a
    face or with several raises and nothing is stored; otherwise it is reported and skipped. A
    file already enrolled for ``name`` (same SHA-256) is skipped; one enrolled for other persons
    is stored, and the report names them (``enrolled_as``) so the caller can warn.

    Args:
        images: paths or (H, W, 3) uint8 RGB arrays.
        sources, sha256s: per image, the file name and its SHA-256 (default: from the path;
            None for arrays), e.g. for uploads.
        pipeline: how descriptors are made (:mod:`cnnkit.face.descriptors`); None: the
            store's, else the default. A store that recorded another one refuses it.

    Raises:
        NoFaceError, SeveralFacesError (``strict``), ImageReadError, DatabaseError (another
        encoder's store), CnnkitError (bad name).
    """
    from cnnkit.face.gallery import check_name
    from cnnkit.io import file_sha256

    name = check_name(name)
    n = len(images)
    if sources is not None and len(sources) != n or sha256s is not None and len(sha256s) != n:
        raise ValueError(f"{n} images but sources/sha256s of another length")
    enc = _encoder(encoder)
    chosen = checked_pipeline(store, enc, pipeline)
    recorded = getattr(store, "pipeline", None)
    if pipeline is not None and isinstance(recorded, str) and recorded != pipeline:
        from cnnkit.errors import DatabaseError

        raise DatabaseError(
            f"holds descriptors made with pipeline {recorded!r}, not {pipeline!r}",
            path=getattr(store, "path", None),
            hint=f"leave out --pipeline, or enroll everyone in a new --db for {pipeline!r}",
        )
    pipeline = chosen
    tau = store.tolerance(tolerance)
    try:
        known = store.vectors_of(name)
    except NotFoundError:
        known = np.zeros((0, descriptor_dim(pipeline, enc.dim)), np.float32)
    reports: list[PhotoReport] = []
    vectors, kept_sources, kept_hashes = [], [], []
    for i, image in enumerate(images):
        path = _path_of(image)
        source = sources[i] if sources is not None else (path.name if path else None)
        digest = sha256s[i] if sha256s is not None else (file_sha256(path) if path else None)
        found = find_faces(image, upsample, enc, pipeline, detector)
        if not found or (len(found) > 1 and not largest):
            if strict:
                pick_face(found, path, largest)  # raises NoFaceError / SeveralFacesError
            reason = "no face" if not found else "several faces"
            reports.append(PhotoReport(source, len(found), False, reason, sha256=digest))
            continue
        face = pick_face(found, path, largest)
        others: tuple[str, ...] = ()
        if digest is not None:
            owners = store.names_with_hash(digest)
            if name in owners or digest in kept_hashes:
                reports.append(
                    PhotoReport(source, len(found), False, "already enrolled", face.box, digest)
                )
                continue
            others = tuple(owners)
        v = face.embedding
        dmin: float | None
        dmean: float | None
        if len(known):
            d = np.sqrt(((known - v[None]) ** 2).sum(axis=1))
            dmin, dmean = float(d.min()), float(d.mean())
        else:
            dmin = dmean = None
        far = dmin is not None and dmin > tau
        reports.append(
            PhotoReport(source, len(found), True, None, face.box, digest, others, dmin, dmean, far)
        )
        known = np.concatenate([known, v[None]])
        vectors.append(v)
        kept_sources.append(source)
        kept_hashes.append(digest)
    total = len(known)
    if vectors:
        # A store that records its pipeline (Gallery) is told which one made these.
        extra = {"pipeline": pipeline} if hasattr(store, "pipeline") else {}
        total = store.add(
            name,
            np.stack(vectors),
            model_id=enc.model_id,
            sources=kept_sources,
            sha256s=kept_hashes,
            **extra,
        )
    return EnrollReport(name, reports, len(vectors), total, tau)


# -- verify / identify / detect --------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    """Is the face in the photo the enrolled person ``name``?"""

    name: str
    match: bool  # distance <= tau
    distance: float  # to name's closest enrolled photo
    tau: float
    faces: int  # faces found in the photo (the largest is used)
    box: Box  # the face used


def verify_photo(
    store: PersonStore,
    image: ImageInput,
    name: str,
    *,
    tolerance: float | None = None,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    detector: str = DEFAULT_DETECTOR,
) -> Verification:
    """1:1 verification of the largest face in ``image`` against ``name``.

    Raises:
        NotFoundError: unknown name (before any image work). NoFaceError: no face.
    """
    store.vectors_of(name)  # unknown name: fails before the encoder loads
    enc = _encoder(encoder)
    found = find_faces(image, upsample, enc, checked_pipeline(store, enc), detector)
    face = pick_face(found, _path_of(image), largest=True)  # NoFaceError when none
    d = store.distance_to(face.embedding, name)
    tau = store.tolerance(tolerance)
    return Verification(name, d <= tau, d, tau, len(found), face.box)


@dataclass(frozen=True)
class FaceMatch:
    """One face of an identified photo."""

    box: Box
    name: str | None  # None: nobody within tau ("unknown")
    distance: float  # to the named person, else the nearest (inf for an empty store)
    candidates: list[Match] = field(default_factory=list)  # the k nearest persons, closest first
    score: float | None = None  # what tau was applied to (the distance, or its T-norm)


def identify_image(
    store: PersonStore,
    image: ImageInput,
    *,
    tolerance: float | None = None,
    k: int = 3,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    detector: str = DEFAULT_DETECTOR,
    threshold: Threshold | None = None,
) -> list[FaceMatch]:
    """1:K identification of every face in ``image`` (none: an empty list).

    tau is ``tolerance``, else the store's identification tau (``calibrate --for
    identification``), else its pair tau, else 0.6 (see :func:`identification_threshold`).
    ``threshold``: one already chosen by :func:`identification_threshold` (a service that
    reports it and warns once), used instead of ``tolerance``.
    """
    enc = _encoder(encoder)
    pipeline = checked_pipeline(store, enc)
    from cnnkit.face.identification import identification_threshold, named_distance

    if threshold is None:
        threshold = identification_threshold(store, tolerance)
    found = find_faces(image, upsample, enc, pipeline, detector)
    if not found:
        return []
    near = store.nearest(np.stack([f.embedding for f in found]), max(k, threshold.k))
    out = []
    for f, cands in zip(found, near, strict=True):
        name, score = threshold.decide(cands, store)
        out.append(FaceMatch(f.box, name, named_distance(cands, name), list(cands[:k]), score))
    return out


def detect_faces(
    image: ImageInput, upsample: int = 1, detector: str = DEFAULT_DETECTOR
) -> list[Box]:
    """The (top, right, bottom, left) boxes of the faces in an image, most confident first
    (``detector``: hog, cnn, hog+cnn or auto; see :func:`cnnkit.face.detect`)."""
    from cnnkit.face.detection import detect

    return detect(load(image), upsample, detector)


# -- calibrate / evaluate on labelled pairs ---------------------------------------------------
class TauStore(Protocol):
    """A store that can keep a calibrated tau (the SQLite :class:`Gallery`)."""

    def check_model(self, model_id: str, dim: int | None = None) -> None: ...

    def set_tau(self, tau: float, model_id: str | None = None, dim: int | None = None) -> None: ...


@dataclass(frozen=True)
class PairDistances:
    """One distance per labelled pair, with labels, folds and how the images were handled."""

    distances: np.ndarray  # (P,) float
    same: np.ndarray  # (P,) bool
    folds: np.ndarray | None  # (P,) fold ids, or None: 10 contiguous folds
    n_folds: int
    stats: PairStats


def pair_distances(
    pairs: str | Path,
    images: str | Path,
    *,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    flip: bool = False,
    pipeline: str | None = None,
    detector: str = DEFAULT_DETECTOR,
) -> PairDistances:
    """Distances of an LFW-format pairs file (policy: :func:`cnnkit.face.pairs.pair_embedder`),
    descriptors made with ``pipeline`` (None: the default), flip-averaged also when ``flip``."""
    from cnnkit.face import evaluate as ev
    from cnnkit.face.descriptors import get_pipeline, with_flip
    from cnnkit.face.pairs import PairStats, pair_embedder

    p = get_pipeline(with_flip(pipeline, flip))
    read = ev.read_pairs(pairs)
    stats = PairStats()
    embedder = pair_embedder(_encoder(encoder), upsample, stats, detector, p)
    d = ev.pair_distances(read, images, embedder)
    log.info(
        "%d pairs, %d images: %d with several faces (centred one used), %d found only with "
        "one more upsampling, %d without a face (centre-box fallback)",
        len(read),
        stats.images,
        stats.several,
        stats.retried,
        stats.fallback,
    )
    same = np.array([p.same for p in read])
    folds = np.array([p.fold for p in read])
    n = len(np.unique(folds))
    # A file with one fold (no header): 10 contiguous folds, as the standard protocol.
    fold_ids, n_folds = (folds, n) if n >= 2 else (None, 10)
    return PairDistances(np.asarray(d), same, fold_ids, n_folds, stats)


@dataclass(frozen=True)
class Calibration:
    """The tau chosen on labelled pairs, and the k-fold accuracy of choosing it that way."""

    tau: float  # best on all pairs (what is stored)
    accuracy_at_tau: float
    accuracy_kfold: float
    accuracy_kfold_se: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    n_pairs: int
    n_folds: int
    model_id: str


def calibrate(
    pairs: str | Path,
    images: str | Path,
    *,
    store: TauStore | None = None,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    flip: bool = False,
    pipeline: str | None = None,
    detector: str = DEFAULT_DETECTOR,
) -> Calibration:
    """Choose tau on labelled pairs (k-fold protocol); with ``store``, store it there.

    ``pipeline`` None: the store's (its descriptors'), else the default."""
    from cnnkit.face.evaluate import best_threshold, kfold_accuracy

    enc = _encoder(encoder)
    if store is not None:
        pipeline = checked_pipeline(store, enc, pipeline)
    pd = pair_distances(
        pairs,
        images,
        encoder=enc,
        upsample=upsample,
        flip=flip,
        pipeline=pipeline,
        detector=detector,
    )
    kf = kfold_accuracy(pd.distances, pd.same, n_folds=pd.n_folds, folds=pd.folds)
    tau, acc_all = best_threshold(pd.distances, pd.same)
    if store is not None:
        store.set_tau(tau, model_id=enc.model_id, dim=descriptor_dim(pipeline, enc.dim))
    return Calibration(
        tau,
        acc_all,
        kf.mean,
        kf.se,
        list(kf.accuracies),
        list(kf.thresholds),
        len(pd.distances),
        len(kf.accuracies),
        enc.model_id,
    )


def evaluate_pairs(
    pairs: str | Path,
    images: str | Path,
    *,
    tau: float,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    flip: bool = False,
    roc: str | Path | None = None,
    pipeline: str | None = None,
    detector: str = DEFAULT_DETECTOR,
) -> Evaluation:
    """Verification accuracy on labelled pairs at ``tau``, k-fold, ROC AUC, TAR@FAR=1e-3;
    with ``roc``, the ROC curve is saved there as a PNG."""
    from cnnkit.face.evaluate import evaluate_distances, plot_roc

    pd = pair_distances(
        pairs,
        images,
        encoder=encoder,
        upsample=upsample,
        flip=flip,
        pipeline=pipeline,
        detector=detector,
    )
    result = evaluate_distances(pd.distances, pd.same, tau, folds=pd.folds, n_folds=pd.n_folds)
    if roc is not None:
        title = f"ROC, {Path(pairs).parent.name or Path(pairs).name}"
        plot_roc(pd.distances, pd.same, roc, title=title)
    return result
