"""The direct backend: a convolution for few channels per group.

Depthwise and thinly grouped convolutions do little arithmetic per input
element, so what they cost is memory traffic: im2col packs R*S copies of the
input to feed a GEMM too thin to pay for them, and the naive reference makes
a padded copy.  This backend reads the input where it lies, skips the taps
that fall in the padding by clipping each tap's column range, and
accumulates one output row at a time in cache.  It serves groups of up to
``MAX_CG`` input channels; wider groups belong to im2col, Winograd or FFT.
"""
import numpy as np

from .._engines import kernels

ENGINES = ("cython", "numba")
STEM = "direct"
MAX_CG = 16


def unsupported(p):
    if p.Cg > MAX_CG:
        return f"the direct kernel is for groups of at most {MAX_CG} input channels, got {p.Cg}"
    return None


def conv2d(x, w, p, engine, n_threads):
    y = np.empty(p.out_shape, dtype=x.dtype)
    kernels(engine, STEM).conv2d_direct(x, w, y, p.stride[0], p.stride[1], p.dilation[0], p.dilation[1],
                                        p.pad[0], p.pad[2], p.groups, n_threads)
    return y
