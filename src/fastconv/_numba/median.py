"""Median filter, parallel over blocks of rows.

The same algorithms as csrc/median.c: a ring of padded input rows per
block; for 3x3 the column-sort trick (median of the max of the column lows,
the median of the mids and the min of the highs); for 5x5 the columns sorted
once, then a pruned Batcher network per pixel; otherwise Huang's sliding
histogram (uint8) or a sliding sorted window (small float windows); and
for larger float windows the walk over ranks of ``median_rank``.  The per-pixel loops
are straight-line min/max on locals, which LLVM vectorises across pixels.
"""
import itertools

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._threads import numba_threads


def median25_network():
    """The 5x5 median network as (a, b, keep_min, keep_max) compare-exchanges.

    Inputs are v[5*c + r], rank r of sorted column c.  Batcher's odd-even
    merge sort on 25 (32 pruned) loses every exchange that never swaps a
    column-sorted 0-1 input (0-1 principle) and every exchange the median
    v[12] does not depend on.  Pure Python; the kernels hard-code its output.

    Examples
    --------
    >>> len(median25_network())
    85
    """
    n, k = 25, 5
    net, p = [], 1
    while p < 32:
        d = p
        while d >= 1:
            for j in range(d % p, 32 - d, 2 * d):
                for i in range(min(d, 32 - j - d)):
                    if (i + j) // (2 * p) == (i + j + d) // (2 * p) and i + j + d < n:
                        net.append((i + j, i + j + d))
            d //= 2
        p *= 2
    cols = [[0] * (k - c) + [1] * c for c in range(k + 1)]
    xs = np.array([sum(combo, []) for combo in itertools.product(cols, repeat=k)], np.int8)
    keep = []
    for a, b in net:
        if (xs[:, a] > xs[:, b]).any():
            keep.append((a, b))
            xs[:, a], xs[:, b] = np.minimum(xs[:, a], xs[:, b]), np.maximum(xs[:, a], xs[:, b])
    live, ops = {12}, []
    for a, b in reversed(keep):
        if a in live or b in live:
            ops.append((a, b, a in live, b in live))
            live |= {a, b}
    return ops[::-1]


@njit(nogil=True)
def _med3(a, b, c):
    return max(min(a, b), min(max(a, b), c))


@njit(nogil=True)
def _row3x3(r0, r1, r2, out, lo, mi, hi):
    for j in range(lo.shape[0]):
        p, q, r = r0[j], r1[j], r2[j]
        p, q = min(p, q), max(p, q)
        q, r = min(q, r), max(q, r)
        p, q = min(p, q), max(p, q)
        lo[j] = p
        mi[j] = q
        hi[j] = r
    for j in range(out.shape[0]):
        mx = max(max(lo[j], lo[j + 1]), lo[j + 2])
        mn = min(min(hi[j], hi[j + 1]), hi[j + 2])
        md = _med3(mi[j], mi[j + 1], mi[j + 2])
        out[j] = _med3(mx, md, mn)


