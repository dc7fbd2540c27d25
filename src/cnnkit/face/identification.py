"""Open-set identification use cases: evaluate on a folder of persons, calibrate a 1:N tau,
and the tau that ``identify`` uses (with a warning when the gallery outgrew it).

The metrics are :mod:`cnnkit.face.openset`'s. A folder holds one subfolder per person (LFW's
layout); each photo gives one descriptor by the LFW policy of
:func:`cnnkit.face.pairs.pair_embedder` (the face nearest the centre; one more upsampling, then a
centred box when no face is found), made with the descriptor pipeline asked for (the default,
or the database's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.errors import CnnkitError, ImageReadError
from cnnkit.face.openset import (
    DEFAULT_NORM,
    FPIRS,
    TNORM_K,
    OpenSetResult,
    evaluate_descriptors,
    plot_det,
    probe_scale,
    tnorm_scale,
)
from cnnkit.face.store import Match

if TYPE_CHECKING:
    from cnnkit.face.encoder import FaceEncoder
    from cnnkit.face.store import PersonStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Threshold:
    """The tau ``identify`` uses, where it came from, and a warning when it may be too loose."""

    tau: float
    source: str  # "given", "identification" (calibrate --for identification), "pair", "default"
    warning: str | None = None
    norm: str = "none"  # the score tau applies to: the distance, "tnorm" or "snorm" (openset)

    @property
    def k(self) -> int:
        """How many nearest persons a search needs for this score."""
        return 1 + TNORM_K if self.norm in ("tnorm", "snorm") else 1

    def decide(
        self, nearest: Sequence[Match], store: PersonStore | None = None
    ) -> tuple[str | None, float]:
        """(name or None, score) from the nearest persons of one search, closest first.
        ``"snorm"`` needs ``store`` (the gallery-side cohort of each candidate, computed on the
        fly) and may name a candidate other than the nearest (see :func:`snorm_decide`)."""
        if not nearest or nearest[0].name is None:
            return None, float("inf")
        if self.norm == "snorm":
            if store is None:
                raise CnnkitError("S-norm scores need the person store")
            return snorm_decide(nearest, store, self.tau)
        d1 = nearest[0].distance
        score = d1
        if self.norm == "tnorm":
            if len(nearest) < 2:  # a gallery of one person has no cohort: no name
                return None, float("inf")
            row = np.array([[m.distance for m in nearest]])
            score = float(d1 / tnorm_scale(row)[0])
        return (nearest[0].name if score <= self.tau else None), score


def named_distance(nearest: Sequence[Match], name: str | None) -> float:
    """The distance reported with a decision: to the person ``name`` among the candidates
    ``nearest`` (S-norm may name one other than the nearest), else to the nearest; inf for none."""
    if name is not None:
        for m in nearest:
            if m.name == name:
                return m.distance
    return nearest[0].distance if nearest else float("inf")


def candidate_scales(store: PersonStore, names: Sequence[str]) -> np.ndarray:
    """mu_g of each of ``names`` (openset.gallery_scale) from the store, on the fly: one k-NN
    query of the persons' enrolled descriptors against the gallery, the person excluded. NaN
    for a person with no other person enrolled."""
    vecs = [np.atleast_2d(np.asarray(store.vectors_of(n), np.float32)) for n in names]
    rows = store.nearest(np.concatenate(vecs), TNORM_K + 1)
    out, start = [], 0
    for name, v in zip(names, vecs, strict=True):
        best: dict[str, float] = {}
        for row in rows[start : start + len(v)]:
            for m in row:
                if m.name is not None and m.name != name:
                    best[m.name] = min(best.get(m.name, np.inf), m.distance)
        start += len(v)
        near = sorted(best.values())[:TNORM_K]
        out.append(max(float(np.mean(near)), 1e-6) if near else np.nan)
    return np.array(out)


def snorm_decide(
    nearest: Sequence[Match], store: PersonStore, tau: float
) -> tuple[str | None, float]:
    """S-norm over the candidates ``nearest`` (the 1 + TNORM_K nearest persons, closest
    first): the candidate with the lowest d / sqrt(mu_p * mu_g), named when its score <= tau."""
    cands = [m for m in nearest if m.name is not None]
    if len(cands) < 2:  # a gallery of one person has no cohort: no name
        return None, float("inf")
    d = np.array([[m.distance for m in cands]], np.float64)
    mu_g = candidate_scales(store, [str(m.name) for m in cands])
    if np.isnan(mu_g).any():
        return None, float("inf")
    scores = (d / np.sqrt(probe_scale(d) * mu_g[None, :]))[0]
    j = int(scores.argmin())
    return (cands[j].name if scores[j] <= tau else None), float(scores[j])


def identification_threshold(
    store: PersonStore, tolerance: float | None = None, *, log_warning: bool = True
) -> Threshold:
    """tau for 1:N search: ``tolerance``, else the store's identification tau, else its pair tau
    (else 0.6). Warns (``warning``, and a log record with ``log_warning``) when the store holds
    more persons than the gallery its identification tau was calibrated on: strangers then
    match more often than that FPIR."""
    if tolerance is not None:
        return Threshold(float(tolerance), "given")
    ident = getattr(store, "identification_tau", None)
    if ident is None or not hasattr(ident, "tau"):
        tau = store.tolerance(None)
        has_pair_tau = getattr(store, "tau", None) is not None
        return Threshold(tau, "pair" if has_pair_tau else "default")
    warning = None
    count = getattr(store, "person_count", None)  # a store that counts without listing
    size = int(count()) if callable(count) else len(store.persons())
    if ident.gallery_size and size > ident.gallery_size:
        warning = (
            f"the gallery has {size} persons, but its identification tau {ident.tau:.4f} was "
            f"calibrated on {ident.gallery_size}: strangers will be named more often than FPIR "
            f"{ident.fpir:g} (run `cnnkit face calibrate --for identification` again on a "
            f"gallery at least this large)"
        )
        if log_warning:
            log.warning("warning: %s", warning)
    return Threshold(float(ident.tau), "identification", warning, getattr(ident, "norm", "none"))


def person_photos(images: str | Path) -> tuple[list[Path], list[str]]:
    """The photos of a folder with one subfolder per person: (paths, person of each)."""
    from cnnkit.io import list_images

    root = Path(images)
    if not root.is_dir():
        raise ImageReadError("not a folder", path=root, hint="pass a folder of person folders")
    paths: list[Path] = []
    persons: list[str] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        found = list_images([sub], recursive=False)
        paths += found
        persons += [sub.name] * len(found)
    if not paths:
        raise ImageReadError(
            "no person folders with images", path=root, hint="one subfolder of photos per person"
        )
    return paths, persons


def folder_descriptors(
    images: str | Path,
    *,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    pipeline: str | None = None,
    batch_size: int = 32,
    detector: str = "hog",
) -> tuple[np.ndarray, list[str]]:
    """One descriptor per photo of a person folder: ((N, 128), person of each); ``detector``:
    hog, cnn or auto (see :func:`cnnkit.face.detect`)."""
    from cnnkit.face.descriptors import get_pipeline
    from cnnkit.face.pairs import pair_embedder
    from cnnkit.face.usecases import _encoder
    from cnnkit.progress import progress

    paths, persons = person_photos(images)
    p = get_pipeline(pipeline)
    embed = pair_embedder(_encoder(encoder), upsample, None, detector, p)
    out = []
    for i in progress(range(0, len(paths), batch_size), desc="identification photos", unit="batch"):
        out.append(embed(paths[i : i + batch_size]))
    return np.concatenate(out), persons


@dataclass(frozen=True)
class IdentificationCalibration:
    """The 1:N tau chosen, at what FPIR, on how large a gallery, and the full evaluation."""

    tau: float
    fpir: float
    fnir: float
    gallery_size: int
    pipeline: str
    norm: str
    evaluation: OpenSetResult


def evaluate_identification(
    images: str | Path,
    *,
    gallery_size: int | None = None,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    pipeline: str | None = None,
    norm: str = DEFAULT_NORM,
    fpirs: tuple[float, ...] = FPIRS,
    det: str | Path | None = None,
    seed: int = 0,
    detector: str = "hog",
) -> OpenSetResult:
    """The open-set protocol on a person folder: every person with 2+ photos is enrolled with
    the first (or ``gallery_size`` of them, drawn at random) and searched with the others; the
    rest search as strangers. With ``det``, the DET curve is saved there as a PNG."""
    x, persons = folder_descriptors(
        images, encoder=encoder, upsample=upsample, pipeline=pipeline, detector=detector
    )
    result = evaluate_descriptors(
        x, persons, gallery_size=gallery_size, norm=norm, seed=seed, fpirs=fpirs
    )
    if det is not None:
        plot_det(result, det, title=f"DET, {Path(images).name}")
    return result


def calibrate_identification(
    images: str | Path,
    *,
    store: PersonStore | None = None,
    fpir: float = 0.001,
    gallery_size: int | None = None,
    encoder: FaceEncoder | Callable[[], FaceEncoder] | None = None,
    upsample: int = 1,
    pipeline: str | None = None,
    norm: str = DEFAULT_NORM,
    detector: str = "hog",
) -> IdentificationCalibration:
    """Choose the 1:N tau at ``fpir`` on a person folder, for scores normalised by ``norm``;
    with ``store``, store it there (with the gallery size it holds for). ``pipeline`` None:
    the store's, else the default."""
    from cnnkit.face.descriptors import checked_pipeline, descriptor_dim, store_pipeline
    from cnnkit.face.usecases import _encoder

    if not 0 < fpir < 1:
        raise CnnkitError(f"--fpir must be in (0, 1), got {fpir}")
    enc = _encoder(encoder)
    if store is not None:
        pipeline = checked_pipeline(store, enc, pipeline)
    pipeline = pipeline or store_pipeline(None)
    result = evaluate_identification(
        images,
        gallery_size=gallery_size,
        encoder=enc,
        upsample=upsample,
        pipeline=pipeline,
        norm=norm,
        fpirs=tuple(sorted({*FPIRS, fpir}, reverse=True)),
        detector=detector,
    )
    tau = result.tau_at_fpir[fpir]
    if tau <= 0 or not np.isfinite(tau):
        raise CnnkitError(
            f"too few strangers to reach FPIR {fpir:g} ({result.n_nonmated} non-mated searches)",
            path=images,
            hint="add persons with a single photo, or raise --fpir",
        )
    setter = getattr(store, "set_identification_tau", None)
    if store is not None:
        if setter is None:
            raise CnnkitError("this person store cannot keep an identification tau")
        setter(
            tau,
            fpir,
            result.n_gallery,
            model_id=enc.model_id,
            dim=descriptor_dim(pipeline, enc.dim),
            pipeline=pipeline,
            norm=norm,
        )
    return IdentificationCalibration(
        tau, fpir, result.fnir_at_fpir[fpir], result.n_gallery, pipeline, norm, result
    )
