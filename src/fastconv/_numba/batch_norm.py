"""Training-mode batch normalisation: per-channel statistics, the two sums of
the backward and the input gradient, parallel over channels (the sums) and
over contiguous ranges (the input gradient).

Mirrors csrc/batch_norm.c function for function (see csrc/batch_norm.h for the
arithmetic): the sums run in double over ``_LANES`` interleaved partial sums
per channel, each channel on one thread, so no result depends on the thread
count.  Inner loops run over slices from index 0, which LLVM vectorises
(see fastconv._numba.pointwise).
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads
from .pointwise import _range_len

_LANES = 8


@njit(nogil=True, inline="always")
def _lane_sum(acc):
    s = 0.0
    for j in range(acc.shape[0]):
        s += acc[j]
    return s


@njit(parallel=True, cache=True, nogil=True)
def _stats(x, mean, var):
    N, C, L = x.shape
    count = float(N) * float(L)
    for c in prange(C):
        acc = np.zeros(_LANES)
        for n in range(N):
            xp = x[n, c]
            for i in range(L):
                acc[i % _LANES] += xp[i]
        m = _lane_sum(acc) / count
        acc[:] = 0.0
        for n in range(N):
            xp = x[n, c]
            for i in range(L):
                d = xp[i] - m
                acc[i % _LANES] += d * d
        mean[c] = m
        var[c] = _lane_sum(acc) / count


def stats(x, mean, var, n_threads):
    """mean[c] and the biased var[c] of x[:, c, :] (N, C, L), summed in double."""
    N, C, L = x.shape
    if mean.shape[0] != C or var.shape[0] != C:
        raise ValueError(f"batch_norm.stats: mean and var must have {C} elements, "
                         f"got {mean.shape[0]} and {var.shape[0]}")
    if N * L == 0:
        raise ValueError("batch_norm.stats: x has no values per channel")
    numba_threads(n_threads)
    _stats(x, mean, var)


@njit(parallel=True, cache=True, nogil=True)
def _grad_sums(g, y, x, mean, masked, sum_g, sum_gx):
    N, C, L = x.shape
    for c in prange(C):
        ag = np.zeros(_LANES)
        ax = np.zeros(_LANES)
        # np.float64, not float(): Numba keeps float(a float32) in float32
        m = np.float64(mean[c])
        for n in range(N):
            gp, xp, yp = g[n, c], x[n, c], y[n, c]
            for i in range(L):
                gv = 0.0 if masked and not yp[i] > 0 else np.float64(gp[i])
                ag[i % _LANES] += gv
                ax[i % _LANES] += gv * (np.float64(xp[i]) - m)
        sum_g[c] = _lane_sum(ag)
        sum_gx[c] = _lane_sum(ax)


def _check_like(a, name, x):
    if a.shape != x.shape:
        raise ValueError(f"batch_norm: {name} must have x's shape {x.shape}, got {a.shape}")


def grad_sums(g, y, x, mean, sum_g, sum_gx, n_threads):
    """sum_g[c] = sum(g'), sum_gx[c] = sum(g' * (x - mean[c])) over channel c of
    (N, C, L) arrays, g' = g, or g where y > 0 when y is given."""
    _check_like(g, "g", x)
    if y is not None:
        _check_like(y, "y", x)
    C = x.shape[1]
    if mean.shape[0] != C or sum_g.shape[0] != C or sum_gx.shape[0] != C:
        raise ValueError(f"batch_norm.grad_sums: mean, sum_g and sum_gx must have {C} elements")
    numba_threads(n_threads)
    _grad_sums(g, g if y is None else y, x, mean, y is not None, sum_g, sum_gx)


@njit(parallel=True, cache=True, nogil=True)
def _grad_input(g, y, x, mean, a, b, k, gx, masked, parts, step):
    C, L = x.shape[1], x.shape[2]
    gf, yf, xf, of = g.reshape(-1), y.reshape(-1), x.reshape(-1), gx.reshape(-1)
    total = gf.shape[0]
    zero = gf.dtype.type(0)
    for t in prange(parts):
        e = t * step
        e1 = min(e + step, total)
        while e < e1:
            p = e // L
            end = min((p + 1) * L, e1)
            c = p % C
            m, ac, bc, kc = mean[c], a[c], b[c], k[c]
            gs, xs, os = gf[e:end], xf[e:end], of[e:end]
            if masked:
                ys = yf[e:end]
                for i in range(gs.shape[0]):
                    gv = gs[i] if ys[i] > 0 else zero
                    os[i] = (gv - (xs[i] - m) * ac - bc) * kc
            else:
                for i in range(gs.shape[0]):
                    os[i] = (gs[i] - (xs[i] - m) * ac - bc) * kc
            e = end


def grad_input(g, y, x, mean, a, b, k, gx, n_threads):
    """gx = (g' - (x - mean[c]) * a[c] - b[c]) * k[c] on (N, C, L) arrays
    (csrc/batch_norm.h); gx may be g."""
    _check_like(g, "g", x)
    _check_like(gx, "gx", x)
    if y is not None:
        _check_like(y, "y", x)
    C = x.shape[1]
    for v, name in ((mean, "mean"), (a, "a"), (b, "b"), (k, "k")):
        if v.shape[0] != C:
            raise ValueError(f"batch_norm.grad_input: {name} must have {C} elements, got {v.shape[0]}")
    total = x.size
    if total == 0:
        return
    parts = max(1, n_threads)
    numba_threads(parts)
    _grad_input(g, g if y is None else y, x, mean, a, b, k, gx, y is not None, parts,
                _range_len(total, parts))
