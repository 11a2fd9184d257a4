#ifndef FASTCONV_IM2COL_H
#define FASTCONV_IM2COL_H
#include "fc_common.h"

/* The column matrix of a batch tile: row (c*R + r)*S + s, column
 * i*OH*OW + oh*OW + ow holds the tap (c, r, s) of output pixel (oh, ow) of
 * image i,
 *   cols[(c*R + r)*S + s][i*OH*OW + oh*OW + ow]
 *     = x[i][c][oh*sh - pt + r*dh][ow*sw - pl + s*dw]   (0 outside the image),
 * so one GEMM  w (K, C*R*S) @ cols  is the convolution of the whole tile.
 * Rows are ld elements apart (ld >= nb*OH*OW).
 *
 * im2col_rows fills the S rows of one tap row r of one (image, channel)
 * plane x (H x W): cols points at row (c*R + r)*S, column i*OH*OW.
 * ih0 = r*dh - pt is the input row read by output row 0.
 *
 * col2im_plane is its adjoint for one (image, channel) plane: it ADDS every
 * column entry back onto the input pixel it was read from (windows overlap,
 * so the same pixel receives several entries).  cols points at row c*R*S,
 * column i*OH*OW.  One call owns the whole plane, so calls on different
 * planes may run concurrently. */
#define FC_IM2COL_DECL(SUF, T) \
    void (*im2col_rows_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT cols, ptrdiff_t ld, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t S, ptrdiff_t OH, ptrdiff_t OW, \
        ptrdiff_t ih0, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pl, ptrdiff_t dw); \
    void (*col2im_plane_##SUF)(const T *FC_RESTRICT cols, T *FC_RESTRICT x, ptrdiff_t ld, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t R, ptrdiff_t S, ptrdiff_t OH, ptrdiff_t OW, \
        ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_IM2COL_DECL(f32, float)
    FC_IM2COL_DECL(f64, double)
} fc_im2col_kernels;
FC_ISA_TABLES(im2col)
#endif
