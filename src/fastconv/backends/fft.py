"""The FFT backend: cross-correlation as a product of spectra.

The input planes and the kernels go through ``scipy.fft`` (``rfft2`` /
``irfft2``, ``workers=n_threads``, batched over images and channels in one
call each); the sum over input channels happens in the frequency domain,
``Y[n, k, f] = sum_c X[n, c, f] * conj(W[k, c, f])``, in the ``cmac`` kernel
of the chosen engine (``fastconv._numba.fft`` or ``fastconv._cython.fft`` over
``csrc/fft.c``).  The conjugate makes the circular product a correlation, so
kernels are transformed unflipped, and a transform length of the input plus
its larger padding (not the padded height + kernel - 1) already keeps every
output free of wrap-around (see ``_axis_options``).

Geometry, and what this backend does with it:

* **Lengths.**  Every transform length is 5-smooth
  (``scipy.fft.next_fast_len(n, real=True)``).
* **Padding** is never materialised for an untiled input: the unpadded planes
  are transformed at the fast length (zeros at the end, which ``rfft2``'s
  ``s=`` supplies) and the output is read back circularly shifted by the
  top/left padding.  A valid correlation of a pre-padded image (what
  ``convolve2d`` passes) is thus one FFT at a fast length and a crop.
* **Tiling (overlap-save)** bounds memory: when one image's untiled
  spectra outgrow a chunk (256 MiB) or the kernel spectra their cap, output
  tiles of ``th x tw`` read overlapping input windows of ``L1 x L2`` (a fast
  length, ``th = L1 - R + 1``); the windows are strided views of one
  zero-padded copy of the input, batched into the same transforms.  The tile
  is picked by a cost estimate (transforms, products, copies) over all fast
  lengths; batches of images and of tile rows are processed in chunks.
  Below that size whole planes are faster (see ``_plan``), also for inputs
  much larger than the kernel.
* **Groups**: one transform of all input channels; the product kernel reads
  each group's channel slice in place.
* **Dilation**: the kernel is dilated with zeros before its transform.
* **Stride > 1** is served by polyphase decomposition: the padded input and
  the dilated kernel are split into ``sh*sw`` phases that become extra input
  channels, leaving a stride-1 correlation whose output is exactly the
  strided one.  Nothing is computed and thrown away (no stride-1 result is
  subsampled).  The split keeps the channel-sum products of a stride-1
  layer (``sh*sw`` times the channels on planes ``sh*sw`` times smaller)
  for a direct method that does ``sh*sw`` times less work, so it pays only
  while each phase kernel keeps enough taps: ``unsupported`` refuses a
  stride that leaves phase kernels of fewer than :data:`MIN_PHASE_TAPS`
  (49, a 7x7) taps, where a direct method serves better.  Measured on 2
  threads over 220 layers (``benchmarks/fft_vs_im2col.py``: 4 batch and
  channel configurations, images of 64 to 227 pixels, kernels 11 to 31,
  strides 1 to 4), FFT was slower than im2col on 26 of the 165 strided
  shapes it could serve, on 3 of the 99 with 6x6 phase kernels and more
  (up to 1.21x) and on none of the 77 with 7x7 and more; below 7x7 it was
  the fastest of fft, im2col and direct on one shape, by 1.1x.
float32 stays float32 (complex64 spectra); float64 uses complex128.

**Transforms into kept buffers.**  Every fresh multi-megabyte array costs
its page faults on first touch (about 0.5 ms per MB on this machine's VMs).
Untiled inputs therefore go through pocketfft passes that write into
per-thread buffers kept between calls, on every thread
(``fastconv._pocketfft``): the row pass over the planes' own rows, the
column passes in place, the last pass into a kept output plane.  Tiled
inputs still allocate through ``scipy.fft``.

**One plane** (a ``convolve2d`` image) takes its own path (``_layout``): it
is transformed whole unless its spectrum outgrows a chunk (1.6-1.9x faster
than overlap-save tiles at 2048x2048), and the kernel's conjugate spectrum
comes from a cache keyed on its content, so a filter applied to image after
image is transformed once.
"""
import math
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from numpy.lib.stride_tricks import as_strided

from . import apply_epilogue
from .._engines import kernels
from .._pocketfft import irfft2_into, rfft2_padded
from .._transform_cache import TransformCache
from .._workspace import buffer

