"""Face benchmark: encoder speed vs dlib, LFW-dev accuracy, and identification time at K = 1e6.

    .venv/bin/python bench/face.py                  # all three (LFW embeddings cached in bench/out)
    .venv/bin/python bench/face.py --skip-lfw       # speed only
    .venv/bin/python bench/face.py --lfw-threads 2  # embed LFW with 2 threads (speed stays at 1)

- embed_speedup_vs_dlib: descriptor throughput of cnnkit's FaceEncoder (batch 16) with
  ``precision="auto"`` (the path it took is printed and is ``embed_precision``) over dlib's
  ``compute_face_descriptor`` on the same chips, both at 1 thread, interleaved, median of
  repeats. Every precision this machine runs (fp32, bf16, int8) and its maximum descriptor
  difference from dlib are printed too, and (unless --skip-precisions) the LFW-dev accuracy of
  the headline variant with the encoder in each precision.
- lfw_dev_acc: the standard protocol on ../shared/data/lfw-dev (5 folds x 600 pairs; for each
  fold the threshold is chosen on the other folds). Variants (see LFW_VARIANTS): dlib's pipeline
  with HOG only (a missed face counts as "different"), + detection fallback, + flip averaging,
  and the same with sub-pixel landmarks. The headline is the best variant (chosen on lfw-dev,
  which the issue reserves for choosing defaults): sub-pixel landmarks + flip averaging.
  Boxes and descriptors are cached in bench/out/, so reruns take seconds.
- identify_ms_1e6: from ``bench/gallery_bench.py: identify_ms(1_000_000)`` when that exists.

Last line: ``RESULT embed_speedup_vs_dlib=<x> embed_precision=<p> lfw_dev_acc=<a>
identify_ms_1e6=<t>``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: ../shared/data/lfw-dev beside the checkout (a worktree may sit one folder deeper).
LFW = next(
    (p / "shared" / "data" / "lfw-dev" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
    ROOT.parent / "shared" / "data" / "lfw-dev",
)
OUT = ROOT / "bench" / "out"
#: Distance given to a pair where a face is missing: counts as "different" at any sane tau.
MISSING_DISTANCE = 10.0

log = logging.getLogger("bench.face")


def _threads(n: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


# ---------------------------------------------------------------- speed


def bench_chips() -> np.ndarray:
    """16 chips: the shipped faces and transformed copies (flip, brightness, crop, rotate)."""
    from PIL import Image, ImageEnhance

    from cnnkit import face
    from cnnkit.face.alignment import align_faces
    from cnnkit.io import load_image_pil, sample_path

    chips = []
    for name in ("grace_hopper", "astronaut"):
        pil = load_image_pil(sample_path(name))
        variants = [
            pil,
            pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            ImageEnhance.Brightness(pil).enhance(1.3),
            pil.rotate(10, resample=Image.Resampling.BILINEAR),
        ]
        for v in variants:
            img = np.asarray(v)
            for box in face.detect(img, 1)[:2]:
                chips.append(align_faces(img, [box])[1][0])
    while len(chips) < 16:
        chips.append(chips[len(chips) % 4][:, ::-1].copy())
    return np.stack(chips[:16])


def runnable_precisions() -> list[str]:
    """The encoder precisions this machine can run (bf16 runs anywhere; int8 needs x86)."""
    from cnnkit.face.precision import cpu_has_int8

    return ["fp32", "bf16"] + (["int8"] if cpu_has_int8() else [])


def measure_speed(repeats: int = 3) -> dict[str, float | str]:
    """ms per face for dlib and FaceEncoder in each precision (and ``auto``) at 1 thread."""
    import dlib

    from cnnkit.face import FaceEncoder, model_file

    _threads(1)
    chips = bench_chips()
    dlib_net = dlib.face_recognition_model_v1(str(model_file("resnet_v1")))
    base = FaceEncoder.load()
    encs = {p: FaceEncoder(base.model, base.model_id, precision=p) for p in runnable_precisions()}
    auto = FaceEncoder(base.model, base.model_id, precision="auto")
    n_dlib = 4  # dlib gains nothing from batching; 4 chips per repeat keeps the run short
    ref = np.array([np.array(dlib_net.compute_face_descriptor(c)) for c in chips[:n_dlib]])
    times: dict[str, list[float]] = {"dlib": [], **{p: [] for p in encs}}
    for _ in range(repeats):  # interleaved, so load changes hit all alike
        t = time.perf_counter()
        dlib_net.compute_face_descriptor(list(chips[:n_dlib]))
        times["dlib"].append((time.perf_counter() - t) / n_dlib)
        for p, enc in encs.items():
            t = time.perf_counter()
            enc.embed(chips)
            times[p].append((time.perf_counter() - t) / len(chips))
    ms = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    out: dict[str, float | str] = {"dlib_ms": ms["dlib"], "auto": auto.precision}
    for p, enc in encs.items():
        out[f"{p}_ms"] = ms[p]
        out[f"speedup_{p}"] = ms["dlib"] / ms[p]
        out[f"{p}_max_abs"] = float(np.abs(enc.embed(chips[:n_dlib]) - ref).max())
    out["speedup"] = out[f"speedup_{auto.precision}"]
    return out


# ---------------------------------------------------------------- LFW


def read_pairs(path: Path) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """LFW pairs -> ([(rel_path1, rel_path2)], same (n,), fold (n,))."""
    try:
        from cnnkit.face.evaluate import read_pairs as shared_read_pairs

        ps = shared_read_pairs(path)
        return (
            [(p.first, p.second) for p in ps],
            np.array([p.same for p in ps]),
            np.array([p.fold for p in ps]),
        )
    except ImportError:
        pass
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    n_folds, per = int(lines[0][0]), int(lines[0][1])
    pairs, same = [], []
    for f in lines[1:]:
        if len(f) == 3:
            a, b = f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[0]}/{f[0]}_{int(f[2]):04d}.jpg"
        else:
            a, b = f"{f[0]}/{f[0]}_{int(f[1]):04d}.jpg", f"{f[2]}/{f[2]}_{int(f[3]):04d}.jpg"
        pairs.append((a, b))
        same.append(len(f) == 3)
    fold = np.arange(len(pairs)) // (2 * per)
    assert fold.max() + 1 == n_folds
    return pairs, np.array(same), fold


def kfold(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float, float]:
    """Standard protocol: (mean accuracy, standard error, mean tau). Uses cnnkit.face.evaluate's
    kfold_accuracy when it is there, else this minimal version."""
    try:
        from cnnkit.face.evaluate import kfold_accuracy

        r = kfold_accuracy(distances, same, folds=folds)
        return r.mean, r.se, float(np.mean(r.thresholds))
    except ImportError:
        pass
    accs, taus = [], []
    for k in np.unique(folds):
        held = folds == k
        d, s = distances[~held], same[~held]
        cands = np.unique(d)
        cands = np.concatenate([[cands[0] - 1e-6], (cands[1:] + cands[:-1]) / 2, [cands[-1]]])
        acc = [np.mean((d <= t) == s) for t in cands]
        tau = float(cands[int(np.argmax(acc))])
        taus.append(tau)
        accs.append(float(np.mean((distances[held] <= tau) == same[held])))
    a = np.array(accs)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))), float(np.mean(taus))


def _pick_central(boxes: list[tuple[int, int, int, int]], h: int, w: int) -> int:
    """Index of the box whose centre is nearest the image centre (LFW faces are centred)."""
    d = [((t + b) / 2 - h / 2) ** 2 + ((l + r) / 2 - w / 2) ** 2 for t, r, b, l in boxes]
    return int(np.argmin(d))


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def lfw_boxes(images: list[str], root: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """One face box per image, cached: ((n, 4) boxes (top, right, bottom, left), (n,) how).

    how: 0 = HOG at upsample 1 (the face nearest the centre), 1 = found only at upsample 2,
    2 = not found: the median HOG box of the run (LFW images share one size, face centred).
    """
    from cnnkit import face
    from cnnkit.progress import progress

    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == images:
            return z["boxes"], z["how"]
    boxes = np.zeros((len(images), 4), dtype=np.int64)
    how = np.zeros(len(images), dtype=np.int64)
    for i, name in enumerate(progress(images, desc="LFW detect", unit="img")):
        img = face.load_image(root / name)
        found = face.detect(img, 1)
        if not found:
            how[i], found = 1, face.detect(img, 2)
        if not found:
            how[i] = 2
            continue
        boxes[i] = found[_pick_central(found, *img.shape[:2])]
    if (how == 2).any():
        boxes[how == 2] = np.median(boxes[how != 2], axis=0).round().astype(np.int64)
    _save_npz(cache, names=np.array(images), boxes=boxes, how=how)
    return boxes, how


def lfw_embeddings(
    images: list[str],
    root: Path,
    boxes: np.ndarray,
    landmark_upsample: int,
    cache: Path,
    points: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of each image's chip and of its mirror image, cached: two (n, 128) arrays.
    ``points``: the chip aligned from the 5-point landmarks (``landmark_upsample``) or from
    dlib's 68-point ones, started from the HOG-style box of those 5 landmarks
    (:class:`cnnkit.face.alignment.View`)."""
    from cnnkit import face
    from cnnkit.face.alignment import View, align_faces
    from cnnkit.progress import progress

    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == images:
            return z["emb"], z["emb_flip"]
    view = View(points=points)
    enc = face.default_encoder()
    emb = np.zeros((len(images), 128), np.float32)
    emb_flip = np.zeros_like(emb)
    batch = 16
    for start in progress(range(0, len(images), batch), desc=f"LFW embed (k={landmark_upsample})"):
        chips = []
        for i in range(start, min(start + batch, len(images))):
            img = face.load_image(root / images[i])
            box = tuple(int(v) for v in boxes[i])
            chips.append(align_faces(img, [box], landmark_upsample, (view,))[1][0])
        c = np.stack(chips)
        emb[start : start + len(c)] = enc.embed(c)
        emb_flip[start : start + len(c)] = enc.embed(np.ascontiguousarray(c[:, :, ::-1]))
    _save_npz(cache, names=np.array(images), emb=emb, emb_flip=emb_flip)
    return emb, emb_flip


