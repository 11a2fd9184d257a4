"""Winograd F(4x4,3x3) input and output transforms, parallel over (channel, chunk).

The same algorithm as csrc/winograd_f4x3.c (interpolation points
0, 1, -1, 2, -2 and infinity): each input row of a segment of tiles is split into its 4 column
phases when loaded (padding applied there), then the separable transform
runs rows then columns with the loop over tiles innermost.  The constants
are cast to the data's type so that float32 stays float32 throughout.
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads
from .pointwise import epilogue_arrays, epilogue_value

CHUNK = 64          # tiles per parallel chunk, and per pass of one tile row
_M = 4
_A = 6


@njit(inline="always")
def _bt(dt, d0, d1, d2, d3, d4, d5):
    """B^T d, constants of the data's type ``dt`` (no float64 promotion)."""
    t1 = d4 - dt(4) * d2
    t2 = d3 - dt(4) * d1
    t3 = d4 - d2
    t4 = dt(2) * (d3 - d1)
    return (dt(4) * d0 - dt(5) * d2 + d4, t1 + t2, t1 - t2, t3 + t4, t3 - t4, dt(4) * d1 - dt(5) * d3 + d5)


@njit(inline="always")
def _at(dt, m0, m1, m2, m3, m4, m5):
    """A^T m (4 of 6)."""
    a = m1 + m2
    b = m1 - m2
    c = m3 + m4
    e = m3 - m4
    return (m0 + a + c, b + dt(2) * e, a + dt(4) * c, b + dt(8) * e + m5)


@njit(parallel=True, cache=True, nogil=True)
def _input_transform(x, V, TH, TW, pt, pl, t0):
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    nt = V.shape[2]
    dt = x.dtype.type
    npieces = (nt + CHUNK - 1) // CHUNK
    for idx in prange(C * npieces):
        c = idx // npieces
        ta = t0 + (idx % npieces) * CHUNK
        tb = min(ta + CHUNK, t0 + nt)
        P = np.zeros((_A, _M, CHUNK + 1), x.dtype)
        Q = np.empty((_A, _M, CHUNK + 1), x.dtype)
        t = ta
        while t < tb:
            n = t // (TH * TW)
            th = (t // TW) % TH
            tw0 = t % TW
            ln = min(TW - tw0, tb - t, CHUNK)
            ih0 = th * _M - pt
            iw0 = tw0 * _M - pl
            for i in range(_A):
                ih = ih0 + i
                inside = 0 <= ih < H
                for u in range(ln + 1):
                    for q in range(_M):
                        iw = iw0 + u * _M + q
                        if inside and 0 <= iw < W:
                            P[i, q, u] = x[n, c, ih, iw]
                        else:
                            P[i, q, u] = 0
            for q in range(_M):
                for u in range(ln + 1):
                    o = _bt(dt, P[0, q, u], P[1, q, u], P[2, q, u], P[3, q, u], P[4, q, u], P[5, q, u])
                    Q[0, q, u] = o[0]
                    Q[1, q, u] = o[1]
                    Q[2, q, u] = o[2]
                    Q[3, q, u] = o[3]
                    Q[4, q, u] = o[4]
                    Q[5, q, u] = o[5]
            tp = t - t0
            for i in range(_A):
                for u in range(ln):
                    o = _bt(dt, Q[i, 0, u], Q[i, 1, u], Q[i, 2, u], Q[i, 3, u], Q[i, 0, u + 1], Q[i, 1, u + 1])
                    V[i * _A + 0, c, tp + u] = o[0]
                    V[i * _A + 1, c, tp + u] = o[1]
                    V[i * _A + 2, c, tp + u] = o[2]
                    V[i * _A + 3, c, tp + u] = o[3]
                    V[i * _A + 4, c, tp + u] = o[4]
                    V[i * _A + 5, c, tp + u] = o[5]
            t += ln


@njit(parallel=True, cache=True, nogil=True)
def _output_transform(M, y, TH, TW, t0, bias, res, relu):
    K, OH, OW = y.shape[1], y.shape[2], y.shape[3]
    nt = M.shape[2]
    dt = M.dtype.type
    npieces = (nt + CHUNK - 1) // CHUNK
    for idx in prange(K * npieces):
        k = idx // npieces
        ta = t0 + (idx % npieces) * CHUNK
        tb = min(ta + CHUNK, t0 + nt)
        S = np.empty((_M, _A, CHUNK), M.dtype)
        t = ta
        while t < tb:
            n = t // (TH * TW)
            th = (t // TW) % TH
            tw0 = t % TW
            ln = min(TW - tw0, tb - t, CHUNK)
            tp = t - t0
            for b in range(_A):
                for u in range(ln):
                    o = _at(dt, M[0 + b, k, tp + u], M[6 + b, k, tp + u], M[12 + b, k, tp + u], M[18 + b, k, tp + u], M[24 + b, k, tp + u], M[30 + b, k, tp + u])
                    S[0, b, u] = o[0]
                    S[1, b, u] = o[1]
                    S[2, b, u] = o[2]
                    S[3, b, u] = o[3]
            for i in range(_M):
                oh = th * _M + i
                if oh >= OH:
                    break
                for u in range(ln):
                    o = _at(dt, S[i, 0, u], S[i, 1, u], S[i, 2, u], S[i, 3, u], S[i, 4, u], S[i, 5, u])
                    ow = (tw0 + u) * _M
                    for j in range(min(_M, OW - ow)):
                        y[n, k, oh, ow + j] = epilogue_value(o[j], bias, res, n, k, oh, ow + j, relu, dt(0))
            t += ln


def input_transform(x, V, TH, TW, pt, pl, t0, n_threads):
    """V[:, c, t - t0] = B^T d B for the tiles t0 .. t0 + nt of every channel c."""
    numba_threads(n_threads)
    _input_transform(x, V, TH, TW, pt, pl, t0)


def output_transform(M, y, TH, TW, t0, n_threads, bias=None, residual=None, relu=False):
    """y tiles t0 .. t0 + nt = A^T m A of M, clipped to the output, then
    ``relu((y + residual) + bias[k])`` as each tile is stored, each part when given."""
    numba_threads(n_threads)
    _output_transform(M, y, TH, TW, t0, *epilogue_arrays(y, bias, residual), bool(relu))
