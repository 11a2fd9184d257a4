# cython: boundscheck=False, wraparound=False, cdivision=True
"""One-pass elementwise maps over the C kernels in csrc/pointwise.c: the
per-channel affine map of eval-mode batch norm (optionally fused with ReLU)
and ReLU.

Same functions and arguments as fastconv._numba.pointwise; see
csrc/pointwise.h for the arithmetic and NaN rules.  Each thread takes one
contiguous range of the flattened array (the work is memory-bound and uniform,
so static, equal ranges balance it).
"""
from cython.parallel cimport prange

from fastconv._cython.ranges cimport range_len
from fastconv._isa import attach

ctypedef fused real:
    float
    double

cdef extern from "pointwise.h" nogil:
    ctypedef struct fc_pointwise_kernels:
        const char *isa
        void (*pointwise_channel_affine_f32)(const float *x, const float *scale, const float *shift,
                                             float *y, Py_ssize_t C, Py_ssize_t L,
                                             Py_ssize_t e0, Py_ssize_t e1, int relu) noexcept nogil
        void (*pointwise_channel_affine_f64)(const double *x, const double *scale, const double *shift,
                                             double *y, Py_ssize_t C, Py_ssize_t L,
                                             Py_ssize_t e0, Py_ssize_t e1, int relu) noexcept nogil
        void (*pointwise_relu_f32)(const float *x, float *y, Py_ssize_t e0, Py_ssize_t e1) noexcept nogil
        void (*pointwise_relu_f64)(const double *x, double *y, Py_ssize_t e0,
                                   Py_ssize_t e1) noexcept nogil
        void (*pointwise_relu_grad_f32)(const float *g, const float *y, float *gx, Py_ssize_t e0,
                                        Py_ssize_t e1) noexcept nogil
        void (*pointwise_relu_grad_f64)(const double *g, const double *y, double *gx, Py_ssize_t e0,
                                        Py_ssize_t e1) noexcept nogil
    const fc_pointwise_kernels *fc_pointwise
    const char *fc_pointwise_use(int level)


def channel_affine(const real[:, :, ::1] x,   # IN  (N, C, L): L = product of trailing dims
                   const real[::1] scale,     # IN  (C,)
                   const real[::1] shift,     # IN  (C,)
                   real[:, :, ::1] y,         # OUT (N, C, L); may be x itself
                   bint relu, int n_threads):
    """y[n, c, :] = x[n, c, :] * scale[c] + shift[c], then max(., 0) when relu."""
    cdef const fc_pointwise_kernels *table = fc_pointwise
    cdef Py_ssize_t C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t total = x.shape[0] * C * L, step, e0, e1
    cdef int k, parts = max(1, n_threads), r = relu
    if total == 0:
        return
    step = range_len(total, parts)
    with nogil:
        for k in prange(parts, num_threads=parts, schedule="static"):
            e0 = k * step
            e1 = min(e0 + step, total)
            if e0 < e1:
                if real is float:
                    table.pointwise_channel_affine_f32(&x[0, 0, 0], &scale[0], &shift[0], &y[0, 0, 0],
                                                       C, L, e0, e1, r)
                else:
                    table.pointwise_channel_affine_f64(&x[0, 0, 0], &scale[0], &shift[0], &y[0, 0, 0],
                                                       C, L, e0, e1, r)


def relu(const real[::1] x,   # IN  flat
         real[::1] y,         # OUT flat, same length; may be x itself
         int n_threads):
    """y = max(x, 0) with np.maximum's NaN rule (a NaN stays a NaN)."""
    cdef const fc_pointwise_kernels *table = fc_pointwise
    cdef Py_ssize_t total = x.shape[0], step, e0, e1
    cdef int k, parts = max(1, n_threads)
    if total == 0:
        return
    step = range_len(total, parts)
    with nogil:
        for k in prange(parts, num_threads=parts, schedule="static"):
            e0 = k * step
            e1 = min(e0 + step, total)
            if e0 < e1:
                if real is float:
                    table.pointwise_relu_f32(&x[0], &y[0], e0, e1)
                else:
                    table.pointwise_relu_f64(&x[0], &y[0], e0, e1)


def relu_grad(const real[::1] g,   # IN  flat output gradient
              const real[::1] y,   # IN  flat output of relu, same length
              real[::1] gx,        # OUT flat, same length; may be g itself
              int n_threads):
    """gx = g where y > 0, else 0 (PyTorch's threshold_backward)."""
    cdef const fc_pointwise_kernels *table = fc_pointwise
    cdef Py_ssize_t total = g.shape[0], step, e0, e1
    cdef int k, parts = max(1, n_threads)
    if y.shape[0] != total or gx.shape[0] != total:
        raise ValueError(f"relu_grad: g, y and gx must have one length, got {total}, "
                         f"{y.shape[0]} and {gx.shape[0]}")
    if total == 0:
        return
    step = range_len(total, parts)
    with nogil:
        for k in prange(parts, num_threads=parts, schedule="static"):
            e0 = k * step
            e1 = min(e0 + step, total)
            if e0 < e1:
                if real is float:
                    table.pointwise_relu_grad_f32(&g[0], &y[0], &gx[0], e0, e1)
                else:
                    table.pointwise_relu_grad_f64(&g[0], &y[0], &gx[0], e0, e1)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_pointwise_use(level).decode()


attach("pointwise", use_isa)
