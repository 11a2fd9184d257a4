"""One-pass elementwise maps: the per-channel affine map of eval-mode batch
norm (optionally fused with ReLU) and ReLU, parallel over contiguous ranges.

Mirrors csrc/pointwise.c function for function (see csrc/pointwise.h for the
arithmetic and NaN rules).  Numba does not contract x*s + b into an FMA
(fastmath is off), so the product and the sum round separately, as numpy's do.

Inner loops run over slices from index 0: with an index that starts at an
arbitrary offset Numba keeps its negative-index wraparound in the loop and
LLVM does not vectorise it (measured 2x slower on a 2 MB ReLU).
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads


def _range_len(total, n_parts):
    # Ranges of whole 64-byte lines (16 floats): threads never share a line.
    step = (total + n_parts - 1) // n_parts
    return (step + 15) // 16 * 16


@njit(nogil=True, inline="always")
def _affine_run(xs, s, b, ys, relu, zero):
    if relu:
        for i in range(xs.shape[0]):
            v = xs[i] * s + b
            # v <= 0 is false for a NaN, which stays (np.maximum's rule)
            ys[i] = zero if v <= 0 else v
    else:
        for i in range(xs.shape[0]):
            ys[i] = xs[i] * s + b


@njit(nogil=True, inline="always")
def _affine_row(xs, ss, bs, ys, relu, zero):
    if relu:
        for i in range(xs.shape[0]):
            v = xs[i] * ss[i] + bs[i]
            ys[i] = zero if v <= 0 else v
    else:
        for i in range(xs.shape[0]):
            ys[i] = xs[i] * ss[i] + bs[i]


@njit(parallel=True, cache=True, nogil=True)
def _channel_affine(x, scale, shift, y, C, L, relu, parts, step):
    total = x.shape[0]
    zero = x.dtype.type(0)
    for k in prange(parts):
        e0 = k * step
        e1 = min(e0 + step, total)
        e = e0
        if L == 1:
            # an (N, C) array: the channel changes every element, so a run is
            # part of one row, with a scale and a shift per element
            while e < e1:
                c0 = e % C
                n = min(C - c0, e1 - e)
                _affine_row(x[e:e + n], scale[c0:c0 + n], shift[c0:c0 + n], y[e:e + n],
                            relu, zero)
                e += n
        else:
            p = e0 // L
            while e < e1:
                # the rest of plane p inside the range: one run of one channel
                end = min((p + 1) * L, e1)
                c = p % C
                _affine_run(x[e:end], scale[c], shift[c], y[e:end], relu, zero)
                e = end
                p += 1


@njit(parallel=True, cache=True, nogil=True)
def _relu(x, y, parts, step):
    total = x.shape[0]
    zero = x.dtype.type(0)
    for k in prange(parts):
        e0 = k * step
        e1 = min(e0 + step, total)
        xs = x[e0:e1]
        ys = y[e0:e1]
        for i in range(xs.shape[0]):
            v = xs[i]
            ys[i] = zero if v <= 0 else v


def channel_affine(x, scale, shift, y, relu, n_threads):
    """y[n, c, :] = x[n, c, :] * scale[c] + shift[c], then max(., 0) when relu.

    x, y: (N, C, L) C-contiguous (L = product of trailing dims); y may be x.
    """
    N, C, L = x.shape
    total = N * C * L
    if total == 0:
        return
    parts = max(1, n_threads)
    numba_threads(parts)
    _channel_affine(x.reshape(total), scale, shift, y.reshape(total), C, L, bool(relu),
                    parts, _range_len(total, parts))


def relu(x, y, n_threads):
    """y = max(x, 0) with np.maximum's NaN rule (a NaN stays a NaN); flat arrays, y may be x."""
    total = x.shape[0]
    if total == 0:
        return
    parts = max(1, n_threads)
    numba_threads(parts)
    _relu(x, y, parts, _range_len(total, parts))


@njit(parallel=True, cache=True, nogil=True)
def _relu_grad(g, y, gx, parts, step):
    zero = gx.dtype.type(0)
    for k in prange(parts):
        e0 = k * step
        e1 = min(e0 + step, g.shape[0])
        for i in range(e0, e1):
            gx[i] = g[i] if y[i] > 0 else zero


def relu_grad(g, y, gx, n_threads):
    """gx = g where y > 0, else 0 (PyTorch's threshold_backward)."""
    total = g.shape[0]
    if y.shape[0] != total or gx.shape[0] != total:
        raise ValueError(f"relu_grad: g, y and gx must have one length, got {total}, "
                         f"{y.shape[0]} and {gx.shape[0]}")
    parts = max(1, n_threads)
    numba_threads(n_threads)
    _relu_grad(g, y, gx, parts, _range_len(total, parts))


@njit(inline="always")
def epilogue_value(v, bias, res, n, k, i, j, relu, zero):
    """A fused layer's epilogue on one output ``v`` at (n, k, i, j):
    ``relu((v + res[n, k, i, j]) + bias[k])``, a part skipped when its array is
    empty (:func:`epilogue_arrays`), in the unfused passes' order and with
    np.maximum's ReLU (a NaN stays, -0.0 gives 0.0)."""
    if res.shape[0] > 0:
        v = v + res[n, k, i, j]
    if bias.shape[0] > 0:
        v = v + bias[k]
    if relu:
        # v <= 0 is false for a NaN, which stays (np.maximum's rule)
        v = zero if v <= 0 else v
    return v


def epilogue_arrays(y, bias, residual):
    """(bias, residual) for :func:`epilogue_value`, empty arrays of y's dtype
    standing for the parts not given (one compiled signature for all); the
    caller checked their shapes (fastconv.backends.check_epilogue)."""
    bias = np.empty(0, y.dtype) if bias is None else bias
    residual = np.empty((0, 0, 0, 0), y.dtype) if residual is None else residual
    return bias, residual
