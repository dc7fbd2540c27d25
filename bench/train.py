"""Benchmark: one epoch of LeNet-5 on the digits, NumPy engine against torch engine, 1 thread.

Both engines train the same network (the torch model is translated into cnnkit.conv layers with
the same initial weights) with the default digits recipe (``cnnkit.train.DIGITS_DEFAULTS``:
Adam, batch 32, cosine learning rate, random shifts of 2 pixels) on the fixed split
(1,437 training, 360 test images, 1x32x32). Each engine runs the FULL recipe once; the epoch time
is the median of its epochs (training pass only, the test pass excluded), and the accuracy is the
test accuracy after the last epoch.

    OMP_NUM_THREADS=1 .venv/bin/python bench/train.py [--model lenet5] [--epochs N]

Last line: ``RESULT numpy_over_torch_epoch=<numpy epoch time / torch epoch time>
numpy_acc=<test accuracy> torch_acc=<test accuracy>``. Goal: ratio <= 3, accuracies >= 0.98.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5", help="lenet5 or lenet5_modern")
    parser.add_argument("--epochs", type=int, help="default: the digits recipe's")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from cnnkit.progress import set_quiet
    from cnnkit.train import DIGITS_DEFAULTS, TrainConfig, train

    torch.set_num_threads(1)
    set_quiet(True)
    logging.basicConfig(level=logging.WARNING)
    epochs = args.epochs or DIGITS_DEFAULTS["epochs"]
    results = {}
    with threadpool_limits(1):
        for engine in ("torch", "numpy"):
            cfg = TrainConfig(
                args.model, dataset="digits", engine=engine, epochs=epochs, out=None, device="cpu"
            )
            result = train(cfg)
            times = [h["seconds"] for h in result.history]
            acc = result.final["val_acc"]
            results[engine] = (statistics.median(times), acc)
            print(
                f"{engine:5s} engine: epoch {statistics.median(times):.2f} s (median of "
                f"{len(times)}), test accuracy {acc:.4f} after {epochs} epochs",
                flush=True,
            )
    ratio = results["numpy"][0] / results["torch"][0]
    print(f"model {args.model}, recipe {DIGITS_DEFAULTS}, 1 thread")
    print(
        f"RESULT numpy_over_torch_epoch={ratio:.2f} numpy_acc={results['numpy'][1]:.4f} "
        f"torch_acc={results['torch'][1]:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
