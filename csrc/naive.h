#ifndef FASTCONV_NAIVE_H
#define FASTCONV_NAIVE_H
#include "fc_common.h"

/* One output row y[OW] of a direct cross-correlation, the row whose first
 * tap reads input row ih = oh*stride_h:
 *   y[ow] = sum_{c<Cg, r<R, s<S} w[c][r][s] * x[c][ih + r*dh][ow*sw + s*dw]
 * x is the (already padded) input of the row's group, Cg x Hp x Wp.
 * Summation order is c, r, s ascending, the same in every engine. */
#define FC_NAIVE_DECL(SUF, T) \
    void (*naive_conv2d_row_##SUF)(const T *FC_RESTRICT x, const T *FC_RESTRICT w, T *FC_RESTRICT y, \
        ptrdiff_t Cg, ptrdiff_t Hp, ptrdiff_t Wp, ptrdiff_t R, ptrdiff_t S, \
        ptrdiff_t OW, ptrdiff_t ih, ptrdiff_t sw, ptrdiff_t dh, ptrdiff_t dw);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_NAIVE_DECL(f32, float)
    FC_NAIVE_DECL(f64, double)
    FC_NAIVE_DECL(i64, int64_t)
} fc_naive_kernels;
FC_ISA_TABLES(naive)
#endif
