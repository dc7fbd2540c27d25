"""Open-set 1:N identification measured the NIST FRVT way: rank-1, FNIR at FPIR, the DET curve.

A gallery holds G enrolled persons (one or more descriptors each). A *mated* search is a photo of
an enrolled person, a *non-mated* search one of a person who is not enrolled. A search returns the
nearest person and its distance d (to that person's nearest descriptor). At threshold tau:

- FPIR(tau) = fraction of non-mated searches with d <= tau (a stranger "identified");
- FNIR(tau) = fraction of mated searches where the nearest person is not the mate, or d > tau;
- rank-1 rate = fraction of mated searches whose nearest person is the mate (no threshold).

``tau at FPIR f`` is the largest threshold whose FPIR is at most f (the midpoint between the
(k+1)-th smallest non-mated score, k = floor(f * non-mated), and the largest score below it).
A larger gallery puts a stranger nearer to someone, so the same FPIR needs a smaller (stricter)
tau: calibrate with a gallery as large as the one in use (``gallery_size`` is stored with the tau).

Score normalisation (``norm``), per search, against a cohort of impostor scores:

- ``"none"``: the distance d itself;
- ``"tnorm"``: d / mean(d_2, ..., d_{k+1}), the distances to the k = :data:`TNORM_K` next nearest
  persons (impostors for a mated search, since a person has one mate): a per-probe T-norm
  (scale only) over a local cohort. A probe that is near everybody (a blurred or unusual face)
  gets a score near 1, one that is near one person only a small score. Measured on LFW-dev
  (docs/face.md) it halves FNIR at FPIR 0.01 for galleries of a few hundred persons. (A
  z-score over the whole gallery, (d - mean) / std, was worse than none there.)
- ``"snorm"``: symmetric (S-norm): person j scores d_j / sqrt(mu_p(j) * mu_g(j)), where
  mu_p(j) is the search's mean distance to its k nearest persons other than j (for the nearest
  person, T-norm's divisor) and mu_g(j) person j's mean distance to the k nearest *other enrolled
  persons* (:func:`gallery_scale`, a gallery-side cohort); the search names the person with the
  lowest score, so a "hub" person, near everybody, is demoted. Measured on LFW-dev (docs/face.md)
  it lowers FNIR at FPIR 0.01 by 3 points against T-norm and raises rank-1 by 0.5 point; it is
  the default (:data:`DEFAULT_NORM`) of ``calibrate --for identification``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.errors import CnnkitError

#: The FPIR operating points reported (FRVT's usual ones).
FPIRS = (0.01, 0.001)
NORMS = ("none", "tnorm", "snorm")
#: Cohort size of the T-norm: the k next nearest persons after the nearest.
TNORM_K = 5
#: The normalisation that ``calibrate --for identification`` uses unless told otherwise.
DEFAULT_NORM = "snorm"


@dataclass(frozen=True)
class Searches:
    """The outcome of every search: nearest person, its (normalised) score, mated or not."""

    score: np.ndarray  # (M,) nearest person's score (distance, or its normalised value)
    nearest: np.ndarray  # (M,) int gallery person index of the nearest
    mate: np.ndarray  # (M,) int gallery index of the mate, -1 for a non-mated search


@dataclass(frozen=True)
class OpenSetResult:
    """Open-set identification figures (fractions in [0, 1]; taus in score units)."""

    rank1: float
    fnir_at_fpir: dict[float, float]
    tau_at_fpir: dict[float, float]
    n_gallery: int
    n_mated: int
    n_nonmated: int
    norm: str = "none"
    fpir_curve: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    fnir_curve: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def as_json(self) -> dict:
        out: dict = {"rank1": self.rank1}
        for f in sorted(self.fnir_at_fpir, reverse=True):
            out[f"fnir_at_fpir_{f:g}"] = self.fnir_at_fpir[f]
            out[f"tau_at_fpir_{f:g}"] = self.tau_at_fpir[f]
        out.update(
            n_gallery=self.n_gallery,
            n_mated=self.n_mated,
            n_nonmated=self.n_nonmated,
            norm=self.norm,
        )
        return out


def person_distances(
    queries: np.ndarray, gallery: np.ndarray, labels: Sequence[int] | np.ndarray
) -> np.ndarray:
    """(M, d) queries vs (n, d) gallery descriptors of persons ``labels`` (n,) in 0..G-1 ->
    (M, G) distance to each person's nearest descriptor (Euclidean)."""
    q = np.asarray(queries, np.float64)
    g = np.asarray(gallery, np.float64)
    lab = np.asarray(labels, np.int64)
    d2 = (q**2).sum(1)[:, None] + (g**2).sum(1)[None, :] - 2.0 * q @ g.T
    d = np.sqrt(np.maximum(d2, 0.0))  # (M, n)
    n_persons = int(lab.max()) + 1 if len(lab) else 0
    out = np.full((len(q), n_persons), np.inf)
    for j in range(n_persons):
        cols = lab == j
        if cols.any():
            out[:, j] = d[:, cols].min(axis=1)
    return out


