"""The face detector as an accuracy lever on LFW-dev: hog vs cnn vs hog+cnn, pairs and open-set.

    OMP_NUM_THREADS=1 .venv/bin/python bench/face_detector_lever.py [--lfw DIR] [--skip-dlib]

For each detector (cnnkit.face.detectors: ``hog``; ``cnn``, dlib's MMOD CNN; ``hog+cnn``, the CNN
only where HOG finds no face) the LFW pairs policy of bench/face.py (the face nearest the centre
at upsample 1, retry at upsample 2, else the median box of the run), then the dlib descriptor
pipeline ``subpixel+flip+68`` (the dlib part of the fused default; the sub-pixel 5-point chip
and the 68-point chip, each with its mirror, fp32 encoder as in bench/face.py) and:

- LFW-dev pair accuracy, 5 folds, tau chosen on the other folds (mean ± standard error);
- open-set 1:N (bench/face_openset.py's searches, S-norm scores): FNIR at FPIR 0.01 and its
  ratio to dlib's own pipeline (face_recognition) on the same searches, and rank-1;
- cost: images/s of the detector alone and descriptors/s of the whole pipeline, 1 thread, on
  the same LFW-dev images (interleaved).

Boxes and descriptors are cached in bench/out/ (the hog ones are bench/face.py's).
Last line: ``RESULT <det>_acc=... <det>_fnir=... <det>_rank1=... ...`` for each detector.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face as bench_face  # noqa: E402  (bench/face.py: LFW pairs, boxes, descriptors, k-fold)
import face_openset  # noqa: E402  (dlib's own descriptors for the open-set peer)

OUT = bench_face.OUT
DETECTORS = ("hog", "cnn", "hog+cnn")


def cnn_boxes(images: list[str], root: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """The CNN's centred box per image at upsample 1 and 2: ((n, 2, 4) boxes, (n, 2) found)."""
    from cnnkit import face
    from cnnkit.progress import progress

    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == images:
            return z["boxes"], z["found"]
    boxes = np.zeros((len(images), 2, 4), np.int64)
    found = np.zeros((len(images), 2), bool)
    for i, name in enumerate(progress(images, desc="LFW detect (cnn)", unit="img")):
        img = face.load_image(root / name)
        for k, up in enumerate((1, 2)):
            got = face.detect(img, up, "cnn")
            if got:
                found[i, k] = True
                boxes[i, k] = got[bench_face._pick_central(got, *img.shape[:2])]
                break
    bench_face._save_npz(cache, names=np.array(images), boxes=boxes, found=found)
    return boxes, found