@njit(nogil=True)
def _row5x5(ring, slots, out, s):
    for j in range(s.shape[1]):
        v0 = ring[slots[0], j]
        v1 = ring[slots[1], j]
        v2 = ring[slots[2], j]
        v3 = ring[slots[3], j]
        v4 = ring[slots[4], j]
        v0, v1 = min(v0, v1), max(v0, v1)
        v2, v3 = min(v2, v3), max(v2, v3)
        v0, v2 = min(v0, v2), max(v0, v2)
        v1, v3 = min(v1, v3), max(v1, v3)
        v1, v2 = min(v1, v2), max(v1, v2)
        v0, v4 = min(v0, v4), max(v0, v4)
        v2, v4 = min(v2, v4), max(v2, v4)
        v1, v2 = min(v1, v2), max(v1, v2)
        v3, v4 = min(v3, v4), max(v3, v4)
        s[0, j] = v0
        s[1, j] = v1
        s[2, j] = v2
        s[3, j] = v3
        s[4, j] = v4
    s0, s1, s2, s3, s4 = s[0], s[1], s[2], s[3], s[4]
    for j in range(out.shape[0]):
        # Unsigned indices spare Numba's negative-index check, which would
        # keep LLVM from vectorising the pixel loop.
        j0, j1, j2 = np.uint64(j), np.uint64(j + 1), np.uint64(j + 2)
        j3, j4 = np.uint64(j + 3), np.uint64(j + 4)
        v0, v1, v2, v3, v4 = s0[j0], s1[j0], s2[j0], s3[j0], s4[j0]
        v5, v6, v7, v8, v9 = s0[j1], s1[j1], s2[j1], s3[j1], s4[j1]
        v10, v11, v12, v13, v14 = s0[j2], s1[j2], s2[j2], s3[j2], s4[j2]
        v15, v16, v17, v18, v19 = s0[j3], s1[j3], s2[j3], s3[j3], s4[j3]
        v20, v21, v22, v23, v24 = s0[j4], s1[j4], s2[j4], s3[j4], s4[j4]
        # median25_network(), written out.
        v4, v5 = min(v4, v5), max(v4, v5)
        v14, v15 = min(v14, v15), max(v14, v15)
        v5, v7 = min(v5, v7), max(v5, v7)
        v8, v10 = min(v8, v10), max(v8, v10)
        v9, v11 = min(v9, v11), max(v9, v11)
        v12, v14 = min(v12, v14), max(v12, v14)
        v5, v6 = min(v5, v6), max(v5, v6)
        v9, v10 = min(v9, v10), max(v9, v10)
        v13, v14 = min(v13, v14), max(v13, v14)
        v0, v4 = min(v0, v4), max(v0, v4)
        v1, v5 = min(v1, v5), max(v1, v5)
        v2, v6 = min(v2, v6), max(v2, v6)
        v8, v12 = min(v8, v12), max(v8, v12)
        v10, v14 = min(v10, v14), max(v10, v14)
        v11, v15 = min(v11, v15), max(v11, v15)
        v16, v20 = min(v16, v20), max(v16, v20)
        v17, v21 = min(v17, v21), max(v17, v21)
        v18, v22 = min(v18, v22), max(v18, v22)
        v19, v23 = min(v19, v23), max(v19, v23)
        v2, v4 = min(v2, v4), max(v2, v4)
        v3, v5 = min(v3, v5), max(v3, v5)
        v10, v12 = min(v10, v12), max(v10, v12)
        v11, v13 = min(v11, v13), max(v11, v13)
        v18, v20 = min(v18, v20), max(v18, v20)
        v19, v21 = min(v19, v21), max(v19, v21)
        v1, v2 = min(v1, v2), max(v1, v2)
        v3, v4 = min(v3, v4), max(v3, v4)
        v5, v6 = min(v5, v6), max(v5, v6)
        v9, v10 = min(v9, v10), max(v9, v10)
        v11, v12 = min(v11, v12), max(v11, v12)
        v13, v14 = min(v13, v14), max(v13, v14)
        v17, v18 = min(v17, v18), max(v17, v18)
        v19, v20 = min(v19, v20), max(v19, v20)
        v21, v22 = min(v21, v22), max(v21, v22)
        v0, v8 = min(v0, v8), max(v0, v8)
        v1, v9 = min(v1, v9), max(v1, v9)
        v2, v10 = min(v2, v10), max(v2, v10)
        v3, v11 = min(v3, v11), max(v3, v11)
        v4, v12 = min(v4, v12), max(v4, v12)
        v5, v13 = min(v5, v13), max(v5, v13)
        v6, v14 = min(v6, v14), max(v6, v14)
        v7 = min(v7, v15)
        v4, v8 = min(v4, v8), max(v4, v8)
        v5, v9 = min(v5, v9), max(v5, v9)
        v6, v10 = min(v6, v10), max(v6, v10)
        v7, v11 = min(v7, v11), max(v7, v11)
        v20, v24 = min(v20, v24), max(v20, v24)
        v2, v4 = min(v2, v4), max(v2, v4)
        v3, v5 = min(v3, v5), max(v3, v5)
        v6, v8 = min(v6, v8), max(v6, v8)
        v7, v9 = min(v7, v9), max(v7, v9)
        v10, v12 = min(v10, v12), max(v10, v12)
        v11, v13 = min(v11, v13), max(v11, v13)
        v22, v24 = min(v22, v24), max(v22, v24)
        v1, v2 = min(v1, v2), max(v1, v2)
        v3, v4 = min(v3, v4), max(v3, v4)
        v5, v6 = min(v5, v6), max(v5, v6)
        v7, v8 = min(v7, v8), max(v7, v8)
        v9, v10 = min(v9, v10), max(v9, v10)
        v11, v12 = min(v11, v12), max(v11, v12)
        v13 = min(v13, v14)
        v21, v22 = min(v21, v22), max(v21, v22)
        v23, v24 = min(v23, v24), max(v23, v24)
        v16 = max(v0, v16)
        v17 = max(v1, v17)
        v18 = max(v2, v18)
        v19 = max(v3, v19)
        v20 = max(v4, v20)
        v21 = max(v5, v21)
        v6 = min(v6, v22)
        v7 = min(v7, v23)
        v8 = min(v8, v24)
        v16 = max(v8, v16)
        v17 = max(v9, v17)
        v10 = min(v10, v18)
        v11 = min(v11, v19)
        v12 = min(v12, v20)
        v13 = min(v13, v21)
        v10 = max(v6, v10)
        v11 = max(v7, v11)
        v12 = min(v12, v16)
        v13 = min(v13, v17)
        v12 = max(v10, v12)
        v11 = min(v11, v13)
        v12 = max(v11, v12)
        out[j] = v12


