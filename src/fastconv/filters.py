"""Image filters with scipy.ndimage's semantics on fastconv's native kernels.

``mean_filter``, ``gaussian_filter`` and ``sobel`` are separable: one native
kernel (stem ``separable``) runs a vertical then a horizontal 1-D pass per
output row, in float64 and in scipy's operation order, rounding the first
pass to the image's dtype as scipy does, so integer results are bit-exact.
``median_filter`` has its own kernel (stem ``median``): selection networks
for 3x3 and 5x5 windows, a sliding histogram for other uint8 windows, a
sliding sorted window for 2x2 and 2x3 float windows, and a walk over ranks
for the other float windows (O(height) a step, whatever the area).

Boundaries are resolved once per call into index maps (``np.pad`` of the
indices in the mode scipy names), so the kernels never branch on the mode.
Every function takes a 2-D image or an (N, H, W) stack, filtered image by
image, of dtype float32, float64 or uint8, and returns the dtype scipy.ndimage
returns for that input.
"""
import math
import numbers

import numpy as np

from . import _engines
from ._threads import get_num_threads
from ._validation import native, pair

__all__ = ["mean_filter", "gaussian_filter", "sobel", "median_filter"]

# scipy.ndimage's boundary names (and its grid-* aliases, equal for filters)
# mapped to the np.pad mode that extends an index range the same way.
_PAD_MODES = {
    "reflect": "symmetric", "grid-mirror": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap", "grid-wrap": "wrap",
    "constant": "constant", "grid-constant": "constant",
}
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.uint8))


# --- argument checking -------------------------------------------------------

def _image_arg(image, what):
    """The image as a C-contiguous native (N, H, W) array, and whether it was 2-D."""
    x = np.asarray(image)
    if x.ndim not in (2, 3):
        raise ValueError(f"{what}: image must be 2-D (H, W) or a 3-D stack (N, H, W), "
                         f"got shape {x.shape}")
    if x.dtype.newbyteorder("=") not in _DTYPES:
        raise TypeError(f"{what}: image must be float32, float64 or uint8, got dtype {x.dtype}")
    squeeze = x.ndim == 2
    return native(x[None] if squeeze else x), squeeze


def _mode_arg(mode, what):
    if not isinstance(mode, str) or mode not in _PAD_MODES:
        raise ValueError(f"{what}: mode must be one of 'reflect', 'constant', 'nearest', "
                         f"'mirror', 'wrap', got {mode!r}")
    return _PAD_MODES[mode]


def _cval_arg(cval, what):
    if isinstance(cval, (bool, np.bool_)) or not isinstance(cval, numbers.Real):
        raise TypeError(f"{what}: cval must be a real number, got {cval!r}")
    return float(cval)


def _engine_arg(engine, stem, what):
    return _engines.pick(stem, engine, what)


def _size_arg(size, what):
    try:
        return pair(size, "size", 1)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{what}: {exc}") from None


# --- boundaries and dtypes ---------------------------------------------------

