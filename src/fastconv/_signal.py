"""``convolve2d`` and ``correlate2d``: drop-in replacements for scipy.signal's.

Both reduce to one "valid" cross-correlation of a boundary-extended image:
the extension reproduces scipy's index arithmetic (its modes, its centring of
even kernels in 'same' mode, its periodic reflection and wrap), and the
correlation runs on any conv2d backend.  Integers accumulate with
wrap-around in int64, which reduces to scipy's same-type wrap-around bit for
bit; complex inputs are four real correlations.  Types scipy itself handles
but our kernels do not (long double) go to scipy.
"""
import numpy as np

from . import _dispatch
from ._threads import get_num_threads
from ._workspace import max_workspace
from ._validation import ConvParams, fill_scalar, native, signal_args, swap_needed

_MAX_EXACT = 2.0 ** 53


def _start(mode, n, convolve):
    """First input index read for output 0, in scipy's convention."""
    if mode == "full":
        return -(n - 1)
    if mode == "valid":
        return 0
    half = (n - 1) >> 1
    return half - n + 1 if convolve else -half


def _out_len(mode, i, n):
    return {"full": i + n - 1, "same": i, "valid": i - n + 1}[mode]


def _widths(shape, kshape, mode, convolve):
    """((top, bottom), (left, right)): how far each output's reads reach past the image."""
    out = []
    for i, n in zip(shape, kshape):
        start = _start(mode, n, convolve)
        out.append((-start, start + _out_len(mode, i, n) + n - 1 - i))
    return out


def params_for(shape, kshape, mode="full", dtype="float64", convolve=True):
    """The geometry ``convolve2d`` (or ``correlate2d``) of a zero-filled image runs.

    The 'valid' correlation of the image zero-padded as scipy reads it, as
    :class:`~fastconv._validation.ConvParams`: what ``auto`` chooses and
    ``tune`` measures for such a call.

    Examples
    --------
    >>> from fastconv._signal import params_for
    >>> p = params_for((512, 512), (15, 15), "same", "float32")
    >>> (p.H, p.W, p.pad, p.out_shape)
    (512, 512, (7, 7, 7, 7), (1, 1, 512, 512))
    """
    (t, b), (l, r) = _widths(shape, kshape, mode, convolve)
    return ConvParams(1, 1, shape[0], shape[1], 1, kshape[0], kshape[1], (1, 1), (t, b, l, r),
                      (1, 1), 1, np.dtype(dtype).name)


def _extend(a, kshape, mode, boundary, fill, convolve):
    """The image every output reads from, as scipy reads it, and its padding.

    Returns ``(img, pad)``: zero fill is left to the backend as padding
    (``pad`` = top, bottom, left, right), which most backends apply without
    a copy; other fills and the 'symm'/'wrap' boundaries are materialised
    and ``pad`` is zero.  In scipy's modes the extension only pads, never
    crops.  scipy extends 'symm' and 'wrap' periodically however wide the
    kernel (a kernel larger than the image reflects again and again), which
    is exactly np.pad's 'symmetric' and 'wrap'.
    """
    width = _widths(a.shape, kshape, mode, convolve)
    if boundary == "fill":
        if fill == 0:
            return a, (*width[0], *width[1])
        return np.pad(a, width, constant_values=fill), (0, 0, 0, 0)
    return np.pad(a, width, mode="symmetric" if boundary == "symm" else "wrap"), (0, 0, 0, 0)


def _correlate_valid(img, pad, ker, backend, engine, integer):
    """Cross-correlation of two 2-D native arrays, ``img`` zero-padded by ``pad``."""
    p = ConvParams(1, 1, img.shape[0], img.shape[1], 1, ker.shape[0], ker.shape[1],
                   (1, 1), pad, (1, 1), 1, img.dtype.name)
    x, w = img[None, None], ker[None, None]
    return _dispatch.run(x, w, p, backend, engine, integer)[0, 0]


#: int64 bytes (input band, its padded copy, output band) of one band of the
#: exact integer path; widening a whole int8 image to int64 took 8x its bytes.
_INTEGER_BAND_BYTES = 8 << 20
_MIN_INTEGER_BAND_BYTES = 1 << 20


