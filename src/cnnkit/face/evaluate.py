"""Verification accuracy on labelled pairs: the LFW pairs format and the 10-fold protocol.

A pair (img1, img2) is predicted "same person" when d(f(img1), f(img2)) <= tau. The standard
protocol for a fixed encoder: split the pairs into folds; for each fold, choose tau as the threshold
that maximises accuracy on the *other* folds, and measure accuracy on the held fold; report the
mean accuracy and its standard error (std / sqrt(n_folds)). ROC AUC and TAR at a fixed FAR come
from the same distances (score = -distance).

``pairs.txt`` (LFW View 2)::

    10<TAB>300                      n_folds, pairs of each kind per fold
    Name<TAB>1<TAB>4                 a matched pair: images/Name/Name_0001.jpg, Name_0004.jpg
    Name1<TAB>2<TAB>Name2<TAB>7      a mismatched pair
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.errors import CnnkitError, ShapeError, shorten

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """One labelled pair of image paths (relative to the images folder)."""

    first: str
    second: str
    same: bool
    fold: int


def _image_name(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_pairs(path: str | Path) -> list[Pair]:
    """Read an LFW-format pairs file. Folds come from its header (``n_folds<TAB>n``); a file
    without a header is one fold."""
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CnnkitError(f"cannot read the pairs file: {exc}", path=path) from exc
    if not lines:
        raise CnnkitError("empty pairs file", path=path)
    n_folds, per_fold = 1, None
    if len(lines[0]) == 2 and all(x.isdigit() for x in lines[0]):
        n_folds, per_fold = int(lines[0][0]), int(lines[0][1])
        lines = lines[1:]
    pairs = []
    for i, fields in enumerate(lines):
        fold = i // (2 * per_fold) if per_fold else 0
        try:
            if len(fields) == 3:
                pair = Pair(
                    _image_name(fields[0], fields[1]), _image_name(fields[0], fields[2]), True, fold
                )
            elif len(fields) == 4:
                pair = Pair(
                    _image_name(fields[0], fields[1]),
                    _image_name(fields[2], fields[3]),
                    False,
                    fold,
                )
            else:
                raise ValueError
        except ValueError:
            raise CnnkitError(
                f"line {i + 2 if per_fold else i + 1} is not an LFW pair: "
                f"{shorten(' '.join(fields))}",
                path=path,
                hint="expected 'name i j' or 'name1 i name2 j'",
            ) from None
        pairs.append(pair)
    if per_fold and len(pairs) != 2 * n_folds * per_fold:
        raise CnnkitError(
            f"header says {n_folds} folds of 2x{per_fold} pairs, found {len(pairs)} pairs",
            path=path,
        )
    if not any(p.same for p in pairs) or all(p.same for p in pairs):
        raise CnnkitError("the pairs file needs both matched and mismatched pairs", path=path)
    return pairs


def _check(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    s = np.asarray(same, dtype=bool).reshape(-1)
    if d.shape != s.shape or len(d) == 0:
        raise ShapeError(f"distances {np.shape(distances)} and labels {np.shape(same)} differ")
    if not np.all(np.isfinite(d)):
        raise ShapeError("distances contain NaN or inf")
    return d, s


def accuracy_at(distances: np.ndarray, same: np.ndarray, tau: float) -> float:
    """Fraction of pairs classified right by ``d <= tau`` (same) / ``d > tau`` (different)."""
    d, s = _check(distances, same)
    return float(np.mean((d <= tau) == s))


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The tau that maximises accuracy on these pairs, and that accuracy.

    Candidates are the midpoints between consecutive sorted distances (and one below / above
    all); ties go to the middle of the best run of candidates.
    """
    d, s = _check(distances, same)
    order = np.argsort(d, kind="stable")
    ds, ss = d[order], s[order]
    # Threshold after the first i sorted pairs (i = 0..n): same-pairs below + diff-pairs above.
    tp = np.concatenate([[0], np.cumsum(ss)])
    tn = (~ss).sum() - np.concatenate([[0], np.cumsum(~ss)])
    correct = tp + tn
    # Only cut between distinct distances (a cut inside ties is not a threshold).
    valid = np.ones(len(ds) + 1, dtype=bool)
    valid[1:-1] = ds[1:] > ds[:-1]
    correct = np.where(valid, correct, -1)
    best = np.flatnonzero(correct == correct.max())
    i = int(best[len(best) // 2])
    if i == 0:
        tau = ds[0] - 1e-6
    elif i == len(ds):
        tau = ds[-1] + 1e-6
    else:
        tau = 0.5 * (ds[i - 1] + ds[i])
    return float(tau), float(correct[i] / len(ds))


@dataclass(frozen=True)
class KFoldResult:
    """Outcome of the k-fold protocol."""

    mean: float  # mean accuracy over folds
    se: float  # standard error: std over folds / sqrt(n_folds)
    accuracies: list[float]  # accuracy on each held-out fold
    thresholds: list[float]  # tau chosen on the other folds, per fold


def kfold_accuracy(
    distances: np.ndarray,
    same: np.ndarray,
    n_folds: int = 10,
    folds: Sequence[int] | np.ndarray | None = None,
) -> KFoldResult:
    """The standard protocol: for each fold, tau chosen on the other folds, accuracy on it.

    Args:
        distances: (n,) pair distances.
        same: (n,) True for matched pairs.
        n_folds: number of contiguous folds, when ``folds`` is not given (LFW: pairs are stored
            fold after fold, so contiguous splits are the official folds).
        folds: (n,) fold id of each pair (e.g. from :func:`read_pairs`); overrides ``n_folds``.
    """
    d, s = _check(distances, same)
    if folds is None:
        if n_folds < 2 or n_folds > len(d):
            raise CnnkitError(f"n_folds must be in [2, {len(d)}], got {n_folds}")
        fold_of = np.arange(len(d)) * n_folds // len(d)
    else:
        fold_of = np.asarray(folds).reshape(-1)
        if fold_of.shape != d.shape:
            raise ShapeError(f"folds {fold_of.shape} and distances {d.shape} differ")
    ids = np.unique(fold_of)
    if len(ids) < 2:
        raise CnnkitError("the k-fold protocol needs at least 2 folds")
    accuracies, thresholds = [], []
    for k in ids:
        held = fold_of == k
        tau, _ = best_threshold(d[~held], s[~held])
        thresholds.append(tau)
        accuracies.append(accuracy_at(d[held], s[held], tau))
    acc = np.array(accuracies)
    se = float(acc.std(ddof=1) / np.sqrt(len(acc))) if len(acc) > 1 else 0.0
    return KFoldResult(float(acc.mean()), se, accuracies, thresholds)


def roc(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve with score = -distance: (FAR, TAR, thresholds), FAR ascending.

    FAR (false accept rate) = mismatched pairs with d <= tau / all mismatched;
    TAR (true accept rate) = matched pairs with d <= tau / all matched. The first point is
    (0, 0) at a tau below every distance; then one point per distinct distance.
    """
    d, s = _check(distances, same)
    n_pos, n_neg = int(s.sum()), int((~s).sum())
    if n_pos == 0 or n_neg == 0:
        raise CnnkitError("the ROC needs both matched and mismatched pairs")
    order = np.argsort(d, kind="stable")
    ds, ss = d[order], s[order]
    last = np.r_[ds[1:] > ds[:-1], True]  # last index of each run of equal distances
    tp = np.cumsum(ss)[last]
    fp = np.cumsum(~ss)[last]
    far = np.r_[0.0, fp / n_neg]
    tar = np.r_[0.0, tp / n_pos]
    thresholds = np.r_[ds[0] - 1e-6, ds[last]]
    return far, tar, thresholds


def roc_auc(distances: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve: P(a matched pair is closer than a mismatched one), ties 1/2."""
    far, tar, _ = roc(distances, same)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def tar_at_far(distances: np.ndarray, same: np.ndarray, far: float = 1e-3) -> float:
    """Highest TAR among thresholds whose FAR <= ``far`` (no interpolation).

    With N mismatched pairs, FAR = 1e-3 allows floor(N * 1e-3) false accepts.
    """
    fars, tars, _ = roc(distances, same)
    ok = fars <= far + 1e-12
    return float(tars[ok].max()) if ok.any() else 0.0


@dataclass(frozen=True)
class Evaluation:
    """Every number ``cnnkit face evaluate`` reports."""

    tau: float
    accuracy_at_tau: float
    accuracy_kfold: float
    accuracy_kfold_se: float
    auc: float
    tar_at_far_1e_3: float
    n_pairs: int
    n_folds: int

    def as_json(self) -> dict:
        return {
            "accuracy_at_tau": self.accuracy_at_tau,
            "tau": self.tau,
            "accuracy_kfold": self.accuracy_kfold,
            "accuracy_kfold_se": self.accuracy_kfold_se,
            "auc": self.auc,
            "tar_at_far_1e-3": self.tar_at_far_1e_3,
            "n_pairs": self.n_pairs,
            "n_folds": self.n_folds,
        }


def evaluate_distances(
    distances: np.ndarray,
    same: np.ndarray,
    tau: float,
    folds: Sequence[int] | np.ndarray | None = None,
    n_folds: int = 10,
) -> Evaluation:
    """Accuracy at ``tau``, the k-fold accuracy +- SE, ROC AUC and TAR at FAR = 1e-3."""
    kf = kfold_accuracy(distances, same, n_folds=n_folds, folds=folds)
    return Evaluation(
        tau=float(tau),
        accuracy_at_tau=accuracy_at(distances, same, tau),
        accuracy_kfold=kf.mean,
        accuracy_kfold_se=kf.se,
        auc=roc_auc(distances, same),
        tar_at_far_1e_3=tar_at_far(distances, same, 1e-3),
        n_pairs=len(np.asarray(distances)),
        n_folds=len(kf.accuracies),
    )


def plot_roc(distances: np.ndarray, same: np.ndarray, path: str | Path, title: str = "ROC") -> Path:
    """Save the ROC curve (TAR against FAR, log FAR axis) as a PNG, atomically."""
    from cnnkit.io.figures import save_figure, subplots

    far, tar, _ = roc(distances, same)
    n_neg = int((~np.asarray(same, bool)).sum())
    floor = 1.0 / max(n_neg, 1)
    fig, ax = subplots(figsize=(5, 4), dpi=100)
    ax.plot(np.maximum(far, floor / 2), tar, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1.0)
    shown = tar[far > 0]  # the (0, 0) point is off the log axis
    ax.set_ylim(max(0.0, float(shown.min()) - 0.02) if len(shown) else 0.0, 1.005)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title(f"{title} (AUC {roc_auc(distances, same):.4f})")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def pair_distances(
    pairs: Sequence[Pair],
    images_dir: str | Path,
    embed_images: Callable[[list[Path]], np.ndarray],
    batch_size: int = 32,
    progress_label: str = "embedding",
) -> np.ndarray:
    """(n,) Euclidean distances of each pair; each distinct image is embedded once.

    Args:
        pairs: from :func:`read_pairs`.
        images_dir: folder that the pairs' relative paths start from.
        embed_images: list of paths -> (len, d) descriptors, one per image
            (see :func:`cnnkit.face.pairs.pair_embedder`).
        batch_size: images per call of ``embed_images``.
    """
    from cnnkit.progress import progress

    root = Path(images_dir)
    if not root.is_dir():
        raise CnnkitError("no such images folder", path=root)
    names = sorted({p.first for p in pairs} | {p.second for p in pairs})
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise CnnkitError(
            f"{len(missing)} images named by the pairs file are missing, e.g. {missing[0]}",
            path=root,
            hint="pass the folder that holds <Name>/<Name>_<iiii>.jpg",
        )
    vectors: dict[str, np.ndarray] = {}
    with progress(total=len(names), desc=progress_label, unit="img") as bar:
        for start in range(0, len(names), batch_size):
            chunk = names[start : start + batch_size]
            out = np.asarray(embed_images([root / n for n in chunk]), dtype=np.float64)
            vectors.update(zip(chunk, out, strict=True))
            bar.update(len(chunk))
    a = np.stack([vectors[p.first] for p in pairs])
    b = np.stack([vectors[p.second] for p in pairs])
    return np.sqrt(((a - b) ** 2).sum(axis=1))
