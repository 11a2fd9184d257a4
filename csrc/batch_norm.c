/* Training-mode batch normalisation: per-channel statistics, the two sums of
 * its backward and its input gradient (see batch_norm.h for the arithmetic).
 *
 * numpy's path made about eight passes over the activation forward and nine
 * backward, on one thread, with a temporary per pass: on ResNet-18's training
 * step that was a large share of the time outside the convolutions.  Here the
 * forward reads x twice (the statistics) before pointwise's channel_affine
 * writes y, and the backward reads g, x (and y) twice and writes gx once.
 *
 * The sums go to FC_BN_LANES double accumulators, element i of a plane to
 * lane i % FC_BN_LANES: independent chains the compiler can keep in vector
 * registers without reassociating anything, in an order fixed by the shape. */
#include "batch_norm.h"

#define FC_BN_LANES 8

/* One plane's share of the backward's two sums; RELU is a constant at each
 * use, so each copy compiles without the mask or with it. */
#define FC_BN_SUMS_ROW(SUF, T, GP, YP, XP, RELU) { \
    const T *gp = (GP), *yp = (YP), *xp = (XP); \
    ptrdiff_t i = 0; \
    for (; i + FC_BN_LANES <= L; i += FC_BN_LANES) \
        for (int j = 0; j < FC_BN_LANES; ++j) { \
            const double gv = (double)((RELU) ? fc_relu_keep_##SUF(gp[i + j], yp[i + j]) : gp[i + j]); \
            ag[j] += gv; \
            ax[j] += gv * ((double)xp[i + j] - m); \
        } \
    for (int j = 0; i < L; ++i, ++j) { \
        const double gv = (double)((RELU) ? fc_relu_keep_##SUF(gp[i], yp[i]) : gp[i]); \
        ag[j] += gv; \
        ax[j] += gv * ((double)xp[i] - m); \
    } \
}

#define FC_BATCH_NORM_DEF(SUF, T) \
static void FC_NAME(batch_norm_stats_##SUF)(const T *FC_RESTRICT x, ptrdiff_t N, ptrdiff_t C, \
    ptrdiff_t L, ptrdiff_t c0, ptrdiff_t c1, double *FC_RESTRICT mean, double *FC_RESTRICT var) \
{ \
    const double count = (double)N * (double)L; \
    for (ptrdiff_t c = c0; c < c1; ++c) { \
        double acc[FC_BN_LANES] = {0}, s = 0; \
        for (ptrdiff_t n = 0; n < N; ++n) { \
            const T *xp = x + (n * C + c) * L; \
            ptrdiff_t i = 0; \
            for (; i + FC_BN_LANES <= L; i += FC_BN_LANES) \
                for (int j = 0; j < FC_BN_LANES; ++j) acc[j] += (double)xp[i + j]; \
            for (int j = 0; i < L; ++i, ++j) acc[j] += (double)xp[i]; \
        } \
        for (int j = 0; j < FC_BN_LANES; ++j) s += acc[j]; \
        const double m = s / count; \
        double sq[FC_BN_LANES] = {0}, v = 0; \
        for (ptrdiff_t n = 0; n < N; ++n) { \
            const T *xp = x + (n * C + c) * L; \
            ptrdiff_t i = 0; \
            for (; i + FC_BN_LANES <= L; i += FC_BN_LANES) \
                for (int j = 0; j < FC_BN_LANES; ++j) { \
                    const double d = (double)xp[i + j] - m; \
                    sq[j] += d * d; \
                } \
            for (int j = 0; i < L; ++i, ++j) { const double d = (double)xp[i] - m; sq[j] += d * d; } \
        } \
        for (int j = 0; j < FC_BN_LANES; ++j) v += sq[j]; \
        mean[c] = m; \
        var[c] = v / count; \
    } \
} \
\
static void FC_NAME(batch_norm_grad_sums_##SUF)(const T *FC_RESTRICT g, const T *FC_RESTRICT y, \
    const T *FC_RESTRICT x, const T *FC_RESTRICT mean, ptrdiff_t N, ptrdiff_t C, ptrdiff_t L, \
    ptrdiff_t c0, ptrdiff_t c1, double *FC_RESTRICT sum_g, double *FC_RESTRICT sum_gx) \
{ \
    for (ptrdiff_t c = c0; c < c1; ++c) { \
        double ag[FC_BN_LANES] = {0}, ax[FC_BN_LANES] = {0}, sg = 0, sx = 0; \
        const double m = (double)mean[c]; \
        for (ptrdiff_t n = 0; n < N; ++n) { \
            const ptrdiff_t o = (n * C + c) * L; \
            if (y) FC_BN_SUMS_ROW(SUF, T, g + o, y + o, x + o, 1) \
            else FC_BN_SUMS_ROW(SUF, T, g + o, g + o, x + o, 0) \
        } \
        for (int j = 0; j < FC_BN_LANES; ++j) { sg += ag[j]; sx += ax[j]; } \
        sum_g[c] = sg; \
        sum_gx[c] = sx; \
    } \
} \
\
static void grad_run_##SUF(const T *g, const T *FC_RESTRICT y, const T *FC_RESTRICT x, T m, T a, \
                           T b, T k, T *gx, ptrdiff_t n) \
{ \
    if (y) { \
        for (ptrdiff_t i = 0; i < n; ++i) { \
            const T gv = fc_relu_keep_##SUF(g[i], y[i]); \
            gx[i] = (gv - (x[i] - m) * a - b) * k; \
        } \
    } else { \
        for (ptrdiff_t i = 0; i < n; ++i) gx[i] = (g[i] - (x[i] - m) * a - b) * k; \
    } \
} \
\
static void FC_NAME(batch_norm_grad_input_##SUF)(const T *g, const T *FC_RESTRICT y, \
    const T *FC_RESTRICT x, const T *FC_RESTRICT mean, const T *FC_RESTRICT a, \
    const T *FC_RESTRICT b, const T *FC_RESTRICT k, T *gx, ptrdiff_t C, ptrdiff_t L, \
    ptrdiff_t e0, ptrdiff_t e1) \
{ \
    ptrdiff_t e = e0, p = e0 / L; \
    while (e < e1) { \
        /* the rest of plane p that lies in the range: one run of one channel */ \
        const ptrdiff_t end = (p + 1) * L < e1 ? (p + 1) * L : e1; \
        const ptrdiff_t c = p % C; \
        grad_run_##SUF(g + e, y ? y + e : NULL, x + e, mean[c], a[c], b[c], k[c], gx + e, end - e); \
        e = end; \
        ++p; \
    } \
}

FC_BATCH_NORM_DEF(f32, float)
FC_BATCH_NORM_DEF(f64, double)

FC_ISA_TABLE(batch_norm) = {
    .isa = FC_ISA_NAME,
    .batch_norm_stats_f32 = FC_NAME(batch_norm_stats_f32),
    .batch_norm_grad_sums_f32 = FC_NAME(batch_norm_grad_sums_f32),
    .batch_norm_grad_input_f32 = FC_NAME(batch_norm_grad_input_f32),
    .batch_norm_stats_f64 = FC_NAME(batch_norm_stats_f64),
    .batch_norm_grad_sums_f64 = FC_NAME(batch_norm_grad_sums_f64),
    .batch_norm_grad_input_f64 = FC_NAME(batch_norm_grad_input_f64),
};
