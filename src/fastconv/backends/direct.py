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
   vector registers, walking channels and taps: ``kb = 8`` or ``6`` when a
   group has several output channels, ``kb = 1`` (wider blocks) for depthwise.

The ``Wq - OW`` columns per output row that the flat index adds are computed
and dropped: a waste of ``(S - 1)*dw / sw`` columns per row, small except for
narrow outputs with wide filters, which the cost model accounts for.  Memory:
one copy of the input (plus the padding) and the packed weights.
"""
from functools import lru_cache

import numpy as np

from .._engines import kernels
from .._workspace import buffer

ENGINES = ("cython", "numba")
STEM = "direct"

#: Bytes of one block's accumulators per channel row: three 64-byte vectors
#: with 8 channels, four with 6, eight with one (csrc/direct.h's FC_DIRECT_QB_*).
_ROW_BYTES = {8: 192, 6: 256, 1: 512}


def unsupported(p):
    """None: the direct kernel serves every geometry (the parity grid runs them all)."""
    return None


def channel_block(p):
    """Output channels per register block: 8 or 6, whichever pads a group's
    channels less (8 on a tie), or 1 when a group has fewer than 4.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import direct as backend
    >>> [backend.channel_block(conv2d_args(np.zeros((1, 1, 5, 5)), np.zeros((k, 1, 3, 3)),
    ...                                    None, 1, 0, 1, 1)[3]) for k in (1, 6, 12, 16, 96)]
    [1, 6, 6, 8, 8]
    """
    if p.Kg < 4:
        return 1
    return 6 if -(-p.Kg // 6) * 6 < -(-p.Kg // 8) * 8 else 8


@lru_cache(maxsize=256)
def layout(p, itemsize):
    """The phase-plane geometry of ``p``: ``(kb, qb, Hq, Wq, plane, taps)``.

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
    >>> kb, qb, Hq, Wq, plane, taps = backend.layout(p, 4)
    >>> (kb, qb, Hq, Wq), taps.tolist()
    ((8, 48, 5, 5), [0, 74, 1, 148, 222, 149, 5, 79, 6])
    """
    sh, sw = p.stride
    dh, dw = p.dilation
    kb = channel_block(p)
    qb = _ROW_BYTES[kb] // itemsize
    amax, bmax = (p.R - 1) * dh // sh, (p.S - 1) * dw // sw
    Hq, Wq = p.OH + amax, p.OW + bmax
    plane = Hq * Wq + qb + bmax
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


def conv2d(x, w, p, engine, n_threads, out=None):
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

    Returns
    -------
    ndarray, shape (N, K, OH, OW), x's dtype, without bias (``out`` when given).

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
    kernels(engine, STEM).conv2d_direct(x, wp, taps, xq, y, sh, sw, p.pad[0], p.pad[2],
                                        Hq, Wq, plane, n_threads)
    return y


#: Vector width (bytes) of the weight-gradient kernel's loads; the flat
#: output gradient is padded to a multiple of it.
_VECTOR_BYTES = 64


def weight_grad(x, gy, p, engine, n_threads):
    """The weight gradient ``dL/dw`` of the convolution ``p``, given ``dL/dy``.

    ``dw[k, c, r, s] = sum over n, oh, ow of gy[n, k, oh, ow] *
    x[n, g*Cg + c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]`` (zero in the
    padding), read from the same phase planes as the forward pass, with
    ``gy`` laid out in the forward's flat index (zeros in the dropped
    columns): no column matrix is built.  Each sum runs over images, then
    positions, in one order, whatever the thread count.

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
    vl = _VECTOR_BYTES // x.itemsize
    L = p.OH * Wq
    Lq = -(-L // vl) * vl
    gyq = buffer("direct-gy", (p.N, p.K, Lq), x.dtype)
    gyq[...] = 0
    gyq[:, :, :L].reshape(p.N, p.K, p.OH, Wq)[..., :p.OW] = gy
    sh, sw = p.stride
    xq = buffer("direct", (p.N * p.C, sh * sw * plane), x.dtype)
    dw = np.empty((p.K, p.Cg, p.R * p.S), dtype=x.dtype)
    kernels(engine, STEM).weight_grad(x, gyq, taps, xq, dw, sh, sw, p.pad[0], p.pad[2],
                                      Hq, Wq, plane, n_threads)
    return dw.reshape(p.K, p.Cg, p.R, p.S)