def normalise(
    dist: np.ndarray, norm: str = "none", gallery_scales: np.ndarray | None = None
) -> np.ndarray:
    """Scores of an (M, G) person-distance matrix (see the module doc); lower is closer.
    ``gallery_scales`` (G,): mu_g of each person (:func:`gallery_scale`), for ``"snorm"``."""
    if norm == "none":
        return dist
    if norm == "tnorm":
        return dist / tnorm_scale(np.sort(dist, axis=1))[:, None]
    if norm != "snorm":
        raise CnnkitError(f"unknown score normalisation {norm!r}", hint=f"use one of {NORMS}")
    if gallery_scales is None:
        raise CnnkitError("S-norm needs the gallery-side scale of each person")
    return dist / np.sqrt(probe_scale(dist) * np.asarray(gallery_scales, np.float64)[None, :])


def probe_scale(dist: np.ndarray, k: int = TNORM_K) -> np.ndarray:
    """(M, G) distances to G persons -> (M, G) mu_p: for each person j, the search's mean
    distance to its min(``k``, G - 1) nearest persons other than j.

    Raises CnnkitError when there is no cohort (a gallery of one person)."""
    d = np.asarray(dist, np.float64)
    k = min(k, d.shape[1] - 1)
    if k < 1:
        raise CnnkitError("S-norm needs a gallery of at least 2 persons")
    s = np.sort(d, axis=1)
    inside = d <= s[:, k : k + 1]  # j is among the k + 1 nearest: the cohort is the others
    mu = np.where(inside, (s[:, : k + 1].sum(1)[:, None] - d) / k, s[:, :k].mean(1)[:, None])
    return np.maximum(mu, 1e-6)


def gallery_scale(
    gallery: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    n_persons: int | None = None,
    k: int = TNORM_K,
) -> np.ndarray:
    """mu_g (G,) of an (n, d) gallery of persons ``labels``: each person's mean distance to the
    ``k`` nearest other persons (person to person: their nearest two descriptors); 1 for a
    person without descriptors.

    Raises CnnkitError when there is no cohort (fewer than 2 persons)."""
    lab = np.asarray(labels, np.int64)
    if len(np.unique(lab)) < 2:
        raise CnnkitError("S-norm needs a gallery of at least 2 persons")
    n = int(n_persons if n_persons is not None else lab.max() + 1)
    dd = person_distances(gallery, gallery, lab)  # (n descriptors, persons)
    pp = np.full((n, n), np.inf)
    for j in np.unique(lab):
        pp[j, : dd.shape[1]] = dd[lab == j].min(axis=0)
    np.fill_diagonal(pp, np.inf)
    near = np.sort(pp, axis=1)[:, :k]
    finite = np.isfinite(near)
    count = finite.sum(1)
    mu = np.where(count > 0, np.where(finite, near, 0).sum(1) / np.maximum(count, 1), 1.0)
    return np.maximum(mu, 1e-6)


