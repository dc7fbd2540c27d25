"""`torchrun --nproc_per_node 2 -m cnnkit train ...` with gloo on CPU: two processes, one writer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cnnkit.train import load_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_process_ddp_training(shapes_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp.pt"
    # gloo on the loopback interface: the test's servers listen on loopback only
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CNNKIT_QUIET": "1", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "cnnkit", "train", "lenet5_modern", "--data", str(shapes_dir),
        "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    # the first failing rank's own words come first in stderr; torchrun's summary follows
    assert proc.returncode == 0, proc.stderr[:3000] + "\n...\n" + proc.stderr[-1000:]
    # only rank 0 prints its summary line and writes the checkpoint
    assert proc.stdout.count("lenet5_modern: 1 epoch(s)") == 1, proc.stdout
    ckpt = load_checkpoint(out)
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    # the epoch's training metrics are summed over both processes: 2 x 15 of the 30 images
    assert ckpt["history"][0]["images"] == 30
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
