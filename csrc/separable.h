#ifndef FASTCONV_SEPARABLE_H
#define FASTCONV_SEPARABLE_H
#include "fc_common.h"

/* One output row of a separable filter: a vertical 1-D pass, then a
 * horizontal one, computed in double as scipy.ndimage computes them.
 *
 *   rows[t]   the input row read by vertical tap t (t < kv), W elements;
 *             boundary rows already resolved by the caller (a row of cval
 *             for mode='constant').
 *   wv, kv    vertical weights; symv = 1 symmetric, -1 antisymmetric, 0
 *             general (scipy's correlate1d order for each); divv divides
 *             the sum (the mean filter sums, then divides, as scipy does).
 *   cmap      the padded column index map, W + kh - 1 entries: source
 *             column of each padded position, -1 for cval.
 *   buf       workspace of 2*W + kh - 1 doubles.
 * Between the passes the row is rounded to the element type T, as scipy
 * stores the first pass in the output array; integer types truncate
 * toward zero and wrap, as scipy's C casts do. */
#define FC_SEP_DECL(SUF, T) \
    void (*separable_row_##SUF)(const T **rows, T *FC_RESTRICT out, ptrdiff_t W, \
        const double *wv, ptrdiff_t kv, int symv, double divv, \
        const double *wh, ptrdiff_t kh, int symh, double divh, \
        const int64_t *cmap, double cval, double *FC_RESTRICT buf);

/* The same, horizontal pass first (rows[t] == NULL: a cval row of the
 * intermediate image); buf holds W + kh - 1 + (kv + 1) * W doubles. */
#define FC_SEP_HFIRST_DECL(SUF, T) \
    void (*separable_row_hfirst_##SUF)(const T **rows, T *FC_RESTRICT out, ptrdiff_t W, \
        const double *wv, ptrdiff_t kv, int symv, double divv, \
        const double *wh, ptrdiff_t kh, int symh, double divh, \
        const int64_t *cmap, double cval, double *FC_RESTRICT buf);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_SEP_DECL(f32, float)
    FC_SEP_DECL(f64, double)
    FC_SEP_DECL(u8, uint8_t)
    FC_SEP_HFIRST_DECL(f32, float)
    FC_SEP_HFIRST_DECL(f64, double)
    FC_SEP_HFIRST_DECL(u8, uint8_t)
} fc_separable_kernels;
FC_ISA_TABLES(separable)
#endif
