"""The naive backend: a direct loop nest, the readable reference.

It pads the input explicitly and runs the definition of cross-correlation,
parallel over output planes.  It serves every geometry and, alone among the
backends, integer arrays (accumulating in int64 with wrap-around), which
``convolve2d`` uses for scipy's integer semantics.
"""
import numpy as np

from . import apply_epilogue
from .._engines import kernels

ENGINES = ("cython", "numba")
INTEGER_OK = True


def unsupported(p):
    return None


def workspace_bytes(p):
    """Scratch bytes of a call: the zero-padded copy of the input, if any."""
    pt, pb, pl, pr = p.pad
    if not (pt or pb or pl or pr):
        return 0
    return p.N * p.C * (p.H + pt + pb) * (p.W + pl + pr) * np.dtype(p.dtype).itemsize


def pad_input(x, p):
    """Zero-pad the H and W axes of ``x`` by ``p.pad`` (top, bottom, left, right)."""
    pt, pb, pl, pr = p.pad
    if not (pt or pb or pl or pr):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def conv2d(x, w, p, engine, n_threads, out=None, epilogue=None):
    xp = pad_input(x, p)
    y = np.empty(p.out_shape, dtype=x.dtype) if out is None else out
    kernels(engine, "naive").conv2d_direct(xp, w, y, p.stride[0], p.stride[1], p.dilation[0],
                                           p.dilation[1], p.groups, n_threads)
    return apply_epilogue(y, epilogue)
