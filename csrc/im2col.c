/* im2col packing and its adjoint col2im (see im2col.h for the layout).
 *
 * Padding is resolved here, never by a padded copy of the input: for each
 * tap the range of output columns that read inside the image is computed
 * once, so the inner loops are a zero fill, a branch-free copy (a plain
 * contiguous copy when stride is 1, which the compiler vectorises) and a
 * zero fill. */
#include <string.h>
#include "im2col.h"

/* Output columns [lo, hi) read input columns off + ow*sw inside [0, W). */
static inline void fc_valid_range(ptrdiff_t off, ptrdiff_t sw, ptrdiff_t W, ptrdiff_t OW,
                                  ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t a = off >= 0 ? 0 : (-off + sw - 1) / sw;
    ptrdiff_t b = off > W - 1 ? 0 : (W - 1 - off) / sw + 1;
    if (a > OW) a = OW;
    if (b > OW) b = OW;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

#define FC_IM2COL_DEF(SUF, T) \
static void FC_NAME(im2col_rows_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT cols, ptrdiff_t ld, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t S, ptrdiff_t OH, ptrdiff_t OW, \
    ptrdiff_t ih0, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pl, ptrdiff_t dw) \
{ \
    for (ptrdiff_t s = 0; s < S; ++s) { \
        T *FC_RESTRICT row = cols + s * ld; \
        const ptrdiff_t off = s * dw - pl; \
        ptrdiff_t lo, hi; \
        fc_valid_range(off, sw, W, OW, &lo, &hi); \
        for (ptrdiff_t oh = 0; oh < OH; ++oh) { \
            T *FC_RESTRICT dst = row + oh * OW; \
            const ptrdiff_t ih = ih0 + oh * sh; \
            if (ih < 0 || ih >= H) { \
                memset(dst, 0, (size_t)OW * sizeof(T)); \
                continue; \
            } \
            /* src is the pixel read by column lo; pointing it at column 0 \
             * could fall before the array when off < 0. */ \
            const T *FC_RESTRICT src = x + ih * W + off + lo * sw; \
            for (ptrdiff_t ow = 0; ow < lo; ++ow) dst[ow] = 0; \
            if (sw == 1) { \
                memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof(T)); \
            } else { \
                for (ptrdiff_t ow = lo; ow < hi; ++ow) dst[ow] = src[(ow - lo) * sw]; \
            } \
            for (ptrdiff_t ow = hi; ow < OW; ++ow) dst[ow] = 0; \
        } \
    } \
} \
\
static void FC_NAME(col2im_plane_##SUF)(const T *FC_RESTRICT cols, T *FC_RESTRICT x, ptrdiff_t ld, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t R, ptrdiff_t S, ptrdiff_t OH, ptrdiff_t OW, \
    ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t pt, ptrdiff_t pl, ptrdiff_t dh, ptrdiff_t dw) \
{ \
    for (ptrdiff_t r = 0; r < R; ++r) \
        for (ptrdiff_t s = 0; s < S; ++s) { \
            const T *FC_RESTRICT row = cols + (r * S + s) * ld; \
            const ptrdiff_t off = s * dw - pl; \
            ptrdiff_t lo, hi; \
            fc_valid_range(off, sw, W, OW, &lo, &hi); \
            for (ptrdiff_t oh = 0; oh < OH; ++oh) { \
                const ptrdiff_t ih = oh * sh - pt + r * dh; \
                if (ih < 0 || ih >= H) continue; \
                const T *FC_RESTRICT src = row + oh * OW + lo; \
                T *FC_RESTRICT dst = x + ih * W + off + lo * sw; \
                const ptrdiff_t n = hi - lo; \
                if (sw == 1) { \
                    for (ptrdiff_t j = 0; j < n; ++j) dst[j] += src[j]; \
                } else { \
                    for (ptrdiff_t j = 0; j < n; ++j) dst[j * sw] += src[j]; \
                } \
            } \
        } \
}

FC_IM2COL_DEF(f32, float)
FC_IM2COL_DEF(f64, double)

FC_ISA_TABLE(im2col) = {
    .isa = FC_ISA_NAME,
    .im2col_rows_f32 = FC_NAME(im2col_rows_f32),
    .col2im_plane_f32 = FC_NAME(col2im_plane_f32),
    .im2col_rows_f64 = FC_NAME(im2col_rows_f64),
    .col2im_plane_f64 = FC_NAME(col2im_plane_f64),
};
