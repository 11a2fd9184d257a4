# cython: boundscheck=False, wraparound=False, cdivision=True
"""Max and average pooling over the C kernels in csrc/pool.c, parallel over planes.

Arrays are (P, H, W) stacks of planes (P = N*C); see csrc/pool.h for the
window, padding and divisor rules.
"""
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastconv._isa import attach

ctypedef fused real:
    float
    double

cdef extern from "pool.h" nogil:
    ctypedef struct fc_pool_kernels:
        const char *isa
        void (*pool_max_plane_f32)(const float *x, float *y, int64_t *idx, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                                   Py_ssize_t pw) noexcept nogil
        void (*pool_max_plane_f64)(const double *x, double *y, int64_t *idx, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                                   Py_ssize_t pw) noexcept nogil
        void (*pool_max_plane_bwd_f32)(const float *gy, const int64_t *idx, float *gx,
                                       Py_ssize_t HW, Py_ssize_t OHW) noexcept nogil
        void (*pool_max_plane_bwd_f64)(const double *gy, const int64_t *idx, double *gx,
                                       Py_ssize_t HW, Py_ssize_t OHW) noexcept nogil
        void (*pool_avg_plane_f32)(const float *x, float *y, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                   int cip) noexcept nogil
        void (*pool_avg_plane_f64)(const double *x, double *y, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                   int cip) noexcept nogil
        void (*pool_avg_plane_bwd_f32)(const float *gy, float *gx, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                       int cip) noexcept nogil
        void (*pool_avg_plane_bwd_f64)(const double *gy, double *gx, Py_ssize_t H, Py_ssize_t W,
                                       Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                       Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                                       int cip) noexcept nogil
    const fc_pool_kernels *fc_pool
    const char *fc_pool_use(int level)


def max_pool2d_fwd(const real[:, :, ::1] x,      # IN  (P, H, W)
                   real[:, :, ::1] y,            # OUT (P, OH, OW)
                   int64_t[:, :, ::1] idx,       # OUT (P, OH, OW) flat argmax in the plane
                   Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                   Py_ssize_t ph, Py_ssize_t pw, int n_threads):
    """y = max over each window of x, idx = where it was."""
    cdef const fc_pool_kernels *table = fc_pool
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            if real is float:
                table.pool_max_plane_f32(&x[p, 0, 0], &y[p, 0, 0], &idx[p, 0, 0], H, W, OH, OW,
                                         kh, kw, sh, sw, ph, pw)
            else:
                table.pool_max_plane_f64(&x[p, 0, 0], &y[p, 0, 0], &idx[p, 0, 0], H, W, OH, OW,
                                         kh, kw, sh, sw, ph, pw)


def max_pool2d_bwd(const real[:, :, ::1] gy,     # IN  (P, OH, OW)
                   const int64_t[:, :, ::1] idx, # IN  (P, OH, OW) from max_pool2d_fwd
                   real[:, :, ::1] gx,           # OUT (P, H, W)
                   int n_threads):
    """gx = gy scattered (summed) to the argmax of each window."""
    cdef const fc_pool_kernels *table = fc_pool
    cdef Py_ssize_t P = gx.shape[0], HW = gx.shape[1] * gx.shape[2]
    cdef Py_ssize_t OHW = gy.shape[1] * gy.shape[2], p
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            if real is float:
                table.pool_max_plane_bwd_f32(&gy[p, 0, 0], &idx[p, 0, 0], &gx[p, 0, 0], HW, OHW)
            else:
                table.pool_max_plane_bwd_f64(&gy[p, 0, 0], &idx[p, 0, 0], &gx[p, 0, 0], HW, OHW)


def avg_pool2d_fwd(const real[:, :, ::1] x,      # IN  (P, H, W)
                   real[:, :, ::1] y,            # OUT (P, OH, OW)
                   Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                   Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad, int n_threads):
    """y = mean over each window of x (PyTorch's divisor)."""
    cdef const fc_pool_kernels *table = fc_pool
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p
    cdef int cip = count_include_pad
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            if real is float:
                table.pool_avg_plane_f32(&x[p, 0, 0], &y[p, 0, 0], H, W, OH, OW, kh, kw, sh, sw, ph,
                pw, cip)
            else:
                table.pool_avg_plane_f64(&x[p, 0, 0], &y[p, 0, 0], H, W, OH, OW, kh, kw, sh, sw, ph,
                pw, cip)


def avg_pool2d_bwd(const real[:, :, ::1] gy,     # IN  (P, OH, OW)
                   real[:, :, ::1] gx,           # OUT (P, H, W)
                   Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                   Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad, int n_threads):
    """gx = each gy / divisor spread (summed) over its window."""
    cdef const fc_pool_kernels *table = fc_pool
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], p
    cdef int cip = count_include_pad
    with nogil:
        for p in prange(P, num_threads=n_threads, schedule="static"):
            if real is float:
                table.pool_avg_plane_bwd_f32(&gy[p, 0, 0], &gx[p, 0, 0], H, W, OH, OW, kh, kw, sh, sw,
                ph, pw, cip)
            else:
                table.pool_avg_plane_bwd_f64(&gy[p, 0, 0], &gx[p, 0, 0], H, W, OH, OW, kh, kw, sh, sw,
                ph, pw, cip)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_pool_use(level).decode()


attach("pool", use_isa)
