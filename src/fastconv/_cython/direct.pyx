# cython: boundscheck=False, wraparound=False, cdivision=True
"""Register-blocked direct convolution over csrc/direct.c (layouts in csrc/direct.h).

The geometry (phase planes, taps, packed weights) is laid out once in
fastconv.backends.direct and shared with the Numba twin; this wrapper packs
the input planes and runs the blocks, each stage parallel over OpenMP.
"""
from cython.parallel cimport prange
from libc.string cimport memcpy, memset

from fastconv._cython.epilogue cimport array4_or_null, vector_or_null
from fastconv._isa import attach

ctypedef fused real:
    float
    double

ctypedef void (*block_f32)(const float *, const float *, float *, const Py_ssize_t *, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                           Py_ssize_t, const float *, const float *, int) noexcept nogil
ctypedef void (*block_f64)(const double *, const double *, double *, const Py_ssize_t *, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                           Py_ssize_t, const double *, const double *, int) noexcept nogil

cdef extern from "direct.h" nogil:
    ctypedef struct fc_direct_kernels:
        const char *isa
        int vec_bytes
        int kb[3]
        int nv[3]
        int single_below
        int wgrad_kb
        int wgrad_tb
        void (*direct_pack_input_f32)(const float *x, float *xq, Py_ssize_t H, Py_ssize_t W,
                                      Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t Hq, Py_ssize_t Wq,
                                      Py_ssize_t plane, Py_ssize_t pt, Py_ssize_t pl) noexcept nogil
        void (*direct_pack_input_f64)(const double *x, double *xq, Py_ssize_t H, Py_ssize_t W,
                                      Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t Hq, Py_ssize_t Wq,
                                      Py_ssize_t plane, Py_ssize_t pt, Py_ssize_t pl) noexcept nogil
        block_f32 block_f32[3]
        block_f64 block_f64[3]
        void (*direct_wgrad_f32)(const float *xq, const float *gyq, float *dw, const Py_ssize_t *taps,
                                 Py_ssize_t N, Py_ssize_t x_n, Py_ssize_t gy_n, Py_ssize_t Lq,
                                 Py_ssize_t kn, Py_ssize_t tn, Py_ssize_t dw_k,
                                 int accumulate) noexcept nogil
        void (*direct_wgrad_f64)(const double *xq, const double *gyq, double *dw, const Py_ssize_t *taps,
                                 Py_ssize_t N, Py_ssize_t x_n, Py_ssize_t gy_n, Py_ssize_t Lq,
                                 Py_ssize_t kn, Py_ssize_t tn, Py_ssize_t dw_k,
                                 int accumulate) noexcept nogil
    const fc_direct_kernels *fc_direct
    const char *fc_direct_use(int level)