def tnorm_scale(nearest: np.ndarray) -> np.ndarray:
    """(M, n) distances to the n nearest persons, sorted -> (M,) the T-norm divisor: the mean of
    entries 1..:data:`TNORM_K` (non-finite ones ignored).

    Raises CnnkitError when there is no cohort (a gallery of one person)."""
    cohort = np.asarray(nearest, np.float64)[:, 1 : 1 + TNORM_K]
    finite = np.isfinite(cohort)
    if cohort.shape[1] == 0 or not finite.any(axis=1).all():
        raise CnnkitError("T-norm needs a gallery of at least 2 persons")
    return np.maximum(np.where(finite, cohort, 0).sum(1) / finite.sum(1), 1e-6)


def search(
    dist: np.ndarray,
    mates: np.ndarray,
    norm: str = "none",
    gallery_scales: np.ndarray | None = None,
) -> Searches:
    """Best-scored person and score of each search, from (M, G) person distances."""
    scores = normalise(np.asarray(dist, np.float64), norm, gallery_scales)
    nearest = scores.argmin(axis=1)
    return Searches(scores[np.arange(len(scores)), nearest], nearest, np.asarray(mates))


def tau_at_fpir(nonmated_scores: np.ndarray, fpir: float) -> float:
    """The largest threshold whose FPIR on these non-mated scores is at most ``fpir``."""
    s = np.sort(np.asarray(nonmated_scores, np.float64))
    if len(s) == 0:
        raise CnnkitError("no non-mated searches: FPIR is undefined")
    k = int(np.floor(fpir * len(s) + 1e-9))  # false positives allowed
    if k >= len(s):
        return float(s[-1])
    # tau must stay below s[k] (and so below every score tied with it).
    below = s[s < s[k]]
    if len(below) == 0:
        return float(s[k] - max(1e-6, 1e-6 * abs(s[k])))
    return float((below[-1] + s[k]) / 2)


def fnir_at(searches: Searches, tau: float) -> float:
    """FNIR at ``tau``: mated searches not answered with their mate within tau."""
    m = searches.mate >= 0
    hit = (searches.nearest[m] == searches.mate[m]) & (searches.score[m] <= tau)
    return float(1.0 - hit.mean()) if m.any() else float("nan")


def det_curve(searches: Searches) -> tuple[np.ndarray, np.ndarray]:
    """(FPIR, FNIR) at every non-mated score as threshold, FPIR increasing."""
    m = searches.mate >= 0
    nm = np.sort(searches.score[~m])
    correct = searches.nearest[m] == searches.mate[m]
    good = np.sort(searches.score[m][correct])
    fpir = np.searchsorted(nm, nm, side="right") / max(len(nm), 1)  # ties count together
    fnir = 1.0 - np.searchsorted(good, nm, side="right") / max(int(m.sum()), 1)
    return fpir, fnir


def evaluate_searches(
    searches: Searches, n_gallery: int, norm: str = "none", fpirs: Sequence[float] = FPIRS
) -> OpenSetResult:
    """Rank-1, FNIR and tau at ``fpirs``, and the DET curve of scored searches."""
    m = searches.mate >= 0
    if not m.any():
        raise CnnkitError("no mated searches: every person needs a second photo to search with")
    taus = {f: tau_at_fpir(searches.score[~m], f) for f in fpirs}
    fpir, fnir = det_curve(searches)
    return OpenSetResult(
        rank1=float((searches.nearest[m] == searches.mate[m]).mean()),
        fnir_at_fpir={f: fnir_at(searches, t) for f, t in taus.items()},
        tau_at_fpir=taus,
        n_gallery=n_gallery,
        n_mated=int(m.sum()),
        n_nonmated=int((~m).sum()),
        norm=norm,
        fpir_curve=fpir,
        fnir_curve=fnir,
    )


@dataclass(frozen=True)
class Split:
    """Which descriptors are enrolled and which are searched (indices into a descriptor list)."""

    gallery: np.ndarray  # (n,) descriptor indices enrolled
    gallery_labels: np.ndarray  # (n,) gallery person index of each
    probes: np.ndarray  # (M,) descriptor indices searched
    mates: np.ndarray  # (M,) gallery person index, -1 for non-mated
    persons: list[str]  # gallery person names, by index


