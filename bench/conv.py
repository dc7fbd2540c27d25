"""Benchmark cnnkit.conv against torch at one thread (not a test).

For each shape (batch 8) it times, median of repeats (the four timings take turns in every repeat,
so that they share the machine's noise):
  forward:  torch.nn.functional.conv2d          vs cnnkit.conv.conv2d_forward
  backward: torch autograd (grad x, W and b)    vs cnnkit.conv.conv2d_backward (from the cache)
and prints which path cnnkit took (Winograd F(m x m, 3 x 3), polyphase F(2, 2) for stride 2,
or the direct im2col / per-offset GEMMs), GFLOP/s (counting the direct method's
2 m n_C n_H n_W n_C_prev f^2 flops, also for Winograd and polyphase, which do fewer) and
``frac``: cnnkit's forward GFLOP/s over numpy's float32 matmul GFLOP/s (the machine's practical
limit; above 1.0 means fewer flops than the direct method).

Last line: ``RESULT fwd_ratio_max=<x> bwd_ratio_max=<y> gflops_fraction=<z> fwd_ratio_max_cpu=..
bwd_ratio_max_cpu=..`` where the ratios
are cnnkit time / torch time of the medians (worst shape; the table also shows the ratio of the
fastest repeats, "(min)", which is less sensitive to other jobs on a shared machine), and
gflops_fraction is the mean over shapes of the per-shape ``frac``. ``*_cpu`` are the same worst
ratios from the CPU time of this process (time.process_time), which other jobs on a shared
machine disturb less than the wall clock (they still share its caches and memory bandwidth).

BLAS: OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE names them; some of the
project's machines set OPENBLAS_CORETYPE=Haswell (for older OpenBLAS builds), which costs a
current NumPy ~1.8x in float32 GEMM on AVX-512 CPUs. `make bench` runs this script with both
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, and so does this script (it re-runs itself
without them, unless --keep-blas-env); the output names the kernels that ran.

Usage: python bench/conv.py [--repeats 7] [--shapes 0,1,2,3]
       [--algorithm auto|direct|winograd|polyphase] [--keep-blas-env]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if "--keep-blas-env" not in sys.argv and any(v in os.environ for v in _BLAS_VARS):
    # Before NumPy loads OpenBLAS: run this command alone without the variables (see above).
    forced = {v: os.environ[v] for v in _BLAS_VARS if v in os.environ}
    print(f"bench/conv.py: re-running without {forced} (--keep-blas-env keeps them)", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from cnnkit.conv import conv2d_backward, conv2d_forward  # noqa: E402
from cnnkit.conv.blas import backend  # noqa: E402
from cnnkit.conv.functional import conv_flops  # noqa: E402
from cnnkit.cpu import blas_kernels  # noqa: E402
from cnnkit.errors import ShapeError  # noqa: E402

# (C_in, H, W, C_out, f, stride, padding), batch 8, as in the issue.
SHAPES = [
    (3, 224, 224, 64, 3, 1, 1),
    (64, 56, 56, 64, 3, 1, 1),
    (256, 14, 14, 256, 3, 1, 1),
    (64, 56, 56, 128, 3, 2, 1),
]
BATCH = 8


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of fn() over repeats, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(repeats: int) -> float:
    """numpy float32 matmul GFLOP/s on 1024x1024 matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    t = median_time(lambda: a @ b, repeats)
    return 2 * 1024**3 / t / 1e9


