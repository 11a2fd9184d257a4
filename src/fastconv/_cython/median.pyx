# cython: boundscheck=False, wraparound=False, cdivision=True
"""Median filter over csrc/median.c, parallel over blocks of rows."""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t

from fastconv._isa import attach

ctypedef fused num:
    float
    double
    uint8_t

cdef extern from "median.h" nogil:
    ctypedef struct fc_median_kernels:
        const char *isa
        int (*median_rows_f32)(const float *x, float *out, Py_ssize_t H, Py_ssize_t W, Py_ssize_t r0,
                               Py_ssize_t r1, const int64_t *rmap, const int64_t *cmap, Py_ssize_t kh,
                               Py_ssize_t kw, float cval) noexcept nogil
        int (*median_rows_f64)(const double *x, double *out, Py_ssize_t H, Py_ssize_t W, Py_ssize_t r0,
                               Py_ssize_t r1, const int64_t *rmap, const int64_t *cmap, Py_ssize_t kh,
                               Py_ssize_t kw, double cval) noexcept nogil
        int (*median_rows_u8)(const uint8_t *x, uint8_t *out, Py_ssize_t H, Py_ssize_t W, Py_ssize_t r0,
                              Py_ssize_t r1, const int64_t *rmap, const int64_t *cmap, Py_ssize_t kh,
                              Py_ssize_t kw, uint8_t cval) noexcept nogil
        int (*median_rank_rows)(const int32_t *rank, int32_t *out, Py_ssize_t Hp, Py_ssize_t Wp,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t kh, Py_ssize_t kw) noexcept nogil
    const fc_median_kernels *fc_median
    const char *fc_median_use(int level)


def median(const num[:, :, ::1] x,        # IN  images (N, H, W)
           num[:, :, ::1] out,            # OUT (N, H, W)
           const int64_t[::1] rmap,       # IN  padded row map, H + kh - 1, -1 = cval
           const int64_t[::1] cmap,       # IN  padded column map, W + kw - 1, -1 = cval
           Py_ssize_t kh, Py_ssize_t kw, num cval, int n_threads):
    """out = the kh x kw median filter of every image of x (rank (kh*kw)//2)."""
    cdef const fc_median_kernels *table = fc_median
    cdef Py_ssize_t N = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t rows = N * H, c, r0, r1
    # A block per thread: each block reuses its padded rows across kh outputs.
    cdef Py_ssize_t n_chunks = max(1, min(n_threads, rows))
    cdef int failed = 0
    if rows * W == 0:
        return
    with nogil:
        for c in prange(n_chunks, num_threads=n_threads, schedule="static"):
            r0 = c * rows // n_chunks
            r1 = (c + 1) * rows // n_chunks
            if num is float:
                failed += table.median_rows_f32(&x[0, 0, 0], &out[0, 0, 0], H, W, r0, r1, &rmap[0],
                                                &cmap[0], kh, kw, cval)
            elif num is double:
                failed += table.median_rows_f64(&x[0, 0, 0], &out[0, 0, 0], H, W, r0, r1, &rmap[0],
                                                &cmap[0], kh, kw, cval)
            else:
                failed += table.median_rows_u8(&x[0, 0, 0], &out[0, 0, 0], H, W, r0, r1, &rmap[0],
                                               &cmap[0], kh, kw, cval)
    if failed:
        raise MemoryError("median: could not allocate the per-thread workspace")


def median_rank(const int32_t[:, ::1] rank,   # IN  padded image as distinct ranks (Hp, Wp)
                int32_t[:, ::1] out,            # OUT the median's rank (Hp - kh + 1, Wp - kw + 1)
                Py_ssize_t kh, Py_ssize_t kw, int n_threads):
    """out = the rank of the kh x kw median of every window of ``rank``."""
    cdef const fc_median_kernels *table = fc_median
    cdef Py_ssize_t Hp = rank.shape[0], Wp = rank.shape[1], rows = out.shape[0], c, r0, r1
    # Blocks of at least kh rows: each block builds its first window from
    # scratch (kh*kw flips), which must stay small beside its rows' steps.
    cdef Py_ssize_t n_chunks = max(1, min(n_threads, rows // max(kh, 1)))
    cdef int failed = 0
    if rows * out.shape[1] == 0:
        return
    with nogil:
        for c in prange(n_chunks, num_threads=n_threads, schedule="static"):
            r0 = c * rows // n_chunks
            r1 = (c + 1) * rows // n_chunks
            failed += table.median_rank_rows(&rank[0, 0], &out[r0, 0], Hp, Wp, r0, r1, kh, kw)
    if failed:
        raise MemoryError("median: could not allocate the per-thread workspace")


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_median_use(level).decode()


attach("median", use_isa)