def split_persons(
    persons: Sequence[str],
    gallery_size: int | None = None,
    enrolled_per_person: int = 1,
    seed: int = 0,
) -> Split:
    """The FRVT-style split of labelled descriptors: ``persons[i]`` names descriptor i.

    Persons with more than ``enrolled_per_person`` photos can be enrolled; their first
    ``enrolled_per_person`` photos are enrolled and the others are mated searches. With
    ``gallery_size``, that many of them are drawn at random (``seed``) and the rest search as
    non-mated; persons with too few photos are always non-mated (all their photos).
    """
    by: dict[str, list[int]] = {}
    for i, p in enumerate(persons):
        by.setdefault(p, []).append(i)
    eligible = sorted(p for p, ix in by.items() if len(ix) > enrolled_per_person)
    if gallery_size is not None:
        if gallery_size > len(eligible):
            raise CnnkitError(
                f"--gallery-size {gallery_size} but only {len(eligible)} persons have "
                f"{enrolled_per_person + 1}+ photos",
                hint="lower --gallery-size",
            )
        rng = np.random.default_rng(seed)
        eligible = sorted(rng.choice(eligible, gallery_size, replace=False).tolist())
    index = {p: j for j, p in enumerate(eligible)}
    gal, gal_lab, probes, mates = [], [], [], []
    for p, ix in by.items():
        if p in index:
            gal += ix[:enrolled_per_person]
            gal_lab += [index[p]] * enrolled_per_person
            probes += ix[enrolled_per_person:]
            mates += [index[p]] * (len(ix) - enrolled_per_person)
        else:
            probes += ix
            mates += [-1] * len(ix)
    if not eligible:
        raise CnnkitError("no person has two photos: nobody can be enrolled and searched")
    return Split(
        np.array(gal), np.array(gal_lab), np.array(probes), np.array(mates), list(eligible)
    )


def evaluate_descriptors(
    descriptors: np.ndarray,
    persons: Sequence[str],
    *,
    gallery_size: int | None = None,
    enrolled_per_person: int = 1,
    norm: str = "none",
    seed: int = 0,
    fpirs: Sequence[float] = FPIRS,
) -> OpenSetResult:
    """The open-set protocol on (N, d) descriptors labelled by ``persons`` (see
    :func:`split_persons`); NaN rows (no face) enroll nothing and search as misses."""
    sp = split_persons(persons, gallery_size, enrolled_per_person, seed)
    x = np.asarray(descriptors, np.float64)
    ok_g = ~np.isnan(x[sp.gallery]).any(axis=1)
    dist = person_distances(
        np.nan_to_num(x[sp.probes], nan=1e3), x[sp.gallery][ok_g], sp.gallery_labels[ok_g]
    )
    if dist.shape[1] < len(sp.persons):  # a person whose gallery photos all lack a face
        pad = np.full((len(dist), len(sp.persons) - dist.shape[1]), np.inf)
        dist = np.concatenate([dist, pad], axis=1)
    dist[~np.isfinite(dist)] = 1e3
    scales = None
    if norm == "snorm":
        scales = gallery_scale(x[sp.gallery][ok_g], sp.gallery_labels[ok_g], len(sp.persons))
    s = search(dist, sp.mates, norm, scales)
    miss = np.isnan(x[sp.probes]).any(axis=1)
    if miss.any():  # no face: a miss or a reject at every tau, whatever the normalisation
        s = Searches(np.where(miss, np.inf, s.score), np.where(miss, -1, s.nearest), s.mate)
    return evaluate_searches(s, len(sp.persons), norm, fpirs)


def plot_det(result: OpenSetResult, path: str | Path, title: str = "DET") -> Path:
    """Save the DET curve (FNIR against FPIR, log-log) as a PNG, atomically."""
    from cnnkit.io.figures import save_figure, subplots

    floor = 1.0 / max(result.n_nonmated, 1)
    fig, ax = subplots(figsize=(5, 4), dpi=100)
    ax.plot(result.fpir_curve, np.maximum(result.fnir_curve, 1e-4), lw=1.5)
    for f in FPIRS:
        ax.axvline(f, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_xlabel("false positive identification rate (FPIR)")
    ax.set_ylabel("false negative identification rate (FNIR)")
    ax.set_title(f"{title} (rank-1 {100 * result.rank1:.1f}%, G={result.n_gallery})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
