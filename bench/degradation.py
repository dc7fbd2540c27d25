"""Degradation experiment (He et al. 2016, Fig. 1): plain networks get WORSE training error as
they get deeper; residual networks of the same depth do not.

CIFAR-style 3-stage nets (``cnnkit.models.resnet_cifar(depth, residual=...)``: 16/32/64 filters,
depth 6n+2, batch norm, option-A shortcuts so plain and residual nets have identical parameters)
at several depths, trained with the same recipe (SGD momentum 0.9, lr 0.1 cosine, weight decay
1e-4, batch 64, equal epochs, seed 0) on scikit-learn's digits (1,437 training images, 1x8x8 as
shipped by default, ``--size`` to upsample). After every epoch the TRAINING error is measured on
the whole training set in eval mode.

    OMP_NUM_THREADS=1 .venv/bin/python bench/degradation.py [--epochs 12] [--depths 8,20,32,56]

Writes ``bench/out/degradation.png`` (training error per epoch, plain solid / residual dashed)
``bench/out/degradation.md`` (the table) and ``degradation.json`` (the curves). Last line:
``RESULT plain_deepest_minus_shallowest=<x> residual_deepest_minus_shallowest=<y>``: final
training error (in percentage points) of the deepest net minus that of the shallowest, per
family. The claim holds when x > 0 and y <= about 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def train_one(depth: int, residual: bool, x, y, args) -> tuple[list[float], float]:
    """Train one net; return training error (%) after each epoch and the seconds it took."""
    import torch
    import torch.nn.functional as F

    from cnnkit.models import resnet_cifar

    torch.manual_seed(args.seed)
    model = resnet_cifar(depth, residual=residual, num_classes=10, in_channels=1)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    n = len(y)
    steps_per_epoch = math.ceil(n / args.batch_size)
    total = steps_per_epoch * args.epochs
    gen = torch.Generator().manual_seed(args.seed)
    errors: list[float] = []
    step = 0
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, args.batch_size):
            idx = order[s : s + args.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            for group in opt.param_groups:  # cosine over all steps, after 1 epoch warm-up
                warm = min(1.0, (step + 1) / steps_per_epoch)
                group["lr"] = args.lr * warm * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(x[i : i + 512]).argmax(1) for i in range(0, n, 512)])
        errors.append(100.0 * float((pred != y).float().mean()))
    return errors, time.perf_counter() - start


def plot(results: dict[tuple[str, int], list[float]], depths: list[int], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnkit.io import atomic_write_bytes

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100, sharey=True)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(depths)))
    for ax, family in zip(axes, ("plain", "residual"), strict=True):
        for color, d in zip(colors, depths, strict=True):
            errs = results[(family, d)]
            ax.plot(range(1, len(errs) + 1), errs, color=color, label=f"{family}-{d}")
        ax.set_title(f"{family} networks")
        ax.set_xlabel("epoch")
        ax.set_yscale("symlog", linthresh=1.0)  # log above 1%, linear down to 0
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("training error (%)")
    fig.suptitle("Degradation on digits: deeper plain nets train worse, residual nets do not")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--depths", default="8,20,32,56", help="comma-separated 6n+2 depths")
    parser.add_argument("--size", type=int, default=8, help="digits upsampled to SIZE x SIZE")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from cnnkit.train.data import load_digits_split

    torch.set_num_threads(args.threads)
    depths = sorted(int(d) for d in args.depths.split(","))
    digits = load_digits_split(args.size, channels=1)
    x = torch.from_numpy(digits.train.x)  # (1437, 1, size, size)
    y = torch.from_numpy(digits.train.y)
    results: dict[tuple[str, int], list[float]] = {}
    rows = []
    with threadpool_limits(args.threads):
        for d in depths:
            for family in ("plain", "residual"):
                errs, secs = train_one(d, family == "residual", x, y, args)
                results[(family, d)] = errs
                rows.append((family, d, errs, secs))
                print(
                    f"{family}-{d}: final training error {errs[-1]:.2f}% "
                    f"(min {min(errs):.2f}%) in {secs:.0f} s",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, depths, args.out / "degradation.png")
    half = max(1, args.epochs // 2)
    lines = [
        f"Training error (%) on digits ({len(y)} images, {args.size}x{args.size}), "
        f"{args.epochs} epochs, seed {args.seed}",
        "",
        f"| depth | plain, epoch {half} | plain, final | residual, epoch {half} "
        "| residual, final |",
        "|---:|---:|---:|---:|---:|",
    ]
    for d in depths:
        p, r = results[("plain", d)], results[("residual", d)]
        lines.append(f"| {d} | {p[half - 1]:.2f} | {p[-1]:.2f} | {r[half - 1]:.2f} | {r[-1]:.2f} |")
    table = "\n".join(lines)
    from cnnkit.io import atomic_write_bytes

    atomic_write_bytes(args.out / "degradation.md", (table + "\n").encode())
    curves = {f"{f}-{d}": errs for (f, d), errs in results.items()}
    atomic_write_bytes(args.out / "degradation.json", json.dumps(curves, indent=1).encode())
    print(table)
    print(f"wrote {args.out / 'degradation.png'}")
    lo, hi = depths[0], depths[-1]
    plain = results[("plain", hi)][-1] - results[("plain", lo)][-1]
    res = results[("residual", hi)][-1] - results[("residual", lo)][-1]
    print(
        f"RESULT plain_deepest_minus_shallowest={plain:.2f} "
        f"residual_deepest_minus_shallowest={res:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
