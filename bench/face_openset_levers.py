"""Learned levers for open-set 1:N on LFW-dev, measured on persons kept out of the training.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_openset_levers.py [--seeds 0 1 2]
    OMP_NUM_THREADS=1 .venv/bin/python bench/face_openset_levers.py --inner-grid

LFW-dev's persons are split in two halves by a seed (persons with one photo and persons with 2+
split separately). Each lever is fitted on one half's images and measured with the open-set
protocol of bench/face_openset.py (cnnkit.face.openset: the first photo of each person with 2+
photos enrolled, the others mated searches, the persons with one photo non-mated) on the other
half; then the halves swap. dlib's own pipeline (face_recognition, bench/face_openset.py) is
measured on exactly the same searches; LFW pair accuracy (k-fold) on the pairs whose persons are
both in the evaluation half.

Levers, on the default descriptors (sub-pixel landmarks + flip averaging):
(a) a learned linear map before the distance / T-norm: WCCN (within-person whitening, shrunk
    to I by 0.1 or 0.5), LDA to 64 dimensions, a 128x128 map trained with batch-hard triplet
    loss on the descriptors;
(b) triplet fine-tuning (batch-hard, margin 0.2, Adam) of the encoder's fc only, of unit 13 and
    the fc, or of units 11-13 and the fc, from the cached input of unit 11 of each chip and its
    mirror (the descriptor is the mean of both, as at test time).
``--inner-grid``: the tail settings (unit 13 + fc) tried on inner splits of half A of seed 0.

Last line: ``RESULT baseline_fnir_at_fpir_0.01=... best_lever=... best_fnir_at_fpir_0.01=...
dlib_fnir_at_fpir_0.01=... best_ratio_vs_dlib=... baseline_rank1=... best_rank1=...
dlib_rank1=...`` (means over the evaluation halves; the levers with T-norm scores).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face as bench_face  # noqa: E402  (LFW boxes, pairs, cached npz)
import face_openset as bench_openset  # noqa: E402  (dlib's descriptors, cached)

OUT = bench_face.OUT
#: The encoder unit whose input is cached: units TAIL_FROM.. and the fc can be fine-tuned.
TAIL_FROM = 11


def lfw_tail_features(images: list[str], root: Path, boxes: np.ndarray, cache: Path):
    """Per image, the input of encoder unit TAIL_FROM for the sub-pixel chip and its mirror
    ((n, 256, 4, 4) each) and the descriptors (n, 128) of both, cached."""
    import torch

    from cnnkit import face
    from cnnkit.face.alignment import align_faces
    from cnnkit.progress import progress

    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == images:
            return z["feat"], z["feat_flip"], z["emb"], z["emb_flip"]
    enc = face.default_encoder()
    net = enc._net
    grab: list[torch.Tensor] = []
    hook = net.blocks[TAIL_FROM].register_forward_pre_hook(
        lambda _m, inp: grab.append(inp[0].float().contiguous().clone())
    )
    n = len(images)
    feat = np.zeros((n, 256, 4, 4), np.float32)  # unit 10's add_prev: 3x3 conv + 4x4 pool
    feat_flip = np.zeros_like(feat)
    emb = np.zeros((n, 128), np.float32)
    emb_flip = np.zeros_like(emb)
    batch = 16
    for start in progress(range(0, n, batch), desc="LFW tail features (k=1)"):
        chips = []
        for i in range(start, min(start + batch, n)):
            img = face.load_image(root / images[i])
            chips.append(align_faces(img, [tuple(int(v) for v in boxes[i])], 1)[1][0])
        c = np.stack(chips)
        sl = slice(start, start + len(c))
        grab.clear()
        emb[sl] = enc.embed(c, batch_size=len(c))
        feat[sl] = grab[0].numpy()
        grab.clear()
        emb_flip[sl] = enc.embed(np.ascontiguousarray(c[:, :, ::-1]), batch_size=len(c))
        feat_flip[sl] = grab[0].numpy()
    hook.remove()
    bench_face._save_npz(
        cache, names=np.array(images), feat=feat, feat_flip=feat_flip, emb=emb, emb_flip=emb_flip
    )
    return feat, feat_flip, emb, emb_flip


def load_lfw(lfw: Path):
    """bench/face.py's LFW-dev set-up, the cached unit-11 features and dlib's descriptors."""
    images, (boxes, _), same, folds, pa, pb = bench_face.lfw_setup(lfw)
    root = lfw / "images"
    tail = lfw_tail_features(images, root, boxes, OUT / "lfw_dev_tail_k1.npz")
    xd = bench_openset.dlib_descriptors(images, root, OUT / "lfw_dev_dlib_fr.npz")
    return images, (pa, pb, same, folds), tail, xd


# ---------------------------------------------------------------- splits and measures


def person_halves(persons: list[str], seed: int = 0) -> np.ndarray:
    """(n,) bool, True for the images of half A: persons with one photo and persons with 2+
    photos are each split in two by a fixed permutation, so both halves have mated and
    non-mated searches in the same proportion."""
    names, counts = np.unique(persons, return_counts=True)
    rng = np.random.default_rng(seed)
    half_a: set[str] = set()
    for group in (names[counts == 1], names[counts >= 2]):
        perm = rng.permutation(len(group))
        half_a.update(group[perm[: len(group) // 2]].tolist())
    return np.array([p in half_a for p in persons])


def measure(x: np.ndarray, idx: np.ndarray, persons: list[str], norm: str):
    from cnnkit.face import openset

    return openset.evaluate_descriptors(x[idx], [persons[i] for i in idx], norm=norm)


def pair_accuracy(x: np.ndarray, pa, pb, same, folds, keep) -> float:
    """k-fold LFW pair accuracy over the pairs ``keep`` (both persons in the evaluation half)."""
    d = np.linalg.norm(x[pa[keep]] - x[pb[keep]], axis=1)
    d = np.nan_to_num(d, nan=bench_face.MISSING_DISTANCE)  # dlib: no face = "different"
    return bench_face.kfold(d, same[keep], folds[keep])[0]


# ---------------------------------------------------------------- (a) linear maps


def _labels(persons: list[str]) -> np.ndarray:
    return np.unique(persons, return_inverse=True)[1]


def within_scatter(x: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Within-person covariance (persons with 2+ descriptors): (d, d)."""
    xs = []
    for c in np.unique(lab):
        m = lab == c
        if m.sum() >= 2:
            xs.append(x[m] - x[m].mean(0))
    z = np.concatenate(xs)
    return z.T @ z / (len(z) - len(xs))


