"""Is bf16 native? cnnkit.cpu.bf16_native against fp32/bf16 speed (not a test).

For each way of forcing torch's ISA (none; ``ATEN_CPU_CAPABILITY=avx2``; ``ONEDNN_MAX_CPU_ISA`` at
AVX512_CORE_BF16, AVX512_CORE and AVX2) a fresh Python at one thread prints what
:func:`cnnkit.cpu.bf16_native` says, what torch's own oneDNN check says, and two fp32 times over
bf16 times (the two take turns in every repeat; median of the repeats; above 1: bf16 faster):
``conv``, a 64->64 3x3 conv on a 96x96 map under bf16 autocast (inference), and ``face``, the
face encoder (``FaceEncoder(precision="bf16")``, the whole network in bf16) on 8 random chips.

Last line: ``RESULT conv_ratio_<setting>=<x> face_ratio_<setting>=<y> ...``.

Usage: python bench/bf16_native.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "unforced": {},
    "aten_avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "onednn_avx512_core_bf16": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
    "onednn_avx512_core": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "onednn_avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def measure(repeats: int) -> None:
    """In this process: print ``bf16_native oneDNN conv_ratio face_ratio``."""
    import numpy as np
    import torch

    from cnnkit.cpu import bf16_native
    from cnnkit.face.encoder import FaceEncoder

    torch.set_num_threads(1)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.randn(1, 64, 96, 96, generator=torch.Generator().manual_seed(0))

    def seconds(bf16: bool) -> float:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            conv(x)  # warm-up (oneDNN primitive creation)
            t = time.perf_counter()
            for _ in range(5):
                conv(x)
            return time.perf_counter() - t

    base = FaceEncoder.load()
    encoders = [FaceEncoder(base.model, base.model_id, precision=p) for p in ("fp32", "bf16")]
    chips = np.random.default_rng(0).integers(0, 256, (8, 150, 150, 3), dtype=np.uint8)

    def embed_seconds(encoder: FaceEncoder) -> float:
        t = time.perf_counter()
        encoder.embed(chips)
        return time.perf_counter() - t

    for encoder in encoders:
        encoder.embed(chips)  # warm-up
    conv_ratios, face_ratios = [], []
    for _ in range(repeats):
        fp32 = seconds(False)
        conv_ratios.append(fp32 / seconds(True))
        fp32 = embed_seconds(encoders[0])
        face_ratios.append(fp32 / embed_seconds(encoders[1]))
    onednn = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    conv, face = statistics.median(conv_ratios), statistics.median(face_ratios)
    print(bf16_native(), onednn, f"{conv:.2f}", f"{face:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args.repeats)
        return
    forced = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
    clean = {k: v for k, v in os.environ.items() if k not in forced}
    results = []
    for name, env in SETTINGS.items():
        command = [sys.executable, __file__, "--measure", "--repeats", str(args.repeats)]
        out = subprocess.run(
            command, env={**clean, **ONE_THREAD, **env}, capture_output=True, text=True, check=True
        )
        native, onednn, conv, face = out.stdout.split()[-4:]
        print(
            f"{name:>24}: bf16_native {native:5} torch oneDNN bf16 {onednn:5} "
            f"fp32/bf16 conv {conv} face {face}"
        )
        results += [f"conv_ratio_{name}={conv}", f"face_ratio_{name}={face}"]
    print("RESULT " + " ".join(results))


if __name__ == "__main__":
    main()
