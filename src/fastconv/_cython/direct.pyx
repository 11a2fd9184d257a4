# cython: boundscheck=False, wraparound=False, cdivision=True
"""Register-blocked direct convolution over csrc/direct.c (layouts in csrc/direct.h).

The geometry (phase planes, taps, packed weights) is laid out once in
fastconv.backends.direct and shared with the Numba twin; this wrapper packs
the input planes and runs the blocks, each stage parallel over OpenMP.
"""
from cython.parallel cimport prange

ctypedef fused real:
    float
    double

cdef extern from "direct.h" nogil:
    enum:
        FC_DIRECT_QB_K8_f32
        FC_DIRECT_QB_K8_f64
        FC_DIRECT_QB_K6_f32
        FC_DIRECT_QB_K6_f64
        FC_DIRECT_QB_K1_f32
        FC_DIRECT_QB_K1_f64
        FC_DIRECT_WGRAD_KB
        FC_DIRECT_WGRAD_TB
    void direct_pack_input_f32(const float *x, float *xq, Py_ssize_t H, Py_ssize_t W, Py_ssize_t sh,
                               Py_ssize_t sw, Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane,
                               Py_ssize_t pt, Py_ssize_t pl)
    void direct_pack_input_f64(const double *x, double *xq, Py_ssize_t H, Py_ssize_t W, Py_ssize_t sh,
                               Py_ssize_t sw, Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane,
                               Py_ssize_t pt, Py_ssize_t pl)
    void direct_block_k8_f32(const float *xq, const float *wp, float *y, const Py_ssize_t *taps,
                             Py_ssize_t Cg, Py_ssize_t RS, Py_ssize_t cstride, Py_ssize_t q0,
                             Py_ssize_t Wq, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kn)
    void direct_block_k8_f64(const double *xq, const double *wp, double *y, const Py_ssize_t *taps,
                             Py_ssize_t Cg, Py_ssize_t RS, Py_ssize_t cstride, Py_ssize_t q0,
                             Py_ssize_t Wq, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kn)
    void direct_block_k6_f32(const float *xq, const float *wp, float *y, const Py_ssize_t *taps,
                             Py_ssize_t Cg, Py_ssize_t RS, Py_ssize_t cstride, Py_ssize_t q0,
                             Py_ssize_t Wq, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kn)
    void direct_block_k6_f64(const double *xq, const double *wp, double *y, const Py_ssize_t *taps,
                             Py_ssize_t Cg, Py_ssize_t RS, Py_ssize_t cstride, Py_ssize_t q0,
                             Py_ssize_t Wq, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kn)
    void direct_block_k1_f32(const float *xq, const float *wp, float *y, const Py_ssize_t *taps,
                             Py_ssize_t Cg, Py_ssize_t RS, Py_ssize_t cstride, Py_ssize_t q0,
                             Py_ssize_t Wq, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kn)
    void direct_block_k1_f64(const double *xq, const double *wp, double *y, const Py_ssize_t *taps,
                             Py_ssize_t Cg, Py_ssize_t RS, Py_ssize_t cstride, Py_ssize_t q0,
                             Py_ssize_t Wq, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kn)
    void direct_wgrad_f32(const float *xq, const float *gyq, float *dw, const Py_ssize_t *taps,
                          Py_ssize_t N, Py_ssize_t x_n, Py_ssize_t gy_n, Py_ssize_t Lq, Py_ssize_t kn,
                          Py_ssize_t tn, Py_ssize_t dw_k)
    void direct_wgrad_f64(const double *xq, const double *gyq, double *dw, const Py_ssize_t *taps,
                          Py_ssize_t N, Py_ssize_t x_n, Py_ssize_t gy_n, Py_ssize_t Lq, Py_ssize_t kn,
                          Py_ssize_t tn, Py_ssize_t dw_k)


ctypedef void (*block_f32)(const float *, const float *, float *, const Py_ssize_t *, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                           Py_ssize_t) noexcept nogil
ctypedef void (*block_f64)(const double *, const double *, double *, const Py_ssize_t *, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                           Py_ssize_t) noexcept nogil


