"""The direct backend: a register-blocked convolution without im2col.

im2col copies every input pixel R*S times to feed a GEMM; for the layers
where that GEMM is small (first layers with one or three channels, LeNet's
6 to 16 channels, strided 11x11 filters, depthwise and thinly grouped
convolutions) the copy costs more than the product.  This backend instead

1. copies each input plane once, zero-padded and split by stride phase
   (``sh*sw`` planes of ``Hq x Wq``), so that every tap of every output is a
   unit-stride read at an offset that is affine in the flattened output
   index ``q = oh*Wq + ow`` (csrc/direct.h has the formulas);
2. packs the weights so that a block's output channels are contiguous per
   tap (:func:`pack_weights`, here, for both engines);
3. computes blocks of ``kb`` output channels by ``qb`` flat positions in
   vector registers, walking channels and taps.  The block shapes belong to
   the instruction set the compiled kernels run (:func:`geometry`, the table
   in csrc/direct.c): 8x3 or 6x4 vectors on AVX-512's 32 registers, 4x3 or
   6x2 on AVX2's 16, a one-channel block of 8 vectors for depthwise.

The ``Wq - OW`` columns per output row that the flat index adds are computed
and dropped: a waste of ``(S - 1)*dw / sw`` columns per row, small except for
narrow outputs with wide filters, which the cost model accounts for.  Memory:
one copy of the input (plus the padding) and the packed weights.
"""
from functools import lru_cache

import numpy as np

from . import check_epilogue
from .._engines import has, kernels
from .._workspace import buffer

ENGINES = ("cython", "numba")
STEM = "direct"


def geometry():
    """The blocks of the instruction set the kernels run now: ``(isa, vec_bytes,
    ((kb, nv) of blocks A, B and the one-channel block), single_below,
    (wgrad_kb, wgrad_tb))``, from csrc/direct.c's table (the Numba twin's
    default when the compiled engine is absent).  Both engines run the
    layout planned from it.

    Examples
    --------
    >>> from fastconv.backends import direct as backend
    >>> isa, vec_bytes, blocks, single_below, wgrad = backend.geometry()
    >>> blocks[2][0]
    1
    """
    if has("cython", STEM):
        return kernels("cython", STEM).geometry()
    return kernels("numba", STEM).GEOMETRY


#: The flat index computes ``Wq = OW + (S - 1)*dw // sw`` columns per output
#: row; past this many times the ``OW`` kept, the dropped ones dominate (a
#: 1x100000 kernel on a short image: 300x the useful work, minutes where the
#: naive loop takes a second), and other backends serve the shape.
MAX_COLUMN_WASTE = 8

#: The weight gradient runs all its blocks over a chunk of images, then the
#: next chunk, rather than each block over every image: a block reads a
#: chunk's output gradient from cache where it streamed the whole batch's from
#: memory.  A chunk holds this many bytes of images (input planes and output
#: gradient), sized for the smallest L2 of the CPUs served (512 KiB a core on
#: Zen 3) rather than tuned to one machine ...
WGRAD_CHUNK_BYTES = 256 << 10

#: ... but gives every block at least this many vector steps: each block and
#: chunk ends in a sum across its accumulators' lanes, which one-image chunks
#: of short planes (a few dozen steps) did not amortise.  Intel Xeon AVX-512,
#: 2 threads, float32, ms all images at once / chunked: MNIST's
#: (64,32,26,26) -> (64,32,3,3) 14.4 / 10.4 (AVX2 cap: 20.3 / 12.5);
#: (32,64,32,32) -> (64,64,3,3) 22.6 / 15.5; (32,64,16,16) 5.2 / 4.4;
#: one-image chunks without this floor: 12.8, 17.4 and 5.9.
WGRAD_MIN_STEPS = 256


def unsupported(p):
    """None when the direct kernel serves ``p``, else the reason: every geometry
    except those whose flat index would compute mostly dropped columns.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> p = conv2d_args(np.zeros((1, 1, 2, 1030)), np.zeros((1, 1, 1, 1000)), None, 1, 0, 1, 1)[3]
    >>> backend.unsupported(p)
    'the flat index would compute 1030 columns per output row to keep 31 (more than 8x): use im2col, fft or auto'
    """
    cols = _phase_plane(p, 1)[1]
    if cols > MAX_COLUMN_WASTE * p.OW:
        return (f"the flat index would compute {cols} columns per output row to keep {p.OW} "
                f"(more than {MAX_COLUMN_WASTE}x): use im2col, fft or auto")
    return None