ENGINES = ("cython", "numba")
STEM = "fft"

# Working memory of one chunk (spectra of inputs and outputs, output planes).
_CHUNK_BYTES = 256 * 2 ** 20
# Kernel spectra larger than this rule a transform length out.
_KERNEL_SPECTRA_BYTES = 1024 * 2 ** 20
# Cost estimate, in ns on one core: per point*log2(points) of a real 2-D
# transform, per complex multiply-add of the channel sum, per element copied.
_NS_FFT = 0.25
_NS_MAC = 0.4
_NS_COPY = 0.3
_NS_CALL = 2000.0
_TILE_PENALTY = 1.25
# Kernel spectra kept between calls (a layer whose weights did not change, a
# filter applied to image after image): keyed on the kernels' content.
_spectra = TransformCache(64, 256 * 2 ** 20)


def _extent(k, d):
    return d * (k - 1) + 1


# Fewest taps a phase kernel of a strided layer may keep (see the module docstring).
MIN_PHASE_TAPS = 49


def unsupported(p):
    """None when the FFT backend serves geometry ``p``, else the reason.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import fft
    >>> p = conv2d_args(np.ones((8, 3, 227, 227)), np.ones((96, 3, 11, 11)), None, 4, 0, 1, 1)[3]
    >>> fft.unsupported(p)
    'stride (4, 4) leaves phase kernels of 3x3 = 9 taps (fewer than 49): FFT does more work there than a direct method (use im2col, direct or auto)'
    """
    if p.stride != (1, 1):
        rq, sq = _phase_kernel(p)
        if rq * sq < MIN_PHASE_TAPS:
            return (f"stride {p.stride} leaves phase kernels of {rq}x{sq} = {rq * sq} taps (fewer than "
                    f"{MIN_PHASE_TAPS}): FFT does more work there than a direct method "
                    f"(use im2col, direct or auto)")
    return None


# --- geometry ----------------------------------------------------------------

