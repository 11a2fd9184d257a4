# cython: boundscheck=False, wraparound=False, cdivision=True
"""Separable filters (mean, Gaussian, Sobel) over csrc/separable.c, parallel over rows."""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc

from fastconv._isa import attach

ctypedef fused num:
    float
    double
    uint8_t

cdef extern from "separable.h" nogil:
    ctypedef struct fc_separable_kernels:
        const char *isa
        void (*separable_row_f32)(const float **rows, float *out, Py_ssize_t W,
                                  const double *wv, Py_ssize_t kv, int symv, double divv,
                                  const double *wh, Py_ssize_t kh, int symh, double divh,
                                  const int64_t *cmap, double cval, double *buf) noexcept nogil
        void (*separable_row_f64)(const double **rows, double *out, Py_ssize_t W,
                                  const double *wv, Py_ssize_t kv, int symv, double divv,
                                  const double *wh, Py_ssize_t kh, int symh, double divh,
                                  const int64_t *cmap, double cval, double *buf) noexcept nogil
        void (*separable_row_u8)(const uint8_t **rows, uint8_t *out, Py_ssize_t W,
                                 const double *wv, Py_ssize_t kv, int symv, double divv,
                                 const double *wh, Py_ssize_t kh, int symh, double divh,
                                 const int64_t *cmap, double cval, double *buf) noexcept nogil
        void (*separable_row_hfirst_f32)(const float **rows, float *out, Py_ssize_t W,
                                         const double *wv, Py_ssize_t kv, int symv, double divv,
                                         const double *wh, Py_ssize_t kh, int symh, double divh,
                                         const int64_t *cmap, double cval, double *buf) noexcept nogil
        void (*separable_row_hfirst_f64)(const double **rows, double *out, Py_ssize_t W,
                                         const double *wv, Py_ssize_t kv, int symv, double divv,
                                         const double *wh, Py_ssize_t kh, int symh, double divh,
                                         const int64_t *cmap, double cval, double *buf) noexcept nogil
        void (*separable_row_hfirst_u8)(const uint8_t **rows, uint8_t *out, Py_ssize_t W,
                                        const double *wv, Py_ssize_t kv, int symv, double divv,
                                        const double *wh, Py_ssize_t kh, int symh, double divh,
                                        const int64_t *cmap, double cval, double *buf) noexcept nogil
    const fc_separable_kernels *fc_separable
    const char *fc_separable_use(int level)


def separable(const num[:, :, ::1] x,         # IN  images (N, H, W)
              num[:, :, ::1] out,             # OUT (N, H, W)
              const int64_t[::1] rmap,        # IN  padded row map, H + kv - 1, -1 = cval row
              const int64_t[::1] cmap,        # IN  padded column map, W + kh - 1, -1 = cval
              const double[::1] wv, int symv, double divv,
              const double[::1] wh, int symh, double divh,
              double cval,
              const num[::1] crow,            # IN  a row of cval (W,) for the vertical pass
              bint hfirst,                    # run the horizontal pass first
              int n_threads):
    """out = horizontal pass of (vertical pass of x), each pass a 1-D correlation.

    sym = 1/-1 marks (anti)symmetric odd weights, computed in scipy's paired
    order; div divides each pass's sum (the mean filter).  With hfirst the
    horizontal pass runs first and the vertical one extends its result.
    """
    cdef const fc_separable_kernels *table = fc_separable
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t kv = wv.shape[0], kh = wh.shape[0]
    cdef Py_ssize_t row, n, i, t
    cdef const num **rows
    cdef double *buf
    if N * H * W == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        rows = <const num **> malloc(kv * sizeof(void *))
        buf = <double *> malloc((W + kh - 1 + (kv + 1) * W) * sizeof(double))
        for row in prange(N * H, schedule="static"):
            n = row // H
            i = row % H
            for t in range(kv):
                if rmap[i + t] < 0:
                    rows[t] = NULL if hfirst else &crow[0]
                else:
                    rows[t] = &x[n, rmap[i + t], 0]
            if hfirst:
                if num is float:
                    table.separable_row_hfirst_f32(rows, &out[n, i, 0], W, &wv[0], kv, symv, divv,
                                                   &wh[0], kh, symh, divh, &cmap[0], cval, buf)
                elif num is double:
                    table.separable_row_hfirst_f64(rows, &out[n, i, 0], W, &wv[0], kv, symv, divv,
                                                   &wh[0], kh, symh, divh, &cmap[0], cval, buf)
                else:
                    table.separable_row_hfirst_u8(rows, &out[n, i, 0], W, &wv[0], kv, symv, divv,
                                                  &wh[0], kh, symh, divh, &cmap[0], cval, buf)
            else:
                if num is float:
                    table.separable_row_f32(rows, &out[n, i, 0], W, &wv[0], kv, symv, divv,
                                            &wh[0], kh, symh, divh, &cmap[0], cval, buf)
                elif num is double:
                    table.separable_row_f64(rows, &out[n, i, 0], W, &wv[0], kv, symv, divv,
                                            &wh[0], kh, symh, divh, &cmap[0], cval, buf)
                else:
                    table.separable_row_u8(rows, &out[n, i, 0], W, &wv[0], kv, symv, divv,
                                           &wh[0], kh, symh, divh, &cmap[0], cval, buf)
        free(rows)
        free(buf)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_separable_use(level).decode()


attach("separable", use_isa)
