"""Benchmark: time to quality of the optimisation from noise, from the content, or from fast.

Same objective for the three starts (the default offline backbone, normalised on the same content
and style images, so J(G) compares), one thread, the chelsea sample and the swirl painting at
``--size`` px. For each start: J(G) against wall time (the fast start's own seconds included),
from the snapshot callback's timestamps.

Usage: ``python bench/style_init.py [--size 256] [--iterations 30]``.
Last line: ``RESULT j_final_noise=<a> j_final_content=<b> j_final_fast=<c>
fast_time_to_content_final=<s> content_s=<s> ...``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def run(init: str, size: int, iterations: int) -> tuple[list[float], list[float]]:
    """(seconds since start, J) after each iteration."""
    import numpy as np

    from cnnkit.io import sample_path, to_uint8
    from cnnkit.style import StyleConfig, transfer
    from cnnkit.style.paint import swirl_painting

    style = to_uint8(swirl_painting(size, seed=0)).astype(np.float32) / 255.0
    config = StyleConfig(size=size, iterations=iterations, init=init, save_every=1)
    stamps: list[float] = []
    start = time.perf_counter()
    _, history = transfer(
        sample_path("chelsea"),
        style,
        config,
        on_snapshot=lambda it, img: stamps.append(time.perf_counter() - start),
    )
    return stamps, history.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    run("fast", 64, 1)  # load and convert the fast networks before timing
    curves = {init: run(init, args.size, args.iterations) for init in ("noise", "content", "fast")}
    for init, (t, j) in curves.items():
        marks = [i for i in (0, 4, 9, 19, len(j) - 1) if i < len(j)]
        cells = ", ".join(f"{t[i]:.1f} s: J={j[i]:.3f}" for i in marks)
        print(f"{init:8s} {cells}")
    target = curves["content"][1][-1]
    t_fast, j_fast = curves["fast"]
    reach = next((t for t, j in zip(t_fast, j_fast, strict=True) if j <= target), float("nan"))
    print(
        "RESULT "
        + " ".join(f"j_final_{k}={v[1][-1]:.3f}" for k, v in curves.items())
        + f" j_first_fast={j_fast[0]:.3f} j_first_content={curves['content'][1][0]:.3f}"
        + f" fast_time_to_content_final={reach:.1f} content_s={curves['content'][0][-1]:.1f}"
    )


if __name__ == "__main__":
    main()