def bench_shape(
    shape, repeats: int, rng: np.random.Generator, algorithm: str
) -> tuple[dict[str, float], str]:
    c, h, w, o, f, s, p = shape
    x = rng.standard_normal((BATCH, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((o, c, f, f), dtype=np.float32) * 0.1
    b = rng.standard_normal(o, dtype=np.float32)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, wt, b))
    try:
        out, cache = conv2d_forward(x, wt, b, s, p, algorithm)
    except ShapeError:  # e.g. --algorithm winograd on a stride-2 shape: run the direct path
        algorithm = "direct"
        out, cache = conv2d_forward(x, wt, b, s, p, algorithm)
    g = rng.standard_normal(out.shape, dtype=np.float32)
    tg = torch.from_numpy(g)
    gx, gw, gb = (a.clone().requires_grad_(True) for a in (tx, tw, tb))
    y_graph: list[torch.Tensor] = []

    def torch_fwd():
        return torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p)

    def torch_prepare():  # not timed: a fresh graph for the next backward
        gx.grad = gw.grad = gb.grad = None
        y_graph[:] = [torch.nn.functional.conv2d(gx, gw, gb, stride=s, padding=p)]

    keys = ("fwd_torch", "fwd_np", "bwd_torch", "bwd_np")
    times: dict[str, list[float]] = {k: [] for k in keys}  # wall clock
    cpu: dict[str, list[float]] = {k: [] for k in keys}  # CPU time of this process
    for i in range(repeats + 1):  # the four timings take turns, so they share the noise
        for key, fn in (
            ("fwd_torch", torch_fwd),
            ("fwd_np", lambda: conv2d_forward(x, wt, b, s, p, algorithm)),
            ("bwd_torch", lambda: y_graph[0].backward(tg)),
            ("bwd_np", lambda: conv2d_backward(g, cache)),
        ):
            if key == "bwd_torch":
                torch_prepare()
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if i:  # round 0 is the warm-up
                times[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0)
    r = {k: statistics.median(v) for k, v in times.items()}
    r.update({f"min_{k}": min(v) for k, v in times.items()})
    r.update({f"cpu_{k}": statistics.median(v) for k, v in cpu.items()})
    flops = conv_flops(x.shape, wt.shape, out.shape)
    r.update(
        gf_fwd_torch=flops / r["fwd_torch"] / 1e9,
        gf_fwd_np=flops / r["fwd_np"] / 1e9,
        gf_bwd_torch=2 * flops / r["bwd_torch"] / 1e9,
        gf_bwd_np=2 * flops / r["bwd_np"] / 1e9,
    )
    if cache.tile:
        path = f"winograd F({cache.tile},3)"
    elif cache.polyphase:
        path = "polyphase F(2,2)"
    else:
        path = "direct " + ("im2col" if cache.plan.im2col else "offsets")
    return r, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per case (default 7)")
    ap.add_argument("--shapes", default="0,1,2,3", help="indices into SHAPES (default all)")
    ap.add_argument(
        "--algorithm", default="auto", help="cnnkit's algorithm= (auto, direct, winograd, ...)"
    )
    ap.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (by default the bench runs without them)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        blas = ", ".join(f"{i['internal_api']} {i.get('version')}" for i in threadpool_info())
        openblas_env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
        print(f"1 thread; torch {torch.__version__}; numpy {np.__version__} ({blas})")
        print(f"cnnkit.conv GEMM backend: {backend()}")
        print(f"OPENBLAS env: {openblas_env or 'none'}; kernels: {blas_kernels()}")
        peak = matmul_gflops(args.repeats)
        print(f"numpy float32 matmul 1024^3: {peak:.1f} GFLOP/s")
        head = (
            f"{'shape (batch 8)':30s} {'path':16s} {'fwd ms np/torch':>17s} {'ratio':>6s} "
            f"{'(min)':>6s} {'bwd ms np/torch':>17s} {'ratio':>6s} {'(min)':>6s}  "
            f"{'GFLOP/s fwd np/torch, bwd np/torch':35s} frac  cpu ratio fwd/bwd"
        )
        print(head)
        fr, br, fractions, fr_cpu, br_cpu = [], [], [], [], []
        for i in (int(t) for t in args.shapes.split(",")):
            c, h, w, o, f, s, p = SHAPES[i]
            r, path = bench_shape(SHAPES[i], args.repeats, rng, args.algorithm)
            fr.append(r["fwd_np"] / r["fwd_torch"])
            br.append(r["bwd_np"] / r["bwd_torch"])
            fractions.append(r["gf_fwd_np"] / peak)
            fr_cpu.append(r["cpu_fwd_np"] / r["cpu_fwd_torch"])
            br_cpu.append(r["cpu_bwd_np"] / r["cpu_bwd_torch"])
            name = f"{c}x{h}x{w}->{o} ({f}x{f}, s{s}, p{p})"
            gf = (
                f"{r['gf_fwd_np']:5.1f}/{r['gf_fwd_torch']:5.1f}, "
                f"{r['gf_bwd_np']:5.1f}/{r['gf_bwd_torch']:5.1f}"
            )
            print(
                f"{name:30s} {path:16s} "
                f"{r['fwd_np'] * 1e3:7.1f}/{r['fwd_torch'] * 1e3:7.1f} {fr[-1]:6.2f} "
                f"({r['min_fwd_np'] / r['min_fwd_torch']:4.2f}) "
                f"{r['bwd_np'] * 1e3:7.1f}/{r['bwd_torch'] * 1e3:7.1f} {br[-1]:6.2f} "
                f"({r['min_bwd_np'] / r['min_bwd_torch']:4.2f})  {gf:35s} {fractions[-1]:.2f}  "
                f"{fr_cpu[-1]:.2f}/{br_cpu[-1]:.2f}",
                flush=True,
            )
    print(
        f"RESULT fwd_ratio_max={max(fr):.2f} bwd_ratio_max={max(br):.2f} "
        f"gflops_fraction={statistics.mean(fractions):.2f} "
        f"fwd_ratio_max_cpu={max(fr_cpu):.2f} bwd_ratio_max_cpu={max(br_cpu):.2f}"
    )


if __name__ == "__main__":
    main()