def _index_map(n, k, pad_mode):
    """Source index of each of the n + k - 1 positions a width-k window reads.

    Window i covers inputs i - k//2 .. i - k//2 + k - 1 (scipy's centring,
    also for even k); -1 stands for cval.
    """
    idx = np.arange(n, dtype=np.int64)
    width = (k // 2, k - 1 - k // 2)
    if pad_mode == "constant":
        return np.pad(idx, width, constant_values=-1)
    return np.ascontiguousarray(np.pad(idx, width, mode=pad_mode))


def _fits(cval, dtype):
    """True when cval is exactly a value of ``dtype`` (so it can pad in it)."""
    if dtype.kind == "f":
        return True
    return float(cval).is_integer() and 0 <= cval <= 255


def _cast_as_scipy(a, dtype):
    """float64 ``a`` stored in ``dtype`` as scipy's C casts store it."""
    if dtype.kind == "u":
        # Truncate toward zero, then wrap.
        return np.trunc(a).astype(np.int64).astype(dtype)
    return a.astype(dtype)


def _finish(out, squeeze):
    return out[0] if squeeze else out


# --- the separable filters ---------------------------------------------------

def _run_separable(x, passes, pad_mode, cval, engine, hfirst=False):
    """Run the vertical then the horizontal 1-D pass over every image of x.

    ``passes`` holds two (weights, sym, div) triples, for axis H then W;
    ``hfirst`` runs the W pass first (the order matters at a constant
    boundary and for integer rounding, so it follows scipy's order).
    """
    if x.size == 0:
        return np.empty_like(x)
    if not _fits(cval, x.dtype):
        # cval would not survive a trip through uint8, but scipy pads each
        # pass with it as a double and stores each pass in uint8: run the two
        # passes one at a time in float64, storing each as scipy does.  (A
        # fractional cval can still land a mean on the other side of an
        # integer than scipy's running sum does: 30 of 5,040 pixels, off by one.)
        first, second = passes
        one, two = ((_IDENTITY, second), (first, _IDENTITY)) if hfirst else \
            ((first, _IDENTITY), (_IDENTITY, second))
        for half in (one, two):
            x = _cast_as_scipy(_run_separable(x.astype(np.float64), half, pad_mode, cval, engine),
                               x.dtype)
        return x
    (wv, symv, divv), (wh, symh, divh) = passes
    N, H, W = x.shape
    out = np.empty_like(x)
    crow = np.full(W, cval, dtype=x.dtype)
    crow.flags.writeable = x.flags.writeable   # one array type for Numba to unify
    _engines.kernels(engine, "separable").separable(
        x, out, _index_map(H, len(wv), pad_mode), _index_map(W, len(wh), pad_mode),
        np.ascontiguousarray(wv, dtype=np.float64), symv, float(divv),
        np.ascontiguousarray(wh, dtype=np.float64), symh, float(divh),
        cval, crow, hfirst, get_num_threads())
    return out


_IDENTITY = (np.ones(1), 1, 1.0)


def mean_filter(image, size, mode="reflect", cval=0.0, *, engine="auto"):
    """Mean of a size x size (or size[0] x size[1]) window, as scipy.ndimage.uniform_filter.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        float32, float64 or uint8; a 3-D stack is filtered image by image.
    size : int or (int, int)
        Window height and width, each >= 1.  Even sizes are centred as scipy
        centres them (one more row/column before the pixel than after).
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}
        How the image extends past its edges (scipy.ndimage's names).
    cval : float
        The value outside the image for ``mode='constant'``.
    engine : {'auto', 'cython', 'numba'}
        What runs the native kernel.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.  uint8 results are scipy's exactly:
        each pass's mean truncated toward zero.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.filters import mean_filter
    >>> mean_filter(np.arange(9.0).reshape(3, 3), 3, mode="nearest")
    array([[1.33333333, 2.        , 2.66666667],
           [3.33333333, 4.        , 4.66666667],
           [5.33333333, 6.        , 6.66666667]])
    """
    what = "mean_filter"
    x, squeeze = _image_arg(image, what)
    sv, sh = _size_arg(size, what)
    pad_mode, cval = _mode_arg(mode, what), _cval_arg(cval, what)
    engine = _engine_arg(engine, "separable", what)
    # Sum then divide, as scipy's running sum does, so uint8 means truncate alike.
    passes = ((np.ones(sv), 0, sv), (np.ones(sh), 0, sh))
    return _finish(_run_separable(x, passes, pad_mode, cval, engine), squeeze)


def gaussian_kernel1d(sigma, truncate=4.0):
    """The normalised 1-D Gaussian weights scipy.ndimage.gaussian_filter uses.

    Parameters
    ----------
    sigma : float
        Standard deviation, > 0.
    truncate : float
        The kernel's radius is ``int(truncate * sigma + 0.5)``.

    Returns
    -------
    ndarray of float64, shape (2 * radius + 1,)

    Examples
    --------
    >>> from fastconv.filters import gaussian_kernel1d
    >>> gaussian_kernel1d(1.0, truncate=1.0).round(4)
    array([0.2741, 0.4519, 0.2741])
    """
    radius = int(truncate * float(sigma) + 0.5)
    # Written exactly as scipy's _gaussian_kernel1d so the weights agree to the bit.
    sigma2 = sigma * sigma
    xs = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * xs ** 2)
    return phi_x / phi_x.sum()


