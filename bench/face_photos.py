"""Face detection on phone-sized photos: the full image vs a copy scaled down to 3 Mpx.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python bench/face_photos.py [--repeats 3]

Two synthetic 4000x3000 photos built from the shipped pictures (matplotlib's grace_hopper,
scikit-image's astronaut, on scikit-image's brick texture):

- ``portrait``: Grace Hopper's face at ~710 px, as a phone photo of one person shows it;
- ``group``: eight faces of 40 to 240 px side by side, as a group photo shows them.

For each, ``cnnkit.face.detect(image, upsample, "auto")`` with ``max_pixels=0`` (the whole image,
what the pipeline did before), with the default (:data:`DETECT_MAX_PIXELS`), and with the default
at ``upsample + 1`` (``up+1``: the small faces back), interleaved, 1 thread; the median time, and
which faces were found (a box whose centre is within half a face of the pasted face's). Then
``find_faces`` (detect + landmarks + chips + descriptors, the default
pipeline) on the portrait, before and after.
Last line: ``RESULT portrait_full_s=... portrait_scaled_s=... ...``.

``--landmarks``: the cost of the default pipeline's sub-pixel landmarks on large faces instead:
``cnnkit.face.faces(image, 1, encoder, 1, True, "hog", views=<default pipeline's>)`` on the
portrait and on a 6000x8000 selfie (Grace's face at ~2,400 px), with the margin around the box
that :func:`cnnkit.face.landmarks` enlarges at a whole box side (before) and at
:data:`cnnkit.face.detection.LANDMARK_MARGIN` (after); each in its own process (1 thread), the
median time of ``--repeats`` and the process's peak memory (ru_maxrss), and whether the
descriptors are equal. Last line: ``RESULT portrait_before_s=... ...``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from face.shipped import astronaut, grace  # noqa: E402

GRACE_BOX = (137, 376, 352, 161)  # HOG's box of the face in grace_hopper (512x600)
GRACE_CROP, GRACE_CROP_BOX = (100, 80, 420, 420), (57, 276, 272, 61)  # the head, for the group
ASTRO_CROP, ASTRO_BOX = (97, 1, 347, 251), (82, 169, 169, 82)  # astronaut's head and its box

Face = tuple[int, float, float]  # (size, centre y, centre x)


def _paste(canvas: Image.Image, src: Image.Image, box: tuple, size: int, at: tuple) -> Face:
    s = size / (box[1] - box[3])
    im = src.resize((round(src.width * s), round(src.height * s)), Image.Resampling.LANCZOS)
    canvas.paste(im, at)
    return size, at[1] + (box[0] + box[2]) / 2 * s, at[0] + (box[1] + box[3]) / 2 * s


def photos() -> dict[str, tuple[np.ndarray, list[Face]]]:
    from cnnkit.io import sample_path

    brick = Image.open(sample_path("brick")).convert("RGB").resize((4000, 3000))
    portrait = brick.copy()
    faces_p = [_paste(portrait, grace(), GRACE_BOX, 710, (1200, 600))]
    group = brick.copy()
    heads = [(grace().crop(GRACE_CROP), GRACE_CROP_BOX), (astronaut().crop(ASTRO_CROP), ASTRO_BOX)]
    faces_g, x = [], 100
    for i, size in enumerate((40, 50, 60, 80, 100, 120, 160, 240)):
        src, box = heads[i % 2]
        faces_g.append(_paste(group, src, box, size, (x, 600 + (i % 3) * 700)))
        x += round(src.width * size / (box[1] - box[3])) + 150
    return {
        "portrait": (np.asarray(portrait), faces_p),
        "group": (np.asarray(group), faces_g),
    }


def found_sizes(boxes: list, faces: list[Face]) -> list[int]:
    def near(b: tuple, f: Face) -> bool:
        cy, cx = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        return abs(cy - f[1]) < f[0] / 2 and abs(cx - f[2]) < f[0] / 2

    return [f[0] for f in faces if any(near(b, f) for b in boxes)]


def selfie() -> np.ndarray:
    """6000x8000 (portrait orientation), Grace's face at ~2,400 px."""
    from cnnkit.io import sample_path

    canvas = Image.open(sample_path("brick")).convert("RGB").resize((6000, 8000))
    _paste(canvas, grace(), GRACE_BOX, 2400, (100, 500))
    return np.asarray(canvas)


