"""Strided BLAS GEMM on sub-blocks of NumPy arrays (no copies), with a NumPy fallback.

NumPy's ``matmul`` copies a non-contiguous operand and cannot accumulate into its output. The
convolution engine needs both: it multiplies shifted windows of a flattened image in place. This
module calls ``cblas_sgemm``/``cblas_dgemm`` of the OpenBLAS that NumPy's wheel bundles (so thread
limits set for NumPy apply), or else the Fortran GEMMs that SciPy exports
(``scipy.linalg.cython_blas``), through ctypes with explicit leading dimensions, after checking
every block against its array.

All matrices are given in Fortran (column-major) terms, as BLAS sees them: a C-contiguous
row-major block (r, c) with row stride ld is the Fortran matrix (c x r) with leading dimension ld.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)


def _numpy_blas_lib() -> ctypes.CDLL | None:
    """The OpenBLAS that NumPy itself loaded (wheels bundle one), so it obeys the same limits."""
    import glob
    import os

    root = os.path.dirname(np.__file__)
    pats = ("numpy.libs/*openblas*", ".dylibs/*openblas*")
    for pat in pats:
        base = os.path.dirname(root) if pat.startswith("numpy.libs") else root
        for path in sorted(glob.glob(os.path.join(base, pat))):
            try:
                return ctypes.CDLL(path)
            except OSError:  # pragma: no cover
                continue
    return None


def _cblas_routines() -> dict[type, Callable[..., None]] | None:
    """CBLAS sgemm/dgemm of NumPy's bundled OpenBLAS, with 64- or 32-bit integers."""
    lib = _numpy_blas_lib()
    if lib is None:
        return None
    # NumPy >= 2 wheels: scipy_openblas64_ (ILP64, prefixed); NumPy 1.x wheels: openblas64_.
    for prefix, suffix, int_t in (
        ("scipy_", "64_", ctypes.c_int64),
        ("", "64_", ctypes.c_int64),
        ("scipy_", "", ctypes.c_int),
        ("", "", ctypes.c_int),
    ):
        names = {
            t: f"{prefix}cblas_{ch}gemm{suffix}" for t, ch in ((np.float32, "s"), (np.float64, "d"))
        }
        try:
            fns = {t: getattr(lib, name) for t, name in names.items()}
        except AttributeError:
            continue
        out: dict[type, Callable[..., None]] = {}
        for t, fn in fns.items():
            c_type = ctypes.c_float if t is np.float32 else ctypes.c_double
            fn.restype = None
            fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, c_type,
                           ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, c_type,
                           ctypes.c_void_p, int_t]  # fmt: skip
            out[t] = functools.partial(_call_cblas, fn)
        return out
    return None


def _call_cblas(fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) -> None:
    # 102 = CblasColMajor, 111 = CblasNoTrans, 112 = CblasTrans.
    fn(102, 112 if ta == b"T" else 111, 112 if tb == b"T" else 111, m, n, k, alpha, a, lda, b,
       ldb, beta, c, ldc)  # fmt: skip


