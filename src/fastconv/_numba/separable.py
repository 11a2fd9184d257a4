"""Separable filters (mean, Gaussian, Sobel): two 1-D passes, parallel over rows.

The same algorithm and operation order as csrc/separable.c, which follows
scipy.ndimage's correlate1d: computed in float64, centre tap first, then the
symmetric pairs from the outside in, no fused multiply-add (Numba contracts
nothing without fastmath), and the first pass rounded to the element type
before the second, as scipy stores it in the output array.
"""
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._threads import numba_threads


def _as_elem(v, like):
    """``v`` rounded to the element type of ``like``, as a C cast rounds it."""


@overload(_as_elem)
def _as_elem_impl(v, like):
    if like.dtype == types.uint8:
        # Through int64: truncate toward zero, then wrap, as scipy's cast does.
        return lambda v, like: np.uint8(np.int64(v))
    if like.dtype == types.float32:
        return lambda v, like: np.float32(v)
    return lambda v, like: v


@njit(nogil=True)
def _pass_rows(acc, x, n, rmap, i, crow, w, sym, div):
    """acc[j] = 1-D correlation down the rows rmap[i:i+k] of image n."""
    k = w.shape[0]
    s1 = k // 2
    W = acc.shape[0]
    if sym != 0:
        r = rmap[i + s1]
        src = crow if r < 0 else x[n, r]
        wc = w[s1]
        for j in range(W):
            acc[j] = np.float64(src[j]) * wc
        for t in range(s1, 0, -1):
            ra = rmap[i + s1 - t]
            rb = rmap[i + s1 + t]
            a = crow if ra < 0 else x[n, ra]
            b = crow if rb < 0 else x[n, rb]
            wt = w[s1 - t]
            if sym > 0:
                for j in range(W):
                    acc[j] += (np.float64(a[j]) + np.float64(b[j])) * wt
            else:
                for j in range(W):
                    acc[j] += (np.float64(a[j]) - np.float64(b[j])) * wt
    else:
        for t in range(k):
            r = rmap[i + t]
            src = crow if r < 0 else x[n, r]
            wt = w[t]
            if t == 0:
                for j in range(W):
                    acc[j] = np.float64(src[j]) * wt
            else:
                for j in range(W):
                    acc[j] += np.float64(src[j]) * wt
    if div != 1.0:
        for j in range(W):
            acc[j] /= div


@njit(nogil=True)
def _pass_cols(acc, pad, w, sym, div):
    """acc[j] = 1-D correlation along the padded row ``pad`` at j."""
    k = w.shape[0]
    s1 = k // 2
    W = acc.shape[0]
    if sym != 0:
        wc = w[s1]
        for j in range(W):
            acc[j] = pad[j + s1] * wc
        for t in range(s1, 0, -1):
            wt = w[s1 - t]
            if sym > 0:
                for j in range(W):
                    acc[j] += (pad[j + s1 - t] + pad[j + s1 + t]) * wt
            else:
                for j in range(W):
                    acc[j] += (pad[j + s1 - t] - pad[j + s1 + t]) * wt
    else:
        for j in range(W):
            acc[j] = pad[j] * w[0]
        for t in range(1, k):
            wt = w[t]
            for j in range(W):
                acc[j] += pad[j + t] * wt
    if div != 1.0:
        for j in range(W):
            acc[j] /= div


@njit(nogil=True)
def _pad_row(pad, lp, W, cmap, cval):
    """Fill the margins of pad, whose middle pad[lp:lp+W] holds the row."""
    for p in range(lp):
        pad[p] = cval if cmap[p] < 0 else pad[lp + cmap[p]]
    for p in range(lp + W, pad.shape[0]):
        pad[p] = cval if cmap[p] < 0 else pad[lp + cmap[p]]


@njit(parallel=True, cache=True, nogil=True)
def _separable_hfirst(x, out, rmap, cmap, wv, symv, divv, wh, symh, divh, cval, n_chunks):
    N, H, W = x.shape
    kh = wh.shape[0]
    kv = wv.shape[0]
    lp = kh // 2
    rows = N * H
    for c in prange(n_chunks):
        pad = np.empty(W + kh - 1, np.float64)
        inter = np.empty((1, kv, W), np.float64)
        acc = np.empty(W, np.float64)
        imap = np.arange(kv).astype(np.int64)
        for row in range(c * rows // n_chunks, (c + 1) * rows // n_chunks):
            n = row // H
            i = row % H
            # The intermediate image is extended with cval rows, as scipy
            # extends the output of its first pass.
            for t in range(kv):
                r = rmap[i + t]
                if r < 0:
                    inter[0, t, :] = cval
                    continue
                src = x[n, r]
                for j in range(W):
                    pad[lp + j] = np.float64(src[j])
                _pad_row(pad, lp, W, cmap, cval)
                dst = inter[0, t]
                _pass_cols(dst, pad, wh, symh, divh)
                for j in range(W):
                    dst[j] = np.float64(_as_elem(dst[j], out))
            _pass_rows(acc, inter, 0, imap, 0, acc, wv, symv, divv)
            o = out[n, i]
            for j in range(W):
                o[j] = _as_elem(acc[j], out)


@njit(parallel=True, cache=True, nogil=True)
def _separable(x, out, rmap, cmap, wv, symv, divv, wh, symh, divh, cval, crow, n_chunks):
    N, H, W = x.shape
    kh = wh.shape[0]
    lp = kh // 2
    rows = N * H
    for c in prange(n_chunks):
        pad = np.empty(W + kh - 1, np.float64)
        acc = np.empty(W, np.float64)
        for row in range(c * rows // n_chunks, (c + 1) * rows // n_chunks):
            n = row // H
            i = row % H
            mid = pad[lp:lp + W]
            _pass_rows(mid, x, n, rmap, i, crow, wv, symv, divv)
            for j in range(W):
                mid[j] = np.float64(_as_elem(mid[j], out))
            _pad_row(pad, lp, W, cmap, cval)
            _pass_cols(acc, pad, wh, symh, divh)
            o = out[n, i]
            for j in range(W):
                o[j] = _as_elem(acc[j], out)


def separable(x, out, rmap, cmap, wv, symv, divv, wh, symh, divh, cval, crow, hfirst, n_threads):
    """out = horizontal pass of (vertical pass of x), each pass a 1-D correlation.

    sym = 1/-1 marks (anti)symmetric odd weights, computed in scipy's paired
    order; div divides each pass's sum (the mean filter).  With hfirst the
    horizontal pass runs first and the vertical one extends its result.
    """
    if x.size == 0:
        return
    numba_threads(n_threads)
    n_chunks = max(1, min(n_threads, x.shape[0] * x.shape[1]))
    if hfirst:
        _separable_hfirst(x, out, rmap, cmap, wv, symv, divv, wh, symh, divh, float(cval), n_chunks)
    else:
        _separable(x, out, rmap, cmap, wv, symv, divv, wh, symh, divh, float(cval), crow, n_chunks)
