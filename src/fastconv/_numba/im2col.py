"""im2col packing and its adjoint col2im, parallel with Numba.

Same functions, arguments and loop structure as the Cython engine over
csrc/im2col.c; the layout of the column matrix is described in
csrc/im2col.h.  One compiled signature per dtype: x is always 4-D and cols
always 2-D C-contiguous, and every size is a Python int.
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads


@njit(inline="always")
def _valid_range(off, sw, W, OW):
    """Output columns [lo, hi) whose tap off + ow*sw lies inside [0, W)."""
    lo = 0 if off >= 0 else (-off + sw - 1) // sw
    hi = 0 if off > W - 1 else (W - 1 - off) // sw + 1
    lo = min(lo, OW)
    hi = max(min(hi, OW), lo)
    return lo, hi


@njit(parallel=True, cache=True, nogil=True)
def _im2col(x, cols, n0, nb, c0, Cp, R, S, OH, OW, sh, sw, pt, pl, dh, dw):
    H, W = x.shape[2], x.shape[3]
    L = OH * OW
    ld = cols.shape[1]
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    # (image, channel, tap row) items, as in the Cython engine.
    for item in prange(nb * Cp * R):
        i = item // (Cp * R)
        c = (item // R) % Cp
        r = item % R
        plane = ((n0 + i) * x.shape[1] + c0 + c) * H * W
        for s in range(S):
            row = ((c * R + r) * S + s) * ld + i * L
            off = s * dw - pl
            lo, hi = _valid_range(off, sw, W, OW)
            for oh in range(OH):
                # Unsigned offsets: Numba skips the negative-index fix-up on
                # them, which is what lets these loops vectorise.
                d = np.uint64(row + oh * OW)
                ih = oh * sh - pt + r * dh
                if ih < 0 or ih >= H:
                    for ow in range(np.uint64(OW)):
                        cf[d + ow] = 0
                    continue
                for ow in range(np.uint64(lo)):
                    cf[d + ow] = 0
                src = np.uint64(plane + ih * W + off + lo * sw)
                dl = d + np.uint64(lo)
                if sw == 1:
                    for j in range(np.uint64(hi - lo)):
                        cf[dl + j] = xf[src + j]
                else:
                    usw = np.uint64(sw)
                    for j in range(np.uint64(hi - lo)):
                        cf[dl + j] = xf[src + j * usw]
                for ow in range(np.uint64(hi), np.uint64(OW)):
                    cf[d + ow] = 0


@njit(parallel=True, cache=True, nogil=True)
def _col2im(cols, x, n0, nb, c0, Cp, R, S, OH, OW, sh, sw, pt, pl, dh, dw):
    H, W = x.shape[2], x.shape[3]
    L = OH * OW
    ld = cols.shape[1]
    xf = x.reshape(-1)
    cf = cols.reshape(-1)
    # One item per (image, channel) plane, so no two items write one pixel.
    for item in prange(nb * Cp):
        i = item // Cp
        c = item % Cp
        plane = ((n0 + i) * x.shape[1] + c0 + c) * H * W
        for r in range(R):
            for s in range(S):
                row = ((c * R + r) * S + s) * ld + i * L
                off = s * dw - pl
                lo, hi = _valid_range(off, sw, W, OW)
                for oh in range(OH):
                    ih = oh * sh - pt + r * dh
                    if ih < 0 or ih >= H:
                        continue
                    # Unsigned offsets, as in _im2col.
                    src = np.uint64(row + oh * OW + lo)
                    dst = np.uint64(plane + ih * W + off + lo * sw)
                    if sw == 1:
                        for j in range(np.uint64(hi - lo)):
                            xf[dst + j] += cf[src + j]
                    else:
                        usw = np.uint64(sw)
                        for j in range(np.uint64(hi - lo)):
                            xf[dst + j * usw] += cf[src + j]


def im2col(x, cols, n0, nb, c0, Cp, R, S, OH, OW, sh, sw, pt, pl, dh, dw, n_threads):
    """Pack images n0..n0+nb-1, channels c0..c0+Cp-1 of x into cols, zero padding included."""
    if nb <= 0 or Cp <= 0 or R <= 0:
        return
    numba_threads(n_threads)
    _im2col(x, cols, n0, nb, c0, Cp, R, S, OH, OW, sh, sw, pt, pl, dh, dw)


def col2im(cols, x, n0, nb, c0, Cp, R, S, OH, OW, sh, sw, pt, pl, dh, dw, n_threads):
    """x[n0:n0+nb, c0:c0+Cp] += the adjoint of im2col applied to cols."""
    if nb <= 0 or Cp <= 0:
        return
    numba_threads(n_threads)
    _col2im(cols, x, n0, nb, c0, Cp, R, S, OH, OW, sh, sw, pt, pl, dh, dw)