LfwSetup = tuple[
    list[str], tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


def lfw_setup(root: Path) -> LfwSetup:
    """The LFW-dev images the pairs name, (their boxes, how found) from :func:`lfw_boxes`, and
    per pair: same (n,), fold (n,), and the two images' indices (n,) and (n,)."""
    pairs, same, folds = read_pairs(root / "pairs.txt")
    images = sorted({p for pair in pairs for p in pair})
    boxes, how = lfw_boxes(images, root / "images", OUT / "lfw_dev_boxes.npz")
    index = {n: i for i, n in enumerate(images)}
    a = np.array([index[p] for p, _ in pairs])
    b = np.array([index[q] for _, q in pairs])
    return images, (boxes, how), same, folds, a, b


def measure_lfw(root: Path, threads: int) -> dict[str, float]:
    """Accuracy of each pipeline variant on LFW-dev by the standard k-fold protocol."""
    _threads(threads)
    images, (boxes, how), same, folds, a, b = lfw_setup(root)

    def dist(e: np.ndarray) -> np.ndarray:
        return np.linalg.norm(e[a] - e[b], axis=1)

    e0, e0f = lfw_embeddings(images, root / "images", boxes, 0, OUT / "lfw_dev_emb_k0.npz")
    e1, e1f = lfw_embeddings(images, root / "images", boxes, 1, OUT / "lfw_dev_emb_k1.npz")
    e68, e68f = lfw_embeddings(images, root / "images", boxes, 1, OUT / "lfw_dev_emb_68.npz", 68)
    d0 = dist(e0)
    variants = {
        "hog_only": np.where((how[a] == 0) & (how[b] == 0), d0, MISSING_DISTANCE),
        "fallback": d0,
        "fallback_flip": dist((e0 + e0f) / 2),
        "subpixel": dist(e1),
        "subpixel_flip": dist((e1 + e1f) / 2),
        "both_flip": dist((e0 + e0f + e1 + e1f) / 4),
        "subpixel_flip_68": dist((e1 + e1f + e68 + e68f) / 4),
    }
    results: dict[str, float] = {
        "n_images": len(images),
        "n_upsample2": int((how == 1).sum()),
        "n_fallback": int((how == 2).sum()),
    }
    for key, d in variants.items():
        mean, se, tau = kfold(d, same, folds)
        results[f"{key}_acc"], results[f"{key}_se"], results[f"{key}_tau"] = mean, se, tau
        results[f"{key}_acc_at_0.6"] = float(np.mean((d <= 0.6) == same))
    return results


def lfw_precision_accuracy(root: Path, threads: int, precisions: list[str]) -> dict[str, float]:
    """The headline variant (sub-pixel landmarks + flip) on LFW-dev with the encoder in each
    precision: k-fold accuracy and the largest descriptor difference from fp32. The chips are
    made once; descriptors are cached per precision in bench/out/lfw_dev_emb_k1_<p>.npz."""
    from cnnkit import face
    from cnnkit.face import FaceEncoder
    from cnnkit.face.alignment import align_faces
    from cnnkit.progress import progress

    _threads(threads)
    images, (boxes, _), same, folds, a, b = lfw_setup(root)
    caches = {p: OUT / f"lfw_dev_emb_k1_{p}.npz" for p in ["fp32", *precisions]}
    embs: dict[str, np.ndarray] = {}
    for p, cache in caches.items():
        if cache.is_file():
            z = np.load(cache)
            if list(z["names"]) == images:
                embs[p] = z["emb"]
    todo = [p for p in caches if p not in embs]
    if todo:
        base = FaceEncoder.load()
        encs = {p: FaceEncoder(base.model, base.model_id, precision=p) for p in todo}
        acc = {p: np.zeros((len(images), 2, 128), np.float32) for p in todo}
        batch = 16
        for start in progress(range(0, len(images), batch), desc="LFW embed per precision"):
            chips = []
            for i in range(start, min(start + batch, len(images))):
                img = face.load_image(root / "images" / images[i])
                box = tuple(int(v) for v in boxes[i])
                chips.append(align_faces(img, [box], 1)[1][0])
            c = np.stack(chips)
            flipped = np.ascontiguousarray(c[:, :, ::-1])
            for p, enc in encs.items():
                acc[p][start : start + len(c), 0] = enc.embed(c)
                acc[p][start : start + len(c), 1] = enc.embed(flipped)
        for p in todo:
            embs[p] = acc[p].mean(axis=1)
            _save_npz(caches[p], names=np.array(images), emb=embs[p])
    out: dict[str, float] = {}
    for p, e in embs.items():
        mean, se, _ = kfold(np.linalg.norm(e[a] - e[b], axis=1), same, folds)
        out[f"{p}_acc"], out[f"{p}_se"] = mean, se
        out[f"{p}_max_abs"] = float(np.abs(e - embs["fp32"]).max())
    return out


#: LFW variants printed, with what each adds.
LFW_VARIANTS = {
    "hog_only": "dlib pipeline, HOG at upsample 1 only (a missed face = 'different')",
    "fallback": "+ upsample-2 retry, then the median box",
    "fallback_flip": "+ average with the mirrored chip's descriptor",
    "subpixel": "fallback, sub-pixel landmarks (landmark_upsample=1)",
    "subpixel_flip": "+ flip averaging",
    "both_flip": "average of fallback_flip and subpixel_flip descriptors",
    "subpixel_flip_68": "+ the 68-point chip and its mirror (the default pipeline)",
}


def identify_ms() -> float:
    try:
        from gallery_bench import identify_ms as shared_identify_ms  # bench/gallery_bench.py
    except ImportError:
        return math.nan
    return float(shared_identify_ms(1_000_000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=LFW, help=f"lfw-dev folder (default {LFW})")
    parser.add_argument("--skip-lfw", action="store_true", help="speed (and identify) only")
    parser.add_argument("--skip-identify", action="store_true")
    parser.add_argument(
        "--skip-precisions", action="store_true", help="no LFW accuracy per encoder precision"
    )
    parser.add_argument("--lfw-threads", type=int, default=1, help="threads for LFW embedding")
    parser.add_argument("--repeats", type=int, default=3, help="speed repeats (median)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    speed = measure_speed(args.repeats)
    per = ", ".join(
        f"{p} {speed[p + '_ms']:.2f} ({speed['speedup_' + p]:.1f}x,"
        f" max |diff| vs dlib {speed[p + '_max_abs']:.1e})"
        for p in runnable_precisions()
    )
    print(f"speed (1 thread, ms/face): dlib {speed['dlib_ms']:.1f}, cnnkit {per}")
    print(f"precision auto on this machine: {speed['auto']} (the headline speedup's path)")
    acc = math.nan
    if not args.skip_lfw and (args.lfw / "pairs.txt").is_file():
        r = measure_lfw(args.lfw, args.lfw_threads)
        print(
            f"LFW-dev: {r['n_images']} images, {r['n_upsample2']} found only at upsample 2,"
            f" {r['n_fallback']} by the centre-box fallback"
        )
        for key, what in LFW_VARIANTS.items():
            print(
                f"  {key:14s} {100 * r[key + '_acc']:.2f}% +- {100 * r[key + '_se']:.2f}"
                f" (mean tau {r[key + '_tau']:.3f}; at 0.6: {100 * r[key + '_acc_at_0.6']:.2f}%)"
                f"  {what}"
            )
        best = max(LFW_VARIANTS, key=lambda k: r[k + "_acc"])
        print(f"  headline: {best}")
        acc = r[best + "_acc"]
        if not args.skip_precisions:
            precisions = [p for p in runnable_precisions() if p != "fp32"]
            q = lfw_precision_accuracy(args.lfw, args.lfw_threads, precisions)
            for p in ["fp32", *precisions]:
                print(
                    f"  subpixel_flip, encoder in {p}: {100 * q[p + '_acc']:.2f}%"
                    f" +- {100 * q[p + '_se']:.2f} (max |descriptor - fp32|"
                    f" {q[p + '_max_abs']:.1e})"
                )
    t = math.nan if args.skip_identify else identify_ms()
    print(
        f"RESULT embed_speedup_vs_dlib={speed['speedup']:.1f} embed_precision={speed['auto']}"
        f" lfw_dev_acc={acc:.4f} "
        f"identify_ms_1e6={t:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
