#ifndef FASTCONV_MEDIAN_H
#define FASTCONV_MEDIAN_H
#include "fc_common.h"

/* Median filter of output rows [r0, r1) of an (N, H, W) stack flattened to
 * N*H rows, window kh x kw, rank (kh*kw)/2 of the sorted window (scipy's
 * median_filter, the upper median for even windows).
 *   rmap  H + kh - 1 entries: source row of each padded row, -1 = cval
 *   cmap  W + kw - 1 entries: source column of each padded column, -1 = cval
 * 3x3 and 5x5 use selection networks vectorised along the row; other windows
 * a sliding histogram (uint8) or a sliding sorted window (floats).
 * Returns 0, or -1 when the workspace could not be allocated. */
#define FC_MEDIAN_DECL(SUF, T) \
    int (*median_rows_##SUF)(const T *x, T *out, ptrdiff_t H, ptrdiff_t W, ptrdiff_t r0, \
        ptrdiff_t r1, const int64_t *rmap, const int64_t *cmap, ptrdiff_t kh, ptrdiff_t kw, \
        T cval);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_MEDIAN_DECL(f32, float)
    FC_MEDIAN_DECL(f64, double)
    FC_MEDIAN_DECL(u8, uint8_t)
} fc_median_kernels;
FC_ISA_TABLES(median)
#endif
