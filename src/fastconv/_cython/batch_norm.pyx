# cython: boundscheck=False, wraparound=False, cdivision=True
"""Training-mode batch normalisation over the C kernels in csrc/batch_norm.c:
the per-channel statistics of the forward, and the two per-channel sums and
the input gradient of the backward (optionally through a fused ReLU).

Same functions and arguments as fastconv._numba.batch_norm; see
csrc/batch_norm.h for the arithmetic.  The sums split the channels among the
threads, each channel summed by one thread in one order, so that no result
depends on the thread count; the input gradient splits the flat array into
equal ranges of whole cache lines.
"""
from cython.parallel cimport prange

from fastconv._cython.ranges cimport range_len
from fastconv._isa import attach

ctypedef fused real:
    float
    double

cdef extern from "batch_norm.h" nogil:
    ctypedef struct fc_batch_norm_kernels:
        const char *isa
        void (*batch_norm_stats_f32)(const float *x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                                     Py_ssize_t c0, Py_ssize_t c1, double *mean,
                                     double *var) noexcept nogil
        void (*batch_norm_stats_f64)(const double *x, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                                     Py_ssize_t c0, Py_ssize_t c1, double *mean,
                                     double *var) noexcept nogil
        void (*batch_norm_grad_sums_f32)(const float *g, const float *y, const float *x,
                                         const float *mean, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                                         Py_ssize_t c0, Py_ssize_t c1, double *sum_g,
                                         double *sum_gx) noexcept nogil
        void (*batch_norm_grad_sums_f64)(const double *g, const double *y, const double *x,
                                         const double *mean, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                                         Py_ssize_t c0, Py_ssize_t c1, double *sum_g,
                                         double *sum_gx) noexcept nogil
        void (*batch_norm_grad_input_f32)(const float *g, const float *y, const float *x,
                                          const float *mean, const float *a, const float *b,
                                          const float *k, float *gx, Py_ssize_t C, Py_ssize_t L,
                                          Py_ssize_t e0, Py_ssize_t e1) noexcept nogil
        void (*batch_norm_grad_input_f64)(const double *g, const double *y, const double *x,
                                          const double *mean, const double *a, const double *b,
                                          const double *k, double *gx, Py_ssize_t C, Py_ssize_t L,
                                          Py_ssize_t e0, Py_ssize_t e1) noexcept nogil
    const fc_batch_norm_kernels *fc_batch_norm
    const char *fc_batch_norm_use(int level)


def stats(const real[:, :, ::1] x,   # IN  (N, C, L): L = product of trailing dims
          double[::1] mean,          # OUT (C,)
          double[::1] var,           # OUT (C,) biased
          int n_threads):
    """mean[c] and the biased var[c] of x[:, c, :], summed in double."""
    cdef const fc_batch_norm_kernels *table = fc_batch_norm
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c
    if mean.shape[0] != C or var.shape[0] != C:
        raise ValueError(f"batch_norm.stats: mean and var must have {C} elements, "
                         f"got {mean.shape[0]} and {var.shape[0]}")
    if N * L == 0:
        raise ValueError("batch_norm.stats: x has no values per channel")
    with nogil:
        for c in prange(C, num_threads=max(1, n_threads), schedule="static"):
            if real is float:
                table.batch_norm_stats_f32(&x[0, 0, 0], N, C, L, c, c + 1, &mean[0], &var[0])
            else:
                table.batch_norm_stats_f64(&x[0, 0, 0], N, C, L, c, c + 1, &mean[0], &var[0])


