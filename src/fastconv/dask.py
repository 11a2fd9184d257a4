"""fastconv on Dask arrays: lazy, chunked, exact at every chunk border.

``pip install "fastconv[dask]"`` adds ``dask[array]`` and ``distributed``.
Every function here takes a dask array (or a NumPy array, which it chunks
with :func:`auto_chunks`), builds a graph and computes nothing; the result
is a dask array with its chunks, dtype and ``meta`` set.  Each output block
is the in-memory fastconv function applied to one input block extended by
the rows and columns its outputs read (its *halo*), so the result equals the
in-memory function on the whole array: bit for bit for integers, to rounding
for floats, for every mode and boundary, whatever the chunks.

How the halo is built, along each image axis:

* the array's own boundary (scipy's 'symm'/'wrap', scipy.ndimage's
  'reflect'/'mirror'/'nearest'/'wrap', zero or fill padding) is added first
  as thin strips gathered through the same index maps ``np.pad`` uses, so a
  kernel wider than a chunk, or than the whole array, still reads what the
  in-memory function reads ('wrap' across chunks reads the far chunk, which
  dask-image got wrong, dask-image#242);
* the strips join the first and last chunks, chunks narrower than the halo
  are merged with a neighbour (dask's ``map_overlap`` would rechunk too),
  and ``dask.array.overlap.overlap`` shares the halo between neighbours;
* in the common case (a 2-D array, stride 1, 'same'-sized output, halos no
  wider than any chunk) both steps are one: each block packs the strips its
  neighbours read, and each extended block is assembled from its block and
  its neighbours' packs, with np.pad at the array's own edges (two tasks a
  block, where ``overlap`` takes about fifteen);
* scipy.ndimage's 'constant' mode is the exception: a separable filter's
  second pass pads its intermediate result with ``cval``, which no strip of
  input can reproduce, so blocks at the array's edge run the filter's own
  constant padding there instead.

Output chunks follow the input's (for 'same'-sized results they are the
input chunks, unless chunks narrower than the halo had to be merged).
Threads: the kernels release the GIL.  On dask's threaded scheduler, either
let dask run one task per core with ``fastconv.set_num_threads(1)``, or give
dask one thread and fastconv the cores; distributed's nanny workers set
``OMP_NUM_THREADS=1``, which fastconv honours.
"""
import copy
import math

import numpy as np

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - the optional part
    raise ImportError('fastconv.dask needs dask: pip install "fastconv[dask]"') from exc

from . import _conv, _signal, filters as _filters
from ._validation import conv_geometry, float_dtype, signal_args, swap_needed, fill_scalar

__all__ = ["convolve2d", "correlate2d", "conv2d", "mean_filter", "gaussian_filter", "sobel",
           "median_filter", "predict", "auto_chunks"]

# About 16 MB of float32 per block: big enough that the halo and the task
# overhead stay small, small enough that a few blocks in flight per worker
# fit in a 1 GB worker with their halos and outputs.
_TARGET_BLOCK_BYTES = 16 * 2 ** 20


# --- chunking ----------------------------------------------------------------