def _sigma_arg(sigma, what):
    vals = sigma if isinstance(sigma, (tuple, list)) else (sigma, sigma)
    if len(vals) != 2:
        raise ValueError(f"{what}: sigma must be a number or a pair, got {sigma!r}")
    out = []
    for v in vals:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise TypeError(f"{what}: sigma must be a finite real number or a pair, got {sigma!r}")
        if v < 0:
            raise ValueError(f"{what}: sigma must be >= 0, got {sigma!r}")
        out.append(float(v))
    return out


def gaussian_filter(image, sigma, truncate=4.0, mode="reflect", cval=0.0, *, engine="auto"):
    """Gaussian blur in two 1-D passes, as scipy.ndimage.gaussian_filter.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        float32, float64 or uint8; a 3-D stack is filtered image by image.
    sigma : float or (float, float)
        Standard deviation along rows and columns, >= 0 (0 leaves that axis alone).
    truncate : float
        Cut the kernel at this many standard deviations (radius
        ``int(truncate * sigma + 0.5)``), >= 0.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}
        How the image extends past its edges (scipy.ndimage's names).
    cval : float
        The value outside the image for ``mode='constant'``.
    engine : {'auto', 'cython', 'numba'}
        What runs the native kernel.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image`` (uint8 truncated as scipy truncates).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.filters import gaussian_filter
    >>> img = np.zeros((5, 5)); img[2, 2] = 1.0
    >>> float(gaussian_filter(img, 1.0).sum().round(6))
    1.0
    """
    what = "gaussian_filter"
    x, squeeze = _image_arg(image, what)
    sigmas = _sigma_arg(sigma, what)
    if isinstance(truncate, (bool, np.bool_)) or not isinstance(truncate, numbers.Real) \
            or not truncate >= 0:
        raise ValueError(f"{what}: truncate must be a real number >= 0, got {truncate!r}")
    pad_mode, cval = _mode_arg(mode, what), _cval_arg(cval, what)
    engine = _engine_arg(engine, "separable", what)
    passes = tuple((gaussian_kernel1d(s, truncate)[::-1], 1, 1.0) if s > 1e-15 else _IDENTITY
                   for s in sigmas)
    return _finish(_run_separable(x, passes, pad_mode, cval, engine), squeeze)


_DERIV = (np.array([-1.0, 0.0, 1.0]), -1, 1.0)
_SMOOTH = (np.array([1.0, 2.0, 1.0]), 1, 1.0)


