"""BLAS, wrapped once.

Every matrix product in fastconv goes through :func:`gemm`.  Float products
large enough to share run as column blocks on fastconv's own OpenMP team,
each block one single-threaded BLAS call (``fastconv._cython.gemm``): a
second thread pool (OpenBLAS's) on the same cores fights libgomp's spinning
workers, and on this 2-core machine a small im2col layer waited a scheduler
tick (4 ms) per product when both ran.  BLAS is held at one thread only
for the duration of such a call, counted across Python threads
(``fastconv._threads.single_threaded_blas``), so that no product's rounding
depends on what other threads do.  Small products and other dtypes use
``numpy.matmul`` under the same hold; installs without the Cython engine use
it with BLAS at fastconv's thread count.

The blocks call the BLAS numpy's own matmul runs when numpy ships one with
the ILP64 symbols of scipy-openblas (``scipy_sgemm_64_``), else scipy's.
The two wheels bundle different OpenBLAS builds: here (Intel Xeon, AVX-512,
SkylakeX kernels, one thread) numpy's 0.3.31 ran ResNet-sized products in
the orientation fastconv calls (C^T = B^T A^T) 1.2-2x faster than scipy's
0.3.30 (e.g. (64 x 147) @ (147 x 100352): 19 against 38 ms).  Following
numpy also means that a product here is never slower than ``a @ b`` in the
same process for a reason of library alone.  ``FASTCONV_BLAS=scipy`` keeps
scipy's; :func:`blas_library` says which runs.
"""
import ctypes
import math
import os

import numpy as np

from ._threads import apply_blas_threads, get_num_threads, single_threaded_blas

_MIN_FLOPS = 2e5          # below this, one thread and no hand-off is faster
_FLOATS = (np.float32, np.float64)
_state = {"mod": None, "library": "none"}
BLAS_ENV = "FASTCONV_BLAS"


def _engine():
    if _state["mod"] is None:
        try:
            from ._cython import gemm as mod
        except ImportError:
            mod = False
        _state["mod"] = mod
        if mod:
            _state["library"] = _route(mod)
    return _state["mod"]


def _numpy_openblas():
    """The path of the scipy-openblas64 library numpy loaded, or None."""
    from threadpoolctl import threadpool_info
    numpy_dir = os.path.dirname(os.path.abspath(np.__file__))
    for d in threadpool_info():
        path = d.get("filepath") or ""
        # auditwheel puts numpy's libraries in numpy.libs, delocate in numpy/.dylibs
        if d.get("internal_api") == "openblas" and os.path.abspath(path).startswith(numpy_dir) \
                and "scipy_openblas64" in os.path.basename(path):
            return path
    return None


def _route(mod):
    """Point the Cython products at numpy's BLAS where possible; the library's description."""
    choice = os.environ.get(BLAS_ENV, "numpy").strip().lower() or "numpy"
    if choice not in ("numpy", "scipy"):
        raise ValueError(f"{BLAS_ENV} must be 'numpy' or 'scipy', got {choice!r}")
    path = _numpy_openblas() if choice == "numpy" else None
    if path is not None:
        try:
            lib = ctypes.CDLL(path)
            syms = (lib.scipy_sgemm_64_, lib.scipy_dgemm_64_, lib.scipy_sgemv_64_, lib.scipy_dgemv_64_)
        except (OSError, AttributeError):
            path = None
    if path is None:
        mod.use_blas(0, 0, 0, 0)
        return "scipy's BLAS (scipy.linalg.cython_blas)"
    mod.use_blas(*(ctypes.cast(f, ctypes.c_void_p).value for f in syms))
    return f"numpy's BLAS ({os.path.basename(path)})"


def blas_library():
    """Which BLAS fastconv's products call: numpy's bundled OpenBLAS or scipy's.

    Examples
    --------
    >>> from fastconv._blas import blas_library
    >>> blas_library().split()[0] in ("numpy's", "scipy's", "numpy.matmul")
    True
    """
    return _state["library"] if _engine() else "numpy.matmul (the Cython engine is not built)"


def _blas_ready(m):
    """``m`` (4-D) with every matrix C- or F-ordered, copying if it is neither."""
    s0, s1 = m.strides[2:]
    item = m.itemsize
    c_ok = s1 == item and s0 >= max(m.shape[3], 1) * item
    f_ok = s0 == item and s1 >= max(m.shape[2], 1) * item
    if not (c_ok or f_ok) or s0 % item or s1 % item:
        m = np.ascontiguousarray(m)
    return m


