"""Benchmark: `cnnkit style --size 2048` (Gatys, coarse to fine): peak RSS and wall time.

The command runs in its own process, one thread, exactly as a user types it; its peak RSS is
``ru_maxrss`` of the finished child (``RUSAGE_CHILDREN``), compared with the memory estimate that
`cnnkit style` enforces up front (:func:`cnnkit.style.config.memory_estimate`) and with the 6 GB
the issue allows. Content: the astronaut sample upscaled to 2048x2048 (no shipped image is that
large); style: the coffee sample. The iterations are few (``--iterations`` is the coarsest scale's
count; each finer scale gets a quarter, at least 1): this measures memory and the time of the
schedule, not a finished painting.

Usage: ``python bench/style_large.py [--size 2048] [--iterations 8]``.
Last line: ``RESULT gatys_<size>_s=<s> gatys_<size>_peak_mb=<mb> estimate_mb=<mb> scales=<n>``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from PIL import Image

    from cnnkit.io import sample_path
    from cnnkit.style import StyleConfig
    from cnnkit.style.config import memory_estimate, scale_schedule

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--iterations", type=int, default=8)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNKIT_QUIET": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        content = Path(tmp) / "content.png"
        big = Image.open(sample_path("astronaut")).convert("RGB")
        big.resize((args.size, args.size), Image.BICUBIC).save(content)
        out = Path(tmp) / "out.png"
        cmd = [sys.executable, "-m", "cnnkit.cli.main", "style", str(content)]
        cmd += [str(sample_path("coffee")), "--size", str(args.size)]
        cmd += ["--iterations", str(args.iterations), "-o", str(out), "--quiet"]
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True)
        seconds = time.perf_counter() - start
        assert Image.open(out).size == (args.size, args.size)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MB (Linux: KB)
    estimate = memory_estimate((args.size, args.size)) / 2**20
    schedule = scale_schedule(StyleConfig(size=args.size, iterations=args.iterations))
    print(f"schedule (size px, iterations): {schedule}")
    print(f"wall {seconds:.1f} s, peak RSS {peak:.0f} MB, estimate {estimate:.0f} MB")
    print(
        f"RESULT gatys_{args.size}_s={seconds:.1f} gatys_{args.size}_peak_mb={peak:.0f} "
        f"estimate_mb={estimate:.0f} scales={len(schedule)}"
    )


if __name__ == "__main__":
    main()
