/* The 1-D passes of mean, Gaussian and Sobel filters, one output row at a time.
 *
 * Every operation is done in the order scipy.ndimage's correlate1d does it
 * (centre tap first, then the symmetric pairs from the outside in) and with
 * no fused multiply-add, so integer outputs, which scipy truncates, come out
 * bit for bit equal to scipy's, and floats to the last bit or so.  The
 * boundary is resolved before the inner loops: vertically by the caller's
 * row pointers, horizontally by padding the one row buffer, so every inner
 * loop is a branch-free stride-1 loop over the row that vectorises. */
#include "separable.h"

/* Contracting a*b+c into an fma would change the rounding that scipy's
 * truncation to integers depends on. */
#pragma GCC optimize("fp-contract=off")

/* Tap t of a pass reads ROW(t)[j]; the vertical pass reads input rows, the
 * horizontal pass the padded buffer shifted by t.  A span of NB outputs keeps
 * its sums in a local array through all taps: with NB a constant of four
 * vector registers' doubles, they live in registers, and each tap costs its
 * row loads alone instead of a load and a store of a row of sums too.  The
 * operations per output are the same, in the same order. */
#define FC_SEP_SPAN (4 * FC_VEC_BYTES / 8)

#define FC_PASS_SPAN(ACC, ROW, K, WT, SYM, DIV, J0, NB) do { \
    const ptrdiff_t s1_ = (K) / 2, j0_ = (J0); \
    double a_[FC_SEP_SPAN]; \
    if ((SYM) != 0) { \
        const double wc_ = (WT)[s1_]; \
        for (ptrdiff_t j = 0; j < (NB); ++j) a_[j] = (double)ROW(s1_)[j0_ + j] * wc_; \
        for (ptrdiff_t t = s1_; t >= 1; --t) { \
            const double wt_ = (WT)[s1_ - t]; \
            if ((SYM) > 0) { \
                for (ptrdiff_t j = 0; j < (NB); ++j) \
                    a_[j] += ((double)ROW(s1_ - t)[j0_ + j] + (double)ROW(s1_ + t)[j0_ + j]) * wt_; \
            } else { \
                for (ptrdiff_t j = 0; j < (NB); ++j) \
                    a_[j] += ((double)ROW(s1_ - t)[j0_ + j] - (double)ROW(s1_ + t)[j0_ + j]) * wt_; \
            } \
        } \
    } else { \
        const double w0_ = (WT)[0]; \
        for (ptrdiff_t j = 0; j < (NB); ++j) a_[j] = (double)ROW(0)[j0_ + j] * w0_; \
        for (ptrdiff_t t = 1; t < (K); ++t) { \
            const double wt_ = (WT)[t]; \
            for (ptrdiff_t j = 0; j < (NB); ++j) a_[j] += (double)ROW(t)[j0_ + j] * wt_; \
        } \
    } \
    if ((DIV) != 1.0) \
        for (ptrdiff_t j = 0; j < (NB); ++j) a_[j] /= (DIV); \
    for (ptrdiff_t j = 0; j < (NB); ++j) (ACC)[j0_ + j] = a_[j]; \
} while (0)

#define FC_PASS(ACC, ROW, K, WT, SYM, DIV, N) do { \
    ptrdiff_t jb_ = 0; \
    for (; jb_ + FC_SEP_SPAN <= (N); jb_ += FC_SEP_SPAN) \
        FC_PASS_SPAN(ACC, ROW, K, WT, SYM, DIV, jb_, FC_SEP_SPAN); \
    if (jb_ < (N)) FC_PASS_SPAN(ACC, ROW, K, WT, SYM, DIV, jb_, (N) - jb_); \
} while (0)

/* Rounding to the element type as a C cast does it: floats round to
 * nearest, uint8 truncates toward zero and wraps (the int64 step keeps the
 * conversion defined for negative values). */
#define FC_CAST_f32(v) ((float)(v))
#define FC_CAST_f64(v) (v)
#define FC_CAST_u8(v) ((uint8_t)(int64_t)(v))

#define FC_VROW(t) rows[t]
#define FC_HROW(t) (pad + (t))