@njit(nogil=True, inline="always")
def _walk_to_rank(counts, m, lt, k):
    """Move bin m (lt = the values in the bins below it) to the bin holding
    rank k; a neighbouring window's median is usually a bin or two away."""
    while lt > k:
        m -= 1
        lt -= counts[m]
    while lt + counts[m] <= k:
        lt += counts[m]
        m += 1
    return m, lt


@njit(nogil=True)
def _row_hist(ring, slots, out, kw, hist):
    """Huang's sliding histogram, median tracked by lt = values below it."""
    kh = slots.shape[0]
    rank = (kh * kw) // 2
    hist[:] = 0
    for t in range(kh):
        for s in range(kw):
            hist[ring[slots[t], s]] += 1
    m, lt = _walk_to_rank(hist, 0, 0, rank)
    out[0] = m
    for j in range(1, out.shape[0]):
        for t in range(kh):
            old = ring[slots[t], j - 1]
            v = ring[slots[t], j + kw - 1]
            hist[old] -= 1
            if old < m:
                lt -= 1
            hist[v] += 1
            if v < m:
                lt += 1
        m, lt = _walk_to_rank(hist, m, lt, rank)
        out[j] = m


@njit(nogil=True)
def _row_sorted(ring, slots, out, kw, a):
    """The window kept sorted while it slides: kh replacements per step."""
    kh = slots.shape[0]
    n = kh * kw
    rank = n // 2
    k = 0
    for t in range(kh):
        for s in range(kw):
            a[k] = ring[slots[t], s]
            k += 1
    a[:n].sort()
    out[0] = a[rank]
    for j in range(1, out.shape[0]):
        for t in range(kh):
            old = ring[slots[t], j - 1]
            v = ring[slots[t], j + kw - 1]
            p = np.searchsorted(a[:n], old)
            if old < v:
                q = p + 1 + np.searchsorted(a[p + 1:n], v)
                a[p:q - 1] = a[p + 1:q].copy()
                a[q - 1] = v
            else:
                q = np.searchsorted(a[:p], v)
                a[q + 1:p + 1] = a[q:p].copy()
                a[q] = v
        out[j] = a[rank]


def _row_other(ring, slots, out, kw, hist, a):
    """Any other window: the histogram for uint8, the sorted window for floats."""


@overload(_row_other)
def _row_other_impl(ring, slots, out, kw, hist, a):
    if ring.dtype == types.uint8:
        return lambda ring, slots, out, kw, hist, a: _row_hist(ring, slots, out, kw, hist)
    return lambda ring, slots, out, kw, hist, a: _row_sorted(ring, slots, out, kw, a)