def auto_chunks(shape, dtype, kernel_shape=(1, 1)):
    """The chunks fastconv.dask gives an array whose caller left them unset.

    Image axes (the last two) are cut into square tiles of about 16 MB
    (2048 x 2048 float32) whose extended size, tile + kernel - 1, is a
    5-smooth number (a fast FFT length, a multiple of 4 and 6 when large,
    which also suits Winograd's output tiles); leading axes (images, channels)
    are one per block until a block reaches the same 16 MB.

    Parameters
    ----------
    shape : tuple of int
        The array's shape, at least 2-D.
    dtype : dtype
        Its element type.
    kernel_shape : (int, int)
        The footprint read around each output (its extent along the image axes).

    Returns
    -------
    tuple of tuple of int
        Chunks in dask's normalised form.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.dask import auto_chunks
    >>> auto_chunks((20000, 20000), np.float32, (15, 15))[0][:2]
    (2034, 2034)
    """
    from scipy.fft import next_fast_len
    itemsize = np.dtype(dtype).itemsize
    edge = max(64, int(math.sqrt(_TARGET_BLOCK_BYTES / itemsize)))
    tiles = []
    for n, k in zip(shape[-2:], kernel_shape):
        t = next_fast_len(edge + k - 1) - (k - 1)
        tiles.append(min(n, t) if n > 0 else 1)
    per_image = tiles[0] * tiles[1] * itemsize
    lead = [1] * (len(shape) - 2)
    budget = max(1, _TARGET_BLOCK_BYTES // per_image)
    for i in reversed(range(len(lead))):
        lead[i] = max(1, min(shape[i], budget))
        budget = max(1, budget // max(lead[i], 1))
    return da.core.normalize_chunks(tuple(lead) + tuple(tiles), shape, dtype=np.dtype(dtype))


def _as_dask(x, chunks, kernel_shape=(1, 1)):
    if isinstance(x, da.Array):
        return x if chunks is None else x.rechunk(chunks)
    x = np.asarray(x)
    if chunks is None:
        chunks = auto_chunks(x.shape, x.dtype, kernel_shape) if x.ndim >= 2 else "auto"
    return da.from_array(x, chunks=chunks)


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype=dtype)


# --- the halo ----------------------------------------------------------------

def _plan_axis(chunks, pt, pb, span, stride):
    """How one image axis is cut when outputs read ``span`` rows of the extended array.

    The extended array E is the axis with ``pt`` rows before it and ``pb``
    after; output o reads E[o * stride, o * stride + span).  Returns
    ``(e_chunks, depth, out_chunks)``: E's chunks (block boundaries at the
    input's own boundaries where the geometry allows), the (left, right)
    halo each block borrows from its neighbours, and the output's chunks.
    """
    H = sum(chunks)
    L = pt + H + pb
    OL = (L - span) // stride + 1
    # Stride 1: a left halo of pt keeps output boundaries on input boundaries.
    # Larger strides: blocks start on a multiple of the stride, no left halo.
    dl = min(pt, span - 1) if stride == 1 else 0
    dr = max(span - stride, 0) - dl
    need = max(dl, dr, 1)
    starts = np.cumsum((0,) + tuple(chunks))[1:-1]
    e_bounds, o_bounds = [], []
    prev_e, prev_o = 0, 0
    for s in starts:
        ob = -(-(int(s) + pt - dl) // stride)
        e = ob * stride + dl
        if ob > prev_o and e - prev_e >= need and ob < OL and L - e >= need:
            e_bounds.append(e)
            o_bounds.append(ob)
            prev_e, prev_o = e, ob
    e_chunks = tuple(np.diff([0] + e_bounds + [L]).tolist())
    out_chunks = tuple(np.diff([0] + o_bounds + [OL]).tolist())
    if len(e_chunks) == 1:
        dl = dr = 0
    return e_chunks, (dl, dr), out_chunks


def _strips(x, axis, before, after, how):
    """``x`` with ``before``/``after`` slices added along ``axis``.

    ``how`` is an np.pad mode ('symmetric', 'reflect', 'edge', 'wrap'),
    gathered through an index map (any width, wider than the axis included,
    exactly as np.pad extends), or ``('value', v)`` for a constant.
    """
    if before == after == 0:
        return x
    n = x.shape[axis]
    parts = []
    if isinstance(how, tuple):
        for width in (before, after):
            shape = list(x.shape)
            shape[axis] = width
            chunks = list(x.chunks)
            chunks[axis] = (width,)
            parts.append(da.full(shape, how[1], dtype=x.dtype, chunks=tuple(chunks)) if width else None)
    else:
        idx = np.pad(np.arange(n), (before, after), mode=how)
        parts = [da.take(x, idx[:before], axis=axis) if before else None,
                 da.take(x, idx[n + before:], axis=axis) if after else None]
    return da.concatenate([p for p in (parts[0], x, parts[1]) if p is not None], axis=axis)


def _halo(x, axes):
    """Extend and overlap ``x`` for per-block valid computations.

    ``axes`` maps each axis to ``(pt, pb, span, stride, how)``.  Returns the
    overlapped array (one block per output block, holding everything that
    block reads) and the output chunks along those axes.
    """
    if _packed_halo_fits(x, axes):
        return _packed_halo(x, axes), x.chunks
    out_chunks = list(x.chunks)
    depth, e_chunks = {}, list(x.chunks)
    for axis, (pt, pb, span, stride, how) in axes.items():
        x = _strips(x, axis, pt, pb, how)
        e_chunks[axis], depth[axis], out_chunks[axis] = _plan_axis(
            out_chunks[axis], pt, pb, span, stride)
    x = x.rechunk(tuple(e_chunks))
    if any(d != (0, 0) for d in depth.values()):
        x = da.overlap.overlap(x, depth=depth, boundary={a: "none" for a in depth},
                               allow_rechunk=False)
    return x, tuple(out_chunks)


def _packed_halo_fits(x, axes):
    """True for the common case :func:`_packed_halo` serves: a 2-D array,
    stride 1, 'same'-sized outputs, and halos no wider than any chunk along
    an axis cut in several (an axis in one chunk takes any width)."""
    if x.ndim != 2 or set(axes) != {0, 1}:
        return False
    for axis, (pt, pb, span, stride, how) in axes.items():
        if stride != 1 or pt + pb != span - 1:
            return False
        if len(x.chunks[axis]) > 1 and max(pt, pb) > min(x.chunks[axis]):
            return False
    return True


def _packed_halo(x, axes):
    """The extended blocks of a 2-D array in two tasks a block.

    dask's ``overlap`` cuts a getitem task for each of a block's eight
    neighbours and concatenates through intermediate layers: about 15 tasks a
    block, whose scheduling cost more than the filters on a 2-core machine.
    Here each block packs the eight edge and corner strips its neighbours
    read into one small task result, and each extended block is assembled
    from its own block and its neighbours' packs (the strips travel between
    workers, never whole blocks).  The array's own boundary is np.pad of the
    assembled block in the axis's mode ('wrap' reads the far block's pack
    instead), which is what the in-memory index maps compute as long as a
    halo is no wider than the block it mirrors (see ``_packed_halo_fits``).
    """
    (t0, b0, _, _, how0), (t1, b1, _, _, how1) = axes[0], axes[1]
    nb = x.numblocks
    token = dask.base.tokenize(x, axes)
    pack, ext = "fastconv-halo-pack-" + token, "fastconv-halo-" + token
    widths = ((t0, b0), (t1, b1))
    dsk = {}
    for i in range(nb[0]):
        for j in range(nb[1]):
            dsk[(pack, i, j)] = (_pack_strips, (x.name, i, j), widths)
    hows = (how0, how1)
    for i in range(nb[0]):
        for j in range(nb[1]):
            offsets, packs = [], []
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ii = i if di == 0 else _neighbour(i + di, nb[0], hows[0])
                    jj = j if dj == 0 else _neighbour(j + dj, nb[1], hows[1])
                    if (di, dj) != (0, 0) and ii is not None and jj is not None:
                        offsets.append(3 * (di + 1) + dj + 1)     # plain ints: never read as keys
                        packs.append((pack, ii, jj))
            dsk[(ext, i, j)] = (_assemble, (x.name, i, j), offsets, packs, widths, hows)
    chunks = tuple(tuple(c + t + b for c in x.chunks[a]) for a, (t, b) in enumerate(widths))
    graph = dask.highlevelgraph.HighLevelGraph.from_collections(ext, dsk, dependencies=[x])
    return da.Array(graph, ext, chunks=chunks, dtype=x.dtype, meta=_meta(2, x.dtype))


def _neighbour(k, n, how):
    """The block k along an axis of n blocks (k one past a block), wrapped
    for 'wrap'; None past an edge."""
    if n == 1:
        return None                         # the axis is whole: np.pad extends it
    if how == "wrap":
        return k % n
    return k if 0 <= k < n else None


def _pack_strips(block, widths):
    """The strips of ``block`` its neighbours read, keyed by which neighbour
    reads them: the one below reads the last t rows (its top halo), the one
    above the first b rows; likewise for columns and the corners."""
    (t0, b0), (t1, b1) = widths
    H, W = block.shape
    rows = {1: slice(0, b0), -1: slice(H - t0, H), 0: slice(None)}
    cols = {1: slice(0, b1), -1: slice(W - t1, W), 0: slice(None)}
    return {(di, dj): np.array(block[rows[di], cols[dj]])
            for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)}


def _assemble(block, offsets, packs, widths, hows):
    """``block`` extended by its neighbours' strips, np.pad at the array's edges.

    ``packs`` are the packs of the neighbours at ``offsets`` (3*(di+1) + dj+1
    for the block at (di, dj)); each holds, under that same (di, dj), the
    strip a block at the opposite offset reads: the block above (di = -1)
    gives its last t0 rows."""
    (t0, b0), (t1, b1) = widths
    have = {(di, dj): None for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)}
    for code, p in zip(offsets, packs):
        d = (code // 3 - 1, code % 3 - 1)
        have[d] = p[d]
    up, down = have[(-1, 0)] is not None or not t0, have[(1, 0)] is not None or not b0
    left, right = have[(0, -1)] is not None or not t1, have[(0, 1)] is not None or not b1
    rows = [(-1, t0 if have[(-1, 0)] is not None else 0), (0, block.shape[0]),
            (1, b0 if have[(1, 0)] is not None else 0)]
    cols = [(-1, t1 if have[(0, -1)] is not None else 0), (0, block.shape[1]),
            (1, b1 if have[(0, 1)] is not None else 0)]
    out = np.empty((sum(n for _, n in rows), sum(n for _, n in cols)), block.dtype)
    r = 0
    for di, nr in rows:
        c = 0
        for dj, nc in cols:
            if nr and nc:
                out[r:r + nr, c:c + nc] = block if di == dj == 0 else have[(di, dj)]
            c += nc
        r += nr
    pads = ((0 if up else t0, 0 if down else b0), (0 if left else t1, 0 if right else b1))
    if pads == ((0, 0), (0, 0)):
        return out
    # Missing sides are the array's edges (or an axis in one chunk): pad them
    # in the axis's mode, one axis at a time as the index maps do.
    for axis, how in enumerate(hows):
        width = [(0, 0), (0, 0)]
        width[axis] = pads[axis]
        if width[axis] == (0, 0):
            continue
        if isinstance(how, tuple):
            out = np.pad(out, width, mode="constant", constant_values=how[1])
        else:
            out = np.pad(out, width, mode=how)
    return out


# --- scipy.signal's convolve2d / correlate2d ---------------------------------

_BOUNDARY_PAD = {"symm": "symmetric", "wrap": "wrap"}


def _signal2d(in1, in2, mode, boundary, fillvalue, chunks, backend, engine, convolve):
    what = "convolve2d" if convolve else "correlate2d"
    func = _signal.convolve2d if convolve else _signal.correlate2d
    x = _as_dask(in1, chunks, np.shape(in2))
    ker = np.asarray(in2)
    if x.ndim != 2:
        raise ValueError(f"{what} inputs must both be 2-D arrays")
    # The scipy checks, on a stand-in of x's dtype (the data stays lazy).
    _, ker, mode, bnd = signal_args(np.empty((1, 1), x.dtype), ker, mode, boundary, what)
    dtype = np.result_type(x.dtype, ker.dtype)
    meta = _meta(2, dtype)
    kw = dict(backend=backend, engine=engine)
    if x.size == 0 or ker.size == 0:
        raise ValueError(f"{what}: in1 {x.shape} and in2 {ker.shape} must both be non-empty")
    if swap_needed(mode, x.shape, ker.shape):
        # The kernel is the larger operand: the output is no larger than the
        # kernel, which is in memory, and so is in1; one task.
        out_shape = tuple(n - i + 1 for i, n in zip(x.shape, ker.shape))
        return x.rechunk(x.shape).map_blocks(func, ker, mode, boundary, fillvalue, **kw,
                                             chunks=tuple((n,) for n in out_shape),
                                             dtype=dtype, meta=meta)
    fill = fill_scalar(fillvalue, dtype) if bnd == "fill" else 0
    how = ("value", fill) if bnd == "fill" else _BOUNDARY_PAD[bnd]
    widths = _signal._widths(x.shape, ker.shape, mode, convolve)
    axes = {a: (widths[a][0], widths[a][1], ker.shape[a], 1, how) for a in (0, 1)}
    ext, out_chunks = _halo(x.astype(dtype), axes)
    return ext.map_blocks(func, ker, "valid", **kw, chunks=out_chunks, dtype=dtype, meta=meta)


_SIGNAL_DOC = """{title}

    The dask form of :func:`fastconv.{name}` (scipy.signal's semantics):
    every mode, boundary and fill value, the same dtype, and the same values
    as the in-memory function on the whole array.

    Parameters
    ----------
    in1 : dask array or array_like, 2-D
        The image.  A NumPy array is chunked with :func:`auto_chunks`.
    in2 : array_like, 2-D
        The kernel, held in memory (a dask array is computed).
    mode : {{'full', 'valid', 'same'}}
        Output size, as scipy's.
    boundary : {{'fill', 'wrap', 'symm'}}
        How ``in1`` is extended ('wrap' and 'symm' read across chunks and,
        for a kernel wider than the image, around it again and again).
    fillvalue : scalar
        The pad value for ``boundary='fill'``.
    chunks : optional
        Rechunk ``in1`` to these chunks first.
    backend, engine : str
        As for :func:`fastconv.{name}`, used on every block.

    Returns
    -------
    dask array
        Lazy.  For 'same' mode its chunks are ``in1``'s.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv, fastconv.dask
    >>> img = np.arange(36.0).reshape(6, 6)
    >>> y = fastconv.dask.{name}(da.from_array(img, chunks=4), np.ones((3, 3)), "same", "wrap")
    >>> y.chunks
    ((4, 2), (4, 2))
    >>> bool(np.allclose(y.compute(), fastconv.{name}(img, np.ones((3, 3)), "same", "wrap")))
    True
    """


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, chunks=None,
               backend="auto", engine="auto"):
    return _signal2d(in1, in2, mode, boundary, fillvalue, chunks, backend, engine, convolve=True)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0, *, chunks=None,
                backend="auto", engine="auto"):
    return _signal2d(in1, in2, mode, boundary, fillvalue, chunks, backend, engine, convolve=False)