def _integer_bands(img, pad, ker, dtype, backend, engine):
    """The integer correlation in wrap-around int64, a band of output rows at a
    time: only a band is ever widened to int64, so memory stays near scipy's
    (the image, the output, and a band)."""
    p = ConvParams(1, 1, img.shape[0], img.shape[1], 1, ker.shape[0], ker.shape[1],
                   (1, 1), pad, (1, 1), 1, "int64")
    OH, OW = p.OH, p.OW
    per_row = 8 * (OW + 2 * (p.W + pad[2] + pad[3]))
    # a band of at most half the call's own bytes keeps the peak near 1.5x them
    band = min(max_workspace(), _INTEGER_BAND_BYTES,
               max(_MIN_INTEGER_BAND_BYTES, (img.nbytes + OH * OW * dtype.itemsize) // 2))
    rows = max(1, min(OH, band // per_row - ker.shape[0]))
    out = np.empty((OH, OW), dtype)
    for o0 in range(0, OH, rows):
        o1 = min(OH, o0 + rows)
        sub, (i0, i1, j0, j1) = p.band(o0, o1, 0, OW)
        xs = native(img[i0:i1, j0:j1], np.int64)
        out[o0:o1] = _dispatch.run(xs[None, None], ker[None, None], sub, backend, engine, True)[0, 0]
    return out


def _exact_in_float(img, ker, backend):
    """True when ``backend``'s float64 result, rounded, is this integer correlation.

    Direct sums of integers below 2**53 are exact in float64; FFT and
    Winograd add a relative error (about 1e-13 of the output's scale), so
    they get 20 bits of head-room for rounding to land on the integer.
    """
    from ._select import INEXACT_ON_NONFINITE
    bound = float(np.abs(img).max(initial=0)) * float(np.abs(ker.astype(np.float64)).sum())
    return bound < (_MAX_EXACT / 2.0 ** 20 if backend in INEXACT_ON_NONFINITE else _MAX_EXACT)


def _real_path(img, pad, ker, dtype, backend, engine):
    if dtype.kind in "iub":
        if backend not in ("auto", "naive") and _exact_in_float(img, ker, backend):
            out = _correlate_valid(native(img, np.float64), pad, native(ker, np.float64), backend, engine, False)
            return np.rint(out).astype(np.int64).astype(dtype)
        return _integer_bands(img, pad, native(ker, np.int64), dtype, backend, engine)
    return _correlate_valid(native(img, dtype), pad, native(ker, dtype), backend, engine, False)


def _signal2d(in1, in2, mode, boundary, fillvalue, backend, engine, convolve):
    what = "convolve2d" if convolve else "correlate2d"
    in1, in2, mode, bnd = signal_args(in1, in2, mode, boundary, what)
    dtype = np.result_type(in1, in2)
    kind = dtype.kind
    served = (kind in "iu" or (kind in "fc" and dtype.itemsize in (4, 8, 16) and dtype != np.longdouble
                               and dtype != np.clongdouble))
    if not served or in1.size == 0 or in2.size == 0:
        if backend != "auto":
            raise ValueError(f"backend {backend!r} cannot serve {what} of dtype {dtype} "
                             f"with shapes {in1.shape}, {in2.shape}")
        if kind == "b" or dtype == np.float16:
            # scipy refuses these too, but without naming the arguments
            raise ValueError(f"{what}: in1 and in2 must be integer, float32/64 or complex, "
                             f"got dtype {in1.dtype} and {in2.dtype} (scipy.signal supports neither "
                             "bool nor float16)")
        import scipy.signal
        return getattr(scipy.signal, what)(in1, in2, mode, boundary, fillvalue)
    swapped = swap_needed(mode, in1.shape, in2.shape)
    if swapped:
        in1, in2 = in2, in1
    # scipy reads (and checks) the fill value only for the 'fill' boundary
    fill = fill_scalar(fillvalue, dtype) if bnd == "fill" else 0
    img, pad = _extend(in1.astype(dtype, copy=False), in2.shape, mode, bnd, fill, convolve)
    ker = in2.astype(dtype, copy=False)
    ker = ker[::-1, ::-1] if convolve else ker.conj()
    if kind == "c":
        part = np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
        rr = [_real_path(getattr(img, a), pad, getattr(ker, b), part, backend, engine)
              for a, b in (("real", "real"), ("imag", "imag"), ("real", "imag"), ("imag", "real"))]
        out = np.empty(rr[0].shape, dtype)
        out.real = rr[0] - rr[1]
        out.imag = rr[2] + rr[3]
    else:
        out = _real_path(img, pad, ker, dtype, backend, engine)
    if swapped and not convolve:
        out = out[::-1, ::-1]
    return np.ascontiguousarray(out)


_DOC = """{title}

    A drop-in replacement for ``scipy.signal.{name}``: the same results, the
    same output dtype and the same errors for every mode, boundary and
    fill value, on fastconv's backends.

    Parameters
    ----------
    in1, in2 : array_like, 2-D
        The image and the kernel.  In 'valid' mode the larger one is used as
        the image (one must be at least as large as the other in each axis).
    mode : {{'full', 'valid', 'same'}}
        Output size: ``in1 + in2 - 1``, ``in1 - in2 + 1`` or ``in1``'s shape
        (centred as scipy centres it, also for even kernels).
    boundary : {{'fill', 'wrap', 'symm'}}
        How ``in1`` is extended: with ``fillvalue``, periodically, or by
        mirror reflection (aliases 'pad', 'circular', 'symmetric').
    fillvalue : scalar
        The pad value for ``boundary='fill'``.
    backend, engine : str
        As for :func:`fastconv.conv2d`.  Integer inputs run exactly: on the
        naive backend in wrap-around int64, or on another named backend in
        float64 when the result provably stays below 2**53.

    Returns
    -------
    ndarray
        The common dtype of ``in1`` and ``in2`` (integers stay integers and
        wrap on overflow as scipy's do).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> {example}
    """


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, backend="auto", engine="auto"):
    return _signal2d(in1, in2, mode, boundary, fillvalue, backend, engine, convolve=True)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, backend="auto", engine="auto"):
    return _signal2d(in1, in2, mode, boundary, fillvalue, backend, engine, convolve=False)


convolve2d.__doc__ = _DOC.format(
    title="Convolve two 2-D arrays.", name="convolve2d",
    example="fastconv.convolve2d(np.eye(2, dtype=int), [[1, 2], [3, 4]])\n"
            "    array([[1, 2, 0],\n           [3, 5, 2],\n           [0, 3, 4]])")
correlate2d.__doc__ = _DOC.format(
    title="Cross-correlate two 2-D arrays.", name="correlate2d",
    example="fastconv.correlate2d(np.eye(2, dtype=int), [[1, 2], [3, 4]])\n"
            "    array([[4, 3, 0],\n           [2, 5, 3],\n           [0, 2, 1]])")
