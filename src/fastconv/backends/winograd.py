"""The Winograd backend: minimal-filtering convolution for 3x3 kernels, stride 1.

Lavin & Gray's F(m x m, 3x3): each output tile of m x m pixels is computed
from an (m+2) x (m+2) input patch d and the filter g as

    Y = A^T [ (G g G^T) (*) (B^T d B) ] A            ((*) elementwise)

Summed over input channels, the elementwise products become, for each of the
alpha^2 = (m+2)^2 positions xi of the transformed tile, one matrix product
M[xi] = U[xi] @ V[xi] of the transformed filters (K x C) and the transformed
input tiles (C x tiles).  F(4x4,3x3) does 36 multiplies per 16 outputs and
channel where the direct method does 144: that 4x is what beats an
im2col/GEMM path already running near the machine's peak.

Stages
------
1. Filter transform ``U = G g G^T`` (one GEMM in the weights' dtype).  Cached:
   an LRU keyed on the weights' *content* (shape, dtype, tile, groups, and an
   exact byte comparison against a stored copy), so a layer whose weights
   did not change is not transformed again and weights changed in place are
   noticed.
2. Input transform into ``V[xi][c][t]`` (engine kernel, stem
   ``winograd_f{m}x3``), padding applied while loading.
3. ``M = U @ V``: alpha^2 independent GEMMs (K x C) @ (C x T) through
   ``fastconv._blas.gemm``, outside any parallel region.
4. Output transform ``A^T M A`` into the caller's array (engine kernel).
Stages 2-4 run per block of ``T`` tiles, so the buffers are bounded (a few
MiB) whatever the batch size.

Tiles and interpolation points
------------------------------
F(2x2,3x3): points 0, 1, -1, inf.  F(4x4,3x3): 0, 1, -1, 2, -2, inf.
F(6x6,3x3): 0, 1, -1, 2, -2, 1/2, -1/2, inf.  The matrices are those of
Lavin's ``wincnn`` (fractions in G), exact in binary floating point except
the 1/3, 1/9 ... factors of G: G (x) G is formed in float64 and rounded
once to the weights' dtype (the table below was measured with the filter
transform in float64; in float32 it adds about 1e-7).

Numerical error
---------------
Max |error| relative to max |output| against a float64 direct convolution,
padding 1, 3x3 weights N(0, 1) (He-scaled for MNIST); inputs: random N(0, 1)
(2,64,56,56)->64 and (2,256,14,14)->64, MNIST digits in [0, 1] stacked as
(8,32,28,28)->64, smooth sinusoid images (1,64,56,56)->64:

===========  ==============================  ==============================
tile         float32 (rand64/rand256/mnist/   float64 (same four inputs)
             smooth)
===========  ==============================  ==============================
F(2x2,3x3)   3.3e-7 / 5.5e-7 / 2.6e-7 / 3.8e-7  2.0e-15 / 2.6e-15 / 1.3e-15 / 2.0e-15
F(4x4,3x3)   6.8e-6 / 1.1e-5 / 1.7e-6 / 5.7e-7  1.2e-14 / 1.6e-14 / 3.8e-15 / 1.9e-15
F(6x6,3x3)   9.9e-6 / 1.4e-5 / 3.1e-6 / 1.2e-6  1.8e-14 / 2.4e-14 / 5.9e-15 / 2.2e-15
direct f32   9.4e-7 / 1.8e-6 / 7.0e-7 / 1.2e-6  (the naive backend, for scale)
===========  ==============================  ==============================

``tests/test_winograd.py`` asserts 1e-5 / 1e-4 / 1e-4 (float32) and
1e-13 / 1e-12 / 1e-12 (float64) for F(2x2) / F(4x4) / F(6x6).  The error
grows with the tile because the transform entries do (8 in F(4x4)'s A^T,
32 and 21/4 in F(6x6)'s), and with the spread of the data: smooth and
non-negative images lose less than white noise.
"""
from fractions import Fraction
from functools import lru_cache

import numpy as np

from . import check_epilogue
from .._blas import gemm
from .._engines import kernels
from .._transform_cache import TransformCache
from .._workspace import buffer

ENGINES = ("cython", "numba")
STEM = "winograd_f4x3"          # the stem ``_dispatch.engines`` checks for availability
TILES = (2, 4, 6)


# --- transform matrices ------------------------------------------------------

