"""Exact search against brute force; the faiss path (forced by a low threshold) against exact."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cnnkit.errors import ShapeError
from cnnkit.face.index import IndexConfig, VectorIndex


def _bench_module(name: str):
    """A module of bench/ (not part of the installed package), loaded from its file."""
    path = Path(__file__).resolve().parents[2] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_gallery_bench = _bench_module("gallery_bench")
identify_ms, synthetic_gallery = _gallery_bench.identify_ms, _gallery_bench.synthetic_gallery


def test_exact_search_matches_brute_force(rng: np.random.Generator) -> None:
    x = rng.normal(size=(300, 16)).astype(np.float32)
    q = rng.normal(size=(7, 16)).astype(np.float32)
    index = VectorIndex(x)
    assert not index.approximate and len(index) == 300 and index.dim == 16
    dist, idx = index.search(q, k=5)
    brute = np.linalg.norm(q[:, None, :] - x[None, :, :], axis=2)  # (7, 300)
    order = np.argsort(brute, axis=1)[:, :5]
    np.testing.assert_array_equal(idx, order)
    np.testing.assert_allclose(dist, np.take_along_axis(brute, order, axis=1), rtol=1e-4)
    d1, i1 = index.search(q[0], k=1)  # one (d,) vector
    assert i1.shape == (1, 1) and i1[0, 0] == order[0, 0]
    assert index.search(q, k=1000)[1].shape == (7, 300)  # k clipped to K


def test_distances_are_exact_near_zero(rng: np.random.Generator) -> None:
    # Large-norm vectors: the matmul expansion alone loses ~1e-2 at distance 0 in float32.
    x = (rng.normal(size=(500, 128)) * 10 + 30).astype(np.float32)
    q = x[[3, 99, 499]] + np.float32(1e-4)
    for config in (IndexConfig(), IndexConfig(exact_max=10, nprobe=64)):
        dist, idx = VectorIndex(x, config).search(q, k=3)
        np.testing.assert_array_equal(idx[:, 0], [3, 99, 499])
        np.testing.assert_allclose(dist[:, 0], np.sqrt(128) * 1e-4, rtol=0.05)
        brute = np.linalg.norm(q[:, None, :].astype(np.float64) - x[idx], axis=2)
        np.testing.assert_allclose(dist, brute, rtol=1e-5)
        assert (np.diff(dist, axis=1) >= 0).all()


def test_bad_shapes(rng) -> None:
    with pytest.raises(ShapeError, match=r"\(K, d\)"):
        VectorIndex(np.zeros(5, np.float32))
    index = VectorIndex(rng.normal(size=(10, 4)))
    with pytest.raises(ShapeError, match=r"\(M, 4\)"):
        index.search(np.zeros((2, 5), np.float32))


def test_faiss_recall_against_exact(tmp_path: Path) -> None:
    x = synthetic_gallery(4000, dim=128, seed=3)
    config = IndexConfig(exact_max=100, nprobe=8)
    index = VectorIndex(x, config)
    assert index.approximate
    rng = np.random.default_rng(5)
    rows = rng.integers(0, len(x), 200)
    q = x[rows] + rng.normal(size=(200, 128)).astype(np.float32) * 0.01
    dist, idx = index.search(q, k=1)
    exact_dist, exact_idx = index.search_exact(q, k=1)
    recall = np.mean(idx[:, 0] == exact_idx[:, 0])
    assert recall >= 0.95
    hit = idx[:, 0] == exact_idx[:, 0]
    np.testing.assert_allclose(dist[hit, 0], exact_dist[hit, 0], rtol=1e-3, atol=1e-5)
    # Saved and reloaded, it answers the same; a mismatching file is refused.
    path = tmp_path / "g.faiss"
    index.save_faiss(path)
    again = VectorIndex(x, config)
    assert again.load_faiss(path)
    np.testing.assert_array_equal(again.search(q, k=1)[1], idx)
    assert not VectorIndex(x[:-1], config).load_faiss(path)
    (tmp_path / "junk.faiss").write_bytes(b"junk")
    assert not VectorIndex(x, config).load_faiss(tmp_path / "junk.faiss")


def test_identify_ms_reports_time_and_recall() -> None:
    ms, recall = identify_ms(
        2000, n_queries=20, config=IndexConfig(exact_max=500), return_recall=True
    )
    assert 0 < ms < 1000 and recall >= 0.9
    assert 0 < identify_ms(500, n_queries=5) < 1000