@njit(parallel=True, cache=True, nogil=True)
def _median(x, out, rmap, cmap, kh, kw, cval, n_chunks):
    N, H, W = x.shape
    Wp = W + kw - 1
    lp = kw // 2
    rows = N * H
    for c in prange(n_chunks):
        # kh padded rows, reused by the kh output rows that read each of them.
        ring = np.empty((kh, Wp), x.dtype)
        tag = np.full(kh, -1, np.int64)
        slots = np.empty(kh, np.int64)
        ws = np.empty((5, Wp), x.dtype)
        a = np.empty(kh * kw, x.dtype)
        hist = np.zeros(256, np.int64)
        for row in range(c * rows // n_chunks, (c + 1) * rows // n_chunks):
            n = row // H
            i = row % H
            for t in range(kh):
                p = i + t
                slot = p % kh
                slots[t] = slot
                want = n * (H + kh) + p
                if tag[slot] == want:
                    continue
                tag[slot] = want
                dst = ring[slot]
                if rmap[p] < 0:
                    dst[:] = cval
                    continue
                src = x[n, rmap[p]]
                dst[lp:lp + W] = src
                for q in range(lp):
                    dst[q] = cval if cmap[q] < 0 else src[cmap[q]]
                for q in range(lp + W, Wp):
                    dst[q] = cval if cmap[q] < 0 else src[cmap[q]]
            o = out[n, i]
            if kh == 3 and kw == 3:
                _row3x3(ring[slots[0]], ring[slots[1]], ring[slots[2]], o, ws[0], ws[1], ws[2])
            elif kh == 5 and kw == 5:
                _row5x5(ring, slots, o, ws)
            else:
                _row_other(ring, slots, o, kw, hist, a)


def median(x, out, rmap, cmap, kh, kw, cval, n_threads):
    """out = the kh x kw median filter of every image of x (rank (kh*kw)//2)."""
    if x.size == 0:
        return
    numba_threads(n_threads)
    _median(x, out, rmap, cmap, kh, kw, cval, max(1, min(n_threads, x.shape[0] * x.shape[1])))


# --- any window, by ranks (csrc/median.c's median_rank_rows) ---------------

_BLOCK_SHIFT = 12   # 4096 ranks = 64 words per counted block


@njit(nogil=True, inline="always")
def _popcount(v):
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((v * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(nogil=True, inline="always")
def _flip(bits, cnt, state, r, add):
    b = r >> _BLOCK_SHIFT
    bits[r >> 6] ^= np.uint64(1) << np.uint64(r & 63)
    cnt[b] += add
    if b < state[0]:
        state[1] += add


@njit(nogil=True)
def _select(bits, cnt, state, k):
    # state = (the median's block, set bits below it), moved from the last median.
    blk, lt = _walk_to_rank(cnt, state[0], state[1], k)
    state[0], state[1] = blk, lt
    need = k - lt
    wd = blk << (_BLOCK_SHIFT - 6)
    while True:
        c = _popcount(bits[wd])
        if need < c:
            break
        need -= c
        wd += 1
    v = bits[wd]
    for _ in range(need):
        v &= v - np.uint64(1)
    low = 0
    while (v >> np.uint64(low)) & np.uint64(1) == 0:
        low += 1
    return wd * 64 + low


@njit(nogil=True)
def _rank_rows(rank, out, r0, r1, kh, kw):
    Hp, Wp = rank.shape
    W = Wp - kw + 1
    k = (kh * kw) // 2
    nblk = (Hp * Wp >> _BLOCK_SHIFT) + 1
    bits = np.zeros(nblk << (_BLOCK_SHIFT - 6), np.uint64)
    cnt = np.zeros(nblk, np.int64)
    state = np.zeros(2, np.int64)
    for t in range(kh):
        for s in range(kw):
            _flip(bits, cnt, state, rank[r0 + t, s], 1)
    # The snake: even rows left to right, odd rows back, one step down between.
    j = 0
    for i in range(r0, r1):
        if i > r0:
            for s in range(kw):
                _flip(bits, cnt, state, rank[i - 1, j + s], -1)
                _flip(bits, cnt, state, rank[i + kh - 1, j + s], 1)
        out[i, j] = _select(bits, cnt, state, k)
        if (i - r0) % 2 == 0:
            for j in range(1, W):
                for t in range(kh):
                    _flip(bits, cnt, state, rank[i + t, j - 1], -1)
                    _flip(bits, cnt, state, rank[i + t, j + kw - 1], 1)
                out[i, j] = _select(bits, cnt, state, k)
            j = W - 1
        else:
            for j in range(W - 2, -1, -1):
                for t in range(kh):
                    _flip(bits, cnt, state, rank[i + t, j + kw], -1)
                    _flip(bits, cnt, state, rank[i + t, j], 1)
                out[i, j] = _select(bits, cnt, state, k)
            j = 0


@njit(parallel=True, cache=True, nogil=True)
def _median_rank(rank, out, kh, kw, n_chunks):
    rows = out.shape[0]
    for c in prange(n_chunks):
        _rank_rows(rank, out, c * rows // n_chunks, (c + 1) * rows // n_chunks, kh, kw)


def median_rank(rank, out, kh, kw, n_threads):
    """out = the rank of the kh x kw median of every window of ``rank``."""
    if out.size == 0:
        return
    numba_threads(n_threads)
    _median_rank(rank, out, kh, kw, max(1, min(n_threads, out.shape[0] // max(kh, 1))))
