#ifndef FASTCONV_DIRECT_H
#define FASTCONV_DIRECT_H
#include "fc_common.h"

/* One output row y[OW] of a cross-correlation read straight from the
 * unpadded input of its group (Cg x H x W): taps that fall in the padding
 * are skipped instead of multiplied by a stored zero, so no padded copy is
 * made.  oh0 = oh*sh - pad_top and ow0 = -pad_left locate the row's window.
 * Summation order c, r, s ascending. */
#define FC_DIRECT_DECL(SUF, T) \
    void direct_conv2d_row_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT w, T *FC_RESTRICT y, \
        ptrdiff_t Cg, ptrdiff_t H, ptrdiff_t W, ptrdiff_t R, ptrdiff_t S, ptrdiff_t OW, \
        ptrdiff_t ih0, ptrdiff_t pl, ptrdiff_t sw, ptrdiff_t dh, ptrdiff_t dw);

FC_DIRECT_DECL(f32, float)
FC_DIRECT_DECL(f64, double)
#endif
