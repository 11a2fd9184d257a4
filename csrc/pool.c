/* Max and average pooling, one plane at a time (see pool.h for the rules).
 *
 * The plane is the unit of parallel work: planes never share inputs, so the
 * backward scatter (+=) needs no atomics. */
#include <math.h>
#include "pool.h"

static inline ptrdiff_t fc_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static inline ptrdiff_t fc_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

/* The divisor of an average window, PyTorch's: the padded extent when
 * count_include_pad, else the number of real input elements. */
static inline ptrdiff_t fc_avg_div(ptrdiff_t h0, ptrdiff_t w0, ptrdiff_t H, ptrdiff_t W,
                                   ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ph, ptrdiff_t pw,
                                   int count_include_pad, ptrdiff_t *hs, ptrdiff_t *he,
                                   ptrdiff_t *ws, ptrdiff_t *we)
{
    ptrdiff_t h1 = fc_min(h0 + kh, H + ph), w1 = fc_min(w0 + kw, W + pw);
    ptrdiff_t padded = (h1 - h0) * (w1 - w0);
    *hs = fc_max(h0, 0); *he = fc_min(h1, H);
    *ws = fc_max(w0, 0); *we = fc_min(w1, W);
    return count_include_pad ? padded : (*he - *hs) * (*we - *ws);
}

/* Outputs of one row handled together by the max-pool kernel. */
#define FC_POOL_CHUNK 256

#define FC_POOL_DEF(SUF, T) \
static void FC_NAME(pool_max_plane_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT y, int64_t *FC_RESTRICT idx, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kh, ptrdiff_t kw, \
    ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw) \
{ \
    /* Taps outer, a row chunk of outputs inner, selects instead of branches: \
     * which tap wins is unpredictable on real activations, and a branch per \
     * tap, mispredicted half the time, cost 6x; the inner loop vectorises. \
     * Each output still sees its taps in window order (rows, then columns), \
     * so ties and NaNs resolve as before (PyTorch's rule). */ \
    T m[FC_POOL_CHUNK]; \
    int64_t mi[FC_POOL_CHUNK]; \
    for (ptrdiff_t oh = 0; oh < OH; ++oh) { \
        ptrdiff_t h0 = oh * sh - ph, h1 = fc_min(h0 + kh, H); \
        h0 = fc_max(h0, 0); \
        for (ptrdiff_t o0 = 0; o0 < OW; o0 += FC_POOL_CHUNK) { \
            const ptrdiff_t n = fc_min(FC_POOL_CHUNK, OW - o0); \
            for (ptrdiff_t j = 0; j < n; ++j) { \
                m[j] = -INFINITY; \
                mi[j] = h0 * W + fc_max((o0 + j) * sw - pw, 0); \
            } \
            /* only taps that land in the row for some output of the chunk: a \
             * window far wider than the image would otherwise walk every tap */ \
            const ptrdiff_t dw0 = fc_max(0, pw - (o0 + n - 1) * sw); \
            const ptrdiff_t dw1 = fc_min(kw, W + pw - o0 * sw); \
            for (ptrdiff_t h = h0; h < h1; ++h) \
                for (ptrdiff_t dw = dw0; dw < dw1; ++dw) { \
                    /* outputs whose tap dw is inside the row: 0 <= ow*sw - pw + dw < W \
                     * (ceiling divisions written so that a huge sw cannot overflow) */ \
                    const ptrdiff_t off = dw - pw; \
                    ptrdiff_t lo = off < 0 ? (-off - 1) / sw + 1 : 0; \
                    ptrdiff_t hi = W - off > 0 ? (W - off - 1) / sw + 1 : 0; \
                    lo = fc_max(lo - o0, 0); \
                    hi = fc_min(hi - o0, n); \
                    const T *xr = x + h * W + o0 * sw + off; \
                    const int64_t base = h * W + o0 * sw + off; \
                    for (ptrdiff_t j = lo; j < hi; ++j) { \
                        const T v = xr[j * sw]; \
                        const int take = (v > m[j]) | (v != v); \
                        m[j] = take ? v : m[j]; \
                        mi[j] = take ? base + j * sw : mi[j]; \
                    } \
                } \
            for (ptrdiff_t j = 0; j < n; ++j) { \
                y[oh * OW + o0 + j] = m[j]; \
                idx[oh * OW + o0 + j] = mi[j]; \
            } \
        } \
    } \
} \
\
static void FC_NAME(pool_max_plane_bwd_##SUF)(const T *FC_RESTRICT gy, const int64_t *FC_RESTRICT idx, \
    T *FC_RESTRICT gx, ptrdiff_t HW, ptrdiff_t OHW) \
{ \
    for (ptrdiff_t i = 0; i < HW; ++i) gx[i] = 0; \
    for (ptrdiff_t i = 0; i < OHW; ++i) gx[idx[i]] += gy[i]; \
} \
\
static void FC_NAME(pool_avg_plane_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT y, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kh, ptrdiff_t kw, \
    ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int count_include_pad) \
{ \
    for (ptrdiff_t oh = 0; oh < OH; ++oh) \
        for (ptrdiff_t ow = 0; ow < OW; ++ow) { \
            ptrdiff_t hs, he, ws, we; \
            ptrdiff_t div = fc_avg_div(oh * sh - ph, ow * sw - pw, H, W, kh, kw, ph, pw, \
                                       count_include_pad, &hs, &he, &ws, &we); \
            T acc = 0; \
            for (ptrdiff_t h = hs; h < he; ++h) \
                for (ptrdiff_t w = ws; w < we; ++w) acc += x[h * W + w]; \
            y[oh * OW + ow] = acc / (T)div; \
        } \
} \
\
static void FC_NAME(pool_avg_plane_bwd_##SUF)(const T *FC_RESTRICT gy, T *FC_RESTRICT gx, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kh, ptrdiff_t kw, \
    ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int count_include_pad) \
{ \
    for (ptrdiff_t i = 0; i < H * W; ++i) gx[i] = 0; \
    for (ptrdiff_t oh = 0; oh < OH; ++oh) \
        for (ptrdiff_t ow = 0; ow < OW; ++ow) { \
            ptrdiff_t hs, he, ws, we; \
            ptrdiff_t div = fc_avg_div(oh * sh - ph, ow * sw - pw, H, W, kh, kw, ph, pw, \
                                       count_include_pad, &hs, &he, &ws, &we); \
            const T g = gy[oh * OW + ow] / (T)div; \
            for (ptrdiff_t h = hs; h < he; ++h) \
                for (ptrdiff_t w = ws; w < we; ++w) gx[h * W + w] += g; \
        } \
}

FC_POOL_DEF(f32, float)
FC_POOL_DEF(f64, double)

FC_ISA_TABLE(pool) = {
    .isa = FC_ISA_NAME,
    .pool_max_plane_f32 = FC_NAME(pool_max_plane_f32),
    .pool_max_plane_bwd_f32 = FC_NAME(pool_max_plane_bwd_f32),
    .pool_avg_plane_f32 = FC_NAME(pool_avg_plane_f32),
    .pool_avg_plane_bwd_f32 = FC_NAME(pool_avg_plane_bwd_f32),
    .pool_max_plane_f64 = FC_NAME(pool_max_plane_f64),
    .pool_max_plane_bwd_f64 = FC_NAME(pool_max_plane_bwd_f64),
    .pool_avg_plane_f64 = FC_NAME(pool_avg_plane_f64),
    .pool_avg_plane_bwd_f64 = FC_NAME(pool_avg_plane_bwd_f64),
};
