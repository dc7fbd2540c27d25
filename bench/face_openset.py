"""Open-set 1:N identification on LFW-dev, cnnkit vs dlib's own pipeline, and what each lever buys.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_openset.py [--lfw DIR]

Protocol (NIST FRVT 1:N terms, cnnkit.face.openset): every LFW-dev person with 2+ photos is
enrolled with the first photo and searched with the others (mated); every photo of the persons
with one photo is a non-mated search. Reported: rank-1, FNIR at FPIR 0.01 / 0.001 and the tau of
each; for dlib also FPIR and FNIR at its default tolerance 0.6.

- dlib: face_recognition's pipeline (dlib HOG at upsample 1, 5-point landmarks,
  ``face_recognition_model_v1.compute_face_descriptor``); the face nearest the centre; a photo
  without a face enrolls nothing / searches as a miss (a mated miss, a non-mated reject).
- cnnkit: the descriptors of bench/face.py (cached in bench/out: HOG, retry at upsample 2, then
  the median box), per pipeline (dlib, flip, subpixel, subpixel+flip,
  subpixel+flip+68).
- "the default" here: ``subpixel+flip+68`` (the dlib part of the default fused pipeline, the
  default before it; the fused one is bench/face_fusion.py's) with S-norm scores
  (cnnkit.face.openset.DEFAULT_NORM).
- levers: T-norm of the scores; 2 enrolled photos per person (min distance, or the mean
  descriptor) against 1, on the same searches (persons with 3+ photos); tau for gallery sizes.
- pipeline cost: descriptors/s of each pipeline on LFW-dev images (detect + landmarks + align +
  embed, 1 thread).

Last line: ``RESULT fnir_at_fpir_0.01=<cnnkit default> dlib_fnir_at_fpir_0.01=<dlib> ratio=<x>
rank1=<r> ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face as bench_face  # noqa: E402  (bench/face.py: LFW boxes and descriptors, cached)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
#: the best dlib-only pipeline (the dlib part of the fused default; bench/face_fusion.py has both)
DLIB_PART = "subpixel+flip+68"
LFW_DEFAULT = next(
    (
        p
        for p in (ROOT.parent / "shared/data/lfw-dev", Path("/work/shared/data/lfw-dev"))
        if p.is_dir()
    ),
    ROOT.parent / "shared/data/lfw-dev",
)


def dlib_descriptors(images: list[str], root: Path, cache: Path) -> np.ndarray:
    """face_recognition-style descriptors, NaN where dlib's HOG finds no face: (n, 128)."""
    import dlib

    from cnnkit.face import load_image, model_file
    from cnnkit.progress import progress

    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == images:
            return z["emb"]
    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(str(model_file("shape_predictor_5")))
    net = dlib.face_recognition_model_v1(str(model_file("resnet_v1")))
    out = np.full((len(images), 128), np.nan, np.float32)
    for i, name in enumerate(progress(images, desc="dlib descriptors", unit="img")):
        img = load_image(root / name)
        rects = list(detector(img, 1))
        if not rects:
            continue
        h, w = img.shape[:2]
        r = min(
            rects,
            key=lambda r: (
                ((r.top() + r.bottom()) / 2 - h / 2) ** 2
                + ((r.left() + r.right()) / 2 - w / 2) ** 2
            ),
        )
        out[i] = np.array(net.compute_face_descriptor(img, shape(img, r)))
    bench_face._save_npz(cache, names=np.array(images), emb=out)
    return out


def fmt(r) -> str:
    return (
        f"rank-1 {100 * r.rank1:.2f}%, FNIR@FPIR=0.01 {100 * r.fnir_at_fpir[0.01]:.2f}% "
        f"(tau {r.tau_at_fpir[0.01]:.3f}), FNIR@FPIR=0.001 {100 * r.fnir_at_fpir[0.001]:.2f}% "
        f"(tau {r.tau_at_fpir[0.001]:.3f})"
    )


def at_tau(x: np.ndarray, persons: list[str], tau: float) -> tuple[float, float]:
    """(FPIR, FNIR) at a fixed tau on the default split."""
    from cnnkit.face import openset

    sp = openset.split_persons(persons)
    g = x[sp.gallery]
    ok = ~np.isnan(g).any(axis=1)
    d = openset.person_distances(np.nan_to_num(x[sp.probes], nan=1e3), g[ok], sp.gallery_labels[ok])
    if d.shape[1] < len(sp.persons):
        d = np.concatenate([d, np.full((len(d), len(sp.persons) - d.shape[1]), 1e3)], axis=1)
    s = openset.search(d, sp.mates)
    m = s.mate >= 0
    return float((s.score[~m] <= tau).mean()), openset.fnir_at(s, tau)


def two_photo_lever(x: np.ndarray, persons: list[str], norm: str = "none") -> dict[str, object]:
    """Enroll 1 vs 2 photos (min distance, mean descriptor) on the same searches."""
    from cnnkit.face import openset

    sp = openset.split_persons(persons, enrolled_per_person=2)
    first = sp.gallery[::2], sp.gallery_labels[::2]
    mean = (x[sp.gallery[::2]] + x[sp.gallery[1::2]]) / 2
    out = {}
    for key, (g, lab) in {
        "one_photo": (x[first[0]], first[1]),
        "two_photos_min": (x[sp.gallery], sp.gallery_labels),
        "two_photos_mean": (mean, sp.gallery_labels[::2]),
    }.items():
        d = openset.person_distances(x[sp.probes], g, lab)
        s = openset.search(d, sp.mates, norm)
        out[key] = openset.evaluate_searches(s, len(sp.persons), norm)
    return out


