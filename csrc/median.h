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

/* The median of any window over ranks, for windows too large for a sliding
 * sorted window (its memmoves grow with kh*kw per step).
 *   rank  (Hp, Wp) padded image as ranks: every position a distinct rank in
 *         0..M-1 (M = Hp*Wp), the order of the values with ties broken
 *         arbitrarily, so the median rank names the median value.
 *   out   rows [r0, r1) of the (Hp-kh+1, Wp-kw+1) output: the median's rank.
 * The window's ranks live in a bitset with a count per block of 4096 ranks;
 * the walk visits the rows in a snake, so each step flips 2*kh (or 2*kw)
 * bits, and the median is found from the previous one by moving a block
 * pointer and counting bits in one block.  Cost per output: O(kh) plus a
 * block's 64 words, whatever the window's area.
 * Returns 0, or -1 when the workspace could not be allocated. */
#define FC_MEDIAN_RANK_DECL \
    int (*median_rank_rows)(const int32_t *rank, int32_t *out, ptrdiff_t Hp, ptrdiff_t Wp, \
        ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t kh, ptrdiff_t kw);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_MEDIAN_DECL(f32, float)
    FC_MEDIAN_DECL(f64, double)
    FC_MEDIAN_DECL(u8, uint8_t)
    FC_MEDIAN_RANK_DECL
} fc_median_kernels;
FC_ISA_TABLES(median)
#endif
