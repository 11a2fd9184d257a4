"""Max and average pooling, parallel over planes.

Mirrors csrc/pool.c function for function (see csrc/pool.h for the window,
padding and divisor rules).  Arrays are (P, H, W) stacks of planes.
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads


@njit(parallel=True, cache=True, nogil=True)
def _max_pool2d_fwd(x, y, idx, kh, kw, sh, sw, ph, pw):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in prange(P):
        for oh in range(OH):
            h0 = oh * sh - ph
            h1 = min(h0 + kh, H)
            h0 = max(h0, 0)
            for ow in range(OW):
                w0 = ow * sw - pw
                w1 = min(w0 + kw, W)
                w0 = max(w0, 0)
                m = -np.inf
                mi = h0 * W + w0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = x[p, h, w]
                        # v != v: a NaN wins, as in PyTorch
                        if v > m or v != v:
                            m = v
                            mi = h * W + w
                y[p, oh, ow] = m
                idx[p, oh, ow] = mi


@njit(parallel=True, cache=True, nogil=True)
def _max_pool2d_bwd(gy, idx, gx):
    P, H, W = gx.shape
    OH, OW = gy.shape[1], gy.shape[2]
    for p in prange(P):
        plane = gx[p].reshape(H * W)
        plane[:] = 0
        for oh in range(OH):
            for ow in range(OW):
                plane[idx[p, oh, ow]] += gy[p, oh, ow]


@njit(inline="always")
def _avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad):
    h0 = oh * sh - ph
    w0 = ow * sw - pw
    h1 = min(h0 + kh, H + ph)
    w1 = min(w0 + kw, W + pw)
    padded = (h1 - h0) * (w1 - w0)
    hs, he, ws, we = max(h0, 0), min(h1, H), max(w0, 0), min(w1, W)
    div = padded if count_include_pad else (he - hs) * (we - ws)
    return hs, he, ws, we, div


@njit(parallel=True, cache=True, nogil=True)
def _avg_pool2d_fwd(x, y, kh, kw, sh, sw, ph, pw, count_include_pad):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in prange(P):
        for oh in range(OH):
            for ow in range(OW):
                hs, he, ws, we, div = _avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw,
                                                  count_include_pad)
                acc = x.dtype.type(0)
                for h in range(hs, he):
                    for w in range(ws, we):
                        acc += x[p, h, w]
                y[p, oh, ow] = acc / div


@njit(parallel=True, cache=True, nogil=True)
def _avg_pool2d_bwd(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad):
    P, H, W = gx.shape
    OH, OW = gy.shape[1], gy.shape[2]
    for p in prange(P):
        gx[p] = 0
        for oh in range(OH):
            for ow in range(OW):
                hs, he, ws, we, div = _avg_window(oh, ow, H, W, kh, kw, sh, sw, ph, pw,
                                                  count_include_pad)
                g = gy[p, oh, ow] / div
                for h in range(hs, he):
                    for w in range(ws, we):
                        gx[p, h, w] += g


def max_pool2d_fwd(x, y, idx, kh, kw, sh, sw, ph, pw, n_threads):
    """y = max over each window of x, idx = where it was (flat index in the plane)."""
    numba_threads(n_threads)
    _max_pool2d_fwd(x, y, idx, kh, kw, sh, sw, ph, pw)


def max_pool2d_bwd(gy, idx, gx, n_threads):
    """gx = gy scattered (summed) to the argmax of each window."""
    numba_threads(n_threads)
    _max_pool2d_bwd(gy, idx, gx)


def avg_pool2d_fwd(x, y, kh, kw, sh, sw, ph, pw, count_include_pad, n_threads):
    """y = mean over each window of x (PyTorch's divisor)."""
    numba_threads(n_threads)
    _avg_pool2d_fwd(x, y, kh, kw, sh, sw, ph, pw, bool(count_include_pad))


def avg_pool2d_bwd(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad, n_threads):
    """gx = each gy / divisor spread (summed) over its window."""
    numba_threads(n_threads)
    _avg_pool2d_bwd(gy, gx, kh, kw, sh, sw, ph, pw, bool(count_include_pad))