def sobel(image, axis=None, mode="reflect", cval=0.0, *, engine="auto"):
    """Sobel gradient along one axis, or the gradient magnitude.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        float32, float64 or uint8; a 3-D stack is filtered image by image.
    axis : {None, 0, 1, -1, -2}
        The image axis to differentiate along (0 or -2: down the rows, 1 or
        -1: along the columns, also for stacks), as scipy.ndimage.sobel; None
        returns the magnitude ``np.hypot(sobel(image, 0), sobel(image, 1))``.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}
        How the image extends past its edges (scipy.ndimage's names).
    cval : float
        The value outside the image for ``mode='constant'``.
    engine : {'auto', 'cython', 'numba'}
        What runs the native kernel.

    Returns
    -------
    ndarray
        For an axis, the dtype of ``image``: uint8 gradients wrap modulo 256
        exactly as scipy's do.  For the magnitude, the dtype of a float
        image, and float64 for uint8 (the gradients then computed unwrapped).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.filters import sobel
    >>> ramp = np.tile(np.arange(4.0), (3, 1))
    >>> sobel(ramp, axis=1)
    array([[4., 8., 8., 4.],
           [4., 8., 8., 4.],
           [4., 8., 8., 4.]])
    """
    what = "sobel"
    x, squeeze = _image_arg(image, what)
    if axis is not None and (isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral)
                             or axis not in (0, 1, -1, -2)):
        raise ValueError(f"sobel: axis must be None, 0, 1, -1 or -2, got {axis!r}")
    pad_mode, cval = _mode_arg(mode, what), _cval_arg(cval, what)
    engine = _engine_arg(engine, "separable", what)
    if axis is not None:
        # scipy differentiates first, then smooths the derivative.
        if axis in (0, -2):
            return _finish(_run_separable(x, (_DERIV, _SMOOTH), pad_mode, cval, engine), squeeze)
        return _finish(_run_separable(x, (_SMOOTH, _DERIV), pad_mode, cval, engine, True), squeeze)
    if x.dtype.kind == "u":
        x = x.astype(np.float64)
    g0 = _run_separable(x, (_DERIV, _SMOOTH), pad_mode, cval, engine)
    g1 = _run_separable(x, (_SMOOTH, _DERIV), pad_mode, cval, engine, True)
    return _finish(np.hypot(g0, g1, out=g0), squeeze)


# --- the median --------------------------------------------------------------

def median_filter(image, size, mode="reflect", cval=0.0, *, engine="auto"):
    """Median of a size x size (or size[0] x size[1]) window, as scipy.ndimage.median_filter.

    Parameters
    ----------
    image : array_like, shape (H, W) or (N, H, W)
        float32, float64 or uint8; a 3-D stack is filtered image by image.
    size : int or (int, int)
        Window height and width, each >= 1.  Even windows give the upper
        median (rank ``(h*w)//2`` of the sorted window) and are centred as
        scipy centres them.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}
        How the image extends past its edges (scipy.ndimage's names;
        OpenCV's medianBlur border is 'nearest').
    cval : float
        The value outside the image for ``mode='constant'``.
    engine : {'auto', 'cython', 'numba'}
        What runs the native kernel.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``; every value is one of the window's.

    Notes
    -----
    3x3 and 5x5 windows run selection networks of min/max over whole rows
    (SIMD).  Other uint8 windows run a sliding histogram (Huang's
    algorithm); other float windows replace each value by its rank in the
    padded image and walk the windows in a snake over a bitset of the ranks
    they hold, so a step costs O(height) whatever the area (a 513x513 window
    on a 1024x1024 image takes seconds, where a sliding sorted window took
    hours).  2x2 and 2x3 float windows keep the sorted window.  For 'reflect'
    windows that reach more than four times the image's size past an edge,
    scipy's rank filters leave the mirror extension their documentation (and
    its other filters) follow; fastconv keeps the mirror.  NaNs have no
    defined rank: an image holding NaN (or a NaN ``cval`` with mode
    'constant') is filtered by scipy.ndimage.median_filter itself, so its
    result is scipy's, NaNs included.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.filters import median_filter
    >>> img = np.zeros((3, 3), np.uint8); img[1, 1] = 255   # one hot pixel
    >>> median_filter(img, 3)
    array([[0, 0, 0],
           [0, 0, 0],
           [0, 0, 0]], dtype=uint8)
    """
    what = "median_filter"
    x, squeeze = _image_arg(image, what)
    kh, kw = _size_arg(size, what)
    pad_mode, cval = _mode_arg(mode, what), _cval_arg(cval, what)
    engine = _engine_arg(engine, "median", what)
    return _finish(_run_median(x, kh, kw, pad_mode, cval, engine, mode), squeeze)


