# cython: boundscheck=False, wraparound=False, cdivision=True
"""Direct convolution without a padded copy (csrc/direct.c), parallel over output rows."""
from cython.parallel cimport prange

ctypedef fused real:
    float
    double

cdef extern from "direct.h" nogil:
    void direct_conv2d_row_f32(const float *x, const float *w, float *y, Py_ssize_t Cg, Py_ssize_t H,
                               Py_ssize_t W, Py_ssize_t R, Py_ssize_t S, Py_ssize_t OW, Py_ssize_t ih0,
                               Py_ssize_t pl, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw)
    void direct_conv2d_row_f64(const double *x, const double *w, double *y, Py_ssize_t Cg, Py_ssize_t H,
                               Py_ssize_t W, Py_ssize_t R, Py_ssize_t S, Py_ssize_t OW, Py_ssize_t ih0,
                               Py_ssize_t pl, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw)


def conv2d_direct(const real[:, :, :, ::1] x,   # IN  input (N, C, H, W), unpadded
                  const real[:, :, :, ::1] w,   # IN  weights (K, Cg, R, S)
                  real[:, :, :, ::1] y,         # OUT (N, K, OH, OW)
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t groups, int n_threads):
    """y = cross-correlation of x, zero-padded by (pt, pl) at the top/left, with w."""
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], R = w.shape[2], S = w.shape[3]
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], Kg = K // groups
    cdef Py_ssize_t row, n, k, oh, c0
    with nogil:
        for row in prange(N * K * OH, num_threads=n_threads, schedule="static"):
            n = row // (K * OH)
            k = (row // OH) % K
            oh = row % OH
            c0 = (k // Kg) * Cg
            if real is float:
                direct_conv2d_row_f32(&x[n, c0, 0, 0], &w[k, 0, 0, 0], &y[n, k, oh, 0],
                                      Cg, H, W, R, S, OW, oh * sh - pt, pl, sw, dh, dw)
            else:
                direct_conv2d_row_f64(&x[n, c0, 0, 0], &w[k, 0, 0, 0], &y[n, k, oh, 0],
                                      Cg, H, W, R, S, OW, oh * sh - pt, pl, sw, dh, dw)
