"""cnnkit.cpu: the CPU's flags as /proc/cpuinfo lists them, and the BLAS kernels named right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cnnkit.cpu import blas_kernels, cpu_flags, cpu_has_bf16


def test_flags_are_those_of_proc_cpuinfo() -> None:
    text = Path("/proc/cpuinfo").read_text()
    lines = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert cpu_flags() == frozenset(lines.get("flags", lines.get("Features", "")).split())
    assert cpu_has_bf16() == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


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
