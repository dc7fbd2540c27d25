"""Run Python code in a fresh interpreter with torch's ISA variables set: the one way the tests
check what cnnkit chooses on CPUs (or torch builds) other than this machine's."""

from __future__ import annotations

import os
import subprocess
import sys

#: The variables that force torch's kernels to a lower ISA (ATen's dispatch, oneDNN's).
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def run_forced(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` with the ISA variables of this environment dropped and ``env`` set;
    fails the test (with the child's stderr) when it exits non-zero."""
    clean = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out
