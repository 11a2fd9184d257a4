"""Direct convolution without a padded copy, parallel over output rows.

Same loop nest, clipping and summation order (c, r, s ascending) as csrc/direct.c.
"""
from numba import njit, prange

from .._threads import numba_threads


@njit(parallel=True, cache=True, nogil=True)
def _conv2d_direct(x, w, y, sh, sw, dh, dw, pt, pl, groups):
    N, K, OH, OW = y.shape
    Cg, R, S = w.shape[1], w.shape[2], w.shape[3]
    H, W = x.shape[2], x.shape[3]
    Kg = K // groups
    for row in prange(N * K * OH):
        n = row // (K * OH)
        k = (row // OH) % K
        oh = row % OH
        c0 = (k // Kg) * Cg
        out = y[n, k, oh]
        out[:] = 0
        for c in range(Cg):
            for r in range(R):
                ih = oh * sh - pt + r * dh
                if ih < 0 or ih >= H:
                    continue
                xr = x[n, c0 + c, ih]
                for s in range(S):
                    wv = w[k, c, r, s]
                    off = s * dw - pl
                    lo = (-off + sw - 1) // sw if off < 0 else 0
                    hi = min(OW, (W - off + sw - 1) // sw)
                    if sw == 1:
                        for ow in range(lo, hi):
                            out[ow] += wv * xr[ow + off]
                    else:
                        for ow in range(lo, hi):
                            out[ow] += wv * xr[ow * sw + off]


def conv2d_direct(x, w, y, sh, sw, dh, dw, pt, pl, groups, n_threads):
    """y = cross-correlation of x, zero-padded by (pt, pl) at the top/left, with w."""
    numba_threads(n_threads)
    _conv2d_direct(x, w, y, sh, sw, dh, dw, pt, pl, groups)