cdef void _pack(const fc_direct_kernels *table, const real[:, :, :, ::1] x, real[:, ::1] xq,
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t Hq, Py_ssize_t Wq,
                Py_ssize_t plane, int n_threads) noexcept nogil:
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], i
    for i in prange(x.shape[0] * C, num_threads=n_threads, schedule="static"):
        if real is float:
            table.direct_pack_input_f32(&x[i // C, i % C, 0, 0], &xq[i, 0], H, W, sh, sw, Hq, Wq,
            plane, pt, pl)
        else:
            table.direct_pack_input_f64(&x[i // C, i % C, 0, 0], &xq[i, 0], H, W, sh, sw, Hq, Wq,
            plane, pt, pl)


_geometry = None


def geometry():
    """The active set's blocks, csrc/direct.h's table: (isa, vec_bytes,
    ((kb, nv) of blocks A, B and the one-channel block), single_below, (wgrad_kb, wgrad_tb))."""
    return _geometry


cdef int _block_index(const fc_direct_kernels *table, Py_ssize_t kb, Py_ssize_t qb,
                      Py_ssize_t itemsize) except -1:
    cdef int i
    # The layout was planned for one set's blocks; refuse another's (a switch of
    # sets between planning and running) rather than read past the planes.
    for i in range(3):
        if table.kb[i] == kb and table.nv[i] * table.vec_bytes // itemsize == qb:
            return i
    raise ValueError(f"direct: no {kb}-channel block of {qb} positions in the "
                     f"{table.isa.decode()} kernels (layout planned for another instruction set)")


def conv2d_direct(const real[:, :, :, ::1] x,     # IN  (N, C, H, W), unpadded
                  const real[:, :, :, ::1] wp,    # IN  packed weights (G, nkb, Cg*R*S, kb)
                  const Py_ssize_t[::1] taps,     # IN  offset of each tap (R*S,) in a channel's phases
                  real[:, ::1] xq,                # WORK (N*C, sh*sw*plane) phase planes
                  real[:, :, :, ::1] y,           # OUT (N, K, OH, OW)
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                  Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane, Py_ssize_t qb, int n_threads,
                  const real[::1] bias=None,              # IN  (K,) or None
                  const real[:, :, :, ::1] residual=None, # IN  y's shape, or None
                  bint relu=False):
    """y = cross-correlation of x (zero-padded by pt, pl at the top/left) with the packed weights,
    in blocks of qb flat positions, then ``relu((y + residual) + bias[k])`` as each block
    is stored, each part when given."""
    cdef const fc_direct_kernels *table = fc_direct
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t C = x.shape[1]
    cdef Py_ssize_t G = wp.shape[0], nkb = wp.shape[1], kb = wp.shape[3]
    cdef Py_ssize_t Cg = C // G, Kg = K // G, RS = taps.shape[0], cstride = sh * sw * plane
    cdef Py_ssize_t nq = (OH * Wq + qb - 1) // qb
    cdef Py_ssize_t task, n, g, b, q, c0, k0
    # The block kernel for this block shape, picked once, not per task.
    cdef int i = _block_index(table, kb, qb, sizeof(real))
    cdef block_f32 block32 = table.block_f32[i]
    cdef block_f64 block64 = table.block_f64[i]
    cdef const real *bp = vector_or_null(bias)
    cdef const real *rp = array4_or_null(residual)
    cdef const real *bk
    cdef const real *rk
    with nogil:
        _pack(table, x, xq, sh, sw, pt, pl, Hq, Wq, plane, n_threads)
        # Tasks ordered (n, g, q, b): consecutive tasks share their input planes.
        for task in prange(N * G * nq * nkb, num_threads=n_threads, schedule="static"):
            b = task % nkb
            q = (task // nkb) % nq
            g = (task // (nkb * nq)) % G
            n = task // (nkb * nq * G)
            c0 = n * C + g * Cg
            k0 = g * Kg + b * kb
            bk = bp + k0 if bp != NULL else NULL
            rk = rp + (n * K + k0) * OH * OW if rp != NULL else NULL
            if real is float:
                block32(&xq[c0, 0], &wp[g, b, 0, 0], &y[n, k0, 0, 0], &taps[0], Cg, RS, cstride,
                        q * qb, Wq, OH, OW, min(kb, Kg - b * kb), rk, bk, relu)
            else:
                block64(&xq[c0, 0], &wp[g, b, 0, 0], &y[n, k0, 0, 0], &taps[0], Cg, RS, cstride,
                        q * qb, Wq, OH, OW, min(kb, Kg - b * kb), rk, bk, relu)

def weight_grad(const real[:, :, :, ::1] x,     # IN  (N, C, H, W), unpadded
                const real[:, :, :, ::1] gy,    # IN  output gradient (N, K, OH, OW)
                real[:, :, ::1] gyq,            # WORK (N, K, Lq) gy in the flat layout, zero-padded
                const Py_ssize_t[::1] taps,     # IN  offset of each tap (R*S,) in a channel's phases
                real[:, ::1] xq,                # WORK (N*C, sh*sw*plane) phase planes
                real[:, :, ::1] dw,             # OUT (K, Cg, R*S)
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane, Py_ssize_t vl, Py_ssize_t nb,
                int n_threads):
    """dw = the weight gradient of the convolution of x with output gradient gyq, summed in vl
    lanes, nb images at a time."""
    cdef const fc_direct_kernels *table = fc_direct
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], K = dw.shape[0], Cg = dw.shape[1]
    cdef Py_ssize_t RS = taps.shape[0], Lq = gyq.shape[2], G = C // Cg, Kg = K // G
    cdef Py_ssize_t KB = table.wgrad_kb, TB = table.wgrad_tb
    cdef Py_ssize_t nkb = (Kg + KB - 1) // KB, ntb = (RS + TB - 1) // TB
    cdef Py_ssize_t x_n = C * sh * sw * plane, gy_n = K * Lq
    cdef Py_ssize_t OH = gy.shape[2], OW = gy.shape[3]
    cdef Py_ssize_t task, g, b, c, t0, k0, n0, m, r, oh
    cdef real *row
    if vl != table.vec_bytes // <Py_ssize_t>sizeof(real) or Lq % vl:
        raise ValueError(f"direct.weight_grad: lanes vl={vl} and Lq={Lq} do not fit the "
                         f"{table.isa.decode()} vector ({table.vec_bytes} bytes)")
    if nb < 1:
        raise ValueError(f"direct.weight_grad: nb must be a positive number of images, got {nb}")
    if (gy.shape[0] != N or gy.shape[1] != K or gyq.shape[0] != N or gyq.shape[1] != K
            or OW > Wq or OH * Wq > Lq):
        raise ValueError(f"direct.weight_grad: gy ({gy.shape[0]}, {gy.shape[1]}, {OH}, {OW}) and "
                         f"gyq ({gyq.shape[0]}, {gyq.shape[1]}, {Lq}) do not fit N={N}, K={K}, "
                         f"Wq={Wq}")
    with nogil:
        _pack(table, x, xq, sh, sw, pt, pl, Hq, Wq, plane, n_threads)
        # gy into the forward's flat layout: rows of Wq, zeros in the dropped
        # columns and the tail, so those positions add nothing.
        for r in prange(N * K, num_threads=n_threads, schedule="static"):
            row = &gyq[r // K, r % K, 0]
            for oh in range(OH):
                memcpy(row + oh * Wq, &gy[r // K, r % K, oh, 0], OW * sizeof(real))
                memset(row + oh * Wq + OW, 0, (Wq - OW) * sizeof(real))
            memset(row + OH * Wq, 0, (Lq - OH * Wq) * sizeof(real))
        # Chunks of images in turn, every block of the chunk before the next:
        # the chunk's planes stay in cache while all blocks read them.  The
        # block index runs over output-channel blocks fastest, so that each
        # thread's contiguous share reuses one input plane across them.
        n0 = 0
        while n0 < N:
            m = min(nb, N - n0)
            for task in prange(G * Cg * ntb * nkb, num_threads=n_threads, schedule="static"):
                b = task % nkb
                t0 = ((task // nkb) % ntb) * TB
                c = (task // (nkb * ntb)) % Cg
                g = task // (nkb * ntb * Cg)
                k0 = g * Kg + b * KB
                if real is float:
                    table.direct_wgrad_f32(&xq[n0 * C + g * Cg + c, 0], &gyq[n0, k0, 0], &dw[k0, c, t0],
                                           &taps[t0], m, x_n, gy_n, Lq, min(KB, Kg - b * KB),
                                           min(TB, RS - t0), Cg * RS, n0 > 0)
                else:
                    table.direct_wgrad_f64(&xq[n0 * C + g * Cg + c, 0], &gyq[n0, k0, 0], &dw[k0, c, t0],
                                           &taps[t0], m, x_n, gy_n, Lq, min(KB, Kg - b * KB),
                                           min(TB, RS - t0), Cg * RS, n0 > 0)
            n0 += nb


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    global _geometry
    name = fc_direct_use(level).decode()
    cdef const fc_direct_kernels *t = fc_direct
    _geometry = (name, t.vec_bytes, tuple((t.kb[i], t.nv[i]) for i in range(3)),
                 t.single_below, (t.wgrad_kb, t.wgrad_tb))
    return name


attach("direct", use_isa)