def _shrunk(s: np.ndarray, shrink: float) -> np.ndarray:
    return (1 - shrink) * s + shrink * np.trace(s) / len(s) * np.eye(len(s))


def fit_wccn(x: np.ndarray, lab: np.ndarray, shrink: float) -> np.ndarray:
    """Within-class covariance normalisation: W = S_w^{-1/2} (S_w shrunk to a multiple of I),
    scaled so that the mean eigenvalue is kept (distances stay in about the same units)."""
    s = _shrunk(within_scatter(x, lab), shrink)
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(w.mean() / w)) @ v.T


def fit_lda(x: np.ndarray, lab: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """LDA to k dimensions, within-class whitened: (d, k)."""
    import scipy.linalg

    sw = _shrunk(within_scatter(x, lab), shrink)
    classes = np.unique(lab)
    means = np.stack([x[lab == c].mean(0) for c in classes])
    sizes = np.array([(lab == c).sum() for c in classes])
    mu = x.mean(0)
    sb = ((means - mu).T * sizes) @ (means - mu) / sizes.sum()
    w, v = scipy.linalg.eigh(sb, sw)  # v.T @ sw @ v = I
    return v[:, ::-1][:, :k] * np.sqrt(np.trace(sw) / len(sw))


def _triplet_steps(
    params, forward, feats, lab, steps, lr, margin, seed, decay=None, mining="batch-hard"
):
    """Adam on batch-hard triplet loss; batches of P=32 persons x K=4 samples of persons with 2+
    images, each sample a random choice among the image's augmented inputs ``feats``."""
    import torch

    from cnnkit.face.losses import mined_triplet_loss

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    by = [np.flatnonzero(lab == c) for c in np.unique(lab)]
    by = [ix for ix in by if len(ix) >= 2]
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        persons = rng.choice(len(by), 32, replace=False)
        idx, labels = [], []
        for j in persons:
            idx += rng.choice(by[j], 4, replace=len(by[j]) < 4).tolist()
            labels += [j] * 4
        view = rng.integers(0, len(feats), len(idx))
        x = torch.stack([torch.from_numpy(feats[v][i]) for v, i in zip(view, idx, strict=True)])
        loss, _, _ = mined_triplet_loss(forward(x), torch.tensor(labels), margin, mining)
        if decay is not None:
            loss = loss + decay()
        opt.zero_grad()
        loss.backward()
        opt.step()


def fit_triplet_linear(views, lab, steps=400, lr=1e-3, margin=0.2, seed=0) -> np.ndarray:
    """A 128x128 map M (x -> x @ M), from I, by batch-hard triplet loss on the training
    persons' descriptors (views: the chip's, the mirror's and their mean)."""
    import torch

    m = torch.nn.Parameter(torch.eye(128))
    eye = torch.eye(128)
    views32 = [v.astype(np.float32) for v in views]
    _triplet_steps(
        [m], lambda x: x @ m, views32, lab, steps, lr, margin, seed,
        decay=lambda: 1e-3 * ((m - eye) ** 2).sum(),
    )  # fmt: skip
    return m.detach().numpy().astype(np.float64)


# ---------------------------------------------------------------- (b) fine-tuned tail


def tail_model(units_from: int):
    """A trainable copy of encoder units ``units_from``..13 and the fc (dlib's weights), taking
    the input of unit TAIL_FROM."""
    import copy

    import torch

    from cnnkit.face import default_encoder

    model = default_encoder().model
    pre = copy.deepcopy(model.blocks[TAIL_FROM:units_from])
    blocks = copy.deepcopy(model.blocks[units_from:])
    fc = copy.deepcopy(model.fc)
    for p in pre.parameters():
        p.requires_grad_(False)

    class Tail(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pre, self.blocks, self.fc = pre, blocks, fc

        def forward(self, x):
            with torch.no_grad():
                x = self.pre(x)
            return self.fc(self.blocks(x).mean(dim=(2, 3)))

    return Tail()


def tail_embed(tail, feat: np.ndarray) -> np.ndarray:
    import torch

    tail.eval()
    with torch.inference_mode():
        return np.concatenate(
            [tail(torch.from_numpy(feat[i : i + 512])).numpy() for i in range(0, len(feat), 512)]
        )


def fit_tail(
    feat, feat_flip, lab, units_from=13, steps=300, lr=1e-4, margin=0.2, seed=0, mining="batch-hard"
):
    tail = tail_model(units_from)
    tail.train()
    params = [p for p in tail.parameters() if p.requires_grad]
    _triplet_steps(params, tail, [feat, feat_flip], lab, steps, lr, margin, seed, mining=mining)
    return tail


# ---------------------------------------------------------------- main


#: The tail fine-tunings measured: name -> (first trained unit, Adam lr, steps); batch-hard
#: mining, margin 0.2, batches of 32 persons x 4 photos. Unit 14 = the fc only. lr 1e-5 and 100
#: steps: the best of ``--inner-grid`` (inner splits of half A of seed 0).
TAILS = {"tail_fc": (14, 1e-5, 100), "tail_u13": (13, 1e-5, 100), "tail_u11": (11, 1e-5, 100)}


def levers(split_tr: np.ndarray, data) -> dict[str, np.ndarray]:
    """Every lever's descriptors of all images, each fitted on the images ``split_tr``."""
    persons, (feat, feat_flip, emb, emb_flip) = data
    base = (emb + emb_flip) / 2
    tr = np.flatnonzero(split_tr)
    lab = _labels([persons[i] for i in tr])
    out = {"baseline": base}
    for shrink in (0.1, 0.5):
        out[f"wccn_s{shrink}"] = base @ fit_wccn(base[tr], lab, shrink)
    out["lda64"] = base @ fit_lda(base[tr], lab, 64, 0.1)
    m = fit_triplet_linear([emb[tr], emb_flip[tr], base[tr]], lab, steps=300, lr=1e-4)
    out["triplet_linear"] = base @ m
    for key, (units_from, lr, steps) in TAILS.items():
        tail = fit_tail(feat[tr], feat_flip[tr], lab, units_from, steps, lr)
        out[key] = (tail_embed(tail, feat) + tail_embed(tail, feat_flip)) / 2
    return out


def run_split(split, tr, persons, xd, tail_data, pair_data) -> dict:
    """Every lever fitted on the images ``tr``, measured on the others; prints a row each."""
    pa, pb, same, folds = pair_data
    ev = np.flatnonzero(~tr)
    keep = (~tr)[pa] & (~tr)[pb]
    table = {}
    for key, x in {"dlib": xd, **levers(tr, (persons, tail_data))}.items():
        row: dict[str, float] = {}
        for norm in ("none", "tnorm"):
            r = measure(x, ev, persons, norm)
            row[f"{norm}_rank1"] = r.rank1
            for f in (0.01, 0.001):
                row[f"{norm}_fnir{f}"] = r.fnir_at_fpir[f]
        if key == "dlib":
            print(
                f"split {split}: train on {int(tr.sum())} images of "
                f"{len(set(np.array(persons)[tr]))} persons; evaluate: gallery "
                f"{r.n_gallery}, {r.n_mated} mated, {r.n_nonmated} non-mated searches, "
                f"{int(keep.sum())} LFW pairs"
            )
        row["pair_acc"] = pair_accuracy(x, pa, pb, same, folds, keep)
        table[split, key] = row
        print(f"  {split} {key:15s} " + _fmt(row), flush=True)
    return table


#: --inner-grid: (Adam lr, steps, margin) of the unit-13 fine-tuning.
INNER_GRID = [(1e-5, 100, 0.2), (1e-5, 300, 0.2), (3e-6, 300, 0.2), (3e-5, 100, 0.2),
              (1e-5, 100, 0.1), (1e-5, 1000, 0.2)]  # fmt: skip


def inner_grid(persons: list[str], tail_data) -> None:
    """Each INNER_GRID setting on inner splits (seeds 1, 2, both ways) of half A of seed 0:
    mean rank-1 and FNIR at FPIR 0.01 / 0.001, distance and T-norm."""
    feat, feat_flip, emb, emb_flip = tail_data
    a = np.flatnonzero(person_halves(persons, 0))
    rows: dict[str, list[list[float]]] = {}
    for seed in (1, 2):
        inner = person_halves([persons[i] for i in a], seed)
        for tr, ev in ((a[inner], a[~inner]), (a[~inner], a[inner])):
            lab = _labels([persons[i] for i in tr])
            variants = {"baseline": (emb + emb_flip) / 2}
            for lr, steps, margin in INNER_GRID:
                tail = fit_tail(feat[tr], feat_flip[tr], lab, 13, steps, lr, margin)
                both = tail_embed(tail, feat) + tail_embed(tail, feat_flip)
                variants[f"lr {lr:g}, {steps} steps, margin {margin:g}"] = both / 2
            for key, x in variants.items():
                r0, r1 = (measure(x, ev, persons, n) for n in ("none", "tnorm"))
                rows.setdefault(key, []).append(
                    [
                        r0.rank1,
                        r0.fnir_at_fpir[0.01],
                        r1.fnir_at_fpir[0.01],
                        r0.fnir_at_fpir[0.001],
                        r1.fnir_at_fpir[0.001],
                    ]  # fmt: skip
                )
    for key, v in rows.items():
        m = 100 * np.mean(v, axis=0)
        print(
            f"  inner {key:34s} r1 {m[0]:.2f} FNIR@.01 distance {m[1]:.2f} T-norm {m[2]:.2f}"
            f" | FNIR@.001 distance {m[3]:.2f} T-norm {m[4]:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    import argparse
    import logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=bench_openset.LFW_DEFAULT)
    ap.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the person splits"
    )
    ap.add_argument("--inner-grid", action="store_true", help="only the tail settings' grid")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    bench_face._threads(1)
    images, pair_data, tail_data, xd = load_lfw(args.lfw)
    persons = [name.split("/")[0] for name in images]
    feat, feat_flip, emb, _ = tail_data
    check = np.abs(tail_embed(tail_model(TAIL_FROM), feat[:64]) - emb[:64]).max()
    print(f"tail check: max |tail(cached unit-{TAIL_FROM} input) - descriptor| = {check:.1e}")
    if args.inner_grid:
        inner_grid(persons, tail_data)
        return 0
    table: dict[tuple[str, str], dict[str, float]] = {}
    for seed in args.seeds:
        half = person_halves(persons, seed)
        for split, tr in ((f"s{seed}:A->B", half), (f"s{seed}:B->A", ~half)):
            table.update(run_split(split, tr, persons, xd, tail_data, pair_data))
    splits = list(dict.fromkeys(s for s, _ in table))
    print(f"mean of the {len(splits)} evaluation halves:")
    keys = list(dict.fromkeys(k for _, k in table))
    mean = {
        k: {m: float(np.mean([table[s, k][m] for s in splits])) for m in table[splits[0], k]}
        for k in keys
    }
    for k in keys:
        print(f"  mean {k:18s} " + _fmt(mean[k]))
    dl = mean["dlib"]["none_fnir0.01"]
    best = min((k for k in keys if k != "dlib"), key=lambda k: mean[k]["tnorm_fnir0.01"])
    print(
        f"RESULT baseline_fnir_at_fpir_0.01={mean['baseline']['tnorm_fnir0.01']:.4f} "
        f"best_lever={best} best_fnir_at_fpir_0.01={mean[best]['tnorm_fnir0.01']:.4f} "
        f"dlib_fnir_at_fpir_0.01={dl:.4f} "
        f"best_ratio_vs_dlib={mean[best]['tnorm_fnir0.01'] / dl:.3f} "
        f"baseline_rank1={mean['baseline']['tnorm_rank1']:.4f} "
        f"best_rank1={mean[best]['tnorm_rank1']:.4f} dlib_rank1={mean['dlib']['none_rank1']:.4f}"
    )
    return 0


def _fmt(row: dict[str, float]) -> str:
    return (
        " | ".join(
            f"{n}: r1 {100 * row[n + '_rank1']:.2f} FNIR@.01 {100 * row[n + '_fnir0.01']:.2f} "
            f"@.001 {100 * row[n + '_fnir0.001']:.2f}"
            for n in ("none", "tnorm")
        )
        + f" | pairs {100 * row['pair_acc']:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
