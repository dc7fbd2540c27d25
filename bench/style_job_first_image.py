"""Benchmark: how soon the Style tab's job has a first image, fast result vs the optimisation.

One thread; the tab's defaults (128 px, 40 iterations, the chelsea sample and the gravel texture)
through :class:`cnnkit.style.jobs.StyleJobRunner`, as the server runs them. For each repeat, a
``refine`` job (fast first, then Gatys from it) and, as the peer, a ``gatys`` job (what the tab
showed before: the optimisation's first image, from the content): seconds from ``start()`` to the
job's first image (``fast`` for refine, the iteration-1 preview for gatys) and to the end. The
first job also loads the fast networks (reported as ``cold``); the rest reuse them.

Usage: ``python bench/style_job_first_image.py [--repeats 5] [--size 128]``.
Last line: ``RESULT fast_first_s=<median> gatys_first_s=<median> ratio=<fast/gatys> ...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def first_image(runner, method: str, size: int, iterations: int) -> tuple[float, float]:
    """(seconds to the first image, seconds to the end) of one job."""
    from PIL import Image

    from cnnkit.io import sample_path

    content = Image.open(sample_path("chelsea")).convert("RGB")
    style = Image.open(sample_path("gravel")).convert("RGB")
    start = time.perf_counter()
    job = runner.start(content, style, method=method, size=size, iterations=iterations)
    first = None
    while not job.finished:
        if first is None and (job.fast is not None or job.preview_iteration > 0):
            first = time.perf_counter() - start
        time.sleep(0.002)
    if job.state != "done":
        raise SystemExit(f"{method} job {job.state}: {job.error}")
    end = time.perf_counter() - start
    return (first if first is not None else end), end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()

    import torch

    from cnnkit.style.jobs import StyleJobRunner

    torch.set_num_threads(1)
    runner = StyleJobRunner()
    try:
        cold, _ = first_image(runner, "refine", args.size, args.iterations)
        fast, fast_end, gatys, gatys_end = [], [], [], []
        for _ in range(args.repeats):  # alternating, so both see the same load
            f, fe = first_image(runner, "refine", args.size, args.iterations)
            g, ge = first_image(runner, "gatys", args.size, args.iterations)
            fast.append(f)
            fast_end.append(fe)
            gatys.append(g)
            gatys_end.append(ge)
            print(f"refine: first {f:.3f} s, end {fe:.2f} s; ", end="")
            print(f"gatys: first {g:.3f} s, end {ge:.2f} s")
    finally:
        runner.close()
    med = statistics.median
    print(
        f"RESULT fast_first_s={med(fast):.3f} gatys_first_s={med(gatys):.3f} "
        f"ratio={med(fast) / med(gatys):.3f} fast_first_max_s={max(fast):.3f} "
        f"cold_fast_first_s={cold:.3f} refine_end_s={med(fast_end):.2f} "
        f"gatys_end_s={med(gatys_end):.2f} size={args.size} iterations={args.iterations}"
    )


if __name__ == "__main__":
    main()
