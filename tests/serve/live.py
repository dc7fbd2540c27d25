"""Real `cnnkit serve` processes on loopback, for the fault tests and the service benchmark.

``start_server(db)`` runs ``python -m cnnkit serve --db DB --port P`` as a child process (its own
process group, so a ``kill -9`` takes every worker), waits until ``/readyz`` answers 200, and
returns a :class:`LiveServer`; ``stop()`` ends it gently, ``kill()`` with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    proc: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _spawn(
    db: str, workers: int, extra: Sequence[str], cpus: Sequence[int] | None, log: Path | None
) -> LiveServer:
    port = free_port()
    cmd = [sys.executable, "-m", "cnnkit", "serve", "--db", db, "--port", str(port)]
    cmd += ["--workers", str(workers), *extra]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if log is None:
        log = Path(tempfile.mkstemp(prefix="cnnkit-serve-", suffix=".log")[1])
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return LiveServer(proc, f"http://127.0.0.1:{port}", log)


def _wait_ready(server: LiveServer, deadline: float) -> None:
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"cnnkit serve exited ({server.proc.returncode}):\n{server.output()}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cnnkit serve not ready in time:\n{server.output()}")
        time.sleep(0.1)


def start_servers(
    db: str,
    n: int = 1,
    *,
    workers: int = 1,
    extra: Sequence[str] = (),
    cpus: Sequence[int] | None = None,
    log: Path | None = None,
    timeout: float = 120.0,
) -> list[LiveServer]:
    """Start ``n`` ``cnnkit serve`` processes on ``db`` at once (free loopback ports); returns
    when every ``/readyz`` is 200. ``log``: where the output goes (n == 1 only)."""
    servers = [_spawn(db, workers, extra, cpus, log if n == 1 else None) for _ in range(n)]
    try:
        deadline = time.monotonic() + timeout
        for server in servers:
            _wait_ready(server, deadline)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def start_server(db: str, **kwargs) -> LiveServer:
    """One ``cnnkit serve`` process (see :func:`start_servers`)."""
    return start_servers(db, 1, **kwargs)[0]


@contextlib.contextmanager
def running(db: str, **kwargs) -> Iterator[LiveServer]:
    server = start_server(db, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def make_key(db: str, role: str = "admin", gallery: str = "default") -> str:
    """A new API key, made through the storage (``cnnkit serve keys create`` does the same)."""
    from cnnkit.serve.storage import open_storage

    storage = open_storage(db)
    try:
        return storage.create_key(role, gallery)[1]
    finally:
        storage.close()
