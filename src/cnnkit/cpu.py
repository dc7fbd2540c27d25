"""What the CPU reports (read at run time from /proc/cpuinfo), and the BLAS kernels NumPy runs.

Light on purpose (no NumPy, no torch at import). The fast paths that depend on the CPU (bf16 for
the face encoder and the style networks, the conv engine's BLAS) read it here, and the benches
print :func:`blas_kernels` so a figure says which kernels produced it.

NumPy's wheels bundle an OpenBLAS built for every x86 core type that picks its kernels from
CPUID when it is loaded, unless ``OPENBLAS_CORETYPE`` names one. Some of the project's machines
set ``OPENBLAS_CORETYPE=Haswell`` (AVX2 kernels) for older OpenBLAS builds; on an AVX-512 CPU
the current build's own choice (``SkylakeX``) runs float32 GEMM about 1.8x faster. cnnkit never
changes that variable; ``make bench`` runs the conv bench without it (see bench/conv.py).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _field(name: str) -> str:
    for line in _read_cpuinfo().splitlines():
        if line.split(":", 1)[0].strip() == name:
            return line.split(":", 1)[1].strip()
    return ""


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return frozenset((_field("flags") or _field("Features")).split())


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def blas_kernels() -> str:
    """The kernels NumPy's BLAS runs, e.g. ``openblas SkylakeX (OpenBLAS's own choice)``."""
    import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)
    from threadpoolctl import threadpool_info

    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not infos:
        return "unknown BLAS"
    info = infos[0]
    why = ""
    if info.get("internal_api") == "openblas":
        forced = os.environ.get("OPENBLAS_CORETYPE")
        why = f" (OPENBLAS_CORETYPE={forced})" if forced else " (OpenBLAS's own choice)"
    return f"{info.get('internal_api')} {info.get('architecture')}{why}"