def _toom_cook(m, points):
    """``(A^T, G, B^T)`` of F(m, 3) for finite ``points`` plus infinity, as Fractions.

    Lavin's ``wincnn`` construction with the fractions in G, in exact
    rational arithmetic; ``y = A^T [(G g) * (B^T d)]`` is the correlation
    ``y[i] = sum_k g[k] d[i + k]``.
    """
    r = 3
    a = [Fraction(p) for p in points]
    n = len(a)
    alpha = n + 1
    f = [np.prod([a[i] - a[k] for k in range(n) if k != i], dtype=object) for i in range(n)]
    AT = [[a[j] ** i for j in range(n)] + [Fraction(int(i == m - 1))] for i in range(m)]
    G = [[a[i] ** j / f[i] for j in range(r)] for i in range(n)]
    G.append([Fraction(int(j == r - 1)) for j in range(r)])

    def coeffs(i):          # prod_{k != i} (x - a_k), lowest power first
        c = [Fraction(1)]
        for k in range(n):
            if k != i:
                c = [(c[d - 1] if d else 0) - a[k] * (c[d] if d < len(c) else 0)
                     for d in range(len(c) + 1)]
        return c

    L = [[coeffs(j)[i] / f[j] for j in range(n)] for i in range(n)]
    T = [[Fraction(int(i == j)) for j in range(n)] + [-a[i] ** n] for i in range(n)]
    B = [[sum(L[i][k] * T[k][j] for k in range(n)) for j in range(alpha)] for i in range(n)]
    B.append([Fraction(int(j == n)) for j in range(alpha)])
    scale = list(f) + [Fraction(1)]
    BT = [[scale[i] * B[j][i] for j in range(alpha)] for i in range(alpha)]
    if f[0] < 0:            # wincnn's sign convention: row 0 of B^T positive
        BT[0] = [-v for v in BT[0]]
        G[0] = [-v for v in G[0]]
    return tuple(np.array(M, dtype=object) for M in (AT, G, BT))


POINTS = {2: (0, 1, -1), 4: (0, 1, -1, 2, -2),
          6: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))}
EXACT = {m: _toom_cook(m, pts) for m, pts in POINTS.items()}
MATRICES = {m: tuple(M.astype(np.float64) for M in mats) for m, mats in EXACT.items()}


def transform_matrices(m, exact=False):
    """The matrices ``(A^T, G, B^T)`` of F(m x m, 3x3).

    Parameters
    ----------
    m : {2, 4, 6}
        Output tile.
    exact : bool
        Return object arrays of ``fractions.Fraction`` instead of float64.

    Examples
    --------
    >>> from fastconv.backends.winograd import transform_matrices
    >>> AT, G, BT = transform_matrices(2)
    >>> AT
    array([[ 1.,  1.,  1.,  0.],
           [ 0.,  1., -1.,  1.]])
    """
    _check_tile(m)
    return tuple(M.copy() for M in (EXACT if exact else MATRICES)[m])


def _check_tile(m):
    if m not in TILES:
        raise ValueError(f"winograd: m (the output tile) must be one of {TILES}, got {m!r}")


# --- what the backend serves and which tile it uses ----------------------------

def unsupported(p):
    """None when Winograd can serve geometry ``p``, else the reason."""
    if (p.R, p.S) != (3, 3):
        return f"Winograd needs a 3x3 kernel, got {p.R}x{p.S}"
    if tuple(p.stride) != (1, 1):
        return f"Winograd needs stride 1, got {tuple(p.stride)}"
    if tuple(p.dilation) != (1, 1):
        return f"Winograd needs dilation 1, got {tuple(p.dilation)}"
    return None


