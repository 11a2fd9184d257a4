"""The im2col backend: pack the receptive fields into a matrix, multiply by BLAS.

For a tile of ``nb`` images and ``gb`` groups the engine's ``im2col`` kernel
packs, straight from ``x`` (padding applied while packing, no padded copy,
each group read from its own channel slice), the column matrix

    cols[(c*R + r)*S + s, i*OH*OW + oh*OW + ow]
        = x[n0 + i, c0 + c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]

and one BLAS call per tile, ``w_g (Kg, Cg*R*S) @ cols_g``, stacked over the
groups, produces the tile's outputs.  The column matrix lives in a reused
per-thread workspace of at most :data:`WORKSPACE_BYTES` (one image's worth if
that is larger), so memory stays bounded however large the batch, while
several small images share one GEMM so that tiny layers are not dominated by
per-call overhead.

Two layouts of the product, chosen per shape by :func:`_plan`:

``"image"``   one GEMM per image of the tile, written straight into the
              output (NCHW needs no reordering).  Best when an image has
              many output pixels: each GEMM is already large.
``"batch"``   one GEMM over all the tile's columns (Kg, nb*OH*OW), then one
              reordering copy into NCHW.  Best when OH*OW is small (late
              ResNet layers, MNIST), where per-image GEMMs would be thin.

A 1x1, stride-1, unpadded convolution needs no packing: it is
``w_g (Kg, Cg) @ x[n, g] (Cg, H*W)`` on the input as it lies.

``col2im`` (the adjoint of the packing, accumulating because windows
overlap) is exposed for backward passes, with ``im2col`` beside it.
"""
import numpy as np

from . import check_epilogue
from .._blas import apply_epilogue, gemm
from .._engines import kernels
from .._threads import get_num_threads
from .._workspace import buffer

ENGINES = ("cython", "numba")
STEM = "im2col"

#: Column bytes per tile and thread the planner aims for.  On an idle core
#: 1-2 MiB (about one L2) is best, 8 MiB costs 5-10% on MNIST-sized layers;
#: but every tile hands the cores from the packing pool to BLAS's and back,
#: and when other processes compete for the cores each hand-over costs
#: scheduler time slices: there, 8 MiB tiles ran twice as fast as 2 MiB ones
#: (2 threads, 5 layers, geometric mean).  Few tiles win.
TILE_BYTES_PER_THREAD = 8 << 20

#: Hard upper bound on the column workspace of one call (bytes), unless a
#: single image (of one group) needs more.
WORKSPACE_BYTES = 32 << 20

#: The "batch" layout is used when an image has at most this many output
#: pixels per output channel of a group (OH*OW <= ratio * Kg): per-image
#: GEMMs would then spend as much repacking the weights as multiplying.
BATCH_LAYOUT_RATIO = 4

def unsupported(p):
    """None: im2col serves every geometry (stride, padding, dilation, groups).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import im2col as backend
    >>> p = conv2d_args(np.zeros((1, 4, 9, 9)), np.zeros((4, 1, 3, 3)), None,
    ...                 2, "same", 2, 4)[3]
    >>> backend.unsupported(p) is None
    True
    """
    return None


def workspace_bytes(p):
    """Scratch bytes of a call: one tile's column matrix (and, in the batch
    layout, its product); none for a pointwise layer.

    A single image of one group is one tile however large: a call over the
    budget runs in bands of output rows (``fastconv._dispatch.run``).
    """
    if is_pointwise(p):
        return 0
    isz = np.dtype(p.dtype).itemsize
    nb, gb, layout = _plan(p, isz, get_num_threads())
    L = p.OH * p.OW
    extra = gb * p.Kg * nb * L if layout == "batch" else 0
    return (gb * p.Cg * p.R * p.S * nb * L + extra) * isz


def is_pointwise(p):
    """True when the convolution is a plain GEMM on the unpacked input.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import im2col as backend
    >>> x, w = np.zeros((1, 8, 5, 5)), np.zeros((4, 8, 1, 1))
    >>> backend.is_pointwise(conv2d_args(x, w, None, 1, 0, 1, 1)[3])
    True
    >>> backend.is_pointwise(conv2d_args(x, w, None, 2, 0, 1, 1)[3])
    False
    """
    return p.R == 1 and p.S == 1 and p.stride == (1, 1) and p.pad == (0, 0, 0, 0)


