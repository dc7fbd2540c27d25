"""Start a real ``cnnkit serve`` process on a free loopback port, for the API tests.

Reused by the multi-replica tests: ``start_server(db, folder)`` returns a :class:`Server` with its
base URL; ``stop()`` ends it (``kill=True``: SIGKILL, as a crash would).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 120.0  # seconds: the face models load before the port opens


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self, *, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def cnnkit(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``cnnkit`` command (this checkout's sources) and capture its output."""
    cmd = [sys.executable, "-m", "cnnkit", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env())
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def make_key(db: str, role: str, gallery: str = "default") -> str:
    """A new key from ``cnnkit serve keys create``: the last line of its output."""
    done = cnnkit("serve", "keys", "create", "--role", role, "--gallery", gallery, "--db", db)
    return done.stdout.strip().splitlines()[-1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_server(db: str, folder: Path, *extra: str) -> Server:
    """``cnnkit serve --port 0 --db DB`` in a subprocess; waits until /readyz answers 200."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"server-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "cnnkit", "serve", "--port", "0", "--db", db, *extra]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env())
    deadline = time.monotonic() + STARTUP_TIMEOUT
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"cnnkit serve exited with {proc.returncode}:\n{log.read_text()}")
        found = re.search(
            r"(?:Uvicorn running on|cnnkit serve: open) (http://[\d.]+:\d+)", log.read_text()
        )
        if found:
            url = found.group(1)
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    return Server(proc, url, log)
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"cnnkit serve not ready within {STARTUP_TIMEOUT:g} s:\n{log.read_text()}")