def _scipy_routines() -> dict[type, Callable[..., None]] | None:
    """Fortran sgemm/dgemm exported by scipy.linalg.cython_blas."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:  # pragma: no cover - scipy comes with scikit-image
        return None
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    out: dict[type, Callable[..., None]] = {}
    pi = ctypes.POINTER(ctypes.c_int)
    for name, np_type, c_type in (
        ("sgemm", np.float32, ctypes.c_float),
        ("dgemm", np.float64, ctypes.c_double),
    ):
        cap = cython_blas.__pyx_capi__[name]
        ptr = api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap))
        pf = ctypes.POINTER(c_type)
        proto = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, pi, pi, pi, pf,
                                 ctypes.c_void_p, pi, ctypes.c_void_p, pi, pf, ctypes.c_void_p,
                                 pi)  # fmt: skip
        out[np_type] = functools.partial(_call_fortran, proto(ptr), c_type)
    return out


def _call_fortran(fn, c_type, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) -> None:
    ci = ctypes.c_int
    fn(ta, tb, ci(m), ci(n), ci(k), c_type(alpha), a, ci(lda), b, ci(ldb), c_type(beta), c,
       ci(ldc))  # fmt: skip


@functools.cache
def _routines() -> dict[type, Callable[..., None]] | None:
    """{np.float32: sgemm, np.float64: dgemm}: NumPy's own OpenBLAS, else SciPy's, else None."""
    for source in (_cblas_routines, _scipy_routines):
        try:
            found = source()
        except Exception as err:  # pragma: no cover - a broken BLAS must not break the engine
            log.debug("BLAS source %s failed: %s", source.__name__, err)
            continue
        if found is not None:
            log.debug("conv GEMMs use %s", source.__name__)
            return found
    log.info("no strided BLAS found; conv uses the slower NumPy GEMM fallback")
    return None


def backend() -> str:
    """Which GEMM the engine uses: "numpy-openblas", "scipy-blas" or "numpy-fallback"."""
    r = _routines()
    if r is None:
        return "numpy-fallback"
    fn = r[np.float32]
    return "numpy-openblas" if getattr(fn, "func", None) is _call_cblas else "scipy-blas"


def _check(arr: np.ndarray, off: int, rows: int, cols: int, ld: int, name: str) -> None:
    if not arr.flags.c_contiguous:
        raise ValueError(f"gemm operand {name} must be C-contiguous")
    if rows < 0 or cols < 0 or ld < max(1, rows) or off < 0:
        raise ValueError(f"gemm operand {name}: bad block {rows}x{cols} ld={ld} off={off}")
    if rows and cols and off + (cols - 1) * ld + rows > arr.size:
        raise ValueError(
            f"gemm operand {name}: block {rows}x{cols} ld={ld} off={off} "
            f"runs past the array of {arr.size} elements"
        )


def _view(arr: np.ndarray, off: int, rows: int, cols: int, ld: int) -> np.ndarray:
    """The Fortran block as a NumPy (rows, cols) view."""
    item = arr.itemsize
    flat = arr.reshape(-1)[off:]
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (item, ld * item), writeable=True)


def gemm(
    trans_a: bool,
    trans_b: bool,
    m: int,
    n: int,
    k: int,
    a: np.ndarray,
    a_off: int,
    lda: int,
    b: np.ndarray,
    b_off: int,
    ldb: int,
    beta: float,
    c: np.ndarray,
    c_off: int,
    ldc: int,
    use_blas: bool = True,
) -> None:
    """Fortran-order ``C[m x n] = op(A) @ op(B) + beta * C`` on blocks of C-contiguous arrays.

    Each block starts ``*_off`` elements into its array and has leading dimension ``ld*``.
    op(A) is m x k (A stored k x m when trans_a), op(B) is k x n. All three arrays must share
    one float dtype; C is updated in place.
    """
    if not (a.dtype == b.dtype == c.dtype):
        raise TypeError(f"gemm dtypes differ: {a.dtype}, {b.dtype}, {c.dtype}")
    ar, ac = (k, m) if trans_a else (m, k)
    br, bc = (n, k) if trans_b else (k, n)
    _check(a, a_off, ar, ac, lda, "A")
    _check(b, b_off, br, bc, ldb, "B")
    _check(c, c_off, m, n, ldc, "C")
    if m == 0 or n == 0:
        return
    routines = _routines() if use_blas else None
    fn = None if routines is None else routines.get(c.dtype.type)
    if fn is None:
        av, bv, cv = (
            _view(a, a_off, ar, ac, lda),
            _view(b, b_off, br, bc, ldb),
            _view(c, c_off, m, n, ldc),
        )
        prod = (av.T if trans_a else av) @ (bv.T if trans_b else bv)
        if beta == 0.0:
            cv[...] = prod
        else:
            cv *= beta
            cv += prod
        return
    item = c.itemsize
    fn(
        b"T" if trans_a else b"N",
        b"T" if trans_b else b"N",
        m,
        n,
        k,
        1.0,
        a.ctypes.data + a_off * item,
        lda,
        b.ctypes.data + b_off * item,
        ldb,
        beta,
        c.ctypes.data + c_off * item,
        ldc,
    )
