"""Face detector benchmark: cnnkit's MMOD CNN (PyTorch) vs dlib's own CNN detector, and misses.

    .venv/bin/python bench/face_detect.py               # speed + LFW-dev misses (cached)
    .venv/bin/python bench/face_detect.py --skip-lfw    # speed only

- cnn_speedup_vs_dlib: images/s of ``MmodDetector.detect`` over
  ``dlib.cnn_face_detection_model_v1(path)(img, 1)`` on the same images (LFW-dev images, 150x150,
  and the shipped photos downscaled), both at 1 thread, interleaved, median of repeats; also the
  batched figure (``detect_batch`` over the same-size images) and the largest confidence
  difference against dlib.
- hog_missed / cnn_missed: of the LFW-dev images the pairs name, how many have no face found by
  HOG (upsample 1) and by the CNN (upsample 1); cached per image in bench/out/face_detect.npz.

Last line: ``RESULT cnn_speedup_vs_dlib=<x> cnn_batch_speedup_vs_dlib=<x> hog_missed=<n>
cnn_missed=<n> lfw_images=<n>``.
"""

from __future__ import annotations

import argparse
import logging
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

log = logging.getLogger("bench.face_detect")


def _threads(n: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(n)


def pair_images() -> list[str]:
    """Relative paths of the LFW-dev images the pairs name, sorted, each once."""
    from cnnkit.face.evaluate import read_pairs

    pairs = read_pairs(LFW / "pairs.txt")
    return sorted({p.first for p in pairs} | {p.second for p in pairs})


def speed_images(n_lfw: int = 12) -> list[np.ndarray]:
    """n_lfw LFW-dev images (150x150) and the two shipped photos at 1/2 size."""
    from PIL import Image

    from cnnkit.face import load_image
    from cnnkit.io import load_image_pil, sample_path

    imgs = []
    if LFW.is_dir():
        imgs += [load_image(LFW / "images" / p) for p in pair_images()[:n_lfw]]
    for name in ("grace_hopper", "astronaut"):
        pil = load_image_pil(sample_path(name))
        imgs.append(np.asarray(pil.resize((pil.width // 2, pil.height // 2), Image.BILINEAR)))
    return imgs


def measure_speed(repeats: int = 3) -> dict[str, float]:
    """s per image for dlib's CNN and cnnkit's (one at a time and batched), 1 thread."""
    import dlib

    from cnnkit.face import model_file
    from cnnkit.face.mmod import MmodDetector

    _threads(1)
    imgs = speed_images()
    ref = dlib.cnn_face_detection_model_v1(str(model_file("mmod_detector")))
    det = MmodDetector.load()
    max_diff, n_faces = 0.0, 0
    for img in imgs:
        want = ref(img, 1)
        got = det.detect(img, 1)
        n_faces += len(want)
        if len(want) == len(got):
            for w, g in zip(want, got, strict=True):
                max_diff = max(max_diff, abs(w.confidence - g.confidence))
        else:
            max_diff = float("inf")
    times: dict[str, list[float]] = {"dlib": [], "cnnkit": [], "batch": []}
    for _ in range(repeats):
        t = time.perf_counter()
        for img in imgs:
            ref(img, 1)
        times["dlib"].append((time.perf_counter() - t) / len(imgs))
        t = time.perf_counter()
        for img in imgs:
            det.detect(img, 1)
        times["cnnkit"].append((time.perf_counter() - t) / len(imgs))
        t = time.perf_counter()
        det.detect_batch(imgs, 1)
        times["batch"].append((time.perf_counter() - t) / len(imgs))
    s = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "images": len(imgs),
        "faces": n_faces,
        "dlib_ips": 1 / s["dlib"],
        "cnnkit_ips": 1 / s["cnnkit"],
        "batch_ips": 1 / s["batch"],
        "speedup": s["dlib"] / s["cnnkit"],
        "batch_speedup": s["dlib"] / s["batch"],
        "max_conf_diff": max_diff,
    }


def lfw_misses(cache: Path) -> dict[str, int]:
    """Images of the LFW-dev pairs with no face found by HOG and by the CNN (upsample 1)."""
    from cnnkit.face import detect, load_image
    from cnnkit.face.mmod import MmodDetector
    from cnnkit.progress import progress

    names = pair_images()
    if cache.is_file():
        z = np.load(cache)
        if list(z["names"]) == names:
            return _miss_counts(z["hog"], z["cnn"])
    det = MmodDetector.load()
    hog = np.zeros(len(names), dtype=np.int64)
    cnn = np.zeros(len(names), dtype=np.int64)
    batch = 16
    for i in progress(range(0, len(names), batch), desc="LFW detect", unit="batch"):
        imgs = [load_image(LFW / "images" / n) for n in names[i : i + batch]]
        for j, found in enumerate(det.detect_batch(imgs, 1)):
            cnn[i + j] = len(found)
            hog[i + j] = len(detect(imgs[j], 1))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, names=np.array(names), hog=hog, cnn=cnn)
    tmp.replace(cache)
    return _miss_counts(hog, cnn)


def _miss_counts(hog: np.ndarray, cnn: np.ndarray) -> dict[str, int]:
    return {
        "lfw_images": len(hog),
        "hog_missed": int((hog == 0).sum()),
        "cnn_missed": int((cnn == 0).sum()),
        "both_missed": int(((hog == 0) & (cnn == 0)).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-lfw", action="store_true", help="speed only")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    speed = measure_speed(args.repeats)
    print(
        f"CNN detector, upsample 1, 1 thread, {speed['images']} images ({speed['faces']} faces):"
        f" dlib {speed['dlib_ips']:.2f} img/s, cnnkit {speed['cnnkit_ips']:.2f} img/s"
        f" ({speed['speedup']:.1f}x), batched {speed['batch_ips']:.2f} img/s"
        f" ({speed['batch_speedup']:.1f}x); max confidence difference {speed['max_conf_diff']:.2e}"
    )
    result = {
        "cnn_speedup_vs_dlib": f"{speed['speedup']:.2f}",
        "cnn_batch_speedup_vs_dlib": f"{speed['batch_speedup']:.2f}",
    }
    if not args.skip_lfw and LFW.is_dir():
        miss = lfw_misses(OUT / "face_detect.npz")
        print(
            f"LFW-dev pair images with no face found (upsample 1): HOG {miss['hog_missed']},"
            f" CNN {miss['cnn_missed']}, both {miss['both_missed']} of {miss['lfw_images']}"
        )
        result.update({k: str(v) for k, v in miss.items()})
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
