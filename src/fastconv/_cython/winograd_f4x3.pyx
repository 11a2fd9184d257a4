# cython: boundscheck=False, wraparound=False, cdivision=True
"""Winograd F(4x4,3x3) input and output transforms over the C kernels in
csrc/winograd_f4x3.c, parallel over (channel, chunk of tiles)."""
from cython cimport floating
from cython.parallel cimport prange

from fastconv._cython.epilogue cimport array4_or_null, vector_or_null
from fastconv._isa import attach

cdef extern from "winograd_f4x3.h" nogil:
    enum: WINOGRAD_F4X3_SEG
    ctypedef struct fc_winograd_f4x3_kernels:
        const char *isa
        void (*winograd_f4x3_input_f32)(const float *x, float *V, Py_ssize_t C, Py_ssize_t H,
                                        Py_ssize_t W, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t pt,
                                        Py_ssize_t pl, Py_ssize_t c, Py_ssize_t t0, Py_ssize_t cs, Py_ssize_t xs,
                                        Py_ssize_t ta, Py_ssize_t tb) noexcept nogil
        void (*winograd_f4x3_input_f64)(const double *x, double *V, Py_ssize_t C, Py_ssize_t H,
                                        Py_ssize_t W, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t pt,
                                        Py_ssize_t pl, Py_ssize_t c, Py_ssize_t t0, Py_ssize_t cs, Py_ssize_t xs,
                                        Py_ssize_t ta, Py_ssize_t tb) noexcept nogil
        void (*winograd_f4x3_output_f32)(const float *M, float *y, Py_ssize_t K, Py_ssize_t OH,
                                         Py_ssize_t OW, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t k,
                                         Py_ssize_t t0, Py_ssize_t cs, Py_ssize_t xs, Py_ssize_t ta,
                                         Py_ssize_t tb,
                                         const float *res, const float *bias, int relu) noexcept nogil
        void (*winograd_f4x3_output_f64)(const double *M, double *y, Py_ssize_t K, Py_ssize_t OH,
                                         Py_ssize_t OW, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t k,
                                         Py_ssize_t t0, Py_ssize_t cs, Py_ssize_t xs, Py_ssize_t ta,
                                         Py_ssize_t tb,
                                         const double *res, const double *bias, int relu) noexcept nogil
    const fc_winograd_f4x3_kernels *fc_winograd_f4x3
    const char *fc_winograd_f4x3_use(int level)

CHUNK = WINOGRAD_F4X3_SEG


def input_transform(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W), unpadded
                    floating[:, :, :] V,              # OUT strided, unit inner stride (36, C, nt)
                    Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t pt, Py_ssize_t pl,
                    Py_ssize_t t0, int n_threads):
    """V[:, c, t - t0] = B^T d B for the tiles t0 .. t0 + nt of every channel c."""
    cdef const fc_winograd_f4x3_kernels *table = fc_winograd_f4x3
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], nt = V.shape[2]
    cdef Py_ssize_t npieces = (nt + WINOGRAD_F4X3_SEG - 1) // WINOGRAD_F4X3_SEG
    cdef Py_ssize_t cs = V.strides[1] // sizeof(floating), xs = V.strides[0] // sizeof(floating)
    cdef Py_ssize_t idx, c, ta, tb
    with nogil:
        for idx in prange(C * npieces, num_threads=n_threads, schedule="static"):
            c = idx // npieces
            ta = t0 + (idx % npieces) * WINOGRAD_F4X3_SEG
            tb = min(ta + WINOGRAD_F4X3_SEG, t0 + nt)
            if floating is float:
                table.winograd_f4x3_input_f32(&x[0, 0, 0, 0], &V[0, 0, 0], C, H, W, TH, TW, pt, pl,
                                              c, t0, cs, xs, ta, tb)
            else:
                table.winograd_f4x3_input_f64(&x[0, 0, 0, 0], &V[0, 0, 0], C, H, W, TH, TW, pt, pl,
                                              c, t0, cs, xs, ta, tb)


def output_transform(const floating[:, :, :] M,        # IN  strided, unit inner stride (36, K, nt)
                     floating[:, :, :, ::1] y,         # OUT (N, K, OH, OW)
                     Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t t0, int n_threads,
                     const floating[::1] bias=None,             # IN  (K,) or None
                     const floating[:, :, :, ::1] residual=None, # IN  y's shape, or None
                     bint relu=False):
    """y tiles t0 .. t0 + nt = A^T m A of M, clipped to the output, then
    ``relu((y + residual) + bias[k])`` as each tile is stored, each part when given."""
    cdef const fc_winograd_f4x3_kernels *table = fc_winograd_f4x3
    cdef Py_ssize_t K = y.shape[1], OH = y.shape[2], OW = y.shape[3], nt = M.shape[2]
    cdef Py_ssize_t npieces = (nt + WINOGRAD_F4X3_SEG - 1) // WINOGRAD_F4X3_SEG
    cdef Py_ssize_t cs = M.strides[1] // sizeof(floating), xs = M.strides[0] // sizeof(floating)
    cdef Py_ssize_t idx, k, ta, tb
    cdef const floating *bp = vector_or_null(bias)
    cdef const floating *rp = array4_or_null(residual)
    with nogil:
        for idx in prange(K * npieces, num_threads=n_threads, schedule="static"):
            k = idx // npieces
            ta = t0 + (idx % npieces) * WINOGRAD_F4X3_SEG
            tb = min(ta + WINOGRAD_F4X3_SEG, t0 + nt)
            if floating is float:
                table.winograd_f4x3_output_f32(&M[0, 0, 0], &y[0, 0, 0, 0], K, OH, OW, TH, TW,
                                               k, t0, cs, xs, ta, tb, rp, bp, relu)
            else:
                table.winograd_f4x3_output_f64(&M[0, 0, 0], &y[0, 0, 0, 0], K, OH, OW, TH, TW,
                                               k, t0, cs, xs, ta, tb, rp, bp, relu)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_winograd_f4x3_use(level).decode()


attach("winograd_f4x3", use_isa)
