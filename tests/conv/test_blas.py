"""The strided GEMM: BLAS and NumPy fallback agree, and out-of-bounds blocks are refused."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.conv import blas


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_blas_equals_fallback_and_numpy(ta, tb, dtype, rng):
    m, n, k, lda, ldb, ldc = 5, 4, 3, 9, 11, 7
    a = rng.standard_normal(60).astype(dtype)
    b = rng.standard_normal(60).astype(dtype)
    c0 = rng.standard_normal(40).astype(dtype)
    results = []
    for use_blas in (True, False):
        c = c0.copy()
        blas.gemm(ta, tb, m, n, k, a, 2, lda, b, 1, ldb, 0.5, c, 3, ldc, use_blas=use_blas)
        results.append(c)
    # the same product spelled out with NumPy views of the Fortran blocks
    av = blas._view(a, 2, *((k, m) if ta else (m, k)), lda)
    bv = blas._view(b, 1, *((n, k) if tb else (k, n)), ldb)
    expect = c0.copy()
    cv = blas._view(expect, 3, m, n, ldc)
    cv[...] = 0.5 * cv + (av.T if ta else av) @ (bv.T if tb else bv)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[0], expect, rtol=tol, atol=tol)
    np.testing.assert_allclose(results[1], expect, rtol=tol, atol=tol)
    # cells outside C's block are untouched
    mask = np.ones(40, bool)
    mask[blas._view(np.arange(40), 3, m, n, ldc).ravel()] = False
    np.testing.assert_array_equal(results[0][mask], c0[mask])


def test_gemm_refuses_blocks_past_the_array():
    a, b, c = np.zeros(10, np.float32), np.zeros(10, np.float32), np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="runs past the array"):
        blas.gemm(False, False, 2, 2, 2, a, 0, 2, b, 0, 2, 0.0, c, 5, 4)
    with pytest.raises(TypeError, match="dtypes differ"):
        blas.gemm(False, False, 1, 1, 1, a, 0, 1, b.astype(np.float64), 0, 1, 0.0, c, 0, 1)


def test_a_blas_backend_is_found():
    assert blas.backend() in ("numpy-openblas", "scipy-blas")