def workspace_bytes(p):
    """Scratch bytes of a call: the phase-split copy of the input and the packed weights.

    Computed in Python integers from the geometry alone (a huge stride makes
    ``sh*sw`` phase planes: the figure says so without building them).
    """
    isz = np.dtype(p.dtype).itemsize
    geom = geometry()
    kb, nv = channel_block(p, geom)
    sh, sw = p.stride
    plane = _phase_plane(p, nv * geom[1] // isz)[2]
    packed = p.groups * -(-p.Kg // kb) * kb * p.Cg * p.R * p.S
    return (p.N * p.C * sh * sw * plane + packed) * isz


def channel_block(p, geom=None):
    """The register block ``(kb, nv)`` for ``p``: of the set's two several-channel
    blocks the one whose kb pads a group's channels less (the first on a tie),
    or the one-channel block when a group has fewer than ``single_below``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> avx512 = ("avx512", 64, ((8, 3), (6, 4), (1, 8)), 4, (4, 5))
    >>> [backend.channel_block(conv2d_args(np.zeros((1, 1, 5, 5)), np.zeros((k, 1, 3, 3)),
    ...                                    None, 1, 0, 1, 1)[3], avx512)[0] for k in (1, 6, 12, 16, 96)]
    [1, 6, 6, 8, 8]
    """
    _, _, (a, b, one), single_below, _ = geometry() if geom is None else geom
    if p.Kg < single_below:
        return one
    return b if -(-p.Kg // b[0]) * b[0] < -(-p.Kg // a[0]) * a[0] else a


def _phase_plane(p, qb):
    """``(Hq, Wq, plane)``: one phase plane's rows and columns (the flat index's
    dropped columns included) and its length with the tail a block of ``qb``
    positions reads past it."""
    amax = (p.R - 1) * p.dilation[0] // p.stride[0]
    bmax = (p.S - 1) * p.dilation[1] // p.stride[1]
    Hq, Wq = p.OH + amax, p.OW + bmax
    return Hq, Wq, Hq * Wq + qb + bmax


def layout(p, itemsize):
    """The phase-plane geometry of ``p``: ``(kb, qb, Hq, Wq, plane, taps)``,
    for the blocks of the instruction set the kernels run now.

    ``taps[r*S + s]`` is where tap (r, s) of flat output 0 reads in one
    channel's phase planes; ``plane`` is one phase plane's length, tail
    included, so that the last block of ``qb`` positions reads inside it.
    Memoised (a training loop asks for the same few geometries): the
    returned ``taps`` must not be modified.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> p = conv2d_args(np.zeros((1, 1, 8, 8)), np.zeros((8, 1, 3, 3)), None, 2, 1, 1, 1)[3]
    >>> avx512 = ("avx512", 64, ((8, 3), (6, 4), (1, 8)), 4, (4, 5))
    >>> kb, qb, Hq, Wq, plane, taps = backend._layout(p, 4, avx512)
    >>> (kb, qb, Hq, Wq), taps.tolist()
    ((8, 48, 5, 5), [0, 74, 1, 148, 222, 149, 5, 79, 6])
    """
    return _layout(p, itemsize, geometry())


@lru_cache(maxsize=256)
def _layout(p, itemsize, geom):
    sh, sw = p.stride
    dh, dw = p.dilation
    kb, nv = channel_block(p, geom)
    qb = nv * geom[1] // itemsize
    Hq, Wq, plane = _phase_plane(p, qb)
    r = np.arange(p.R)[:, None] * dh
    s = np.arange(p.S)[None, :] * dw
    taps = ((r % sh) * sw + s % sw) * plane + (r // sh) * Wq + s // sw
    taps = np.ascontiguousarray(taps.ravel(), dtype=np.intp)
    taps.setflags(write=False)
    return kb, qb, Hq, Wq, plane, taps


def pack_weights(w, p, kb):
    """``wp[g, b, (c*R + r)*S + s, k] = w[g*Kg + b*kb + k, c, r, s]``, zero past Kg.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> w = np.arange(2.0 * 3).reshape(2, 3, 1, 1)
    >>> p = conv2d_args(np.zeros((1, 3, 4, 4)), w, None, 1, 0, 1, 1)[3]
    >>> backend.pack_weights(w, p, 8)[0, 0]
    array([[0., 3., 0., 0., 0., 0., 0., 0.],
           [1., 4., 0., 0., 0., 0., 0., 0.],
           [2., 5., 0., 0., 0., 0., 0., 0.]])
    """
    G, Kg = p.groups, p.Kg
    nkb = -(-Kg // kb)
    wp = np.zeros((G, nkb * kb, p.Cg * p.R * p.S), dtype=w.dtype)
    wp[:, :Kg] = w.reshape(G, Kg, -1)
    return np.ascontiguousarray(wp.reshape(G, nkb, kb, -1).transpose(0, 1, 3, 2))


def conv2d(x, w, p, engine, n_threads, out=None, epilogue=None):
    """NCHW cross-correlation by the register-blocked direct kernel.

    Parameters
    ----------
    x, w : ndarray
        Checked, C-contiguous, native float32/float64 input (N, C, H, W) and
        weights (K, C/groups, R, S) of one dtype.
    p : ConvParams
        The geometry, padding resolved.
    engine : {'cython', 'numba'}
    n_threads : int
    out : ndarray, optional
        C-contiguous (N, K, OH, OW) array of x's dtype to fill.
    epilogue : (bias, residual, relu), optional
        A fused layer's epilogue, ``y = relu((y + residual) + bias[k])``:
        ``bias`` (K,) or None, ``residual`` a C-contiguous (N, K, OH, OW)
        array or None (not overlapping ``out``), ``relu`` a bool. Applied
        as each register block is stored.

    Returns
    -------
    ndarray, shape (N, K, OH, OW), x's dtype, without bias unless the
    epilogue has one (``out`` when given).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> x, w, _, p, _ = conv2d_args(x, np.ones((1, 1, 2, 2)), None, 2, 0, 1, 1)
    >>> backend.conv2d(x, w, p, "numba", 1)
    array([[[[10., 18.],
             [42., 50.]]]])
    """
    kb, qb, Hq, Wq, plane, taps = layout(p, x.itemsize)
    wp = pack_weights(w, p, kb)
    sh, sw = p.stride
    xq = buffer("direct", (p.N * p.C, sh * sw * plane), x.dtype)
    y = np.empty(p.out_shape, dtype=x.dtype) if out is None else out
    epilogue = check_epilogue(epilogue, p.out_shape, x.dtype)
    kernels(engine, STEM).conv2d_direct(x, wp, taps, xq, y, sh, sw, p.pad[0], p.pad[2],
                                        Hq, Wq, plane, qb, n_threads, *(epilogue or ()))
    return y


def weight_grad(x, gy, p, engine, n_threads):
    """The weight gradient ``dL/dw`` of the convolution ``p``, given ``dL/dy``.

    ``dw[k, c, r, s] = sum over n, oh, ow of gy[n, k, oh, ow] *
    x[n, g*Cg + c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]`` (zero in the
    padding), read from the same phase planes as the forward pass, with
    ``gy`` laid out in the forward's flat index (zeros in the dropped
    columns): no column matrix is built.  Each sum runs over chunks of
    images (``WGRAD_CHUNK_BYTES``), then positions, in one order, whatever
    the thread count.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    gy : ndarray, shape (N, K, OH, OW)
        C-contiguous, x's dtype.
    p : ConvParams
    engine : {'cython', 'numba'}
    n_threads : int

    Returns
    -------
    ndarray, shape (K, Cg, R, S)

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> x, w, _, p, _ = conv2d_args(x, np.ones((1, 1, 2, 2)), None, 1, 0, 1, 1)
    >>> backend.weight_grad(x, np.ones((1, 1, 2, 2)), p, "numba", 1)[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    _, _, Hq, Wq, plane, taps = layout(p, x.itemsize)
    # The flat output gradient is padded to whole vectors of the kernel's loads.
    vl = geometry()[1] // x.itemsize
    L = p.OH * Wq
    Lq = -(-L // vl) * vl
    gyq = buffer("direct-gy", (p.N, p.K, Lq), x.dtype)
    sh, sw = p.stride
    xq = buffer("direct", (p.N * p.C, sh * sw * plane), x.dtype)
    dw = np.empty((p.K, p.Cg, p.R * p.S), dtype=x.dtype)
    per_image = (p.C * sh * sw * plane + p.K * Lq) * x.itemsize
    nb = max(-(-WGRAD_MIN_STEPS * vl // Lq), WGRAD_CHUNK_BYTES // per_image)
    nb = max(1, min(p.N, nb))
    kernels(engine, STEM).weight_grad(x, gy, gyq, taps, xq, dw, sh, sw, p.pad[0], p.pad[2],
                                      Hq, Wq, plane, vl, nb, n_threads)
    return dw.reshape(p.K, p.Cg, p.R, p.S)