cdef void _pack(const real[:, :, :, ::1] x, real[:, ::1] xq, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane,
                int n_threads) noexcept nogil:
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], i
    for i in prange(x.shape[0] * C, num_threads=n_threads, schedule="static"):
        if real is float:
            direct_pack_input_f32(&x[i // C, i % C, 0, 0], &xq[i, 0], H, W, sh, sw, Hq, Wq, plane, pt, pl)
        else:
            direct_pack_input_f64(&x[i // C, i % C, 0, 0], &xq[i, 0], H, W, sh, sw, Hq, Wq, plane, pt, pl)


def block_width(Py_ssize_t kb, Py_ssize_t itemsize):
    """Flat output positions per block of ``kb`` (8, 6 or 1) channels, as compiled."""
    if kb == 8:
        return FC_DIRECT_QB_K8_f32 if itemsize == 4 else FC_DIRECT_QB_K8_f64
    if kb == 6:
        return FC_DIRECT_QB_K6_f32 if itemsize == 4 else FC_DIRECT_QB_K6_f64
    return FC_DIRECT_QB_K1_f32 if itemsize == 4 else FC_DIRECT_QB_K1_f64


def conv2d_direct(const real[:, :, :, ::1] x,     # IN  (N, C, H, W), unpadded
                  const real[:, :, :, ::1] wp,    # IN  packed weights (G, nkb, Cg*R*S, kb)
                  const Py_ssize_t[::1] taps,     # IN  offset of each tap (R*S,) in a channel's phases
                  real[:, ::1] xq,                # WORK (N*C, sh*sw*plane) phase planes
                  real[:, :, :, ::1] y,           # OUT (N, K, OH, OW)
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                  Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane, int n_threads):
    """y = cross-correlation of x (zero-padded by pt, pl at the top/left) with the packed weights."""
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t C = x.shape[1]
    cdef Py_ssize_t G = wp.shape[0], nkb = wp.shape[1], kb = wp.shape[3]
    cdef Py_ssize_t Cg = C // G, Kg = K // G, RS = taps.shape[0], cstride = sh * sw * plane
    cdef Py_ssize_t qb = block_width(kb, sizeof(real))
    cdef Py_ssize_t nq = (OH * Wq + qb - 1) // qb
    cdef Py_ssize_t task, n, g, b, q, c0, k0
    # The block kernel for this channel block size, picked once, not per task.
    cdef block_f32 block32 = (direct_block_k8_f32 if kb == 8 else
                              direct_block_k6_f32 if kb == 6 else direct_block_k1_f32)
    cdef block_f64 block64 = (direct_block_k8_f64 if kb == 8 else
                              direct_block_k6_f64 if kb == 6 else direct_block_k1_f64)
    with nogil:
        _pack(x, xq, sh, sw, pt, pl, Hq, Wq, plane, n_threads)
        # Tasks ordered (n, g, q, b): consecutive tasks share their input planes.
        for task in prange(N * G * nq * nkb, num_threads=n_threads, schedule="static"):
            b = task % nkb
            q = (task // nkb) % nq
            g = (task // (nkb * nq)) % G
            n = task // (nkb * nq * G)
            c0 = n * C + g * Cg
            k0 = g * Kg + b * kb
            if real is float:
                block32(&xq[c0, 0], &wp[g, b, 0, 0], &y[n, k0, 0, 0], &taps[0], Cg, RS, cstride,
                        q * qb, Wq, OH, OW, min(kb, Kg - b * kb))
            else:
                block64(&xq[c0, 0], &wp[g, b, 0, 0], &y[n, k0, 0, 0], &taps[0], Cg, RS, cstride,
                        q * qb, Wq, OH, OW, min(kb, Kg - b * kb))

def weight_grad(const real[:, :, :, ::1] x,     # IN  (N, C, H, W), unpadded
                const real[:, :, ::1] gyq,      # IN  output gradient (N, K, Lq), flat, zero-padded
                const Py_ssize_t[::1] taps,     # IN  offset of each tap (R*S,) in a channel's phases
                real[:, ::1] xq,                # WORK (N*C, sh*sw*plane) phase planes
                real[:, :, ::1] dw,             # OUT (K, Cg, R*S)
                Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t plane, int n_threads):
    """dw = the weight gradient of the convolution of x with output gradient gyq."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], K = dw.shape[0], Cg = dw.shape[1]
    cdef Py_ssize_t RS = taps.shape[0], Lq = gyq.shape[2], G = C // Cg, Kg = K // G
    cdef Py_ssize_t KB = FC_DIRECT_WGRAD_KB, TB = FC_DIRECT_WGRAD_TB
    cdef Py_ssize_t nkb = (Kg + KB - 1) // KB, ntb = (RS + TB - 1) // TB
    cdef Py_ssize_t x_n = C * sh * sw * plane, gy_n = K * Lq
    cdef Py_ssize_t task, g, b, c, t0, k0
    with nogil:
        _pack(x, xq, sh, sw, pt, pl, Hq, Wq, plane, n_threads)
        for task in prange(G * nkb * Cg * ntb, num_threads=n_threads, schedule="dynamic"):
            t0 = (task % ntb) * TB
            c = (task // ntb) % Cg
            b = (task // (ntb * Cg)) % nkb
            g = task // (ntb * Cg * nkb)
            k0 = g * Kg + b * KB
            if real is float:
                direct_wgrad_f32(&xq[g * Cg + c, 0], &gyq[0, k0, 0], &dw[k0, c, t0], &taps[t0], N,
                                 x_n, gy_n, Lq, min(KB, Kg - b * KB), min(TB, RS - t0), Cg * RS)
            else:
                direct_wgrad_f64(&xq[g * Cg + c, 0], &gyq[0, k0, 0], &dw[k0, c, t0], &taps[t0], N,
                                 x_n, gy_n, Lq, min(KB, Kg - b * KB), min(TB, RS - t0), Cg * RS)