def workspace_bytes(p):
    """Scratch bytes of a call: the transformed filters and one block's
    transformed inputs and products."""
    m = choose_tile(p)
    a2 = (m + 2) ** 2
    ntiles = p.N * -(-p.OH // m) * -(-p.OW // m)
    T = block_tiles(p, m, ntiles)
    return a2 * (p.K * p.Cg + (p.C + p.K) * (T + 64)) * np.dtype(p.dtype).itemsize


# Relative cost of one transformed-domain element per tile, fitted to
# single-thread CPU times of F(2x2)/F(4x4)/F(6x6) on 10 float32 layers with
# outputs from 3x3 to 224x224 (F(6x6)'s transforms do ~1.4x the work per
# element; F(2x2)'s are cheaper but it has 1.8x the elements of F(4x4)).
_TILE_COST = {2: 0.85, 4: 1.0, 6: 1.4}


#: With filters that are new on every call (a training step), transforming
#: one filter element costs about this many products of one tile with that
#: filter: it is written once to memory, out of cache for a deep layer, where
#: a product is one multiply-add in a BLAS kernel.  (Measured with fresh
#: 512x512 filters, AMD EPYC Zen 5, 2 threads, ms for m = 2 / 4: batch 16 of
#: 4x4 outputs 4.6-5.0 / 6.8-9.1, batch 32 of 2x2 3.6-4.0 / 7.9-9.4; 256
#: channels at batch 32 of 4x4 1.9-2.2 / 2.1-2.4; 128 channels of 8x8
#: 2.6 / 1.7.)
_FRESH_FILTER_COST = 40


def choose_tile(p, fresh=None):
    """The output tile m the backend uses for geometry ``p``.

    Every stage's work is proportional to tiles x alpha^2, the size of the
    transformed domain, times a per-tile constant (``_TILE_COST``): pick the
    smallest.  F(4x4) wins on most layers; F(6x6) wins when one tile covers a
    5x5 or 6x6 output; ties go to the smaller, more accurate tile.  Filters
    transformed on every call (``fresh``; by default whether the caller is in
    ``fastconv._select.fresh_weights``) add alpha^2 elements per filter,
    shared by the batch's images (``_FRESH_FILTER_COST``): few images of
    small planes then take F(2x2), whose filters are 16 elements, not 36.

    Examples
    --------
    >>> from fastconv._validation import conv2d_args
    >>> import numpy as np
    >>> p = conv2d_args(np.zeros((1, 8, 56, 56)), np.zeros((8, 8, 3, 3)), None, 1, 1, 1, 1)[3]
    >>> choose_tile(p)
    4
    >>> q = conv2d_args(np.zeros((16, 8, 4, 4)), np.zeros((8, 8, 3, 3)), None, 1, 1, 1, 1)[3]
    >>> choose_tile(q, fresh=False), choose_tile(q, fresh=True)
    (4, 2)
    """
    if fresh is None:
        from .._select import weights_are_fresh
        fresh = weights_are_fresh()

    def cost(m):
        a2 = (m + 2) ** 2
        tiles = -(-p.OH // m) * -(-p.OW // m) * a2 * _TILE_COST[m]
        return tiles + (a2 * _FRESH_FILTER_COST / p.N if fresh else 0.0)
    return min(TILES, key=cost)


# --- the filter transform and its cache ------------------------------------

_CACHE_SIZE = 32
_cache = TransformCache(_CACHE_SIZE, 256 << 20)


@lru_cache(maxsize=None)
def _kron_g(m):
    """G (x) G, (alpha^2, 9): row a*alpha + b, column r*3 + s holds G[a, r] G[b, s]."""
    _, G, _ = MATRICES[m]
    return np.kron(G, G)


def _filter_transform(w, m, groups, out=None):
    """U[xi, g, k, c] = (G w[k, c] G^T)[xi], in w's dtype.

    One GEMM, (G (x) G) @ w as (9, K*Cg) (a transposed view BLAS reads as
    it lies), writes U in its final layout.  In float32 the rounding of
    G's fractions adds about 1e-7 relative, a hundredth of F(4x4)'s own
    error; a float64 product with its conversions took 15 ms for 512x512
    filters and F(2x2) against 1.5 ms (Intel Xeon AVX-512), more than the
    convolution it served in a training step, which transforms its filters
    on every call.  (numpy's einsum of the two small products took 143 ms.)
    """
    K, Cg = w.shape[:2]
    alpha = m + 2
    w9 = np.ascontiguousarray(w).reshape(K * Cg, 9).T
    U = gemm(_kron_g(m).astype(w.dtype), w9, out=out)
    return U.reshape(alpha * alpha, groups, K // groups, Cg)


def transformed_filters(w, m, groups=1):
    """The transformed filters U of ``w`` for F(m x m, 3x3), from the cache.

    The cache is keyed on the weights' content, never on the array's
    identity: changing ``w`` in place is noticed, an equal copy hits.
    Inside ``fastconv._select.fresh_weights`` (a training step) the cache is
    passed by and U is computed into a per-thread workspace buffer, valid
    until this thread's next such call.

    Parameters
    ----------
    w : ndarray, shape (K, C // groups, 3, 3)
    m : {2, 4, 6}
    groups : int

    Returns
    -------
    ndarray, shape ((m+2)**2, groups, K // groups, C // groups), w's dtype
        Read-only; shared with later calls (or, for fresh weights,
        overwritten by this thread's next fresh transform).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.backends.winograd import transformed_filters
    >>> transformed_filters(np.ones((4, 2, 3, 3)), 4).shape
    (36, 1, 4, 2)
    """
    _check_tile(m)
    from .._select import weights_are_fresh     # here: _select imports the backends
    if weights_are_fresh():
        # New filters on every call (training): nothing to look up or keep,
        # and the transform goes to this thread's kept buffer.  A fresh array
        # past glibc's 32 MiB mmap threshold faulted in every page on every
        # call: 512x512 filters for F(4x4) (38 MB) took 8.5 ms to transform
        # where F(2x2)'s 17 MB took 1.3 (AMD EPYC Zen 5).
        K, Cg = w.shape[:2]
        U = _filter_transform(w, m, groups, out=buffer("winograd.U", ((m + 2) ** 2, K * Cg), w.dtype))
        U.flags.writeable = False
        return U
    return _cache.get(w, ("winograd", m, groups), lambda: _filter_transform(w, m, groups))


class PreparedFilters:
    """Filters transformed once, for one geometry, by :func:`prepare`.

    Pass it to :func:`conv2d` in place of the weights.
    """
    __slots__ = ("U", "m")

    def __init__(self, U, m):
        self.U, self.m = U, m

    @property
    def nbytes(self):
        """Bytes the transformed filters hold (what a plan keeps in place of the weights)."""
        return self.U.nbytes


def prepare(w, p):
    """``w``'s transformed filters for geometry ``p``, computed now and kept by the caller.

    A compiled inference plan holds the result and passes it to
    :func:`conv2d` in place of ``w``: no call then looks the weights up in
    the cache, a lookup whose byte comparison costs as much as a small layer
    (1.3 ms for VGG16's 512x512x3x3 weights, Intel Xeon AVX-512, against
    2.3 ms for the whole convolution at 14x14).  The result is a snapshot:
    later changes to ``w`` do not reach it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import winograd
    >>> x, w, _, p, _ = conv2d_args(np.ones((1, 2, 8, 8)), np.ones((3, 2, 3, 3)), None, 1, 1, 1, 1)
    >>> f = winograd.prepare(w, p)
    >>> bool(np.array_equal(winograd.conv2d(x, f, p, "cython", 1), winograd.conv2d(x, w, p, "cython", 1)))
    True
    """
    m = choose_tile(p)
    U = _filter_transform(w, m, p.groups)
    U.flags.writeable = False
    return PreparedFilters(U, m)


def clear_cache():
    """Forget every cached filter transform.

    Examples
    --------
    >>> from fastconv.backends import winograd
    >>> winograd.clear_cache()
    """
    _cache.clear()


def cache_info():
    """``{"hits", "misses", "size"}`` of the filter-transform cache.

    Examples
    --------
    >>> from fastconv.backends import winograd
    >>> sorted(winograd.cache_info())
    ['hits', 'misses', 'size']
    """
    return _cache.info()


# --- the convolution -----------------------------------------------------------

_BLOCK_BYTES = 3 << 20          # V + M of one block: within the L2 caches (measured)


_MIN_BLOCK_TILES = 200          # narrower GEMMs lose badly when BLAS splits them over threads


def block_tiles(p, m, ntiles):
    """Tiles per block: as many as keep V and M within ``_BLOCK_BYTES``.

    At least ``_MIN_BLOCK_TILES``: with 64 tiles the alpha^2 GEMMs of VGG and
    ResNet (256 channels) ran 1.2x slower on one thread and 2-3x slower on
    two (each GEMM is split over the BLAS threads).  Blocks are made equal so
    that no GEMM is ragged.
    """
    alpha2 = (m + 2) ** 2
    per_tile = alpha2 * (p.C + p.K) * np.dtype(p.dtype).itemsize
    t = max(_MIN_BLOCK_TILES, _BLOCK_BYTES // per_tile)
    if t >= ntiles:
        return ntiles
    nblocks = -(-ntiles // t)
    return -(-ntiles // nblocks)


def _odd_lines(n, itemsize):
    """``n`` rounded up to an odd number of 64-byte cache lines, in items.

    The transforms stream alpha^2 planes at once; a plane stride that is a
    multiple of 4 KiB maps them all to one cache set (measured: 1.6x slower
    on (64,32,14,14) at 256 tiles per block).
    """
    per = 64 // itemsize
    lines = -(-n // per)
    return (lines | 1) * per


def _plane_buffer(name, alpha2, rows, T, dtype):
    """An (alpha2, rows, nt) view factory over the workspace slot ``name``,
    with padded strides.

    The slot is kept between calls: fresh, V and M fault in every page on
    first touch (905 faults, 2.4 ms, on a (4,64,28,28) layer whose three
    stages take 0.9 ms; AMD EPYC Zen 4, a KVM guest).
    """
    isz = np.dtype(dtype).itemsize
    ld = _odd_lines(T, isz) if T > 64 // isz else T
    xs = _odd_lines(rows * ld, isz)
    buf = buffer(name, (alpha2 * xs,), dtype)

    def view(nt, groups=None):
        if groups is None:
            return np.lib.stride_tricks.as_strided(
                buf, (alpha2, rows, nt), (xs * isz, ld * isz, isz))
        rg = rows // groups
        return np.lib.stride_tricks.as_strided(
            buf, (alpha2, groups, rg, nt), (xs * isz, rg * ld * isz, ld * isz, isz))
    return view


def conv2d_tile(x, w, p, engine, n_threads, m=4, out=None, epilogue=None):
    """Winograd F(m x m, 3x3) convolution with the tile forced.

    The backend's ``conv2d`` calls this with :func:`choose_tile`'s tile; tests
    and error tables call it directly.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), C-contiguous float32/float64
    w : ndarray, shape (K, C // groups, 3, 3), x's dtype, or PreparedFilters
        The filters, or their transform for tile ``m`` from :func:`prepare`.
    p : ConvParams
        The checked geometry (stride 1, dilation 1, any padding, groups).
    engine : {'cython', 'numba'}
    n_threads : int
    m : {2, 4, 6}
        Output tile size.
    out : ndarray, optional
        C-contiguous (N, K, OH, OW) array of x's dtype to fill.
    epilogue : (bias, residual, relu), optional
        Applied by the output transform as each tile is stored:
        ``y = relu((y + residual) + bias[k])``, ``bias`` (K,) or None,
        ``residual`` a C-contiguous (N, K, OH, OW) array or None (not
        overlapping ``out``), ``relu`` a bool.

    Returns
    -------
    ndarray, shape (N, K, OH, OW), x's dtype

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends.winograd import conv2d_tile
    >>> x, w, _, p, _ = conv2d_args(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), None, 1, 1, 1, 1)
    >>> conv2d_tile(x, w, p, "cython", 1, m=2)[0, 0]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    """
    _check_tile(m)
    why = unsupported(p)
    if why is not None:
        raise ValueError(f"winograd: cannot serve this geometry: {why}")
    ker = kernels(engine, f"winograd_f{m}x3")
    epilogue = check_epilogue(epilogue, p.out_shape, x.dtype)
    alpha2 = (m + 2) ** 2
    N, C, K, G = p.N, p.C, p.K, p.groups
    TH, TW = -(-p.OH // m), -(-p.OW // m)
    ntiles = N * TH * TW
    if isinstance(w, PreparedFilters):
        if w.m != m:
            raise ValueError(f"winograd: filters prepared for F({w.m}x{w.m},3x3), called with m={m}")
        U = w.U
    else:
        U = transformed_filters(w, m, G)
    y = np.empty(p.out_shape, dtype=x.dtype) if out is None else out
    T = block_tiles(p, m, ntiles)
    vview = _plane_buffer("winograd.V", alpha2, C, T, x.dtype)
    mview = _plane_buffer("winograd.M", alpha2, K, T, x.dtype)
    for t0 in range(0, ntiles, T):
        nt = min(T, ntiles - t0)
        ker.input_transform(x, vview(nt), TH, TW, p.pad[0], p.pad[2], t0, n_threads)
        gemm(U, vview(nt, G), out=mview(nt, G))
        ker.output_transform(mview(nt), y, TH, TW, t0, n_threads, *(epilogue or ()))
    return y


def conv2d(x, w, p, engine, n_threads, out=None, epilogue=None):
    m = w.m if isinstance(w, PreparedFilters) else choose_tile(p)
    return conv2d_tile(x, w, p, engine, n_threads, m=m, out=out, epilogue=epilogue)