def grad_sums(const real[:, :, ::1] g,      # IN  (N, C, L) output gradient
              const real[:, :, ::1] y,      # IN  (N, C, L) output of a fused ReLU, or None
              const real[:, :, ::1] x,      # IN  (N, C, L) the forward's input
              const real[::1] mean,         # IN  (C,) the forward's mean
              double[::1] sum_g,            # OUT (C,)
              double[::1] sum_gx,           # OUT (C,)
              int n_threads):
    """sum_g[c] = sum(g'), sum_gx[c] = sum(g' * (x - mean[c])) over channel c,
    g' = g, or g where y > 0 when y is given."""
    cdef const fc_batch_norm_kernels *table = fc_batch_norm
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c
    cdef const real *yp = NULL
    _check_like(g, "g", x)
    if y is not None:
        _check_like(y, "y", x)
        if N * C * L:
            yp = &y[0, 0, 0]
    if mean.shape[0] != C or sum_g.shape[0] != C or sum_gx.shape[0] != C:
        raise ValueError(f"batch_norm.grad_sums: mean, sum_g and sum_gx must have {C} elements")
    if N * L == 0:
        sum_g[:] = 0
        sum_gx[:] = 0
        return
    with nogil:
        for c in prange(C, num_threads=max(1, n_threads), schedule="static"):
            if real is float:
                table.batch_norm_grad_sums_f32(&g[0, 0, 0], yp, &x[0, 0, 0], &mean[0], N, C, L,
                                               c, c + 1, &sum_g[0], &sum_gx[0])
            else:
                table.batch_norm_grad_sums_f64(&g[0, 0, 0], yp, &x[0, 0, 0], &mean[0], N, C, L,
                                               c, c + 1, &sum_g[0], &sum_gx[0])


def grad_input(const real[:, :, ::1] g,     # IN  (N, C, L) output gradient
               const real[:, :, ::1] y,     # IN  (N, C, L) output of a fused ReLU, or None
               const real[:, :, ::1] x,     # IN  (N, C, L) the forward's input
               const real[::1] mean,        # IN  (C,)
               const real[::1] a,           # IN  (C,) sum_gx * invstd^2 / count
               const real[::1] b,           # IN  (C,) sum_g / count
               const real[::1] k,           # IN  (C,) invstd * weight
               real[:, :, ::1] gx,          # OUT (N, C, L); may be g itself
               int n_threads):
    """gx = (g' - (x - mean[c]) * a[c] - b[c]) * k[c] (csrc/batch_norm.h)."""
    cdef const fc_batch_norm_kernels *table = fc_batch_norm
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t total = N * C * L, step, e0, e1
    cdef int t, parts = max(1, n_threads)
    cdef const real *yp = NULL
    _check_like(g, "g", x)
    _check_like(gx, "gx", x)
    if y is not None:
        _check_like(y, "y", x)
        if total:
            yp = &y[0, 0, 0]
    for v, name in ((mean, "mean"), (a, "a"), (b, "b"), (k, "k")):
        if v.shape[0] != C:
            raise ValueError(f"batch_norm.grad_input: {name} must have {C} elements, got {v.shape[0]}")
    if total == 0:
        return
    step = range_len(total, parts)
    with nogil:
        for t in prange(parts, num_threads=parts, schedule="static"):
            e0 = t * step
            e1 = min(e0 + step, total)
            if e0 < e1:
                if real is float:
                    table.batch_norm_grad_input_f32(&g[0, 0, 0], yp, &x[0, 0, 0], &mean[0], &a[0],
                                                    &b[0], &k[0], &gx[0, 0, 0], C, L, e0, e1)
                else:
                    table.batch_norm_grad_input_f64(&g[0, 0, 0], yp, &x[0, 0, 0], &mean[0], &a[0],
                                                    &b[0], &k[0], &gx[0, 0, 0], C, L, e0, e1)


cdef _check_like(const real[:, :, ::1] a, str name, const real[:, :, ::1] x):
    if a.shape[0] != x.shape[0] or a.shape[1] != x.shape[1] or a.shape[2] != x.shape[2]:
        raise ValueError(f"batch_norm: {name} must have x's shape ({x.shape[0]}, {x.shape[1]}, "
                         f"{x.shape[2]}), got ({a.shape[0]}, {a.shape[1]}, {a.shape[2]})")


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_batch_norm_use(level).decode()


attach("batch_norm", use_isa)