#define FC_SEP_DEF(SUF, T) \
static void FC_NAME(separable_row_##SUF)(const T **rows, T *FC_RESTRICT out, ptrdiff_t W, \
    const double *wv, ptrdiff_t kv, int symv, double divv, \
    const double *wh, ptrdiff_t kh, int symh, double divh, \
    const int64_t *cmap, double cval, double *FC_RESTRICT buf) \
{ \
    const ptrdiff_t lp = kh / 2, Wp = W + kh - 1; \
    double *FC_RESTRICT pad = buf, *FC_RESTRICT mid = buf + lp, *FC_RESTRICT acc = buf + Wp; \
    FC_PASS(mid, FC_VROW, kv, wv, symv, divv, W); \
    for (ptrdiff_t j = 0; j < W; ++j) mid[j] = (double)FC_CAST_##SUF(mid[j]); \
    for (ptrdiff_t p = 0; p < lp; ++p) pad[p] = cmap[p] < 0 ? cval : mid[cmap[p]]; \
    for (ptrdiff_t p = lp + W; p < Wp; ++p) pad[p] = cmap[p] < 0 ? cval : mid[cmap[p]]; \
    FC_PASS(acc, FC_HROW, kh, wh, symh, divh, W); \
    for (ptrdiff_t j = 0; j < W; ++j) out[j] = (T)FC_CAST_##SUF(acc[j]); \
}

/* The same with the horizontal pass first (scipy's Sobel along columns):
 * each of the kv rows the vertical pass needs is padded, filtered and rounded
 * to T; the vertical pass then extends that intermediate image with cval
 * rows (rows[t] == NULL), as scipy extends its intermediate output.
 * buf holds W + kh - 1 + (kv + 1) * W doubles. */
#define FC_SEP_HFIRST_DEF(SUF, T) \
static void FC_NAME(separable_row_hfirst_##SUF)(const T **rows, T *FC_RESTRICT out, ptrdiff_t W, \
    const double *wv, ptrdiff_t kv, int symv, double divv, \
    const double *wh, ptrdiff_t kh, int symh, double divh, \
    const int64_t *cmap, double cval, double *FC_RESTRICT buf) \
{ \
    const ptrdiff_t lp = kh / 2, Wp = W + kh - 1; \
    double *FC_RESTRICT pad = buf, *FC_RESTRICT mid = buf + lp, *FC_RESTRICT inter = buf + Wp; \
    double *FC_RESTRICT acc = inter + kv * W; \
    for (ptrdiff_t t = 0; t < kv; ++t) { \
        if (!rows[t]) continue; \
        const T *src = rows[t]; \
        for (ptrdiff_t j = 0; j < W; ++j) mid[j] = (double)src[j]; \
        for (ptrdiff_t p = 0; p < lp; ++p) pad[p] = cmap[p] < 0 ? cval : mid[cmap[p]]; \
        for (ptrdiff_t p = lp + W; p < Wp; ++p) pad[p] = cmap[p] < 0 ? cval : mid[cmap[p]]; \
        double *dst = inter + t * W; \
        FC_PASS(dst, FC_HROW, kh, wh, symh, divh, W); \
        for (ptrdiff_t j = 0; j < W; ++j) dst[j] = (double)FC_CAST_##SUF(dst[j]); \
    } \
    /* cval rows: a full row of cval in the accumulator's slot */ \
    for (ptrdiff_t t = 0; t < kv; ++t) \
        if (!rows[t]) for (ptrdiff_t j = 0; j < W; ++j) inter[t * W + j] = cval; \
    FC_PASS(acc, FC_DROW, kv, wv, symv, divv, W); \
    for (ptrdiff_t j = 0; j < W; ++j) out[j] = (T)FC_CAST_##SUF(acc[j]); \
}
#define FC_DROW(t) (inter + (t) * W)

FC_SEP_DEF(f32, float)
FC_SEP_DEF(f64, double)
FC_SEP_DEF(u8, uint8_t)
FC_SEP_HFIRST_DEF(f32, float)
FC_SEP_HFIRST_DEF(f64, double)
FC_SEP_HFIRST_DEF(u8, uint8_t)

FC_ISA_TABLE(separable) = {
    .isa = FC_ISA_NAME,
    .separable_row_f32 = FC_NAME(separable_row_f32),
    .separable_row_f64 = FC_NAME(separable_row_f64),
    .separable_row_u8 = FC_NAME(separable_row_u8),
    .separable_row_hfirst_f32 = FC_NAME(separable_row_hfirst_f32),
    .separable_row_hfirst_f64 = FC_NAME(separable_row_hfirst_f64),
    .separable_row_hfirst_u8 = FC_NAME(separable_row_hfirst_u8),
};
