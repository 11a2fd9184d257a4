"""pocketfft passes that write into arrays the caller keeps.

``scipy.fft``'s public functions allocate every result.  A fresh
multi-megabyte array costs its page faults on first touch (about 0.5 ms
per MB on this project's VMs, as much as a 540x540 transform), and
``numpy.fft``'s ``out=`` runs on one thread only.  scipy's pocketfft binding
(``scipy.fft._pocketfft.pypocketfft``, present since scipy 1.4) takes both
an ``out`` array and a thread count; this module is the one place that
reaches for it, and falls back to the public functions (same transforms,
one extra copy) when the binding is missing or refuses the call.

Examples
--------
>>> import numpy as np
>>> from fastconv import _pocketfft
>>> a = np.arange(6.0).reshape(2, 3)
>>> S = np.empty((4, 3), complex)
>>> _pocketfft.rfft2_padded(a, 4, 4, S, 1) is S
True
>>> np.allclose(S, np.fft.rfft2(a, s=(4, 4)))
True
"""
import numpy as np
import scipy.fft as sfft

try:
    from scipy.fft._pocketfft import pypocketfft as _pp
except ImportError:                         # pragma: no cover - scipy without the binding
    _pp = None

_state = {"binding": _pp is not None}


def _c2c_columns(S, forward, workers):
    """In-place complex transform along the second-last axis (1/L on the inverse)."""
    axis = S.ndim - 2
    if _state["binding"]:
        try:
            _pp.c2c(S, (axis,), forward, 0 if forward else 2, S, workers)
            return S
        except (TypeError, ValueError):
            _state["binding"] = False
    f = sfft.fft if forward else sfft.ifft
    r = f(S, axis=axis, overwrite_x=True, workers=workers)
    if r is not S:
        S[...] = r
    return S


def rfft2_padded(a, L1, L2, out, workers, rows=None):
    """rfft2 of the real planes ``a`` zero-extended to (L1, L2), into ``out``.

    Parameters
    ----------
    a : ndarray, shape (..., h, w), h <= L1, w <= L2, float32 or float64
    L1, L2 : int
        Transform lengths.
    out : ndarray, shape (..., L1, L2 // 2 + 1), complex of a's precision, C-contiguous
    workers : int
        Threads for each pass.
    rows : ndarray, shape (..., h, L2), a's dtype, optional
        Scratch for the zero-extended rows (a new array if None).

    Returns
    -------
    out

    Notes
    -----
    Only the plane's own ``h`` rows go through the first (real) pass; the
    other rows of the spectrum are zero before the column pass.
    """
    h, w = a.shape[-2:]
    if rows is None:
        rows = np.empty(a.shape[:-1] + (L2,), a.dtype)
    rows[..., :w] = a
    rows[..., w:] = 0
    done = False
    if _state["binding"]:
        try:
            _pp.r2c(rows, (a.ndim - 1,), True, 0, out[..., :h, :], workers)
            done = True
        except (TypeError, ValueError):
            _state["binding"] = False
    if not done:
        out[..., :h, :] = sfft.rfft(rows, axis=-1, workers=workers)
    out[..., h:, :] = 0
    return _c2c_columns(out, True, workers)


def irfft2_into(S, L2, out, workers):
    """The inverse of :func:`rfft2_padded`: ``out = irfft2(S)``; ``S`` is overwritten.

    Parameters
    ----------
    S : ndarray, shape (..., L1, L2 // 2 + 1), complex, C-contiguous
    L2 : int
        Length of the real rows.
    out : ndarray, shape (..., L1, L2), real of S's precision
    workers : int

    Returns
    -------
    out
    """
    _c2c_columns(S, False, workers)
    if _state["binding"]:
        try:
            _pp.c2r(S, (S.ndim - 1,), L2, False, 2, out, workers)
            return out
        except (TypeError, ValueError):
            _state["binding"] = False
    out[...] = sfft.irfft(S, n=L2, axis=-1, workers=workers)
    return out