def gemm(a, b, out=None, accumulate=False, bias=None, residual=None, relu=False):
    """``a @ b`` with numpy's broadcasting over up to two leading axes, into ``out`` if given.

    ``accumulate=True`` adds the product into ``out``.  An epilogue follows,
    each part only when given: ``out = relu((out + residual) + bias[..., None])``,
    ``residual`` of out's shape (not overlapping it) and ``bias`` one value
    per row of each matrix, shaped as out's second-to-last axes (for a 4-D out
    (B1, B2, M, N): (B2, M)).  The Cython engine applies it to each block of
    the product while the block is in cache.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._blas import gemm
    >>> gemm(np.eye(2), np.arange(4.0).reshape(2, 2))
    array([[0., 1.],
           [2., 3.]])
    """
    mod = _engine()
    epilogued = bias is not None or residual is not None or relu
    if epilogued:
        if not (mod and out is not None and out.ndim == 4 and out.strides[-1] == out.itemsize
                and a.dtype == b.dtype == out.dtype and a.dtype in _FLOATS
                and (bias is None or (bias.shape == out.shape[1:3] and bias.dtype == out.dtype))
                and (residual is None or (residual.shape == out.shape and residual.dtype == out.dtype
                                          and residual.strides[-1] == residual.itemsize))):
            return apply_epilogue(gemm(a, b, out, accumulate), bias, residual, relu)
    if not (mod and a.dtype == b.dtype and a.dtype in _FLOATS and 2 <= a.ndim <= 4 and 2 <= b.ndim <= 4):
        return _numpy_gemm(a, b, out, accumulate)
    # Plain tuple arithmetic throughout: numpy's broadcast_shapes, prod and
    # broadcast_to cost 15 us a call between them, more than the product of
    # a small layer.
    batch = _batch_shape(a.shape[:-2], b.shape[:-2])
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    if b.shape[-2] != K:
        raise ValueError(f"gemm: inner dimensions differ: a {a.shape}, b {b.shape}")
    if out is None:
        out = np.empty(batch + (M, N), dtype=a.dtype)
        accumulate = False
    elif out.shape != batch + (M, N):
        raise ValueError(f"gemm: out must have shape {batch + (M, N)}, got {out.shape}")
    if 2.0 * math.prod(batch) * M * K * N < _MIN_FLOPS:
        return apply_epilogue(_numpy_gemm(a, b, out, accumulate), bias, residual, relu)
    item = out.itemsize
    if out.strides[-1] != item or out.strides[-2] < N * item:
        # Through a contiguous copy rather than numpy's threaded BLAS, so that
        # the result does not depend on the layout of ``out``.
        tmp = gemm(a, b, np.array(out) if accumulate else None, accumulate)
        out[...] = tmp
        return apply_epilogue(out, bias, residual, relu)
    # Leading axes of length 1 are broadcast by the kernel itself.
    c4 = _as_4d(out)
    a4 = _blas_ready(_as_4d(a))
    b4 = _blas_ready(_as_4d(b))
    with single_threaded_blas():
        mod.gemm(a4, b4, c4, accumulate, get_num_threads(), bias, residual, relu)
    return out


def apply_epilogue(c, bias=None, residual=None, relu=False):
    """``c = relu((c + residual) + bias[..., None])`` in place, by numpy (see :func:`gemm`); ``c``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._blas import apply_epilogue
    >>> apply_epilogue(np.array([[-3.0, 1.0]]), bias=np.array([1.0]), relu=True)
    array([[0., 2.]])
    """
    if residual is not None:
        np.add(c, residual, out=c)
    if bias is not None:
        np.add(c, bias[..., None], out=c)
    if relu:
        np.maximum(c, c.dtype.type(0), out=c)
    return c


def _as_4d(m):
    return m if m.ndim == 4 else m.reshape((1,) * (4 - m.ndim) + m.shape)


def _batch_shape(sa, sb):
    """numpy's broadcast of two batch shapes of at most two axes."""
    n = max(len(sa), len(sb))
    sa, sb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    if any(x != y and x != 1 and y != 1 for x, y in zip(sa, sb)):
        raise ValueError(f"gemm: batch shapes {sa} and {sb} do not broadcast")
    return tuple(max(x, y) if x and y else 0 for x, y in zip(sa, sb))


def _numpy_gemm(a, b, out, accumulate):
    # Where the Cython engine is built, concurrent calls hold BLAS at one
    # thread now and then; products here are held too, so that they round
    # the same whatever other Python threads do.  OpenBLAS runs the small
    # ones that land here on one thread anyway.
    with single_threaded_blas() if _engine() else _blas_at_fastconv_count():
        if accumulate:
            out += np.matmul(a, b)
            return out
        return np.matmul(a, b, out=out)


class _blas_at_fastconv_count:
    def __enter__(self):
        apply_blas_threads()

    def __exit__(self, *exc):
        return False
