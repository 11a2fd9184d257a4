"""BLAS, wrapped once.

Every matrix product in fastconv goes through :func:`gemm`, which makes sure
the BLAS thread pool has fastconv's thread count before the call.  numpy's
matmul reaches the same sgemm/dgemm as ``scipy.linalg.cython_blas`` and
releases the GIL, so there is no need for a second binding.
"""
import numpy as np

from ._threads import apply_blas_threads


def gemm(a, b, out=None):
    """``a @ b`` (stacked over leading axes) through BLAS, into ``out`` if given.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._blas import gemm
    >>> gemm(np.eye(2), np.arange(4.0).reshape(2, 2))
    array([[0., 1.],
           [2., 3.]])
    """
    apply_blas_threads()
    return np.matmul(a, b, out=out)