def one_landmarks_run(photo: str, margin: float, repeats: int, out: str) -> None:
    """In this process: faces() with the default pipeline at ``margin``; writes a .npz."""
    import resource

    import torch

    import cnnkit.face.detection as detection
    from cnnkit.face import faces
    from cnnkit.face.descriptors import get_pipeline
    from cnnkit.face.pipeline import default_encoder

    torch.set_num_threads(1)
    image = photos()["portrait"][0] if photo == "portrait" else selfie()
    enc, views = default_encoder(), get_pipeline(None).views
    detection.LANDMARK_MARGIN = margin
    times, found = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        found = faces(image, 1, enc, 1, True, "hog", views=views)
        times.append(time.perf_counter() - t)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    emb = np.array([f.embedding for f in found])
    np.savez(out, s=statistics.median(times), peak_mb=peak_mb, emb=emb, n=len(found))


def measure_landmarks(repeats: int) -> None:
    import subprocess
    import tempfile

    from cnnkit.face.detection import LANDMARK_MARGIN

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for photo in ("portrait", "selfie"):
            got = {}
            for label, margin in (("before", 1.0), ("after", LANDMARK_MARGIN)):
                out = f"{tmp}/{photo}_{label}.npz"
                cmd = [sys.executable, __file__, "--one", photo, str(margin), str(repeats), out]
                subprocess.run(cmd, check=True)
                got[label] = z = np.load(out)
                results[f"{photo}_{label}_s"] = float(z["s"])
                results[f"{photo}_{label}_peak_mb"] = float(z["peak_mb"])
                print(
                    f"{photo} {label} (margin {margin}): {float(z['s']):.2f} s (median of "
                    f"{repeats}), peak {float(z['peak_mb']):.0f} MB, {int(z['n'])} faces"
                )
            same = np.array_equal(got["before"]["emb"], got["after"]["emb"])
            print(f"{photo}: descriptors equal before/after: {same}")
    print("RESULT " + " ".join(f"{k}={v:.2f}" for k, v in results.items()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        one_landmarks_run(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    import torch

    from cnnkit.face.detection import detect
    from cnnkit.face.detectors import DETECT_MAX_PIXELS, detect_with
    from cnnkit.face.recognize import find_faces

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--upsample", type=int, default=1)
    ap.add_argument("--landmarks", action="store_true", help="the landmarks' cost (see above)")
    args = ap.parse_args()
    if args.landmarks:
        measure_landmarks(args.repeats)
        return
    torch.set_num_threads(1)
    detect(np.asarray(grace()), 0)  # build the HOG detector outside the timings
    results: dict[str, float] = {}
    for name, (image, faces) in photos().items():
        runs = [("full", 0, 0), ("scaled", None, 0), ("scaled_up+1", None, 1)]
        times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
        for _ in range(args.repeats):
            for label, limit, more in runs:
                t = time.perf_counter()
                detect_with(image, args.upsample + more, "auto", max_pixels=limit)
                times[label].append(time.perf_counter() - t)
        for label, limit, more in runs:
            found = detect_with(image, args.upsample + more, "auto", max_pixels=limit)
            sizes = found_sizes(found.boxes, faces)
            med = statistics.median(times[label])
            results[f"{name}_{label}_s"] = med
            print(
                f"{name} {label}: {med:.2f} s (median of {args.repeats}), detector "
                f"{found.detector}, {len(found.boxes)} boxes, found faces of {sizes} px"
                f" of {[f[0] for f in faces]}"
            )
    portrait = photos()["portrait"][0]
    import cnnkit.face.detectors as detectors

    for label, limit in (("full", 0), ("scaled", DETECT_MAX_PIXELS)):
        detectors.DETECT_MAX_PIXELS = limit
        runs = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            find_faces(portrait, args.upsample, None, None, "auto")
            runs.append(time.perf_counter() - t)
        results[f"portrait_pipeline_{label}_s"] = statistics.median(runs)
    detectors.DETECT_MAX_PIXELS = DETECT_MAX_PIXELS
    print("RESULT " + " ".join(f"{k}={v:.2f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
