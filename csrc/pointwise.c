/* Channel affine map (eval-mode batch norm, optionally fused with ReLU) and
 * ReLU, one pass over memory each (see pointwise.h for the rules).
 *
 * Both are memory-bound: the point is one read and one write of each element
 * where numpy's path makes two passes, spread over threads.
 *
 * The build passes -ffp-contract=fast, which would fuse x*s + b into one FMA
 * and round once where numpy rounds twice.  So each block of a run is first
 * multiplied into y, then shifted in a second loop while it sits in L1: two
 * loops over memory the compiler cannot merge into one expression, portable
 * across compilers (clang ignores contraction pragmas under
 * -ffp-contract=fast) and free of per-function optimisation attributes.
 * Measured against a single uncontracted loop, one thread: ~4% slower on a
 * 25 MB array (memory-bound, the case that matters), ~30% on a 256 KB one
 * still in L2; larger blocks were slower. */
#include "pointwise.h"

/* Elements per block: 4 KiB of doubles, well inside L1 with its x. */
#define FC_PW_BLOCK 512

/* relu's rule: "v <= 0 ? 0 : v" keeps a NaN (the comparison is false) and
 * maps -0.0 to +0.0, as np.maximum(v, 0) does; it vectorises to a compare
 * and a mask. */
#define FC_PW_RELU(v) ((v) <= 0 ? 0 : (v))

#define FC_POINTWISE_DEF(SUF, T) \
static void affine_run_##SUF(const T *x, T s, T b, T *y, ptrdiff_t n, int relu) \
{ \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FC_PW_BLOCK) { \
        const ptrdiff_t m = n - i0 < FC_PW_BLOCK ? n - i0 : FC_PW_BLOCK; \
        const T *xb = x + i0; \
        T *yb = y + i0; \
        for (ptrdiff_t i = 0; i < m; ++i) yb[i] = xb[i] * s; \
        if (relu) { \
            for (ptrdiff_t i = 0; i < m; ++i) { const T v = yb[i] + b; yb[i] = FC_PW_RELU(v); } \
        } else { \
            for (ptrdiff_t i = 0; i < m; ++i) yb[i] = yb[i] + b; \
        } \
    } \
} \
\
/* L == 1, an (N, C) array: the channel changes every element, so a run is \
 * part of one row, with a scale and a shift per element. */ \
static void affine_row_##SUF(const T *x, const T *FC_RESTRICT s, const T *FC_RESTRICT b, T *y, \
                             ptrdiff_t n, int relu) \
{ \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += FC_PW_BLOCK) { \
        const ptrdiff_t m = n - i0 < FC_PW_BLOCK ? n - i0 : FC_PW_BLOCK; \
        const T *xb = x + i0, *sb = s + i0, *bb = b + i0; \
        T *yb = y + i0; \
        for (ptrdiff_t i = 0; i < m; ++i) yb[i] = xb[i] * sb[i]; \
        if (relu) { \
            for (ptrdiff_t i = 0; i < m; ++i) { const T v = yb[i] + bb[i]; yb[i] = FC_PW_RELU(v); } \
        } else { \
            for (ptrdiff_t i = 0; i < m; ++i) yb[i] = yb[i] + bb[i]; \
        } \
    } \
} \
\
static void FC_NAME(pointwise_channel_affine_##SUF)(const T *x, const T *FC_RESTRICT scale, \
    const T *FC_RESTRICT shift, T *y, ptrdiff_t C, ptrdiff_t L, \
    ptrdiff_t e0, ptrdiff_t e1, int relu) \
{ \
    if (L == 1) { \
        for (ptrdiff_t e = e0; e < e1;) { \
            const ptrdiff_t c = e % C, n = C - c < e1 - e ? C - c : e1 - e; \
            affine_row_##SUF(x + e, scale + c, shift + c, y + e, n, relu); \
            e += n; \
        } \
        return; \
    } \
    ptrdiff_t e = e0, p = e0 / L; \
    while (e < e1) { \
        /* the rest of plane p that lies in the range: one run of one channel */ \
        const ptrdiff_t end = (p + 1) * L < e1 ? (p + 1) * L : e1; \
        const ptrdiff_t c = p % C; \
        affine_run_##SUF(x + e, scale[c], shift[c], y + e, end - e, relu); \
        e = end; \
        ++p; \
    } \
} \
\
static void FC_NAME(pointwise_relu_##SUF)(const T *x, T *y, ptrdiff_t e0, ptrdiff_t e1) \
{ \
    for (ptrdiff_t i = e0; i < e1; ++i) { const T v = x[i]; y[i] = FC_PW_RELU(v); } \
} \
\
static void FC_NAME(pointwise_relu_grad_##SUF)(const T *g, const T *y, T *gx, ptrdiff_t e0, ptrdiff_t e1) \
{ \
    for (ptrdiff_t i = e0; i < e1; ++i) gx[i] = fc_relu_keep_##SUF(g[i], y[i]); \
}

FC_POINTWISE_DEF(f32, float)
FC_POINTWISE_DEF(f64, double)

FC_ISA_TABLE(pointwise) = {
    .isa = FC_ISA_NAME,
    .pointwise_channel_affine_f32 = FC_NAME(pointwise_channel_affine_f32),
    .pointwise_relu_f32 = FC_NAME(pointwise_relu_f32),
    .pointwise_relu_grad_f32 = FC_NAME(pointwise_relu_grad_f32),
    .pointwise_channel_affine_f64 = FC_NAME(pointwise_channel_affine_f64),
    .pointwise_relu_f64 = FC_NAME(pointwise_relu_f64),
    .pointwise_relu_grad_f64 = FC_NAME(pointwise_relu_grad_f64),
};
