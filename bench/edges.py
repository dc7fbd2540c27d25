"""Benchmark: cnnkit.edges.detect(sobel) against scikit-image's filters.sobel on a 4000x3000 image.

Both at 1 thread (threadpoolctl for BLAS), in one run, median of repeats. The image is
scikit-image's ``camera`` tiled to 3000 rows x 4000 columns, float32 in [0, 1]. Both compute the
same map up to a constant: cnnkit gives sqrt(gx^2 + gy^2) with the integer Sobel kernels, and
scikit-image divides by 4 * sqrt(2); the script checks that before timing.

    OMP_NUM_THREADS=1 .venv/bin/python bench/edges.py [--repeats 7] [--cli]

Last line: ``RESULT edges_over_skimage=<cnnkit time / scikit-image time>`` (below 1: faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

H, W = 3000, 4000


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cli", action="store_true", help="also time `cnnkit edges` end to end")
    args = parser.parse_args()

    from skimage import color, filters

    from cnnkit.edges import detect
    from cnnkit.io import load_image, sample_path, save_image

    camera = load_image(sample_path("camera"))  # (512, 512, 3)
    reps = (-(-H // camera.shape[0]), -(-W // camera.shape[1]), 1)
    rgb = np.ascontiguousarray(np.tile(camera, reps)[:H, :W])  # (3000, 4000, 3) float32
    gray = np.ascontiguousarray(color.rgb2gray(rgb), dtype=np.float32)
    print(f"image {W}x{H}, {gray.dtype}, 1 thread, median of {args.repeats}")

    with threadpool_limits(1):
        ours = detect(gray, "sobel")
        theirs = filters.sobel(gray)
        err = float(np.abs(ours - 4 * np.sqrt(2) * theirs).max())
        print(f"max |cnnkit - 4*sqrt(2)*skimage| = {err:.2e} (of max {float(ours.max()):.2f})")
        if err > 1e-3 * float(ours.max()):
            print("results differ", file=sys.stderr)
            return 1

        t_ours = median_time(lambda: detect(gray, "sobel"), args.repeats)
        t_skimage = median_time(lambda: filters.sobel(gray), args.repeats)
        t_ours_rgb = median_time(lambda: detect(rgb, "sobel"), args.repeats)
        t_skimage_rgb = median_time(lambda: filters.sobel(color.rgb2gray(rgb)), args.repeats)
        t_scharr = median_time(lambda: detect(gray, "scharr"), args.repeats)
        t_vertical = median_time(lambda: detect(gray, "vertical"), args.repeats)

    mpx = H * W / 1e6
    rows = [
        ("cnnkit detect(gray, sobel)", t_ours),
        ("skimage filters.sobel(gray)", t_skimage),
        ("cnnkit detect(rgb, sobel) incl. luma", t_ours_rgb),
        ("skimage sobel(rgb2gray(rgb))", t_skimage_rgb),
        ("cnnkit detect(gray, scharr)", t_scharr),
        ("cnnkit detect(gray, vertical)", t_vertical),
    ]
    for name, t in rows:
        print(f"{name:40s} {1000 * t:8.1f} ms  {mpx / t:7.1f} Mpx/s")
    print(f"rgb: cnnkit / skimage = {t_ours_rgb / t_skimage_rgb:.2f}")

    if args.cli:
        from cnnkit.cli.main import main as cli

        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "big.png"
            save_image(src, rgb)
            start = time.perf_counter()
            cli(["-q", "edges", str(src), "-o", str(Path(tmp) / "out.png")])
            total = time.perf_counter() - start
        print(f"cnnkit edges big.png (decode, sobel, display, PNG encode): {total:.2f} s")

    print(f"RESULT edges_over_skimage={t_ours / t_skimage:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
