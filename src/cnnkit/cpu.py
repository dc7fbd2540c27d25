"""What the CPU reports (read at run time from /proc/cpuinfo), whether bf16 runs natively, and
the BLAS kernels NumPy runs.

Light on purpose (no NumPy, no torch at import; :func:`bf16_native` imports torch when called).
The fast paths that depend on the hardware (bf16 for the face encoder and the style networks,
the conv engine's BLAS) read it here, and the benches print :func:`blas_kernels` so a figure
says which kernels produced it.

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


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


#: CPU flags of the bf16 dot-product instructions (AVX512-BF16's vdpbf16ps, AMX-BF16's tiles).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: ATen capabilities at which torch's own (non-oneDNN) kernels have bf16 instructions to use.
BF16_ATEN_CAPABILITIES = frozenset({"AVX512", "AMX"})
#: ``ONEDNN_MAX_CPU_ISA`` caps below AVX512_CORE_BF16: oneDNN then emulates bf16 (at
#: AVX512_CORE, where torch's own check still says yes, the face encoder ran 2.2x slower in bf16
#: than in fp32; bench/bf16_native.py).
ONEDNN_ISAS_WITHOUT_BF16 = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


def _onednn_isa_cap() -> str:
    """oneDNN's ISA cap: ``ONEDNN_MAX_CPU_ISA``, else ``DNNL_MAX_CPU_ISA``, upper case."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", ""))
    return value.strip().upper()


def bf16_native(device: torch.device | str | None = None) -> bool:
    """True where bf16 runs natively on ``device`` (default the CPU): bf16 is then worth choosing.

    The one definition cnnkit uses (``--precision auto`` of the face encoder and of both style
    methods). On a CPU, all of (flags AND torch: neither alone is enough):

    - the CPU's flags (/proc/cpuinfo) name ``avx512_bf16`` or ``amx_bf16``. Without them oneDNN
      emulates bf16 on any AVX-512 CPU, and torch's oneDNN check below says yes there all the
      same; emulated, the face encoder ran 2.2x slower in bf16 than in fp32 (oneDNN capped at
      AVX512_CORE on an AVX512-BF16 CPU, bench/bf16_native.py).
    - torch's view of its kernels: ATen's capability (``torch.backends.cpu.get_cpu_capability``,
      which honours ``ATEN_CPU_CAPABILITY``) is AVX512 or AMX, and oneDNN's bf16 check
      (``torch.ops.mkldnn._is_mkldnn_bf16_supported``, which honours ``ONEDNN_MAX_CPU_ISA``)
      says yes. With ATen forced below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``) its own bf16
      kernels run AVX2 code that converts to fp32 and back; oneDNN's convolutions do not follow
      that variable and stay native (the face encoder still ran 1.8x faster in bf16 there), so
      this is a choice, not a speed test: torch told to act as an AVX2 machine makes ``auto``
      choose what it chooses on one.
    - ``ONEDNN_MAX_CPU_ISA`` (else ``DNNL_MAX_CPU_ISA``) does not cap oneDNN below
      AVX512_CORE_BF16 (:data:`ONEDNN_ISAS_WITHOUT_BF16`), which torch's check lets through.

    On CUDA: ``torch.cuda.is_bf16_supported(including_emulation=False)`` (compute capability
    8.0 or later, or ROCm). Other devices, and CPUs other than x86: False.
    """
    import torch

    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type != "cpu" or not BF16_FLAGS & cpu_flags():
        return False
    if torch.backends.cpu.get_cpu_capability() not in BF16_ATEN_CAPABILITIES:
        return False
    if _onednn_isa_cap() in ONEDNN_ISAS_WITHOUT_BF16:
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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
