"""Query time of gallery search with synthetic descriptors (for bench/ and the docs).

``identify_ms(k)`` builds a :class:`~cnnkit.face.index.VectorIndex` over ``k`` random unit-ish
128-d vectors (clustered like enrolled faces: persons with a few photos each), then times
single-descriptor nearest-neighbour queries, as ``identify`` does per face. Exact matmul up to
``exact_max``, faiss IVF above.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from cnnkit.face.index import IndexConfig, VectorIndex


def synthetic_gallery(k: int, dim: int = 128, photos: int = 4, seed: int = 0) -> np.ndarray:
    """(k, dim) float32 descriptors: k / photos persons, each a centre plus small noise.

    Scaled like dlib's descriptors (norm about 1.4, same-person distances about 0.3-0.4).
    """
    rng = np.random.default_rng(seed)
    n_persons = max(1, -(-k // photos))
    centres = rng.standard_normal((n_persons, dim), dtype=np.float32)
    centres *= 1.4 / np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.repeat(centres, photos, axis=0)[:k]
    x += rng.standard_normal(x.shape, dtype=np.float32) * (0.3 / np.sqrt(dim))
    return x


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Queries timed on one thread: BLAS (threadpoolctl) and faiss's OpenMP."""
    from threadpoolctl import threadpool_limits

    faiss: Any
    try:
        import faiss
    except ImportError:  # pragma: no cover
        faiss = None
    before = faiss.omp_get_max_threads() if faiss is not None else None
    try:
        if faiss is not None:
            faiss.omp_set_num_threads(1)
        with threadpool_limits(1):
            yield
    finally:
        if faiss is not None:
            faiss.omp_set_num_threads(before)


def identify_ms(
    k: int,
    n_queries: int = 200,
    config: IndexConfig | None = None,
    seed: int = 0,
    return_recall: bool = False,
) -> float | tuple[float, float]:
    """Median milliseconds of one identify query against ``k`` enrolled descriptors, on one
    thread.

    The index is built (and for faiss, trained) before timing. Queries are noisy copies of
    enrolled descriptors; with ``return_recall`` the function also returns the fraction whose
    answer equals the exact nearest neighbour's person.
    """
    x = synthetic_gallery(k, seed=seed)
    index = VectorIndex(x, config)
    rng = np.random.default_rng(seed + 1)
    rows = rng.integers(0, k, size=n_queries)
    queries = x[rows] + rng.standard_normal((n_queries, x.shape[1]), dtype=np.float32) * 0.02
    index.search(queries[:1], k=1)  # builds (and trains) the faiss index if needed
    times = []
    found = []
    with _one_thread():
        for q in queries:
            start = time.perf_counter()
            _, idx = index.search(q[None], k=1)
            times.append(time.perf_counter() - start)
            found.append(int(idx[0, 0]))
    ms = float(np.median(times) * 1000.0)
    if not return_recall:
        return ms
    _, exact = index.search_exact(queries, k=1)
    photos = 4
    recall = float(np.mean(np.array(found) // photos == exact[:, 0] // photos))
    return ms, recall


if __name__ == "__main__":
    # Standalone: query time and recall at K = 1e4 (exact matmul) and 1e5 (faiss IVF above the
    # exact threshold), one thread. bench/face.py imports this module for its 1:1e6 figure.
    ms_1e4 = identify_ms(10_000)
    ms_1e5, recall_1e5 = identify_ms(100_000, return_recall=True)
    print(
        f"RESULT identify_ms_1e4={ms_1e4:.3f} identify_ms_1e5={ms_1e5:.3f}"
        f" recall_1e5={recall_1e5:.3f}"
    )
