"""The fused pipeline (dlib's ResNet + FaceNet, `subpixel+flip+68+facenet`) on LFW-dev.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_fusion.py [--lfw DIR] [--skip-cost]

Boxes: the CNN detector's (what the default `auto` runs on these 150x150 images), as
bench/face_detector_lever.py. Per image, the dlib part is the default pipeline's descriptor
(cached by that bench) and FaceNet's raw outputs for the crop and its mirror are cached here
(bench/out/lfw_dev_facenet_*.npz), so the variants below are combinations, not new runs:

- open set (NIST terms, S-norm, `cnnkit.face.openset`): the default, FaceNet alone, the fused
  descriptor at weights w = 0.3 / 0.5 (shipped) / 0.7, with FaceNet's flip too, with the crop's
  padding 0.25 instead of 0.15, and with FaceNet in bf16; dlib's own pipeline is the peer;
- the same on 6 person-disjoint halves (bench/face_openset_levers.py's split), where nothing
  is chosen;
- LFW pair accuracy (5 folds, tau chosen on the other folds);
- cost: descriptors/s of the default and the fused pipeline on 100 images, 1 thread.

A check first: the cached parts, combined, equal what `cnnkit.face.faces` gives with the fused
pipeline on a few images (so the figures are the product's).

Ends with ``RESULT fused_rank1=... fused_fnir_at_fpir_0.01=... fnir_ratio_vs_dlib=...
fused_acc=... default_rank1=... halves_fused_rank1=... cost_ratio=...``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face as bench_face  # noqa: E402  (bench/face.py: LFW pairs, boxes, k-fold)
import face_detector_lever as lever  # noqa: E402  (CNN boxes, the default's descriptors)
import face_openset  # noqa: E402  (dlib's own descriptors, the peer)
from face_openset_levers import pair_accuracy, person_halves  # noqa: E402

OUT = bench_face.OUT
PREVIOUS, FUSED = "subpixel+flip+68", "subpixel+flip+68+facenet"


def facenet_parts(
    images: list[str], root: Path, boxes: np.ndarray, padding: float, precision: str
) -> np.ndarray:
    """FaceNet's raw outputs for each image's crop and its mirror: (2, n, 128), cached."""
    from cnnkit import face
    from cnnkit.face.alignment import box_crop
    from cnnkit.face.detection import hog_box_from_landmarks
    from cnnkit.face.facenet import FaceNetEncoder
    from cnnkit.progress import progress

    cache = OUT / f"lfw_dev_facenet_p{int(round(padding * 100))}_{precision}.npz"
    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == images:
            return z["out"]
    net = FaceNetEncoder.load(precision=precision)
    out = np.zeros((2, len(images), 128), np.float32)
    step = 32
    for i in progress(range(0, len(images), step), desc=f"FaceNet p={padding} {precision}"):
        crops = []
        for name, box in zip(images[i : i + step], boxes[i : i + step], strict=True):
            img = face.load_image(root / name)
            marks = face.landmarks(img, tuple(int(v) for v in box), 1)
            crops.append(box_crop(img, hog_box_from_landmarks(marks), padding))
        out[:, i : i + len(crops)] = net.outputs(np.stack(crops)).numpy()
    bench_face._save_npz(cache, names=np.array(images), out=out)
    return out


def fuse(d: np.ndarray, parts: np.ndarray, w: float = 0.5, flip: bool = False) -> np.ndarray:
    """The fused descriptor from a dlib part and FaceNet's raw outputs (as the product)."""
    from cnnkit.face.pipeline import FACENET_SCALE

    f = parts.sum(0) if flip else parts[0]
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    return np.hstack([np.sqrt(1 - w) * d, np.sqrt(w) * FACENET_SCALE * f]).astype(np.float32)


