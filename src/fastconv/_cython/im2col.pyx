# cython: boundscheck=False, wraparound=False, cdivision=True
"""im2col packing and its adjoint col2im over the C kernels of csrc/im2col.c.

Same functions and arguments as fastconv._numba.im2col; the layout of the
column matrix is described in csrc/im2col.h.
"""
from cython.parallel cimport prange

from fastconv._isa import attach

ctypedef fused real:
    float
    double

cdef extern from "im2col.h" nogil:
    ctypedef struct fc_im2col_kernels:
        const char *isa
        void (*im2col_rows_f32)(const float *x, float *cols, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t S, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t ih0, Py_ssize_t sh,
                                Py_ssize_t sw, Py_ssize_t pl, Py_ssize_t dw) noexcept nogil
        void (*im2col_rows_f64)(const double *x, double *cols, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t S, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t ih0, Py_ssize_t sh,
                                Py_ssize_t sw, Py_ssize_t pl, Py_ssize_t dw) noexcept nogil
        void (*col2im_plane_f32)(const float *cols, float *x, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t R, Py_ssize_t S, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t sh,
                                 Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                                 Py_ssize_t dw) noexcept nogil
        void (*col2im_plane_f64)(const double *cols, double *x, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t R, Py_ssize_t S, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t sh,
                                 Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
                                 Py_ssize_t dw) noexcept nogil
    const fc_im2col_kernels *fc_im2col
    const char *fc_im2col_use(int level)


def im2col(const real[:, :, :, ::1] x,     # IN  (N, C, H, W), unpadded
           real[:, ::1] cols,              # OUT (Cp*R*S, >= nb*OH*OW)
           Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t c0, Py_ssize_t Cp,
           Py_ssize_t R, Py_ssize_t S, Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
           Py_ssize_t dh, Py_ssize_t dw, int n_threads):
    """Pack images n0..n0+nb-1, channels c0..c0+Cp-1 of x into cols, zero padding included."""
    cdef const fc_im2col_kernels *table = fc_im2col
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], ld = cols.shape[1], L = OH * OW
    cdef Py_ssize_t item, i, c, r
    if nb <= 0 or Cp <= 0 or R <= 0:
        return
    with nogil:
        # (image, channel, tap row) items: enough of them to balance the
        # threads even for a single-channel input.
        for item in prange(nb * Cp * R, num_threads=n_threads, schedule="static"):
            i = item // (Cp * R)
            c = (item // R) % Cp
            r = item % R
            if real is float:
                table.im2col_rows_f32(&x[n0 + i, c0 + c, 0, 0], &cols[(c * R + r) * S, i * L], ld,
                                      H, W, S, OH, OW, r * dh - pt, sh, sw, pl, dw)
            else:
                table.im2col_rows_f64(&x[n0 + i, c0 + c, 0, 0], &cols[(c * R + r) * S, i * L], ld,
                                      H, W, S, OH, OW, r * dh - pt, sh, sw, pl, dw)


def col2im(const real[:, ::1] cols,        # IN  (Cp*R*S, >= nb*OH*OW)
           real[:, :, :, ::1] x,           # IN/OUT (N, C, H, W), accumulated into
           Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t c0, Py_ssize_t Cp,
           Py_ssize_t R, Py_ssize_t S, Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
           Py_ssize_t dh, Py_ssize_t dw, int n_threads):
    """x[n0:n0+nb, c0:c0+Cp] += the adjoint of im2col applied to cols."""
    cdef const fc_im2col_kernels *table = fc_im2col
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], ld = cols.shape[1], L = OH * OW
    cdef Py_ssize_t item, i, c
    if nb <= 0 or Cp <= 0:
        return
    with nogil:
        # One item per (image, channel) plane: all taps that land on a pixel
        # come from the same plane's rows, so items never write the same pixel.
        for item in prange(nb * Cp, num_threads=n_threads, schedule="static"):
            i = item // Cp
            c = item % Cp
            if real is float:
                table.col2im_plane_f32(&cols[c * R * S, i * L], &x[n0 + i, c0 + c, 0, 0], ld,
                                       H, W, R, S, OH, OW, sh, sw, pt, pl, dh, dw)
            else:
                table.col2im_plane_f64(&cols[c * R * S, i * L], &x[n0 + i, c0 + c, 0, 0], ld,
                                       H, W, R, S, OH, OW, sh, sw, pt, pl, dh, dw)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_im2col_use(level).decode()


attach("im2col", use_isa)