def _run_median(x, kh, kw, pad_mode, cval, engine, mode):
    if x.size == 0:
        return np.empty_like(x)
    if x.dtype.kind == "f":
        # NaN has no rank: scipy's answer is whatever its quickselect makes of
        # the window in its own order, and a NaN in our sliding sorted window
        # corrupted it for the rest of the row.  Images holding NaN (or a NaN
        # fill) get scipy's own answer; the kernels only ever see numbers.
        nan = np.isnan(x).any(axis=(1, 2))
        if math.isnan(cval) and pad_mode == "constant":
            nan[:] = True
        if nan.any():
            import scipy.ndimage
            out = np.empty_like(x)
            rest = np.flatnonzero(~nan)
            if rest.size:
                out[rest] = _run_median(np.ascontiguousarray(x[rest]), kh, kw, pad_mode, cval,
                                        engine, mode)
            for i in np.flatnonzero(nan):
                out[i] = scipy.ndimage.median_filter(x[i], size=(kh, kw), mode=mode, cval=cval)
            return out
    # scipy's rank filters cast cval to the image's dtype before padding.
    cval = _cast_as_scipy(np.array([cval]), x.dtype)[0]
    N, H, W = x.shape
    rmap, cmap = _index_map(H, kh, pad_mode), _index_map(W, kw, pad_mode)
    if x.dtype.kind == "f" and kh * kw >= RANK_MEDIAN_AREA and not (kh == kw and kh in (3, 5)):
        return _median_by_rank(x, kh, kw, rmap, cmap, cval, engine)
    out = np.empty_like(x)
    _engines.kernels(engine, "median").median(x, out, rmap, cmap, kh, kw, cval, get_num_threads())
    return out


#: Float windows of at least this area (but 3x3 and 5x5, which have selection
#: networks) take the median by ranks.  A step of the sliding sorted window
#: costs kh binary searches and memmoves of about kh*kw/3 values each; a step
#: of the rank walk 2*kh bit flips and one block's 64 popcounts, after a sort
#: of the padded image (about log2 of its size per pixel).  The sort and the
#: flips already win from 4x4 (16) up, where the sorted window does 4
#: memmoves per pixel; 2x2 and 2x3 stay sorted.
RANK_MEDIAN_AREA = 8

#: Positions per band of the rank transform: its bitset (one bit a position,
#: per thread) then stays within the 512 KiB of a small L2.
_RANK_BAND_POSITIONS = 1 << 22


def _median_by_rank(x, kh, kw, rmap, cmap, cval, engine):
    """The median of large float windows: replace every padded value by its
    rank in the band (all distinct), take the median rank of each window,
    and read its value back.  Bands of rows bound the sort, the int32 ranks
    and each thread's bitset."""
    from ._workspace import max_workspace
    N, H, W = x.shape
    Wp = W + kw - 1
    per_row = Wp * (x.itemsize + 8 + 4)        # padded values, the order, the ranks
    band = max(2 * kh, _RANK_BAND_POSITIONS // Wp - kh + 1)
    band = max(1, min(H, band, max_workspace() // per_row - kh + 1, (2 ** 31 - 1) // Wp - kh + 1))
    kern = _engines.kernels(engine, "median").median_rank
    cols, col_fill = np.maximum(cmap, 0), cmap < 0
    out = np.empty_like(x)
    for n in range(N):
        for i0 in range(0, H, band):
            i1 = min(H, i0 + band)
            rows = rmap[i0:i1 + kh - 1]
            padded = x[n][np.maximum(rows, 0)][:, cols]
            padded[rows < 0] = cval
            padded[:, col_fill] = cval
            order = np.argsort(padded, axis=None)
            rank = np.empty(padded.size, np.int32)
            rank[order] = np.arange(padded.size, dtype=np.int32)
            med = np.empty((i1 - i0, W), np.int32)
            kern(rank.reshape(padded.shape), med, kh, kw, get_num_threads())
            out[n, i0:i1] = padded.ravel()[order[med]]
    return out