def check_product(images: list[str], root: Path, boxes: np.ndarray, fused: np.ndarray) -> float:
    """Max |cached fused - cnnkit.face.faces(fused pipeline)| over a few images whose CNN box
    the pipeline finds again (the face nearest the centre)."""
    from cnnkit import face
    from cnnkit.face.descriptors import get_pipeline

    p = get_pipeline(FUSED)
    enc = face.default_encoder()
    worst = 0.0
    for i in range(0, len(images), len(images) // 8)[:8]:
        img = face.load_image(root / images[i])
        found = face.faces(img, 1, enc, p.landmark_upsample, p.flip, "cnn", p.views)
        match = [f for f in found if tuple(f.box) == tuple(int(v) for v in boxes[i])]
        if match:
            worst = max(worst, float(np.abs(match[0].embedding - fused[i]).max()))
    return worst


def cost(root: Path, images: list[str], n: int = 100) -> dict[str, float]:
    """Descriptors/s of the previous default and the fused pipeline (auto detector), 1 thread,
    best of 2, with the encoder in fp32 and in bf16 (where this CPU runs it natively; FaceNet
    follows the encoder's precision)."""
    from cnnkit import face
    from cnnkit.cpu import bf16_native
    from cnnkit.face.descriptors import get_pipeline
    from cnnkit.face.encoder import FaceEncoder

    imgs = [face.load_image(root / name) for name in images[:: max(1, len(images) // n)][:n]]
    encoders = {"fp32": face.default_encoder()}
    if bf16_native():
        encoders["bf16"] = FaceEncoder.load(precision="bf16")
    rates: dict[str, list[float]] = {}
    for _ in range(2):
        for prec, enc in encoders.items():
            for key in PREVIOUS, FUSED:
                p = get_pipeline(key)
                face.faces(imgs[0], 1, enc, p.landmark_upsample, p.flip, "auto", p.views)
                t = time.perf_counter()
                k = sum(
                    len(face.faces(im, 1, enc, p.landmark_upsample, p.flip, "auto", p.views))
                    for im in imgs
                )
                rates.setdefault(f"{key} {prec}", []).append(k / (time.perf_counter() - t))
    return {k: max(v) for k, v in rates.items()}


def main(argv: list[str] | None = None) -> int:
    from cnnkit.face import openset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=bench_face.LFW)
    ap.add_argument("--skip-cost", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    bench_face._threads(1)
    images, hog, same, folds, pa, pb = bench_face.lfw_setup(args.lfw)
    root = args.lfw / "images"
    persons = [name.split("/")[0] for name in images]
    boxes = lever.detector_boxes(images, root, hog)
    cnn = boxes["cnn"][0]
    d = lever.descriptors(images, root, boxes)["cnn"]
    parts = facenet_parts(images, root, cnn, 0.15, "fp32")
    fused = fuse(d, parts)
    print(
        "check: max |cached fused - cnnkit.face.faces| = "
        f"{check_product(images, root, cnn, fused):.1e}"
    )
    xd = face_openset.dlib_descriptors(images, root, OUT / "lfw_dev_dlib_fr.npz")
    rd = openset.evaluate_descriptors(xd, persons, norm="none")
    print(f"  dlib (face_recognition)       {face_openset.fmt(rd)}")
    parts_bf16 = facenet_parts(images, root, cnn, 0.15, "bf16")
    parts_p25 = facenet_parts(images, root, cnn, 0.25, "fp32")
    fn = parts.sum(0) / np.linalg.norm(parts.sum(0), axis=1, keepdims=True)
    variants = {
        "previous default (subpixel+flip+68)": d,
        "FaceNet alone": parts[0] / np.linalg.norm(parts[0], axis=1, keepdims=True),
        "FaceNet alone, + flip": fn,
        "fused w=0.3": fuse(d, parts, 0.3),
        "fused w=0.5 (shipped)": fused,
        "fused w=0.7": fuse(d, parts, 0.7),
        "fused, FaceNet with its flip": fuse(d, parts, flip=True),
        "fused, crop padding 0.25": fuse(d, parts_p25),
        "fused, FaceNet in bf16": fuse(d, parts_bf16),
    }
    res = {}
    print("open set with S-norm scores (dlib: the distance), pairs: 5 folds")
    for key, x in variants.items():
        res[key] = openset.evaluate_descriptors(x, persons, norm=openset.DEFAULT_NORM)
        acc, se, _ = bench_face.kfold(np.linalg.norm(x[pa] - x[pb], axis=1), same, folds)
        print(f"  {key:30s} {face_openset.fmt(res[key])}  pairs {100 * acc:.2f}% +- {100 * se:.2f}")
    bf16_gap = float(np.abs(variants["fused, FaceNet in bf16"] - fused).max())
    print(f"  bf16 FaceNet: max |fused descriptor difference| {bf16_gap:.4f}")

    print(
        "6 person-disjoint halves (bench/face_openset_levers.py's split; nothing chosen on them):"
    )
    halves: dict[str, list[tuple[float, float, float]]] = {
        k: [] for k in ("dlib", "default", "fused")
    }
    for seed in range(3):
        half = person_halves(persons, seed)
        for keep in (half, ~half):
            idx = np.flatnonzero(keep)
            sub = [persons[i] for i in idx]
            in_half = keep[pa] & keep[pb]
            for key, x in (("dlib", xd), ("default", d), ("fused", fused)):
                norm = "none" if key == "dlib" else openset.DEFAULT_NORM
                r = openset.evaluate_descriptors(x[idx], sub, norm=norm)
                acc = pair_accuracy(x, pa, pb, same, folds, in_half)
                halves[key].append((r.rank1, r.fnir_at_fpir[0.01], acc))
    mean = {k: np.mean(v, axis=0) for k, v in halves.items()}
    for key, (r1, fnir, acc) in mean.items():
        print(
            f"  {key:8s} rank-1 {100 * r1:.2f}%  FNIR@FPIR.01 {100 * fnir:.2f}%  "
            f"pairs {100 * acc:.2f}%"
        )
    wins = sum(f[0] > g[0] for f, g in zip(halves["fused"], halves["default"], strict=True))
    print(f"  fused rank-1 above the default's in {wins} of 6 halves")

    rates = {} if args.skip_cost else cost(root, images)
    for key, rate in rates.items():
        print(f"  pipeline {key:26s} {rate:.1f} descriptors/s (auto detector, 1 thread)")
    f_res, d_res = res["fused w=0.5 (shipped)"], res["previous default (subpixel+flip+68)"]
    acc_f = bench_face.kfold(np.linalg.norm(fused[pa] - fused[pb], axis=1), same, folds)[0]
    ratio = rates.get(f"{FUSED} fp32", np.nan) / rates.get(f"{PREVIOUS} fp32", np.nan)
    ratio16 = rates.get(f"{FUSED} bf16", np.nan) / rates.get(f"{PREVIOUS} bf16", np.nan)
    print(
        f"RESULT fused_rank1={f_res.rank1:.4f} "
        f"fused_fnir_at_fpir_0.01={f_res.fnir_at_fpir[0.01]:.4f} "
        f"fnir_ratio_vs_dlib={f_res.fnir_at_fpir[0.01] / rd.fnir_at_fpir[0.01]:.3f} "
        f"fused_fnir_at_fpir_0.001={f_res.fnir_at_fpir[0.001]:.4f} fused_acc={acc_f:.4f} "
        f"default_rank1={d_res.rank1:.4f} dlib_rank1={rd.rank1:.4f} "
        f"halves_fused_rank1={mean['fused'][0]:.4f} halves_default_rank1={mean['default'][0]:.4f} "
        f"cost_ratio={ratio:.2f} cost_ratio_bf16={ratio16:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
