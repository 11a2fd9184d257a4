"""Direct convolution, parallel over output rows.

Same loop nest and summation order (c, r, s ascending) as csrc/naive.c.
"""
from numba import njit, prange

from .._threads import numba_threads


@njit(parallel=True, cache=True, nogil=True)
def _conv2d_direct(xp, w, y, sh, sw, dh, dw, groups):
    N, K, OH, OW = y.shape
    Cg, R, S = w.shape[1], w.shape[2], w.shape[3]
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
                xr = xp[n, c0 + c, oh * sh + r * dh]
                for s in range(S):
                    wv = w[k, c, r, s]
                    if sw == 1:  # contiguous: lets LLVM vectorise
                        xs = xr[s * dw:s * dw + OW]
                        for ow in range(OW):
                            out[ow] += wv * xs[ow]
                    else:
                        for ow in range(OW):
                            out[ow] += wv * xr[ow * sw + s * dw]


def conv2d_direct(xp, w, y, sh, sw, dh, dw, groups, n_threads):
    """y = direct cross-correlation of the padded input xp with w."""
    numba_threads(n_threads)
    _conv2d_direct(xp, w, y, sh, sw, dh, dw, groups)