def _plan(p, itemsize, n_threads):
    """(images per tile, groups per tile, layout) for geometry ``p``."""
    L = p.OH * p.OW
    budget = min(WORKSPACE_BYTES, TILE_BYTES_PER_THREAD * n_threads)
    group_bytes = p.Cg * p.R * p.S * L * itemsize
    image_bytes = p.groups * group_bytes
    if image_bytes <= budget:
        nb, gb = max(1, min(p.N, budget // image_bytes)), p.groups
    else:
        nb, gb = 1, max(1, min(p.groups, budget // group_bytes))
    layout = "batch" if nb > 1 and L <= BATCH_LAYOUT_RATIO * p.Kg else "image"
    return nb, gb, layout


def _geometry(p):
    return (p.R, p.S, p.OH, p.OW, p.stride[0], p.stride[1], p.pad[0], p.pad[2],
            p.dilation[0], p.dilation[1])


def conv2d(x, w, p, engine, n_threads, out=None, epilogue=None):
    """NCHW cross-correlation by im2col + GEMM (see the module docstring).

    Parameters
    ----------
    x, w : ndarray
        Checked, C-contiguous, native float32/float64 input (N, C, H, W) and
        weights (K, C/groups, R, S) of one dtype.
    p : ConvParams
        The geometry, padding resolved.
    engine : {'cython', 'numba'}
        Runs the packing.
    n_threads : int
    out : ndarray, optional
        C-contiguous (N, K, OH, OW) array of x's dtype to fill (a planned buffer).
    epilogue : (bias, residual, relu), optional
        Applied as the products are written (``fastconv._blas.gemm``):
        ``y = relu((y + residual) + bias[k])``, ``bias`` (K,) or None,
        ``residual`` a C-contiguous (N, K, OH, OW) array or None (not
        overlapping ``out``), ``relu`` a bool.

    Returns
    -------
    ndarray, shape (N, K, OH, OW), x's dtype, without bias unless the
    epilogue has one (``out`` when given).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import im2col as backend
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> x, w, _, p, _ = conv2d_args(x, np.ones((1, 1, 2, 2)), None, 2, 0, 1, 1)
    >>> backend.conv2d(x, w, p, "numba", 1)
    array([[[[10., 18.],
             [42., 50.]]]])
    """
    N, G, Cg, Kg = p.N, p.groups, p.Cg, p.Kg
    L = p.OH * p.OW
    rows = Cg * p.R * p.S
    y = np.empty(p.out_shape, dtype=x.dtype) if out is None else out
    wg = w.reshape(G, Kg, rows)
    bias, res, relu = check_epilogue(epilogue, p.out_shape, x.dtype) or (None, None, False)
    bias = None if bias is None else bias.reshape(G, Kg)
    res4 = None if res is None else res.reshape(N, G, Kg, L)
    if is_pointwise(p):
        gemm(wg, x.reshape(N, G, Cg, L), out=y.reshape(N, G, Kg, L), bias=bias, residual=res4, relu=relu)
        return y
    pack = kernels(engine, STEM).im2col
    geom = _geometry(p)
    nb, gb, layout = _plan(p, x.itemsize, n_threads)
    y3 = y.reshape(N, p.K, L)
    y4 = y.reshape(N, G, Kg, L)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        for g0 in range(0, G, gb):
            gm = min(gb, G - g0)
            size = gm * rows * m * L
            # One buffer for both the columns and, in the batch layout, the
            # GEMM's result, so a call holds a single workspace.
            extra = gm * Kg * m * L if layout == "batch" else 0
            work = buffer("im2col", (size + extra,), x.dtype, WORKSPACE_BYTES)
            cols = work[:size].reshape(gm * rows, m * L)
            pack(x, cols, n0, m, g0 * Cg, gm * Cg, *geom, n_threads)
            yt = y3[n0:n0 + m, g0 * Kg:(g0 + gm) * Kg]
            w_t = wg[g0:g0 + gm]
            # The tile's part of the epilogue.
            bt = None if bias is None else bias[g0:g0 + gm]
            rt = None if res4 is None else res4[n0:n0 + m, g0:g0 + gm]
            if layout == "batch":
                prod = work[size:].reshape(gm, Kg, m * L)
                gemm(w_t, cols.reshape(gm, rows, m * L), out=prod)
                np.copyto(yt, prod.reshape(gm * Kg, m, L).transpose(1, 0, 2))
                if bt is not None or rt is not None or relu:
                    # Right after the reorder, while the tile is in cache.
                    apply_epilogue(y4[n0:n0 + m, g0:g0 + gm], bt, rt, relu)
            else:
                # cols seen as (image, group, row, pixel): BLAS reads each
                # image's block in place with leading dimension m*L.
                cv = cols.reshape(gm, rows, m, L).transpose(2, 0, 1, 3)
                gemm(w_t, cv, out=y4[n0:n0 + m, g0:g0 + gm], bias=bt, residual=rt, relu=relu)
    return y


def _check_engine_array(a, name, ndim, dtype=None):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64) or not a.dtype.isnative:
        raise TypeError(f"{name} must be native float32 or float64, got dtype {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")


def im2col(x, p, engine, n_threads, out=None):
    """The column matrix of a batch: every receptive field as a column.

    Parameters
    ----------
    x : ndarray, shape (n, C, H, W)
        C-contiguous float32/float64 input; ``n`` may differ from ``p.N``
        (e.g. a slice ``x[n0:n0 + n]`` of a batch being tiled).
    p : ConvParams
        The geometry (C, H, W, R, S, stride, pad, dilation).
    engine : {'cython', 'numba'}
    n_threads : int
    out : ndarray, shape (C*R*S, n*OH*OW), optional
        Filled and returned instead of a new array.

    Returns
    -------
    ndarray, shape (C*R*S, n*OH*OW)
        ``cols[(c*R + r)*S + s, i*OH*OW + oh*OW + ow] =
        x[i, c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]`` (zero in the
        padding).  Group ``g``'s rows are ``g*Cg*R*S`` to ``(g+1)*Cg*R*S``,
        so ``w.reshape(G, Kg, -1) @ cols.reshape(G, Cg*R*S, -1)`` is the
        convolution with its outputs ordered (G, Kg, n, OH*OW).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import im2col as backend
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> x, w, _, p, _ = conv2d_args(x, np.ones((1, 1, 2, 2)), None, 1, 0, 1, 1)
    >>> backend.im2col(x, p, "numba", 1)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    _check_engine_array(x, "x", 4)
    if x.shape[1:] != (p.C, p.H, p.W):
        raise ValueError(f"x must have shape (n, {p.C}, {p.H}, {p.W}), got {x.shape}")
    n = x.shape[0]
    shape = (p.C * p.R * p.S, n * p.OH * p.OW)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    else:
        _check_engine_array(out, "out", 2, x.dtype)
        if out.shape != shape:
            raise ValueError(f"out must have shape {shape}, got {out.shape}")
    kernels(engine, STEM).im2col(x, out, 0, n, 0, p.C, *_geometry(p), n_threads)
    return out


def col2im(cols, p, engine, n_threads, out=None):
    """The adjoint of :func:`im2col`: scatter-add every column back to its pixels.

    Each column entry is added to the input pixel it was read from; pixels
    in several windows receive the sum, entries that came from the padding
    are dropped.  This is the input gradient of a convolution given the
    gradient of its column matrix, ``w_g.T @ dy_g``.

    Parameters
    ----------
    cols : ndarray, shape (C*R*S, n*OH*OW)
        C-contiguous float32/float64, laid out as :func:`im2col` returns.
    p : ConvParams
        The geometry.
    engine : {'cython', 'numba'}
    n_threads : int
    out : ndarray, shape (n, C, H, W), optional
        Accumulated into (``+=``) and returned; by default a new zeroed array.

    Returns
    -------
    ndarray, shape (n, C, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import im2col as backend
    >>> x = np.zeros((1, 1, 3, 3))
    >>> x, w, _, p, _ = conv2d_args(x, np.ones((1, 1, 2, 2)), None, 1, 0, 1, 1)
    >>> backend.col2im(np.ones((4, 4)), p, "numba", 1)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    _check_engine_array(cols, "cols", 2)
    rows, L = p.C * p.R * p.S, p.OH * p.OW
    if cols.shape[0] != rows or cols.shape[1] % L:
        raise ValueError(f"cols must have shape ({rows}, n*{L}), got {cols.shape}")
    n = cols.shape[1] // L
    shape = (n, p.C, p.H, p.W)
    if out is None:
        out = np.zeros(shape, dtype=cols.dtype)
    else:
        _check_engine_array(out, "out", 4, cols.dtype)
        if out.shape != shape:
            raise ValueError(f"out must have shape {shape}, got {out.shape}")
    kernels(engine, STEM).col2im(cols, out, 0, n, 0, p.C, *_geometry(p), n_threads)
    return out
