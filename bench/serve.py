"""Benchmark: `cnnkit serve` identify over HTTP vs the library's own identify_image in-process.

Set-up (loopback only; everything is started here and stopped at the end):

- a database (``--backend postgresql``: a throwaway PostgreSQL server started as in the tests;
  ``sqlite``: a temporary file) holding a gallery of ``--persons`` synthetic persons (random unit
  descriptors of the default pipeline's length, inserted directly through the storage; at
  distance ~1.2-1.4 from any real face,
  so they never match) plus a few real persons enrolled through the API (one LFW photo each);
- ``--photos`` real face photos (LFW dev images from /work/shared/data/lfw-dev if present, else
  photos made from images that installed packages ship, as in the tests);
- the server: ``cnnkit serve --workers PROCS`` and the peer, ``cnnkit.face.identify_image`` on the
  same store (a replica index over the same database) in ``PROCS`` processes. Both are pinned to
  the same ``PROCS`` CPUs at 1 thread per process; the HTTP clients run on the other CPUs.

Measured in the same run:

- ``peer_pps``: photos/s of ``identify_image`` in-process (each process loops over all photos);
- ``server_rps``: identify requests/s with ``--clients`` concurrent clients (closed loop, the
  maximum load) for ``--seconds`` seconds; ``throughput_ratio = server_rps / peer_pps`` (goal
  >= 0.8);
- ``p50_ms``, ``p99_ms``: latency at half the maximum load (open loop: ``--samples`` requests
  at a fixed rate of ``server_rps / 2``, timed from when each was due), goal p99 <= 3x p50;
- ``half_rps``: the rate achieved in that phase; ``single_ms``: the median time of one request
  alone (one client, no batching): above ``1000 / (server_rps / 2)`` ms, half the batched
  maximum is more than the server can do unbatched, and requests queue until batches form;
- ``errors``: replies that are not 200; ``lost``: requests with no reply plus enrolled persons
  missing afterwards; ``mismatches``: photos where the server and the peer name different people.

Usage: ``OMP_NUM_THREADS=1 python bench/serve.py [--backend postgresql|sqlite] [--quick]``.
Ends with one ``RESULT key=value ...`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LFW = Path("/work/shared/data/lfw-dev/images")
GALLERY = "bench"
log = logging.getLogger("bench.serve")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--persons", type=int, default=10_000, help="synthetic persons in the gallery")
    p.add_argument("--enrolled", type=int, default=6, help="real persons enrolled via the API")
    p.add_argument("--photos", type=int, default=24, help="real photos the clients send")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--procs", type=int, default=1, help="server workers = peer processes")
    p.add_argument("--seconds", type=float, default=12.0, help="duration at maximum load")
    p.add_argument("--samples", type=int, default=200, help="requests at half load")
    p.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    args = p.parse_args(argv)
    if args.quick:
        args.persons, args.photos, args.seconds, args.samples = 500, 8, 3.0, 40
    return args


# -- photos ------------------------------------------------------------------------------------
def choose_photos(n_query: int, n_enrolled: int, folder: Path) -> tuple[list[Path], dict]:
    """Query photos and {name: enrollment photo}; enrolled persons' other photos are queries."""
    if LFW.is_dir():
        people = sorted(p for p in LFW.iterdir() if p.is_dir())
        multi = [p for p in people if len(list(p.glob("*.jpg"))) >= 2]
        enrolled = {p.name: sorted(p.glob("*.jpg"))[0] for p in multi[:n_enrolled]}
        queries = [sorted(p.glob("*.jpg"))[1] for p in multi[:n_enrolled]]
        others = [sorted(p.glob("*.jpg"))[0] for p in people if p.name not in enrolled]
        step = max(1, len(others) // max(1, n_query - len(queries)))
        queries += others[::step][: n_query - len(queries)]
        return queries, enrolled
    sys.path.insert(0, str(ROOT))
    from tests.face.shipped import write_photos

    paths = write_photos(folder)
    enrolled = {"Grace Hopper": paths["grace"], "Astronaut": paths["astro"]}
    names = ["grace_flip", "grace_crop", "grace_rot", "grace_bright", "astro_flip", "two"]
    return [paths[n] for n in names][:n_query], enrolled


# -- the database ------------------------------------------------------------------------------
@contextlib.contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield str(folder / "serve.sqlite3")
        return
    sys.path.insert(0, str(ROOT))
    from tests.pgserver import postgres_server

    with postgres_server("cnnkit_bench") as server:
        log.info("PostgreSQL started in %.1f s", server.startup_s)
        yield server.url


def fill_gallery(db: str, persons: int, model_id: str, dim: int) -> None:
    from cnnkit.face.descriptors import DEFAULT_PIPELINE
    from cnnkit.progress import progress
    from cnnkit.serve.storage import open_storage

    rng = np.random.default_rng(0)
    x = rng.standard_normal((persons, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    storage = open_storage(db)
    try:
        for i in progress(range(persons), desc="synthetic persons"):
            storage.add_photos(  # recorded as the default's, so the real persons use it too
                GALLERY,
                f"synthetic-{i:05d}",
                x[i : i + 1],
                model_id=model_id,
                pipeline=DEFAULT_PIPELINE,
            )
    finally:
        storage.close()


# -- the peer: identify_image in-process -------------------------------------------------------
def _peer_worker(db: str, photos: list[str], rounds: int, cpus: list[int], out) -> None:
    os.sched_setaffinity(0, cpus)
    import torch

    torch.set_num_threads(1)
    from cnnkit.face import identify_image
    from cnnkit.face.pipeline import default_encoder
    from cnnkit.serve.replica import GalleryStore, ReplicaIndex
    from cnnkit.serve.storage import open_storage

    encoder = default_encoder()
    storage = open_storage(db)
    store = GalleryStore(ReplicaIndex(storage), GALLERY)

    def identify(path: str) -> list[str | None]:
        return [f.name for f in identify_image(store, path, encoder=encoder)]

    names = [identify(p) for p in photos[:2]]  # warm-up
    t0 = time.perf_counter()
    for _ in range(rounds):
        names = [identify(p) for p in photos]
    out.put((len(photos) * rounds, time.perf_counter() - t0, names))
    storage.close()


def run_peer(db: str, photos: list[Path], procs: int, cpus: list[int], rounds: int):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [
        ctx.Process(target=_peer_worker, args=(db, [str(p) for p in photos], rounds, cpus, q))
        for _ in range(procs)
    ]
    for p in ps:
        p.start()
    results = [q.get(timeout=600) for _ in ps]
    for p in ps:
        p.join(timeout=60)
    # Every process ran at the same time: the throughput is the sum of their rates.
    pps = sum(n / s for n, s, _ in results)
    return pps, results[0][2]


# -- the server --------------------------------------------------------------------------------
@contextlib.contextmanager
def server(db: str, workers: int, cpus: list[int], folder: Path) -> Iterator[str]:
    """``cnnkit serve`` (the tests' launcher) pinned to ``cpus``: children inherit affinity."""
    sys.path.insert(0, str(ROOT))
    from tests.serve.server import start_server

    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        running = start_server(db, folder, "--workers", str(workers))
    finally:
        os.sched_setaffinity(0, before)
    try:
        yield running.url
    finally:
        running.stop()


class Load:
    """Clients posting photos to /identify; counts replies, errors, latencies and names.

    The ``clients`` HTTP clients are made once and kept (with their keep-alive connections)
    across phases, so no phase pays for opening clients or connections.
    """

    def __init__(self, url: str, key: str, photos: list[bytes], clients: int):
        import httpx

        self.url, self.key, self.photos, self.clients = url, key, photos, clients
        self.errors = 0
        self.lost = 0
        self.names: dict[int, list] = {}
        self.lock = threading.Lock()
        self.http = [httpx.Client(timeout=60) for _ in range(clients)]

    def close(self) -> None:
        for http in self.http:
            http.close()

    def _post(self, c: int, i: int) -> bool:
        import httpx

        j = i % len(self.photos)
        try:
            r = self.http[c].post(
                self.url + "/api/v1/identify",
                files={"file": (f"{j}.jpg", self.photos[j], "image/jpeg")},
                headers={"X-API-Key": self.key},
            )
        except httpx.HTTPError as exc:
            log.warning("request %d: %s", i, exc)
            with self.lock:
                self.lost += 1
            return False
        with self.lock:
            if r.status_code != 200:
                self.errors += 1
                log.warning("request %d: %d %s", i, r.status_code, r.text[:200])
                return False
            self.names[j] = [
                None if f["name"] == "unknown" else f["name"] for f in r.json()["faces"]
            ]
        return True

    def _run(self, work) -> None:
        threads = [threading.Thread(target=work, args=(c,)) for c in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def closed_loop(self, seconds: float) -> float:
        """Every client sends its next request as soon as the last one answers; returns req/s."""
        done = [0] * self.clients
        stop = time.perf_counter() + seconds

        def client(c: int) -> None:
            i = c
            while time.perf_counter() < stop:
                if self._post(c, i):
                    done[c] += 1
                i += self.clients

        t0 = time.perf_counter()
        self._run(client)
        return sum(done) / (time.perf_counter() - t0)

    def sequential(self, n: int) -> np.ndarray:
        """One client, one request at a time: the service time (ms) of an unbatched request."""
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            if self._post(0, i):
                out.append((time.perf_counter() - t0) * 1e3)
        return np.array(out)

    def open_loop(self, rate: float, n: int) -> np.ndarray:
        """``n`` requests due at a fixed ``rate``; latency (ms) from due time to reply."""
        latencies: list[float] = []
        counter = iter(range(n))
        t0 = time.perf_counter() + 0.05

        def client(c: int) -> None:
            while True:
                with self.lock:
                    i = next(counter, None)
                if i is None:
                    return
                due = t0 + i / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                if self._post(c, i):
                    with self.lock:
                        latencies.append((time.perf_counter() - due) * 1e3)

        self._run(client)
        return np.array(latencies)


def enroll_via_api(url: str, key: str, enrolled: dict[str, Path]) -> None:
    import httpx

    headers = {"X-API-Key": key}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for name, photo in enrolled.items():
            r = http.post("/api/v1/persons", json={"name": name})
            r.raise_for_status()
            pid = r.json()["id"]
            r = http.post(
                f"/api/v1/persons/{pid}/photos", files={"file": (photo.name, photo.read_bytes())}
            )
            r.raise_for_status()


def count_persons(url: str, key: str) -> int:
    import httpx

    r = httpx.get(
        url + "/api/v1/persons", headers={"X-API-Key": key}, params={"limit": 1}, timeout=60
    )
    r.raise_for_status()
    body = r.json()
    return int(body.get("total", len(body["items"])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ["OMP_NUM_THREADS"] = "1"
    cpus_all = sorted(os.sched_getaffinity(0))
    procs = args.procs
    worker_cpus = cpus_all[-procs:]
    client_cpus = [c for c in cpus_all if c not in worker_cpus] or cpus_all
    sys.path.insert(0, str(ROOT))
    from tests.serve.server import make_key

    from cnnkit.face.descriptors import descriptor_dim
    from cnnkit.face.pipeline import default_encoder

    encoder = default_encoder()
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-serve-") as tmp:
        folder = Path(tmp)
        photos, enrolled = choose_photos(args.photos, args.enrolled, folder / "photos")
        blobs = [p.read_bytes() for p in photos]
        with database(args.backend, folder) as db:
            t = time.perf_counter()
            fill_gallery(db, args.persons, encoder.model_id, descriptor_dim(None, encoder.dim))
            log.info("gallery: %d persons in %.1f s", args.persons, time.perf_counter() - t)
            key = make_key(db, "enroll", gallery=GALLERY)
            with server(db, procs, worker_cpus, folder / "logs") as url:
                os.sched_setaffinity(0, client_cpus)
                enroll_via_api(url, key, enrolled)
                total = args.persons + len(enrolled)
                rounds = max(1, int(np.ceil(40 / len(photos))))
                log.info("peer: identify_image on %d photos x %d rounds", len(photos), rounds)
                peer_before, peer_names = run_peer(db, photos, procs, worker_cpus, rounds)
                log.info("peer: %.2f photos/s", peer_before)
                load = Load(url, key, blobs, args.clients)
                load.closed_loop(2.0)  # warm-up: every worker, every code path
                server_rps = load.closed_loop(args.seconds)
                log.info("server: %.2f req/s with %d clients", server_rps, args.clients)
                # The machine's load drifts: the peer's rate is the mean of before and after.
                peer_after, _ = run_peer(db, photos, procs, worker_cpus, rounds)
                log.info("peer: %.2f photos/s", peer_after)
                peer_pps = (peer_before + peer_after) / 2
                single = load.sequential(len(photos))
                t = time.perf_counter()
                lat = load.open_loop(server_rps / 2, args.samples)
                half_rps = len(lat) / (time.perf_counter() - t)
                p50, p99 = np.percentile(lat, [50, 99]) if len(lat) else (np.nan, np.nan)
                lost = load.lost + max(0, total - count_persons(url, key))
                mismatches = sum(load.names.get(j) != peer_names[j] for j in range(len(photos)))
                load.close()
    ratio = server_rps / peer_pps
    print(
        f"RESULT bench=serve backend={args.backend} persons={args.persons} peer=identify_image "
        f"clients={args.clients} procs={procs} photos={len(photos)} peer_pps={peer_pps:.2f} "
        f"server_rps={server_rps:.2f} throughput_ratio={ratio:.2f} p50_ms={p50:.1f} "
        f"p99_ms={p99:.1f} p99_over_p50={p99 / p50:.2f} half_rps={half_rps:.2f} "
        f"single_ms={np.median(single):.1f} errors={load.errors} lost={lost} "
        f"mismatches={mismatches}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