convolve2d.__doc__ = _SIGNAL_DOC.format(title="Convolve a chunked 2-D array with a kernel.",
                                        name="convolve2d")
correlate2d.__doc__ = _SIGNAL_DOC.format(title="Cross-correlate a chunked 2-D array with a kernel.",
                                         name="correlate2d")


# --- PyTorch's conv2d ----------------------------------------------------------

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, chunks=None,
           backend="auto", engine="auto"):
    """:func:`fastconv.conv2d` on an NCHW dask array.

    The batch axis may be chunked freely, and so may H and W: each block
    borrows the halo its outputs read (``dilation * (R - 1) + 1 - stride``
    rows, with blocks starting on a multiple of the stride) and the zero
    padding is added as strips at the array's edges.  Channels are gathered
    into one chunk.

    Parameters
    ----------
    x : dask array or array_like, shape (N, C, H, W) or (C, H, W)
        float32 or float64.  A NumPy array is chunked with :func:`auto_chunks`.
    weight, bias, stride, padding, dilation, groups :
        As for :func:`fastconv.conv2d` (in memory, sent once per worker).
    chunks : optional
        Rechunk ``x`` to these chunks first.
    backend, engine : str
        As for :func:`fastconv.conv2d`, used on every block.

    Returns
    -------
    dask array, shape (N, K, OH, OW)
        Lazy, of the common float dtype; the batch chunks are ``x``'s, and
        with stride 1 and 'same' padding so are the H and W chunks.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv, fastconv.dask
    >>> x = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    >>> w = np.ones((8, 3, 3, 3), np.float32)
    >>> y = fastconv.dask.conv2d(da.from_array(x, chunks=(2, 3, 16, 16)), w, padding="same")
    >>> y.chunks
    ((2, 2), (8,), (16, 16), (16, 16))
    >>> bool(np.allclose(y.compute(), fastconv.conv2d(x, w, padding="same"), rtol=1e-5))
    True
    """
    x = _as_dask(x, chunks, np.shape(weight)[-2:])
    w = np.asarray(weight)
    if x.ndim not in (3, 4):
        raise ValueError(f"conv2d: x must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    arrays = [("x", np.empty(0, x.dtype)), ("weight", w)]
    if bias is not None:
        bias = np.asarray(bias)
        arrays.append(("bias", bias))
    dtype = float_dtype(*arrays)
    if w.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (K, C/groups, R, S), got shape {w.shape}")
    p = conv_geometry(tuple(x.shape), tuple(w.shape), stride, padding, dilation, groups, dtype)
    if bias is not None and bias.shape != (p.K,):
        raise ValueError(f"conv2d: bias must have shape ({p.K},), got {bias.shape}")
    x = x.astype(dtype).rechunk({1: -1})
    spans = (p.dilation[0] * (p.R - 1) + 1, p.dilation[1] * (p.S - 1) + 1)
    axes = {2 + a: (p.pad[2 * a], p.pad[2 * a + 1], spans[a], p.stride[a], ("value", 0))
            for a in (0, 1)}
    ext, out_chunks = _halo(x, axes)
    weights = dask.delayed((w.astype(dtype), None if bias is None else bias.astype(dtype)),
                           pure=True, traverse=False)
    y = ext.map_blocks(_conv_block, weights, p.stride, p.dilation, p.groups, backend, engine,
                       chunks=(out_chunks[0], (p.K,)) + out_chunks[2:], dtype=dtype,
                       meta=_meta(4, dtype))
    return y[0] if squeeze else y


def _conv_block(block, weights, stride, dilation, groups, backend, engine):
    w, b = weights
    return _conv.conv2d(block, w, b, stride, 0, dilation, groups, backend=backend, engine=engine)


# --- the filters ---------------------------------------------------------------

def _filter(what, image, reach, call, mode, cval, chunks):
    """Run ``call`` (an in-memory filter of the block) over every block of ``image``.

    ``reach`` is the window's (height, width), centred as scipy centres it.
    """
    x = _as_dask(image, chunks, reach)
    if x.ndim not in (2, 3):
        raise ValueError(f"{what}: image must be 2-D (H, W) or a 3-D stack (N, H, W), "
                         f"got shape {x.shape}")
    _filters._image_arg(np.zeros((1,) * x.ndim, x.dtype), what)
    pad_mode = _filters._mode_arg(mode, what)
    dtype = call(np.zeros((1,) * x.ndim, x.dtype)).dtype
    meta = _meta(x.ndim, dtype)
    lead = x.ndim - 2
    if pad_mode == "constant":
        return _filter_constant(x, reach, call, dtype, meta)
    axes = {lead + a: (k // 2, k - 1 - k // 2, k, 1, pad_mode) for a, k in enumerate(reach)}
    ext, out_chunks = _halo(x, axes)
    crop = tuple(slice(None) for _ in range(lead)) + tuple(slice(k // 2, k // 2 - k + 1 or None)
                                                           for k in reach)
    return ext.map_blocks(_crop_block, call, crop, chunks=out_chunks, dtype=dtype, meta=meta)


def _crop_block(block, call, crop):
    return np.ascontiguousarray(call(block)[crop])


def _filter_constant(x, reach, call, dtype, meta):
    """scipy.ndimage's 'constant' mode: edge blocks pad with cval themselves."""
    lead = x.ndim - 2
    depth, chunks = {}, list(x.chunks)
    for a, k in enumerate(reach):
        ax = lead + a
        d = max(k // 2, k - 1 - k // 2)
        if len(x.chunks[ax]) > 1 and d > 0:
            try:
                chunks[ax] = da.overlap.ensure_minimum_chunksize(d, x.chunks[ax])
            except ValueError:
                chunks[ax] = (x.shape[ax],)
        depth[ax] = (k // 2, k - 1 - k // 2) if len(chunks[ax]) > 1 else (0, 0)
    x = x.rechunk(tuple(chunks))
    if any(d != (0, 0) for d in depth.values()):
        x = da.overlap.overlap(x, depth=depth, boundary={a: "none" for a in depth},
                               allow_rechunk=False)
    before = {ax: d[0] for ax, d in depth.items()}
    return x.map_blocks(_edge_block, call, before, tuple(chunks), chunks=tuple(chunks),
                        dtype=dtype, meta=meta)


def _edge_block(block, call, before, chunks, block_id=None):
    # The first block along an axis has no left halo; the others have one.
    sl = []
    for ax, i in enumerate(block_id):
        n = chunks[ax][i]
        start = before.get(ax, 0) if i > 0 else 0
        sl.append(slice(start, start + n))
    return np.ascontiguousarray(call(block)[tuple(sl)])


_FILTER_DOC = """

    The dask form of :func:`fastconv.filters.{name}`: the same arguments
    (plus ``chunks``), the same dtype and the same values as the in-memory
    filter on the whole array, for every mode, 'wrap' included.

    Parameters
    ----------
    image : dask array or array_like, shape (H, W) or (N, H, W)
        A NumPy array is chunked with :func:`auto_chunks`.
    {params}
    mode : {{'reflect', 'constant', 'nearest', 'mirror', 'wrap'}}
        scipy.ndimage's names.
    cval : float
        The value outside the image for ``mode='constant'``.
    chunks : optional
        Rechunk ``image`` to these chunks first.
    engine : {{'auto', 'cython', 'numba'}}
        What runs the native kernel on each block.

    Returns
    -------
    dask array
        Lazy, with ``image``'s chunks (merged where a chunk was narrower
        than the window's reach).

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> from fastconv import filters
    >>> img = np.random.default_rng(0).random((40, 40))
    >>> y = fastconv.dask.{name}(da.from_array(img, chunks=16), {example}, mode="wrap")
    >>> y.chunks
    ((16, 16, 8), (16, 16, 8))
    >>> bool(np.allclose(y.compute(), filters.{name}(img, {example}, mode="wrap")))
    True
    """


def mean_filter(image, size, mode="reflect", cval=0.0, *, chunks=None, engine="auto"):
    reach = _filters._size_arg(size, "mean_filter")
    call = _Call(_filters.mean_filter, size, mode=mode, cval=cval, engine=engine)
    return _filter("mean_filter", image, reach, call, mode, cval, chunks)


def gaussian_filter(image, sigma, truncate=4.0, mode="reflect", cval=0.0, *, chunks=None,
                    engine="auto"):
    sigmas = _filters._sigma_arg(sigma, "gaussian_filter")
    reach = tuple(2 * int(truncate * s + 0.5) + 1 if s > 1e-15 else 1 for s in sigmas) \
        if isinstance(truncate, (int, float)) and not isinstance(truncate, bool) else (1, 1)
    call = _Call(_filters.gaussian_filter, sigma, truncate, mode=mode, cval=cval, engine=engine)
    call(np.zeros((1, 1)))   # the in-memory checks of sigma and truncate, now
    return _filter("gaussian_filter", image, reach, call, mode, cval, chunks)


def sobel(image, axis=None, mode="reflect", cval=0.0, *, chunks=None, engine="auto"):
    call = _Call(_filters.sobel, axis, mode=mode, cval=cval, engine=engine)
    return _filter("sobel", image, (3, 3), call, mode, cval, chunks)


def median_filter(image, size, mode="reflect", cval=0.0, *, chunks=None, engine="auto"):
    reach = _filters._size_arg(size, "median_filter")
    call = _Call(_filters.median_filter, size, mode=mode, cval=cval, engine=engine)
    return _filter("median_filter", image, reach, call, mode, cval, chunks)


class _Call:
    """A filter with its arguments bound: picklable, and tokenised by value."""

    def __init__(self, func, *args, **kwargs):
        self.func, self.args, self.kwargs = func, args, kwargs

    def __call__(self, block):
        return self.func(block, *self.args, **self.kwargs)

    def __dask_tokenize__(self):
        return (self.func.__module__, self.func.__name__, self.args, sorted(self.kwargs.items()))


for _f, _title, _params, _example in (
        (mean_filter, "Mean of a size x size window, on a dask array.",
         "size : int or (int, int)\n        Window height and width.", "5"),
        (gaussian_filter, "Gaussian blur of a dask array.",
         "sigma : float or (float, float)\n        Standard deviation along rows and columns.\n"
         "    truncate : float\n        Cut the kernel at this many standard deviations.", "2.0"),
        (sobel, "Sobel gradient (or magnitude) of a dask array.",
         "axis : {None, 0, 1, -1, -2}\n        The axis to differentiate along; None: the magnitude.",
         "1"),
        (median_filter, "Median of a size x size window, on a dask array.",
         "size : int or (int, int)\n        Window height and width.", "5")):
    _f.__doc__ = _title + _FILTER_DOC.format(name=_f.__name__, params=_params, example=_example)


# --- batched inference ---------------------------------------------------------

def predict(model, images, batch_size=256, *, chunks=None):
    """Run a fastconv model over a dask array of images chunked along N.

    Parameters
    ----------
    model : fastconv.nn.Module
        Run in eval mode under ``no_grad`` on a copy (the caller's model is
        left as it is).  The copy enters the graph once, as one task's
        result, so each worker receives the weights once, not once per task.
    images : dask array or array_like, shape (N, C, H, W)
        Chunked along N only (other axes are gathered); a NumPy array is cut
        into blocks of ``8 * batch_size`` images.
    batch_size : int
        Images per forward pass inside a block.
    chunks : optional
        Rechunk ``images`` along N to these chunks first.

    Returns
    -------
    dask array, shape (N, ...)
        The model's outputs, lazy, chunked along N as ``images``.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> from fastconv.models import LeNet5
    >>> imgs = da.zeros((1000, 1, 28, 28), np.float32, chunks=(250, 1, 28, 28))
    >>> out = fastconv.dask.predict(LeNet5(), imgs, batch_size=100)
    >>> out.shape, out.chunks[0]
    ((1000, 10), (250, 250, 250, 250))
    """
    from . import nn
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"predict: model must be a fastconv.nn.Module, got {type(model).__name__}")
    if chunks is None and not isinstance(images, da.Array):
        chunks = (8 * int(batch_size),) + (-1,) * (np.ndim(images) - 1)
    x = _as_dask(images, chunks)
    if x.ndim < 2:
        raise ValueError(f"predict: images must have a batch axis and image axes, got shape {x.shape}")
    x = x.rechunk({a: -1 for a in range(1, x.ndim)})
    m = copy.deepcopy(model).eval()
    with nn.no_grad():
        probe = np.asarray(m(nn.Tensor(np.zeros((1,) + x.shape[1:], x.dtype))).data)
    shipped = dask.delayed(m, pure=True, traverse=False)
    return da.map_blocks(_predict_block, x, shipped, int(batch_size),
                         chunks=(x.chunks[0],) + tuple((n,) for n in probe.shape[1:]),
                         drop_axis=list(range(probe.ndim, x.ndim)) if x.ndim > probe.ndim else None,
                         new_axis=list(range(x.ndim, probe.ndim)) if probe.ndim > x.ndim else None,
                         dtype=probe.dtype, meta=_meta(probe.ndim, probe.dtype))


def _predict_block(block, model, batch_size):
    from . import nn
    outs = []
    with nn.no_grad():
        for i in range(0, len(block), batch_size):
            outs.append(np.asarray(model(nn.Tensor(np.ascontiguousarray(block[i:i + batch_size]))).data))
    if not outs:
        return np.empty((0,), np.float32)
    return np.concatenate(outs)
