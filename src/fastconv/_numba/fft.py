"""Frequency-domain channel sum of the FFT backend.

Same blocking and summation order (c ascending) as csrc/fft.c and
_cython/fft.pyx: chunks of (frequency block, block of rows (image, tile),
group, up to 4 output channels), output channels fastest so that consecutive
chunks on one thread reuse the input spectra from L2, and rows looped inside
a chunk so that each kernel-spectrum block is read from memory once per block
of rows.  A single one-channel image still splits across threads by
frequency.  The spectra arrive as real views of interleaved complex numbers:
the products are plain real arithmetic LLVM vectorises.  Unlike the C kernel,
each output channel of a chunk makes its own pass over x (see _cmac_row).
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads

_KBLOCK = 4


def _blocks(Cg, rows, isz):
    """(fblock, rblock): 4 y rows in L1, the w block and the x block in L2."""
    fblock = min(max((256 * 1024) // (_KBLOCK * Cg * isz), 32), 16384 // isz)
    rblock = min(max((512 * 1024) // (Cg * fblock * isz), 1), rows)
    return fblock, rblock


@njit(cache=True, nogil=True)
def _cmac_row(x, w, y, n, t, c0, k, a, b):
    """y[n, k, t, a:b] = sum_c x[n, c0 + c, t, a:b] * conj(w[k, c, a:b])."""
    # Full-array arguments indexed down to contiguous 1-D slices keep Numba's
    # 'C' layout (a sliced channel range would not), and a loop from 0 lets
    # it prove the indices non-negative; either lapse stops vectorisation.
    # One output channel at a time: with four, LLVM's alias checks give up.
    yk = y[n, k, t, a:b]
    yk[:] = 0.0
    for c in range(w.shape[1]):
        xc = x[n, c0 + c, t, a:b]
        wc = w[k, c, a:b]
        for i in range((b - a) // 2):
            xr = xc[2 * i]
            xi = xc[2 * i + 1]
            yk[2 * i] += xr * wc[2 * i] + xi * wc[2 * i + 1]
            yk[2 * i + 1] += xi * wc[2 * i] - xr * wc[2 * i + 1]


@njit(parallel=True, cache=True, nogil=True)
def _cmac(x, w, y, groups, fblock, rblock):
    N, K, T, F2 = y.shape
    Cg = w.shape[1]
    F = F2 // 2
    Kg = K // groups
    rows = N * T
    nkb = (Kg + _KBLOCK - 1) // _KBLOCK
    nfb = (F + fblock - 1) // fblock
    nrb = (rows + rblock - 1) // rblock
    for chunk in prange(nfb * nrb * groups * nkb):
        fb = chunk // (nrb * groups * nkb)
        rest = chunk % (nrb * groups * nkb)
        rb = rest // (groups * nkb)
        g = (rest // nkb) % groups
        kb = rest % nkb
        k0 = g * Kg + kb * _KBLOCK
        k1 = min(k0 + _KBLOCK, (g + 1) * Kg)
        a = 2 * fb * fblock
        b = min(a + 2 * fblock, F2)
        c0 = g * Cg
        for r in range(rb * rblock, min((rb + 1) * rblock, rows)):
            n = r // T
            t = r % T
            for k in range(k0, k1):
                _cmac_row(x, w, y, n, t, c0, k, a, b)


def _real(a):
    return a.view(np.float32 if a.dtype == np.complex64 else np.float64)


def cmac(x, w, y, groups, n_threads):
    """y[n, k, t, f] = sum_c x[n, g*Cg + c, t, f] * conj(w[k, c, f]), g = k // (K/groups)."""
    numba_threads(n_threads)
    fblock, rblock = _blocks(w.shape[1], y.shape[0] * y.shape[2], x.itemsize)
    _cmac(_real(x), _real(w), _real(y), groups, fblock, rblock)
