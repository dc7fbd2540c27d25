"""Nearest-neighbour search over enrolled face descriptors.

A gallery of K descriptors is a float32 matrix X of shape (K, d) (d = 128 for dlib's encoder).
For a query q (d,), the Euclidean distance to row k is

    ||q - x_k|| = sqrt(||q||^2 + ||x_k||^2 - 2 q . x_k)

so one float32 matmul ``Q @ X.T`` answers a batch of queries exactly. Up to
``exact_max`` rows (default 100,000) that is what :class:`VectorIndex` does. Above it, an
approximate index from faiss (``IndexIVFFlat``: k-means cells, each query scans ``nprobe`` of
them) keeps a query in a few milliseconds at K = 1,000,000, where the exact matmul takes tens of
milliseconds on one core. The faiss index can be saved beside the database and is rebuilt lazily
when the gallery changes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.errors import DependencyError, ShapeError

log = logging.getLogger(__name__)

#: Above this many vectors the index switches from the exact matmul to faiss.
DEFAULT_EXACT_MAX = 100_000


@dataclass
class IndexConfig:
    """How :class:`VectorIndex` searches."""

    exact_max: int = DEFAULT_EXACT_MAX  # up to this many rows: exact matmul; above: faiss IVF
    nlist: int | None = None  # IVF cells; None -> about sqrt(K), clipped to [1, 65536]
    nprobe: int = 32  # IVF cells scanned per query (recall vs speed)
    train_per_list: int = 40  # rows sampled per cell to train the IVF quantiser (k-means)
    seed: int = 0


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a declared dependency
        raise DependencyError(
            "faiss is needed to search a gallery this large",
            hint="pip install faiss-cpu, or raise the exact-search limit",
        ) from exc
    return faiss


class VectorIndex:
    """Search a (K, d) float32 matrix by Euclidean distance: exact up to ``exact_max``, faiss above.

    Example::

        index = VectorIndex(np.random.rand(1000, 128).astype("float32"))
        dist, idx = index.search(query[None], k=1)   # (1, 1) distances and row indices

    Args:
        vectors: (K, d) descriptors; copied to contiguous float32.
        config: thresholds and faiss parameters.
    """

    def __init__(self, vectors: np.ndarray, config: IndexConfig | None = None):
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2:
            raise ShapeError(f"gallery vectors must be (K, d), got shape {x.shape}")
        self.vectors = x
        self.config = config or IndexConfig()
        self._sq_norms = np.einsum("kd,kd->k", x, x)  # (K,) ||x_k||^2
        self._faiss = None

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def approximate(self) -> bool:
        """True when searches go through faiss (K above ``config.exact_max``)."""
        return len(self) > self.config.exact_max

    # -- faiss ---------------------------------------------------------------------------
    def _build_faiss(self):
        faiss = _import_faiss()
        k, d = self.vectors.shape
        cfg = self.config
        nlist = cfg.nlist or int(round(math.sqrt(k)))
        nlist = max(1, min(nlist, 65536, k))
        quantizer = faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
        rng = np.random.default_rng(cfg.seed)
        n_train = min(k, cfg.train_per_list * nlist)
        if n_train < k:
            sample = self.vectors[np.sort(rng.choice(k, size=n_train, replace=False))]
        else:
            sample = self.vectors
        log.info("building a faiss IVF index: K=%d, nlist=%d", k, nlist)
        index.train(sample)
        index.add(self.vectors)
        index.nprobe = min(cfg.nprobe, nlist)
        return index

    def faiss_index(self):
        """The faiss index (built on first use)."""
        if self._faiss is None:
            self._faiss = self._build_faiss()
        return self._faiss

    def save_faiss(self, path: str | Path) -> None:
        """Write the faiss index to ``path`` atomically (temp file, then rename)."""
        from cnnkit.io import atomic_write_bytes

        faiss = _import_faiss()
        atomic_write_bytes(path, faiss.serialize_index(self.faiss_index()).tobytes())

    def load_faiss(self, path: str | Path) -> bool:
        """Use the faiss index saved at ``path`` if it matches these vectors; return success."""
        faiss = _import_faiss()
        try:
            index = faiss.read_index(str(path))
        except Exception:  # a stale or broken side file is simply rebuilt
            return False
        if index.ntotal != len(self) or index.d != self.dim:
            return False
        if hasattr(index, "nprobe"):
            index.nprobe = min(self.config.nprobe, getattr(index, "nlist", self.config.nprobe))
        self._faiss = index
        return True

    # -- search --------------------------------------------------------------------------
    def search_exact(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Exact k nearest rows: one (M, d) @ (d, K) matmul. Returns (M, k) distances, indices."""
        q = self._check_queries(queries)
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        sq = (
            np.einsum("md,md->m", q, q)[:, None]
            + self._sq_norms[None, :]
            - 2.0 * (q @ self.vectors.T)
        )  # (M, K) squared distances
        if k == 1:
            idx = np.argmin(sq, axis=1)[:, None]
        else:
            part = np.argpartition(sq, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(sq, part, axis=1), axis=1)
            idx = np.take_along_axis(part, order, axis=1)
        return self._exact_distances(q, idx.astype(np.int64))

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """k nearest rows of each query: (M, d) -> (M, k) Euclidean distances and row indices.

        Exact when K <= ``config.exact_max``, faiss IVF above. Missing neighbours (fewer than
        k rows found) have index -1 and distance inf.
        """
        if not self.approximate:
            return self.search_exact(queries, k)
        q = self._check_queries(queries)
        _, idx = self.faiss_index().search(q, min(k, len(self)))
        return self._exact_distances(q, idx.astype(np.int64))

    def _exact_distances(self, q: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distances of the chosen rows ``idx`` (M, k), recomputed as ||q - x|| and sorted.

        The matmul expansion ||q||^2 + ||x||^2 - 2 q.x that picks the candidates cancels
        catastrophically near distance 0 (an error of sqrt(eps) * ||x||, ~1e-2 for unnormalised
        vectors); the k differences per query cost nothing next to the search. -1 (faiss found
        fewer than k rows) stays last with distance inf.
        """
        diff = self.vectors[np.maximum(idx, 0)] - q[:, None, :]  # (M, k, d)
        dist = np.sqrt(np.einsum("mkd,mkd->mk", diff, diff)).astype(np.float32)
        dist[idx < 0] = np.inf
        order = np.argsort(dist, axis=1, kind="stable")
        return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ShapeError(
                f"queries must be (M, {self.dim}) descriptors, got shape {np.shape(queries)}"
            )
        return q
