"""Benchmark: cnnkit.style.transfer against the PyTorch tutorial's way, one thread, same run.

Baseline (the tutorial's recipe, "Neural Transfer Using PyTorch"): the whole VGG-19 model is
built and its ``features`` used, weights still requiring grad, fp32, not truncated (the forward
runs to pool5), targets computed with autograd on (then detached), L-BFGS on the image.
cnnkit: frozen weights, features truncated after the deepest loss layer, the classifier never
allocated, targets under ``torch.inference_mode``; where the CPU has native bf16 the network runs
in bf16 (weights converted once) with channels-last maps, each style layer's Gram matrix and its
gradient in one node (bf16 matmuls summed in fp32); fp32 NCHW elsewhere
(``cnnkit.style.transfer.compute_path``).

Each configuration runs in its own process (so peak RSS, ``ru_maxrss``, is its own). Both use
the same objective (the notes' costs, normalised the same way), the same random VGG-19 weights
(cnnkit's offline backbone, copied into the baseline) and max pooling, so their losses compare.

Seconds per iteration are wall-clock (``speedup_*``) and, since other jobs share the machine,
also process CPU time (``cpu_speedup_*``: one thread, so equal to wall time on an idle machine,
and less disturbed by other processes). Both run the same number of function evaluations
(closure calls) with the same L-BFGS settings.
Quality: the default path's image and the fp32 path's image after the same iterations, both
scored by the fp32 objective.

Usage: ``python bench/style.py [--sizes 256,512] [--iters 5] [--check-iters 50]
[--variants fast-bf16-nchw,fast-fp32-cl]``.
Last line: ``RESULT speedup_256=<x> speedup_512=<y> peak_rss_ratio_512=<z> fp32_loss_rel_diff=<r>
default_vs_fp32_J_256=<q>``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_2"
ALPHA, BETA = 1.0, 10.0


def _images(size: int):
    import numpy as np
    from PIL import Image

    from cnnkit.io import load_image_pil, sample_path, to_uint8
    from cnnkit.style.paint import swirl_painting

    content = load_image_pil(sample_path("chelsea"))
    w, h = content.size
    s = size / max(w, h)
    content = content.resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)
    # both as exact uint8 levels, so that transfer()'s own image handling changes nothing
    c = np.asarray(content, dtype=np.float32) / 255.0
    return c, to_uint8(swirl_painting(size, seed=0)).astype(np.float32) / 255.0


def _tensor(a):
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)[None]))


def _fp32_cost(content, style, image) -> float:
    """J(image) under the fp32 objective (fp32 network, NCHW): the same yardstick for every run."""
    import torch

    from cnnkit.style.backbone import build_extractor
    from cnnkit.style.config import StyleConfig
    from cnnkit.style.transfer import _Objective

    C, S, G = _tensor(content), _tensor(style), _tensor(image)
    ext = build_extractor(
        [CONTENT_LAYER, *LAYERS], [C, S], backbone="random-vgg19", pooling="max"
    ).extractor
    config = StyleConfig(alpha=ALPHA, beta=BETA, content_layer=CONTENT_LAYER, style_layers=LAYERS)
    with torch.inference_mode():
        return float(_Objective(config, ext, C, [S], [1.0])(G)[0])


def run_fast(size: int, iters: int, warmup: int, precision: str, layout: str) -> dict:
    """cnnkit's transfer(); seconds per iteration from the snapshot callback's timestamps."""
    from cnnkit.style import transfer

    content, style = _images(size)
    stamps: list[float] = []
    cpu: list[float] = []
    image, history = transfer(
        content,
        style,
        size=size,
        iterations=warmup + iters,
        backbone="random-vgg19",
        pooling="max",
        alpha=ALPHA,
        beta=BETA,
        normalize_on="content+style",
        init="content",
        precision=precision,
        channels_last={"auto": None, "cl": True, "nchw": False}[layout],
        save_every=1,
        on_snapshot=lambda it, img: (  # after each forward
            stamps.append(time.perf_counter()),
            cpu.append(time.process_time()),
        ),
    )
    steps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :], strict=False)]
    cpu_steps = [b - a for a, b in zip(cpu[warmup:], cpu[warmup + 1 :], strict=False)]
    return {
        "sec_per_iter": statistics.median(steps),
        "cpu_per_iter": statistics.median(cpu_steps),
        "loss": history.total[-1],
        "evals": len(history.total),
        "fp32_cost": _fp32_cost(content, style, image),
        "compute": history.compute,
    }


def run_baseline(size: int, iters: int, warmup: int) -> dict:
    """The tutorial's way, with cnnkit's objective and the same weights."""
    import torch
    from torch import nn

    from cnnkit.models import create_model
    from cnnkit.style.backbone import build_extractor
    from cnnkit.style.costs import content_cost, gram_matrix, gram_style_cost
    from cnnkit.style.features import layer_indices

    content, style = _images(size)
    C, S = _tensor(content), _tensor(style)
    # cnnkit's offline backbone, normalised on content and style (as run_fast passes to transfer())
    ours = build_extractor([CONTENT_LAYER, *LAYERS], [C, S], backbone="random-vgg19", pooling="max")
    # the tutorial: cnn = vgg19(weights=...).features.eval(); weights keep requires_grad=True
    cnn = create_model("vgg19").features.eval()
    for i, module in enumerate(cnn):
        if isinstance(module, nn.ReLU):
            cnn[i] = nn.ReLU(inplace=False)  # as the tutorial does
    with torch.no_grad():
        for i, module in enumerate(ours.extractor.body):
            if isinstance(module, nn.Conv2d):
                cnn[i].weight.copy_(module.weight)
                cnn[i].bias.copy_(module.bias)
    mean, std = ours.extractor.mean, ours.extractor.std
    names = layer_indices(cnn)
    wanted = {names[n]: n for n in (CONTENT_LAYER, *LAYERS)}

    def forward(x):  # the full features, to pool5, keeping the loss layers' outputs
        out = {}
        x = (x - mean) / std
        for i, module in enumerate(cnn):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return out

    # targets with autograd on, detached afterwards (the tutorial's ContentLoss / StyleLoss)
    a_C = forward(C)[CONTENT_LAYER].detach()
    f_S, f_C = forward(S), forward(C)
    G_S, lambdas = [], []
    for name in LAYERS:
        a_S = f_S[name]
        n_hw = f_C[name].shape[2] * f_C[name].shape[3]
        target = (gram_matrix(a_S) / (a_S.shape[2] * a_S.shape[3]) * n_hw).detach()
        G_S.append(target)
        zero = torch.zeros_like(f_C[name])
        lambdas.append((1 / len(LAYERS)) / float(gram_style_cost(target, zero)))
    content_scale = float(content_cost(a_C, torch.zeros_like(a_C)))
    alpha, beta = ALPHA, BETA

    scale = 0.02 * C.numel()  # cnnkit's L-BFGS parametrisation G = scale * u (see transfer.py)
    u = (C / scale).requires_grad_(True)
    n = warmup + iters
    # the same optimiser settings as cnnkit's transfer(), so that the losses compare
    opt = torch.optim.LBFGS(
        [u],
        lr=1.0,
        max_iter=n,
        max_eval=2 * n,
        history_size=50,
        tolerance_grad=-1,
        tolerance_change=-1,
        line_search_fn="strong_wolfe",
    )
    last = {}
    stamps = []
    cpu = []

    class Spent(Exception):
        pass

    def closure():
        if len(stamps) >= n:
            raise Spent
        opt.zero_grad()
        f = forward(u * scale)
        J_c = content_cost(a_C, f[CONTENT_LAYER]) / content_scale
        J_s = sum(
            lam * gram_style_cost(t, f[name])
            for name, t, lam in zip(LAYERS, G_S, lambdas, strict=True)
        )
        J = alpha * J_c + beta * J_s
        last["J"] = float(J.detach())
        stamps.append(time.perf_counter())  # as cnnkit's snapshot callback: after the forward
        cpu.append(time.process_time())
        J.backward()
        return J

    try:
        while len(stamps) < n:
            opt.step(closure)
    except Spent:
        pass
    steps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :], strict=False)]
    cpu_steps = [b - a for a, b in zip(cpu[warmup:], cpu[warmup + 1 :], strict=False)]
    return {
        "sec_per_iter": statistics.median(steps),
        "cpu_per_iter": statistics.median(cpu_steps),
        "loss": last["J"],
        "evals": len(stamps),
    }


def worker(argv: list[str]) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    mode, size, iters, warmup = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    with threadpool_limits(1):
        if mode == "baseline":
            result = run_baseline(size, iters, warmup)
        else:
            _, precision, layout = mode.split("-")  # fast-<auto|fp32|bf16>-<auto|cl|nchw>
            result = run_fast(size, iters, warmup, precision, layout)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("JSON " + json.dumps(result), flush=True)


def spawn(mode: str, size: int, iters: int, warmup: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, str(size), str(iters), str(warmup)]
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CNNKIT_QUIET": "1"}
    import os

    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{mode} {size} failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][5:])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per config")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--check-iters", type=int, default=50, help="loss check iterations")
    parser.add_argument("--check-size", type=int, default=128)
    parser.add_argument("--quality-size", type=int, default=256, help="auto path vs fp32 size")
    parser.add_argument(
        "--variants",
        default="",
        help="also time these cnnkit paths, e.g. fast-bf16-nchw,fast-fp32-cl "
        "(fast-<auto|fp32|bf16>-<auto|cl|nchw>)",
    )
    args = parser.parse_args()
    import torch

    from cnnkit.cpu import bf16_native
    from cnnkit.style.transfer import StyleConfig, compute_path

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}")
    fast = "fast-auto-auto"
    print(f"cnnkit default path here: {compute_path(StyleConfig(), torch.device('cpu'))[2]}")
    print(f"native bf16: {bf16_native()}")
    variants = [v for v in args.variants.split(",") if v]
    results: dict[str, dict] = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        for mode in ["baseline", fast, *variants]:
            r = spawn(mode, size, args.iters, args.warmup)
            results[f"{mode}@{size}"] = r
            print(
                f"{mode:>16} {size:4d} px: {r['sec_per_iter']:.3f} s/iter "
                f"(CPU {r['cpu_per_iter']:.3f} s) "
                f"({r['evals']} evaluations), peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    # fp32 losses after check-iters iterations (same weights, same pooling, same objective)
    n = args.check_iters
    base = spawn("baseline", args.check_size, n - 1, 1)
    ours = spawn("fast-fp32-nchw", args.check_size, n - 1, 1)
    rel = abs(ours["loss"] - base["loss"]) / abs(base["loss"])
    print(
        f"loss after {n} iterations at {args.check_size} px (fp32): baseline {base['loss']:.5g}, "
        f"cnnkit {ours['loss']:.5g}, relative difference {rel:.2e} "
        f"({'within' if rel <= 0.01 else 'NOT within'} 1%)"
    )
    # the default path's result against the fp32 run's, both scored by the fp32 objective
    q32 = spawn("fast-fp32-nchw", args.quality_size, n - 1, 1)
    qauto = spawn(fast, args.quality_size, n - 1, 1)
    quality = qauto["fp32_cost"] / q32["fp32_cost"] - 1
    print(
        f"J(G) (fp32 objective) after {n} iterations at {args.quality_size} px: fp32 run "
        f"{q32['fp32_cost']:.5g}, default path ({qauto['compute']}) {qauto['fp32_cost']:.5g}, "
        f"{100 * quality:+.2f}%"
    )
    speed, cpu_speed = {}, {}
    for size in [int(s) for s in args.sizes.split(",")]:
        b, f = results[f"baseline@{size}"], results[f"{fast}@{size}"]
        speed[size] = b["sec_per_iter"] / f["sec_per_iter"]
        cpu_speed[size] = b["cpu_per_iter"] / f["cpu_per_iter"]
    big = max(speed)
    rss = results[f"{fast}@{big}"]["peak_rss_mb"] / results[f"baseline@{big}"]["peak_rss_mb"]
    parts = [f"speedup_{s}={v:.2f}" for s, v in speed.items()]
    parts += [f"cpu_speedup_{s}={v:.2f}" for s, v in cpu_speed.items()]
    print(
        "RESULT "
        + " ".join(parts)
        + f" peak_rss_ratio_{big}={rss:.2f} fp32_loss_rel_diff={rel:.1e}"
        + f" default_vs_fp32_J_{args.quality_size}={quality:+.4f}"
    )


if __name__ == "__main__":
    main()
