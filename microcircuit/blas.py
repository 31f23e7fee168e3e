"""In-place matrix products for the kernel: ``C <- alpha op(A) op(B) + beta C`` on flat row-major blocks.

``np.dot`` inside Numba allocates its result, so ``port += W @ r`` costs an allocation and two extra
passes over the output each step. The kernel instead calls BLAS ``?gemm`` with ``beta = 1`` directly
on its flat state, through the same cacheable ``numba_xxgemm`` entry point (SciPy's BLAS) that
Numba's own ``np.dot`` uses, so ``cache=True`` still works.

Row-major ``C (m x n) = op(A) (m x k) op(B) (k x n)`` is column-major ``C^T = op(B)^T op(A)^T``:
BLAS is called with the operands swapped and the leading dimensions of the stored rows.
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload
from numba.np.linalg import _BLAS, ensure_blas

ensure_blas()     # fail at import, with Numba's message, if SciPy's BLAS is missing


def gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, sab):
    """``c[:m*n] (m x n) <- alpha op(a) op(b) + beta c`` for flat C-ordered blocks ``a``, ``b``, ``c``;
    ``op(a)`` is ``a`` stored (m x k), or ``a`` stored (k x m) and transposed if ``trans_a``; likewise b.
    ``sab``: a work array of at least 2 elements of c's dtype that carries alpha and beta to BLAS (the
    kernel runs without Numba's allocator). Callable from Numba code only."""
    raise NotImplementedError("microcircuit.blas.gemm is for Numba-compiled code")


@overload(gemm, jit_options={"cache": True})
def _gemm_impl(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, sab):
    xxgemm = _BLAS().numba_xxgemm(c.dtype)
    kind = ord("d") if c.dtype == types.float64 else ord("s")

    def impl(trans_a, trans_b, m, n, k, alpha, a, b, beta, c, sab):
        if m == 0 or n == 0:
            return
        sab[0] = alpha
        sab[1] = beta
        lda = m if trans_a else k       # stored row length of a
        ldb = k if trans_b else n
        # column-major view: C^T (n x m) = op(b)^T (n x k) op(a)^T (k x m)
        xxgemm(kind, ord("t") if trans_b else ord("n"), ord("t") if trans_a else ord("n"), n, m, k,
               sab[0:1].ctypes, b.ctypes, ldb, a.ctypes, lda, sab[1:2].ctypes, c.ctypes, n)
    return impl
