"""Register-blocked direct convolution, the Numba twin of csrc/direct.c.

Same phase planes, packed weights, blocks and summation order (channel, then
tap, ascending); the block's accumulators are a small local array that LLVM
may or may not keep in registers, so this twin is the slower of the two.
"""
import numpy as np
from numba import njit, prange

from .._threads import numba_threads
from .pointwise import epilogue_arrays, epilogue_value

#: The blocks when the compiled engine is absent (the AVX-512 table of
#: csrc/direct.c); otherwise the backend plans with the compiled engine's
#: active set and this twin follows the block width and lanes it is given.
GEOMETRY = ("numba", 64, ((8, 3), (6, 4), (1, 8)), 4, (4, 5))


@njit(cache=True, nogil=True)
def _pack_plane(x, xq, sh, sw, Hq, Wq, plane, pt, pl):
    H, W = x.shape
    xq[:] = 0
    for a in range(sh):
        for b in range(sw):
            base = (a * sw + b) * plane
            for i in range(Hq):
                ih = i * sh + a - pt
                if ih < 0 or ih >= H:
                    continue
                for j in range(Wq):
                    iw = j * sw + b - pl
                    if 0 <= iw < W:
                        xq[base + i * Wq + j] = x[ih, iw]


@njit(parallel=True, cache=True, nogil=True)
def _conv2d_direct(x, wp, taps, xq, y, sh, sw, pt, pl, Hq, Wq, plane, qb, bias, res, relu):
    N, K, OH, OW = y.shape
    C = x.shape[1]
    G, nkb, CRS, kb = wp.shape
    Cg, Kg, RS = C // G, K // G, taps.shape[0]
    cstride = sh * sw * plane
    zero = y.dtype.type(0)
    for i in prange(N * C):
        _pack_plane(x[i // C, i % C], xq[i], sh, sw, Hq, Wq, plane, pt, pl)
    nq = (OH * Wq + qb - 1) // qb
    xf = xq.ravel()
    for task in prange(N * G * nq * nkb):
        b = task % nkb
        q0 = ((task // nkb) % nq) * qb
        g = (task // (nkb * nq)) % G
        n = task // (nkb * nq * G)
        xb = (n * C + g * Cg) * cstride + q0
        acc = np.zeros((kb, qb), dtype=y.dtype)
        for c in range(Cg):
            xc = xb + c * cstride
            for t in range(RS):
                xs = xc + taps[t]
                for k in range(kb):
                    wv = wp[g, b, c * RS + t, k]
                    for j in range(qb):
                        acc[k, j] += wv * xf[xs + j]
        k0 = g * Kg + b * kb
        kn = min(kb, Kg - b * kb)
        oh, ow = q0 // Wq, q0 % Wq
        for j in range(qb):
            if oh >= OH:
                break
            if ow < OW:
                for k in range(kn):
                    y[n, k0 + k, oh, ow] = epilogue_value(acc[k, j], bias, res, n, k0 + k, oh, ow, relu, zero)
            ow += 1
            if ow == Wq:
                ow = 0
                oh += 1


@njit(parallel=True, cache=True, nogil=True)
def _weight_grad(x, gy, gyq, taps, xq, dw, sh, sw, pt, pl, Hq, Wq, plane, vl, nb):
    N, C = x.shape[0], x.shape[1]
    K, Cg, RS = dw.shape
    Lq = gyq.shape[2]
    OH, OW = gy.shape[2], gy.shape[3]
    G = C // Cg
    Kg = K // G
    for i in prange(N * C):
        _pack_plane(x[i // C, i % C], xq[i], sh, sw, Hq, Wq, plane, pt, pl)
    # gy into the forward's flat layout, zeros in the dropped columns and the tail
    zero = gyq.dtype.type(0)
    for r in prange(N * K):
        row = gyq[r // K, r % K]
        row[:] = zero
        for oh in range(OH):
            row[oh * Wq:oh * Wq + OW] = gy[r // K, r % K, oh]
    xf = xq.ravel()
    cstride = sh * sw * plane
    for task in prange(K * Cg * RS):
        t = task % RS
        c = (task // RS) % Cg
        k = task // (RS * Cg)
        ch = (k // Kg) * Cg + c
        # lanes as the C kernel's vectors: position q adds into lane q % vl,
        # the lanes summed into dw after each chunk of nb images
        s = dw.dtype.type(0)
        lanes = np.zeros(vl, dtype=dw.dtype)
        for n0 in range(0, N, nb):
            lanes[:] = 0
            for n in range(n0, min(n0 + nb, N)):
                xs = (n * C + ch) * cstride + taps[t]
                for q in range(Lq):
                    lanes[q % vl] += gyq[n, k, q] * xf[xs + q]
            part = dw.dtype.type(0)
            for l in range(vl):
                part += lanes[l]
            s = part if n0 == 0 else s + part
        dw[k, c, t] = s


def weight_grad(x, gy, gyq, taps, xq, dw, sh, sw, pt, pl, Hq, Wq, plane, vl, nb, n_threads):
    """dw = the weight gradient of the convolution of x with output gradient gy (N, K, OH, OW),
    laid out in the workspace gyq (N, K, Lq), summed in vl lanes, nb images at a time."""
    if nb < 1:
        raise ValueError(f"direct.weight_grad: nb must be a positive number of images, got {nb}")
    N, K, OH, OW = gy.shape
    if gyq.shape[:2] != (N, K) or OW > Wq or OH * Wq > gyq.shape[2]:
        raise ValueError(f"direct.weight_grad: gy {gy.shape} and gyq {gyq.shape} do not fit "
                         f"Wq={Wq}")
    numba_threads(n_threads)
    _weight_grad(x, gy, gyq, taps, xq, dw, sh, sw, pt, pl, Hq, Wq, plane, vl, nb)


def conv2d_direct(x, wp, taps, xq, y, sh, sw, pt, pl, Hq, Wq, plane, qb, n_threads,
                  bias=None, residual=None, relu=False):
    """y = cross-correlation of x (zero-padded by pt, pl at the top/left) with the packed weights,
    in blocks of qb flat positions, then ``relu((y + residual) + bias[k])`` as each block
    is stored, each part when given."""
    numba_threads(n_threads)
    _conv2d_direct(x, wp, taps, xq, y, sh, sw, pt, pl, Hq, Wq, plane, qb,
                   *epilogue_arrays(y, bias, residual), bool(relu))