def pipeline_cost(root: Path, images: list[str], n: int = 120) -> dict[str, float]:
    """Descriptors/s of each pipeline on ``n`` LFW-dev images, 1 thread (median of 2 runs)."""
    from cnnkit import face
    from cnnkit.face.descriptors import PIPELINES

    imgs = [face.load_image(root / name) for name in images[:: max(1, len(images) // n)][:n]]
    enc = face.default_encoder()
    face.faces(imgs[0], 1, enc)  # warm up
    rates: dict[str, list[float]] = {k: [] for k in PIPELINES}
    for _ in range(2):
        for key, p in PIPELINES.items():
            t = time.perf_counter()
            k = sum(
                len(face.faces(im, 1, enc, p.landmark_upsample, p.flip, views=p.views))
                for im in imgs
            )
            rates[key].append(k / (time.perf_counter() - t))
    return {k: float(np.median(v)) for k, v in rates.items()}


def main(argv: list[str] | None = None) -> int:
    from cnnkit.face import openset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=LFW_DEFAULT)
    ap.add_argument("--det", type=Path, default=OUT / "face_openset_det.png")
    ap.add_argument("--skip-cost", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bench_face._threads(1)
    images, (boxes, _), *_ = bench_face.lfw_setup(args.lfw)
    root = args.lfw / "images"
    persons = [name.split("/")[0] for name in images]
    e0, e0f = bench_face.lfw_embeddings(images, root, boxes, 0, OUT / "lfw_dev_emb_k0.npz")
    e1, e1f = bench_face.lfw_embeddings(images, root, boxes, 1, OUT / "lfw_dev_emb_k1.npz")
    e68, e68f = bench_face.lfw_embeddings(images, root, boxes, 1, OUT / "lfw_dev_emb_68.npz", 68)
    variants = {
        "dlib": e0,
        "flip": (e0 + e0f) / 2,
        "subpixel": e1,
        "subpixel+flip": (e1 + e1f) / 2,
        "subpixel+flip+68": (e1 + e1f + e68 + e68f) / 4,
    }
    xd = dlib_descriptors(images, root, OUT / "lfw_dev_dlib_fr.npz")

    res_dlib = openset.evaluate_descriptors(xd, persons)
    fpir6, fnir6 = at_tau(xd, persons, 0.6)
    print(
        f"searches: gallery {res_dlib.n_gallery} persons, {res_dlib.n_mated} mated, "
        f"{res_dlib.n_nonmated} non-mated; dlib finds no face in {int(np.isnan(xd[:, 0]).sum())} "
        "images"
    )
    print(f"  dlib (face_recognition)  {fmt(res_dlib)}")
    print(f"  dlib at tolerance 0.6: FPIR {100 * fpir6:.1f}%, FNIR {100 * fnir6:.2f}%")
    results = {}
    for key, x in variants.items():
        for norm in openset.NORMS:
            r = openset.evaluate_descriptors(x, persons, norm=norm)
            results[key, norm] = r
            print(f"  cnnkit {key:14s} {norm:5s} {fmt(r)}")
    best_x = variants[DLIB_PART]
    default = results[DLIB_PART, openset.DEFAULT_NORM]
    openset.plot_det(default, args.det, title="DET, LFW-dev, cnnkit default")
    print(f"  DET plot: {args.det}")
    fpir_c, fnir_c = at_tau(best_x, persons, 0.6)
    print(f"  cnnkit default at tau 0.6: FPIR {100 * fpir_c:.1f}%, FNIR {100 * fnir_c:.2f}%")

    print("two enrolled photos (persons with 3+ photos; same searches):")
    for norm in ("none", "tnorm"):
        for key, r in two_photo_lever(best_x, persons, norm).items():
            print(f"  {key:16s} {norm:5s} {fmt(r)}")
    print("tau and FNIR at FPIR 0.01 by gallery size (default pipeline; 5 draws, mean):")
    for g in (50, 200, res_dlib.n_gallery):
        line = f"  G={g:4d}:"
        for norm in openset.NORMS:
            draws = [
                openset.evaluate_descriptors(best_x, persons, gallery_size=g, seed=s, norm=norm)
                for s in range(5 if g < res_dlib.n_gallery else 1)
            ]
            tau = np.mean([d.tau_at_fpir[0.01] for d in draws])
            fnir = np.mean([d.fnir_at_fpir[0.01] for d in draws])
            line += f"  {norm}: tau {tau:.3f}, FNIR {100 * fnir:.2f}%"
        print(line)
    cost = {} if args.skip_cost else pipeline_cost(root, images)
    for key, rate in cost.items():
        print(f"  pipeline {key:14s} {rate:.1f} descriptors/s (detect+landmarks+align+embed)")
    ratio = default.fnir_at_fpir[0.01] / res_dlib.fnir_at_fpir[0.01]
    print(
        f"RESULT fnir_at_fpir_0.01={default.fnir_at_fpir[0.01]:.4f} "
        f"dlib_fnir_at_fpir_0.01={res_dlib.fnir_at_fpir[0.01]:.4f} fnir_ratio_vs_dlib={ratio:.3f} "
        f"rank1={default.rank1:.4f} dlib_rank1={res_dlib.rank1:.4f} "
        f"fnir_at_fpir_0.001={default.fnir_at_fpir[0.001]:.4f} "
        f"dlib_fnir_at_fpir_0.001={res_dlib.fnir_at_fpir[0.001]:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
