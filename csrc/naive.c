/* The direct convolution, the reference every other backend is tested against.
 *
 * Deliberately plain: the loop nest of the definition, one output row at a
 * time.  The row is the unit so that all R*S*Cg taps accumulate into a few
 * KiB that stay in L1 (a whole plane per tap would stream the output through
 * memory R*S*Cg times), and so that the inner stride-1 loop vectorises.
 * Integer accumulation wraps (the build passes -fwrapv), matching scipy's
 * integer convolve2d bit for bit. */
#include "naive.h"

#define FC_NAIVE_DEF(SUF, T) \
static void FC_NAME(naive_conv2d_row_##SUF)(const T *FC_RESTRICT x, const T *FC_RESTRICT w, T *FC_RESTRICT y, \
    ptrdiff_t Cg, ptrdiff_t Hp, ptrdiff_t Wp, ptrdiff_t R, ptrdiff_t S, \
    ptrdiff_t OW, ptrdiff_t ih, ptrdiff_t sw, ptrdiff_t dh, ptrdiff_t dw) \
{ \
    for (ptrdiff_t ow = 0; ow < OW; ++ow) y[ow] = 0; \
    for (ptrdiff_t c = 0; c < Cg; ++c) \
        for (ptrdiff_t r = 0; r < R; ++r) { \
            const T *xr = x + (c * Hp + ih + r * dh) * Wp; \
            for (ptrdiff_t s = 0; s < S; ++s) { \
                const T wv = w[(c * R + r) * S + s]; \
                const T *xs = xr + s * dw; \
                if (sw == 1) { \
                    for (ptrdiff_t ow = 0; ow < OW; ++ow) y[ow] += wv * xs[ow]; \
                } else { \
                    for (ptrdiff_t ow = 0; ow < OW; ++ow) y[ow] += wv * xs[ow * sw]; \
                } \
            } \
        } \
}

FC_NAIVE_DEF(f32, float)
FC_NAIVE_DEF(f64, double)
FC_NAIVE_DEF(i64, int64_t)

FC_ISA_TABLE(naive) = {
    .isa = FC_ISA_NAME,
    .naive_conv2d_row_f32 = FC_NAME(naive_conv2d_row_f32),
    .naive_conv2d_row_f64 = FC_NAME(naive_conv2d_row_f64),
    .naive_conv2d_row_i64 = FC_NAME(naive_conv2d_row_i64),
};