def _phase_kernel(p):
    """(rows, columns) of each phase kernel of the polyphase split of ``p``."""
    sh, sw = p.stride
    return -(-_extent(p.R, p.dilation[0]) // sh), -(-_extent(p.S, p.dilation[1]) // sw)


def _dilate(w, dilation):
    dh, dw = dilation
    if (dh, dw) == (1, 1):
        return w
    K, Cg, R, S = w.shape
    wd = np.zeros((K, Cg, _extent(R, dh), _extent(S, dw)), w.dtype)
    wd[:, :, ::dh, ::dw] = w
    return wd


def _polyphase(x, w, p):
    """Rewrite a strided correlation as a stride-1 one over ``sh*sw`` phases.

    ``y[i, j] = sum_{u, v} xp[sh*i + u, sw*j + v] wd[u, v]``; writing
    ``u = sh*u' + a`` gives phase ``(a, b)`` the input ``xp[a::sh, b::sw]`` and
    the kernel ``wd[a::sh, b::sw]``, correlated at stride 1 and summed over
    phases, which is a channel sum.  Channels are ordered (c, phase) so each
    group's channels stay contiguous.
    """
    sh, sw = p.stride
    N, C, H, W = x.shape
    wd = _dilate(w, p.dilation)
    K, Cg, Rd, Sd = wd.shape
    rq, sq = _phase_kernel(p)
    hq, wq = p.OH + rq - 1, p.OW + sq - 1
    pt, _, pl, _ = p.pad
    xp = np.zeros((N, C, hq * sh, wq * sw), x.dtype)
    h1, w1 = min(H, hq * sh - pt), min(W, wq * sw - pl)
    xp[:, :, pt:pt + h1, pl:pl + w1] = x[:, :, :h1, :w1]
    xq = xp.reshape(N, C, hq, sh, wq, sw).transpose(0, 1, 3, 5, 2, 4).reshape(N, C * sh * sw, hq, wq)
    wp = np.zeros((K, Cg, rq * sh, sq * sw), w.dtype)
    wp[:, :, :Rd, :Sd] = wd
    wq_ = wp.reshape(K, Cg, rq, sh, sq, sw).transpose(0, 1, 3, 5, 2, 4).reshape(K, Cg * sh * sw, rq, sq)
    return np.ascontiguousarray(xq), np.ascontiguousarray(wq_)


@lru_cache(maxsize=None)
def _smooth(limit):
    """The 5-smooth numbers up to ``limit``, ascending (pocketfft's fast real lengths)."""
    out = []
    p2 = 1
    while p2 <= limit:
        p3 = p2
        while p3 <= limit:
            p5 = p3
            while p5 <= limit:
                out.append(p5)
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return tuple(sorted(out))


def _axis_options(n, before, after, k):
    """(L, tile) pairs for one axis of ``n`` inputs padded by ``before``/``after``:
    one whole-axis transform, or overlap-save tiles.

    The whole-axis length need not hold the padded axis: the output is read
    back circularly shifted, so the wrap-around only has to land in zeros.
    The top padding wraps into the zeros after the data and the bottom
    padding's reads stay short of the wrap when ``L >= n + max(before,
    after)``: 'same' with a 31-tap kernel on 512 needs 527, not 542 (540
    against 576 after rounding up to a fast length).
    """
    padded = n + before + after
    out_len = padded - k + 1
    full = sfft.next_fast_len(max(n + max(before, after), out_len, k), real=True)
    opts = [(full, out_len)]
    for L in _smooth(full):
        if k <= L < min(full, padded):
            opts.append((L, L - k + 1))
    return opts


def _spectrum_bytes(L1, L2, isz):
    """Bytes of one real plane's spectrum at (L1, L2), ``isz`` the real itemsize."""
    return L1 * (L2 // 2 + 1) * 2 * isz


def _image_bytes(C, K, L1, L2, isz):
    """Working memory of one image untiled: input and product spectra, output planes."""
    return (C + K) * _spectrum_bytes(L1, L2, isz) + K * L1 * L2 * isz


@lru_cache(maxsize=1024)
def _plan(N, C, K, Cg, H, W, pad, Rd, Sd, isz):
    """Choose transform lengths ``(L1, L2)`` and output tiles ``(th, tw)``.

    Whole-axis lengths (no tiles) whenever one image's working set fits a
    chunk and the kernel spectra fit their cap: through kept buffers and
    ``out=`` passes that measured 1.1-3.1x faster than the overlap-save
    tiling this function used to prefer, on every shape tried (2 threads,
    planes of 64 to 1024 with kernels 6 to 31, polyphase ones included).
    Tiles bound memory beyond that; among them, this minimises an estimate
    of the time, all terms spread over the threads: forward and inverse
    transforms of every tile of every image and channel, the kernel
    transforms, the channel-sum products and the copy into the zero-padded
    window buffer.
    """
    L1, th = _axis_options(H, pad[0], pad[1], Rd)[0]
    L2, tw = _axis_options(W, pad[2], pad[3], Sd)[0]
    if (_image_bytes(C, K, L1, L2, isz) <= _CHUNK_BYTES
            and K * Cg * _spectrum_bytes(L1, L2, isz) <= _KERNEL_SPECTRA_BYTES):
        return L1, L2, th, tw
    OH, OW = H + pad[0] + pad[1] - Rd + 1, W + pad[2] + pad[3] - Sd + 1
    best = None
    fallback = None
    for L1, th in _axis_options(H, pad[0], pad[1], Rd):
        t1 = -(-OH // th)
        for L2, tw in _axis_options(W, pad[2], pad[3], Sd):
            t2 = -(-OW // tw)
            T = t1 * t2
            F = L1 * (L2 // 2 + 1)
            fft = _NS_FFT * L1 * L2 * math.log2(max(L1 * L2, 2))
            # Kernels are mostly zeros: the first pass only runs over their Rd rows.
            kfft = _NS_FFT * (Rd * L2 * math.log2(max(L2, 2)) + F * 2 * math.log2(max(L1, 2)))
            cost = T * N * (C + K) * fft + K * Cg * kfft + _NS_MAC * N * T * K * Cg * F
            if T > 1:
                # Strided windows, small-transform call overheads and the copies
                # in and out: measured, tiling pays only when it clearly wins.
                cost = (_TILE_PENALTY * cost + _NS_CALL * T * N * (C + K)
                        + _NS_COPY * N * (C * (t1 * th + Rd) * (t2 * tw + Sd) + 2 * K * OH * OW))
            spectra = K * Cg * _spectrum_bytes(L1, L2, isz)
            if spectra <= _KERNEL_SPECTRA_BYTES and (best is None or cost < best[0]):
                best = (cost, L1, L2, th, tw)
            if fallback is None or spectra < fallback[0]:
                fallback = (spectra, L1, L2, th, tw)
    return best[1:] if best is not None else fallback[1:]


@lru_cache(maxsize=1024)
def _layout(N, C, K, Cg, H, W, pad, Rd, Sd, isz):
    """``(single, L1, L2, th, tw)`` for the stride-1 correlation of ``_correlate``.

    One plane (a ``convolve2d`` image) is transformed whole: through kept
    buffers and ``out=`` passes on every thread it measured 1.6-1.9x faster
    than overlap-save tiles (2048x2048, kernels 15 and 31), whose windows
    need strided copies.  Only a plane whose spectrum outgrows a chunk is tiled.
    """
    if N * C * K == 1:
        L1 = _axis_options(H, pad[0], pad[1], Rd)[0][0]
        L2 = _axis_options(W, pad[2], pad[3], Sd)[0][0]
        if _spectrum_bytes(L1, L2, isz) <= _CHUNK_BYTES:
            return True, L1, L2, L1, L2
    return (False,) + _plan(N, C, K, Cg, H, W, pad, Rd, Sd, isz)


def plan_for(p):
    """How :func:`conv2d` runs geometry ``p``, for the cost model.

    Returns
    -------
    dict
        ``single`` (one plane through kept buffers), the transform lengths
        ``L1, L2``, the number of tiles per plane ``tiles``, and the input
        and kernel channels ``C, Cg`` of the stride-1 correlation (the
        polyphase split multiplies both by the stride's phases).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import fft
    >>> p = conv2d_args(np.ones((1, 1, 512, 512)), np.ones((1, 1, 31, 31)), None, 1, 15, 1, 1)[3]
    >>> fft.plan_for(p)
    {'single': True, 'L1': 540, 'L2': 540, 'tiles': 1, 'C': 1, 'Cg': 1}
    """
    sh, sw = p.stride
    R, S = _phase_kernel(p)
    if (sh, sw) == (1, 1):
        C, Cg, H, W, pad = p.C, p.Cg, p.H, p.W, tuple(p.pad)
    else:
        C, Cg, H, W, pad = p.C * sh * sw, p.Cg * sh * sw, p.OH + R - 1, p.OW + S - 1, (0,) * 4
    single, L1, L2, th, tw = _layout(p.N, C, p.K, Cg, H, W, pad, R, S, np.dtype(p.dtype).itemsize)
    tiles = 1 if single else -(-p.OH // th) * -(-p.OW // tw)
    return {"single": single, "L1": L1, "L2": L2, "tiles": tiles, "C": C, "Cg": Cg}


def workspace_bytes(p):
    """Scratch bytes of a call (an estimate of what its plan allocates): the
    polyphase copy, the kernel spectra and one chunk's spectra and planes."""
    isz = np.dtype(p.dtype).itemsize
    f = plan_for(p)
    L1, L2, C, Cg = f["L1"], f["L2"], f["C"], f["Cg"]
    spec = _spectrum_bytes(L1, L2, isz)
    sh, sw = p.stride
    if f["single"]:
        return 2 * spec + (p.H + L1) * L2 * isz
    poly = 0
    if (sh, sw) != (1, 1):
        rq, sq = _phase_kernel(p)
        poly = 2 * p.N * C * (p.OH + rq - 1) * (p.OW + sq - 1) * isz
    kernels = p.K * Cg * spec
    if f["tiles"] == 1:
        image = _image_bytes(C, p.K, L1, L2, isz) + C * p.H * L2 * isz
        return poly + kernels + max(1, min(p.N, _CHUNK_BYTES // image)) * image
    padded = p.N * C * (p.H + L1) * (p.W + L2) * isz
    return poly + kernels + 2 * _CHUNK_BYTES + padded + p.N * p.K * p.OH * p.OW * isz


def _segments(offset, n, L):
    """Copy plan for ``dst[i] = src[(i - offset) % L]``, i < n <= L: (dst0, src0, length)."""
    start = (-offset) % L
    first = min(n, L - start)
    segs = [(0, start, first)]
    if first < n:
        segs.append((first, 0, n - first))
    return segs


# --- the computation ---------------------------------------------------------

# Points below which a batch of transforms runs on one thread: waking
# pocketfft's pool costs more than it shares out (measured, a column pass
# over (64, 40, 21) complex64: 91 us on one thread, 99 us on two; over
# (28, 128, 65): 425 against 239 us).
_THREADED_POINTS = 2 ** 18


def _workers(planes, points, n_threads):
    """Threads for a batch of ``planes`` 2-D transforms of ``points`` each:
    pocketfft shares out whole planes, splitting a single plane's rows
    measured slower than one thread here, and a small batch does not pay
    for waking the pool."""
    return n_threads if planes > 1 and planes * points >= _THREADED_POINTS else 1


def _kernel_spectra(w, L1, L2, n_threads):
    """rfft2 of the kernels at (L1, L2), as (K, Cg, L1 * (L2//2 + 1)); read-only, cached."""
    def compute():
        K, Cg = w.shape[:2]
        wk = _workers(K * Cg, L1 * L2, n_threads)
        # Transform the R nonzero rows along W first; the padded rows are zeros.
        half = sfft.rfft(w, n=L2, axis=-1, workers=wk)
        spec = sfft.fft(half, n=L1, axis=-2, workers=wk, overwrite_x=True)
        return np.ascontiguousarray(spec).reshape(K, Cg, -1)
    return _spectra.get(w, ("fft", L1, L2), compute)


def _conjugate_spectrum(w, L1, L2, workers):
    """conj(rfft2(w)) of one kernel plane at (L1, L2); read-only, cached."""
    def compute():
        Y = np.empty((L1, L2 // 2 + 1), np.result_type(w.dtype, np.complex64))
        return np.conjugate(rfft2_padded(w, L1, L2, Y, workers), out=Y)
    return _spectra.get(w, ("fft-conj", L1, L2), compute)


def _single_plane(x, w, out, pad, L1, L2, workers):
    """The one-image, one-kernel correlation through kept buffers."""
    ctype = np.result_type(x.dtype, np.complex64)
    Y = rfft2_padded(x, L1, L2, buffer("fft-s", (L1, L2 // 2 + 1), ctype), workers,
                     rows=buffer("fft-rows", (x.shape[0], L2), x.dtype))
    np.multiply(Y, _conjugate_spectrum(w, L1, L2, workers), out=Y)
    yc = irfft2_into(Y, L2, buffer("fft-y", (L1, L2), x.dtype), workers)
    for d0, s0, ln in _segments(pad[0], out.shape[0], L1):
        for e0, t0, lm in _segments(pad[2], out.shape[1], L2):
            out[d0:d0 + ln, e0:e0 + lm] = yc[s0:s0 + ln, t0:t0 + lm]


def _untiled(x, ws, out, pad, L1, L2, groups, mac, n_threads):
    N, C = x.shape[:2]
    K = out.shape[1]
    F2 = L2 // 2 + 1
    nb = max(1, min(N, _CHUNK_BYTES // _image_bytes(C, K, L1, L2, x.dtype.itemsize)))
    rows = _segments(pad[0], out.shape[2], L1)
    cols = _segments(pad[2], out.shape[3], L2)
    ctype = np.result_type(x.dtype, np.complex64)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        m = n1 - n0
        # Kept buffers and out= passes, as for one plane (see the module docstring).
        X = rfft2_padded(x[n0:n1], L1, L2, buffer("fft-s", (m, C, L1, F2), ctype),
                         _workers(m * C, L1 * L2, n_threads),
                         rows=buffer("fft-rows", (m, C, x.shape[2], L2), x.dtype))
        Y = buffer("fft-prod", (m, K, 1, L1 * F2), ctype)
        mac(X.reshape(m, C, 1, L1 * F2), ws, Y, groups, n_threads)
        yc = irfft2_into(Y.reshape(m, K, L1, F2), L2, buffer("fft-y", (m, K, L1, L2), x.dtype),
                         _workers(m * K, L1 * L2, n_threads))
        for d0, s0, ln in rows:
            for e0, t0, lm in cols:
                out[n0:n1, :, d0:d0 + ln, e0:e0 + lm] = yc[:, :, s0:s0 + ln, t0:t0 + lm]


def _tiled(x, ws, pad, OH, OW, L1, L2, th, tw, groups, mac, n_threads):
    N, C, H, W = x.shape
    K = ws.shape[0]
    F2 = L2 // 2 + 1
    t1, t2 = -(-OH // th), -(-OW // tw)
    hb, wb = (t1 - 1) * th + L1, (t2 - 1) * tw + L2
    isz = np.dtype(ws.dtype).itemsize
    per_tile_row = t2 * ((C + K) * L1 * F2 * isz + K * L1 * L2 * isz // 2)
    per_image = t1 * per_tile_row + C * hb * wb * isz // 2
    nb = max(1, min(N, _CHUNK_BYTES // per_image))
    tr = t1 if nb > 1 else max(1, min(t1, _CHUNK_BYTES // per_tile_row))
    pt, pl = pad[0], pad[2]
    outp = np.empty((N, K, t1 * th, t2 * tw), x.dtype)
    for n0 in range(0, N, nb):
        n1 = min(N, n0 + nb)
        xp = np.zeros((n1 - n0, C, hb, wb), x.dtype)
        xp[:, :, pt:pt + H, pl:pl + W] = x[n0:n1]
        s = xp.strides
        for r0 in range(0, t1, tr):
            r1 = min(t1, r0 + tr)
            win = as_strided(xp[:, :, r0 * th:], shape=(n1 - n0, C, r1 - r0, t2, L1, L2),
                             strides=(s[0], s[1], th * s[2], tw * s[3], s[2], s[3]),
                             writeable=False)
            X = np.ascontiguousarray(sfft.rfft2(win, workers=n_threads))
            T = (r1 - r0) * t2
            Y = np.empty((n1 - n0, K, T, L1 * F2), X.dtype)
            mac(X.reshape(n1 - n0, C, T, L1 * F2), ws, Y, groups, n_threads)
            del X
            yc = sfft.irfft2(Y.reshape(n1 - n0, K, r1 - r0, t2, L1, F2), s=(L1, L2),
                             workers=n_threads, overwrite_x=True)
            dst = outp[n0:n1, :, r0 * th:r1 * th].reshape(n1 - n0, K, r1 - r0, th, t2, tw)
            dst[...] = yc[..., :th, :tw].transpose(0, 1, 2, 4, 3, 5)
    if outp.shape[2:] == (OH, OW):
        return outp
    return np.ascontiguousarray(outp[:, :, :OH, :OW])


def _correlate(x, w, pad, groups, engine, n_threads):
    """Stride-1, undilated valid correlation of ``x`` zero-padded by ``pad``."""
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    OH, OW = H + pad[0] + pad[1] - R + 1, W + pad[2] + pad[3] - S + 1
    single, L1, L2, th, tw = _layout(N, C, K, Cg, H, W, tuple(pad), R, S, x.dtype.itemsize)
    if single:
        out = np.empty((1, 1, OH, OW), x.dtype)
        _single_plane(x[0, 0], w[0, 0], out[0, 0], pad, L1, L2, n_threads)
        return out
    ws = _kernel_spectra(w, L1, L2, n_threads)
    mac = kernels(engine, STEM).cmac
    if th >= OH and tw >= OW:
        out = np.empty((N, K, OH, OW), x.dtype)
        _untiled(x, ws, out, pad, L1, L2, groups, mac, n_threads)
        return out
    return _tiled(x, ws, pad, OH, OW, L1, L2, th, tw, groups, mac, n_threads)


def conv2d(x, w, p, engine, n_threads, out=None, epilogue=None):
    """NCHW cross-correlation of ``x`` with ``w`` by FFT (see the module docstring).

    ``out`` (optional, C-contiguous (N, K, OH, OW)) receives a copy of the
    result: the tiled and untiled paths size their own outputs.  A fused
    layer's ``epilogue`` ``(bias, residual, relu)`` follows as numpy passes
    (``fastconv.backends.apply_epilogue``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._validation import conv2d_args
    >>> from fastconv.backends import fft
    >>> x, w, _, p, _ = conv2d_args(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), None,
    ...                             1, 1, 1, 1)
    >>> fft.conv2d(x, w, p, "numba", 1)[0, 0].round(6)
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    """
    if p.stride != (1, 1):
        xq, wq = _polyphase(x, w, p)
        y = _correlate(xq, wq, (0, 0, 0, 0), p.groups, engine, n_threads)
    else:
        y = _correlate(x, _dilate(w, p.dilation), p.pad, p.groups, engine, n_threads)
    if out is not None:
        np.copyto(out, y)
        y = out
    return apply_epilogue(y, epilogue)