def policy_boxes(
    hog: tuple[np.ndarray, np.ndarray], cnn: tuple[np.ndarray, np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per detector: ((n, 4) boxes, (n,) how: 0 upsample 1, 1 upsample 2, 2 median box).

    hog+cnn is hog then cnn at upsample 1, then hog then cnn at upsample 2 (what
    ``detect(image, up, "hog+cnn")`` does inside cnnkit.face.pairs' retry)."""
    hb, hhow = hog
    cb, cfound = cnn
    chow = np.where(cfound[:, 0], 0, np.where(cfound[:, 1], 1, 2))
    cbox = np.where(cfound[:, :1], cb[:, 0], cb[:, 1])
    mb, mhow = hb.copy(), hhow.copy()
    for i in np.flatnonzero(hhow > 0):
        if cfound[i, 0]:
            mb[i], mhow[i] = cb[i, 0], 0
        elif hhow[i] == 1:
            mhow[i] = 1
        elif cfound[i, 1]:
            mb[i], mhow[i] = cb[i, 1], 1
    out = {"hog": (hb, hhow), "cnn": (cbox, chow), "hog+cnn": (mb, mhow)}
    if (chow == 2).any():  # hog+cnn keeps hog's median box where both miss
        cbox[chow == 2] = np.median(cbox[chow != 2], axis=0).round().astype(np.int64)
    return out


def detector_boxes(
    images: list[str], root: Path, hog: tuple[np.ndarray, np.ndarray]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`policy_boxes` from bench/face.py's HOG boxes and the CNN's (cached in bench/out)."""
    return policy_boxes(hog, cnn_boxes(images, root, OUT / "lfw_dev_boxes_cnn.npz"))


def descriptors(
    images: list[str], root: Path, boxes: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The default pipeline's descriptors per detector (sub-pixel 5-point chip and 68-point chip,
    each with its mirror); hog+cnn reuses hog's and cnn's rows."""
    out: dict[str, np.ndarray] = {}
    for key, suffix in (("hog", ""), ("cnn", "_cnn")):
        e, ef = bench_face.lfw_embeddings(
            images, root, boxes[key][0], 1, OUT / f"lfw_dev_emb_k1{suffix}.npz"
        )
        g, gf = bench_face.lfw_embeddings(
            images, root, boxes[key][0], 1, OUT / f"lfw_dev_emb_68{suffix}.npz", 68
        )
        out[key] = (e + ef + g + gf) / 4
    mb = boxes["hog+cnn"][0]
    x = out["hog"].copy()
    from_cnn = (mb != boxes["hog"][0]).any(axis=1)
    assert not (mb[from_cnn] != boxes["cnn"][0][from_cnn]).any(), "hog+cnn row not hog's nor cnn's"
    x[from_cnn] = out["cnn"][from_cnn]
    out["hog+cnn"] = x
    return out


def cost(root: Path, images: list[str], n: int = 100) -> dict[str, tuple[float, float]]:
    """(detector images/s, pipeline descriptors/s) per detector on ``n`` images, 1 thread."""
    from cnnkit import face
    from cnnkit.face.descriptors import PIPELINES
    from cnnkit.face.detectors import detect_with

    p = PIPELINES["subpixel+flip+68"]  # the descriptors measured here (no FaceNet part)
    imgs = [face.load_image(root / name) for name in images[:: max(1, len(images) // n)][:n]]
    enc = face.default_encoder()
    for d in DETECTORS:
        face.faces(imgs[0], 1, enc, p.landmark_upsample, p.flip, d, p.views)  # warm up
    det: dict[str, list[float]] = {d: [] for d in DETECTORS}
    pipe: dict[str, list[float]] = {d: [] for d in DETECTORS}
    for _ in range(2):
        for d in DETECTORS:
            t = time.perf_counter()
            for im in imgs:
                detect_with(im, 1, d)
            det[d].append(len(imgs) / (time.perf_counter() - t))
            t = time.perf_counter()
            k = sum(
                len(face.faces(im, 1, enc, p.landmark_upsample, p.flip, d, p.views)) for im in imgs
            )
            pipe[d].append(k / (time.perf_counter() - t))
    return {d: (float(np.median(det[d])), float(np.median(pipe[d]))) for d in DETECTORS}


def main(argv: list[str] | None = None) -> int:
    from cnnkit.face import openset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", type=Path, default=bench_face.LFW)
    ap.add_argument("--skip-dlib", action="store_true", help="no dlib open-set peer")
    ap.add_argument("--skip-cost", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    bench_face._threads(1)
    images, hog, same, folds, a, b = bench_face.lfw_setup(args.lfw)
    root = args.lfw / "images"
    persons = [name.split("/")[0] for name in images]
    boxes = detector_boxes(images, root, hog)
    xs = descriptors(images, root, boxes)
    dlib_fnir = float("nan")
    if not args.skip_dlib:
        xd = face_openset.dlib_descriptors(images, root, OUT / "lfw_dev_dlib_fr.npz")
        rd = openset.evaluate_descriptors(xd, persons)
        dlib_fnir = rd.fnir_at_fpir[0.01]
        print(f"dlib (face_recognition): {face_openset.fmt(rd)}")
    costs = {} if args.skip_cost else cost(root, images)
    result = []
    print("detector  upsample2  median-box  LFW-dev acc ± se   FNIR@FPIR.01 (x dlib)  rank-1")
    for d in DETECTORS:
        how = boxes[d][1]
        dist = np.linalg.norm(xs[d][a] - xs[d][b], axis=1)
        acc, se, _ = bench_face.kfold(dist, same, folds)
        r = openset.evaluate_descriptors(xs[d], persons, norm=openset.DEFAULT_NORM)
        fnir = r.fnir_at_fpir[0.01]
        c = costs.get(d, (float("nan"), float("nan")))
        print(
            f"{d:8s}  {int((how == 1).sum()):9d}  {int((how == 2).sum()):10d}  "
            f"{100 * acc:.2f}% ± {100 * se:.2f}   {100 * fnir:.2f}% ({fnir / dlib_fnir:.3f})"
            f"        {100 * r.rank1:.2f}%  det {c[0]:.1f} img/s, pipeline {c[1]:.1f} desc/s"
        )
        k = d.replace("+", "_")
        result += [
            f"{k}_acc={acc:.4f}",
            f"{k}_se={se:.4f}",
            f"{k}_fnir_at_fpir_0.01={fnir:.4f}",
            f"{k}_fnir_ratio_vs_dlib={fnir / dlib_fnir:.3f}",
            f"{k}_rank1={r.rank1:.4f}",
            f"{k}_det_img_s={c[0]:.1f}",
            f"{k}_pipeline_desc_s={c[1]:.1f}",
        ]
    print("RESULT " + " ".join(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
