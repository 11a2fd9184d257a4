#ifndef FASTCONV_BATCH_NORM_H
#define FASTCONV_BATCH_NORM_H
#include "fc_common.h"

/* Training-mode batch normalisation over x of shape (N, C, L), C-contiguous
 * (L = the product of the trailing dimensions).  Every per-channel sum is
 * accumulated in double, in one fixed order per channel (a channel's planes in
 * order, each plane in FC_BN_LANES interleaved partial sums added at the end),
 * so a result does not depend on the thread count; the caller gives each
 * thread whole channels [c0, c1).
 *
 * batch_norm_stats: mean[c] = sum(x[:, c, :]) / (N L), then
 *     var[c] = sum((x[:, c, :] - mean[c])^2) / (N L)   (biased; two passes,
 *     so a large mean does not cancel the variance away).
 *
 * batch_norm_grad_sums: with g' = g, or when y is not NULL (a fused ReLU
 *     whose output is y) g' = y > 0 ? g : 0,
 *     sum_g[c]  = sum(g'[:, c, :]),
 *     sum_gx[c] = sum(g'[:, c, :] * (x[:, c, :] - mean[c])).
 *
 * batch_norm_grad_input: for e in [e0, e1) of the flat array, channel c,
 *     gx[e] = (g'[e] - (x[e] - mean[c]) * a[c] - b[c]) * k[c],
 *     the input gradient with a = sum_gx invstd^2 / (N L), b = sum_g / (N L),
 *     k = invstd * weight (the caller's per-channel factors).  gx may be g. */
#define FC_BATCH_NORM_DECL(SUF, T) \
    void (*batch_norm_stats_##SUF)(const T *FC_RESTRICT x, ptrdiff_t N, ptrdiff_t C, ptrdiff_t L, \
        ptrdiff_t c0, ptrdiff_t c1, double *FC_RESTRICT mean, double *FC_RESTRICT var); \
    void (*batch_norm_grad_sums_##SUF)(const T *FC_RESTRICT g, const T *FC_RESTRICT y, \
        const T *FC_RESTRICT x, const T *FC_RESTRICT mean, ptrdiff_t N, ptrdiff_t C, ptrdiff_t L, \
        ptrdiff_t c0, ptrdiff_t c1, double *FC_RESTRICT sum_g, double *FC_RESTRICT sum_gx); \
    void (*batch_norm_grad_input_##SUF)(const T *g, const T *FC_RESTRICT y, const T *FC_RESTRICT x, \
        const T *FC_RESTRICT mean, const T *FC_RESTRICT a, const T *FC_RESTRICT b, \
        const T *FC_RESTRICT k, T *gx, ptrdiff_t C, ptrdiff_t L, ptrdiff_t e0, ptrdiff_t e1);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_BATCH_NORM_DECL(f32, float)
    FC_BATCH_NORM_DECL(f64, double)
} fc_batch_norm_kernels;
FC_ISA_TABLES(batch_norm)
#endif
