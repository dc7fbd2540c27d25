"""cnnkit.cpu: the CPU's flags as /proc/cpuinfo lists them, whether bf16 runs natively (flags and
torch's kernels, checked in subprocesses with torch forced to lower ISAs), and the BLAS kernels
named right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnkit import cpu
from cnnkit.cpu import bf16_native, blas_kernels, cpu_flags
from tests.isa import ISA_VARIABLES, run_forced

#: Environment variables that force torch's kernels to a lower ISA.


def test_flags_are_those_of_proc_cpuinfo() -> None:
    text = Path("/proc/cpuinfo").read_text()
    lines = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert cpu_flags() == frozenset(lines.get("flags", lines.get("Features", "")).split())


def _in_subprocess(**env: str) -> tuple[bool, str, bool]:
    """(bf16_native(), ATen's capability, oneDNN's bf16 check) in a fresh Python with ``env``."""
    code = (
        "import torch; from cnnkit.cpu import bf16_native; "
        "print(bf16_native(), torch.backends.cpu.get_cpu_capability(), "
        "torch.ops.mkldnn._is_mkldnn_bf16_supported())"
    )
    native, capability, onednn = run_forced(code, **env).stdout.split()
    return native == "True", capability, onednn == "True"


@pytest.mark.slow  # nine Pythons importing torch: ~20 s
def test_bf16_native_needs_the_flags_and_torch_kernels_at_their_best_isa() -> None:
    """Unforced, bf16 is native exactly where the CPU has the instructions and torch runs its
    AVX-512 (or AMX) kernels; with torch forced below that (ATen to AVX2: its own kernels
    convert bf16; oneDNN to AVX-512 without BF16 or to AVX2: bf16 emulated) the answer is no even
    on a CPU that has the instructions."""
    flags = frozenset(Path("/proc/cpuinfo").read_text().split())  # every flag word is a token
    hardware = bool({"avx512_bf16", "amx_bf16"} & flags)
    native, capability, onednn = _in_subprocess()
    assert native == (hardware and capability in ("AVX512", "AMX") and onednn)
    here = _in_subprocess(**{k: os.environ[k] for k in ISA_VARIABLES if k in os.environ})[0]
    assert here == bf16_native() == bf16_native("cpu") == bf16_native(torch.device("cpu"))
    assert _in_subprocess(ATEN_CPU_CAPABILITY="avx2")[:2] == (False, "AVX2")
    assert _in_subprocess(ONEDNN_MAX_CPU_ISA="AVX2") == (False, capability, False)
    assert _in_subprocess(DNNL_MAX_CPU_ISA="AVX2")[0] is False
    # torch's own check still says yes at AVX512_CORE (bf16 emulated there): bf16_native says no
    for cap in ("AVX512_CORE", "avx512_core_vnni"):
        assert _in_subprocess(ONEDNN_MAX_CPU_ISA=cap) == (False, capability, onednn)
    # capped at bf16 or above, or ONEDNN_ overriding DNNL_: as unforced
    assert _in_subprocess(ONEDNN_MAX_CPU_ISA="AVX512_CORE_BF16")[0] == native
    assert _in_subprocess(ONEDNN_MAX_CPU_ISA="ALL", DNNL_MAX_CPU_ISA="AVX2")[0] == native


def test_bf16_native_trusts_the_flags_and_torch_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CPU without the bf16 instructions (flags taken away) is not native although torch's
    oneDNN check says yes on any AVX-512 CPU (it emulates bf16 there)."""
    assert bf16_native() == (bf16_native() and bool({"avx512_bf16", "amx_bf16"} & cpu_flags()))
    monkeypatch.setattr(cpu, "cpu_flags", lambda: cpu_flags() - {"avx512_bf16", "amx_bf16"})
    assert bf16_native() is False


def test_bf16_native_on_other_devices() -> None:
    ampere = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    assert bf16_native("cuda") == (bool(torch.version.hip) or ampere)
    assert bf16_native("meta") is False


def test_blas_kernels_names_what_threadpoolctl_reports() -> None:
    from threadpoolctl import threadpool_info

    info = next(i for i in threadpool_info() if i["user_api"] == "blas")
    text = blas_kernels()
    assert text.startswith(f"{info['internal_api']} {info.get('architecture')}")
    forced = os.environ.get("OPENBLAS_CORETYPE")
    assert (f"OPENBLAS_CORETYPE={forced}" in text) if forced else ("own choice" in text)


def test_a_forced_coretype_is_reported_and_runs() -> None:
    code = "from cnnkit.cpu import blas_kernels; print(blas_kernels())"
    env = {**os.environ, "OPENBLAS_CORETYPE": "Haswell"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Haswell (OPENBLAS_CORETYPE=Haswell)" in out.stdout
