# cython: boundscheck=False, wraparound=False, cdivision=True
"""Direct convolution over the C kernel csrc/naive.c, parallel over output rows."""
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastconv._isa import attach

ctypedef fused num:
    float
    double
    int64_t

cdef extern from "naive.h" nogil:
    ctypedef struct fc_naive_kernels:
        const char *isa
        void (*naive_conv2d_row_f32)(const float *x, const float *w, float *y, Py_ssize_t Cg, Py_ssize_t Hp,
                                     Py_ssize_t Wp, Py_ssize_t R, Py_ssize_t S, Py_ssize_t OW, Py_ssize_t ih,
                                     Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil
        void (*naive_conv2d_row_f64)(const double *x, const double *w, double *y, Py_ssize_t Cg, Py_ssize_t Hp,
                                     Py_ssize_t Wp, Py_ssize_t R, Py_ssize_t S, Py_ssize_t OW, Py_ssize_t ih,
                                     Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil
        void (*naive_conv2d_row_i64)(const int64_t *x, const int64_t *w, int64_t *y, Py_ssize_t Cg, Py_ssize_t Hp,
                                     Py_ssize_t Wp, Py_ssize_t R, Py_ssize_t S, Py_ssize_t OW, Py_ssize_t ih,
                                     Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil
    const fc_naive_kernels *fc_naive
    const char *fc_naive_use(int level)


def conv2d_direct(const num[:, :, :, ::1] xp,   # IN  padded input (N, C, Hp, Wp)
                  const num[:, :, :, ::1] w,    # IN  weights (K, Cg, R, S)
                  num[:, :, :, ::1] y,          # OUT (N, K, OH, OW)
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t groups, int n_threads):
    """y = direct cross-correlation of the padded input xp with w."""
    cdef const fc_naive_kernels *table = fc_naive
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], R = w.shape[2], S = w.shape[3]
    cdef Py_ssize_t Hp = xp.shape[2], Wp = xp.shape[3], Kg = K // groups
    cdef Py_ssize_t row, n, k, oh, c0
    with nogil:
        for row in prange(N * K * OH, num_threads=n_threads, schedule="static"):
            n = row // (K * OH)
            k = (row // OH) % K
            oh = row % OH
            c0 = (k // Kg) * Cg
            if num is float:
                table.naive_conv2d_row_f32(&xp[n, c0, 0, 0], &w[k, 0, 0, 0], &y[n, k, oh, 0],
                                           Cg, Hp, Wp, R, S, OW, oh * sh, sw, dh, dw)
            elif num is double:
                table.naive_conv2d_row_f64(&xp[n, c0, 0, 0], &w[k, 0, 0, 0], &y[n, k, oh, 0],
                                           Cg, Hp, Wp, R, S, OW, oh * sh, sw, dh, dw)
            else:
                table.naive_conv2d_row_i64(&xp[n, c0, 0, 0], &w[k, 0, 0, 0], &y[n, k, oh, 0],
                                           Cg, Hp, Wp, R, S, OW, oh * sh, sw, dh, dw)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_naive_use(level).decode()


attach("naive", use_isa)
