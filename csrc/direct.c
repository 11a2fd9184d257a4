/* Direct convolution for few channels per group (depthwise and small groups).
 *
 * With few channels per group, im2col spends most of its time packing and
 * the GEMM is too thin to pay for it; the naive reference pays a padded copy
 * of the input that costs as much as the arithmetic.  This kernel reads the
 * input where it lies and clips each tap's output range to the columns whose
 * input is inside the image, so the inner loop is branch-free and, at
 * stride 1, contiguous. */
#include "direct.h"

static inline ptrdiff_t fc_ceil_div(ptrdiff_t a, ptrdiff_t b) {  /* b > 0 */
    return a >= 0 ? (a + b - 1) / b : -((-a) / b);
}

#define FC_DIRECT_DEF(SUF, T) \
void direct_conv2d_row_##SUF(const T *FC_RESTRICT x, const T *FC_RESTRICT w, T *FC_RESTRICT y, \
    ptrdiff_t Cg, ptrdiff_t H, ptrdiff_t W, ptrdiff_t R, ptrdiff_t S, ptrdiff_t OW, \
    ptrdiff_t ih0, ptrdiff_t pl, ptrdiff_t sw, ptrdiff_t dh, ptrdiff_t dw) \
{ \
    for (ptrdiff_t ow = 0; ow < OW; ++ow) y[ow] = 0; \
    for (ptrdiff_t c = 0; c < Cg; ++c) \
        for (ptrdiff_t r = 0; r < R; ++r) { \
            const ptrdiff_t ih = ih0 + r * dh; \
            if (ih < 0 || ih >= H) continue; \
            const T *xr = x + (c * H + ih) * W; \
            for (ptrdiff_t s = 0; s < S; ++s) { \
                const T wv = w[(c * R + r) * S + s]; \
                const ptrdiff_t off = s * dw - pl;     /* iw = ow*sw + off */ \
                ptrdiff_t lo = off < 0 ? fc_ceil_div(-off, sw) : 0; \
                ptrdiff_t hi = fc_ceil_div(W - off, sw); \
                if (hi > OW) hi = OW; \
                if (sw == 1) { \
                    const T *xs = xr + off; \
                    for (ptrdiff_t ow = lo; ow < hi; ++ow) y[ow] += wv * xs[ow]; \
                } else { \
                    for (ptrdiff_t ow = lo; ow < hi; ++ow) y[ow] += wv * xr[ow * sw + off]; \
                } \
            } \
        } \
}

FC_DIRECT_DEF(f32, float)
FC_DIRECT_DEF(f64, double)
