/* The tile-independent half of fastconv's Winograd kernels: loading input
 * tiles (padding applied while loading, rows split by column phase), the
 * separable 2-D transforms run across a segment of neighbouring tiles, and
 * storing output tiles (with the epilogue of a fused layer: a residual of
 * y's shape, a bias per output channel and ReLU, each optional, applied as
 * the tile is stored).  Included by csrc/winograd_f<m>x3.c, which first
 * defines the tile: WG_M (outputs per tile side), WG_A (= WG_M + 2), WG_SEG
 * (tiles per segment), the 1-D transforms WG_BT(T, d, o) and WG_AT(T, m, o),
 * and the names WG_INPUT(SUF) / WG_OUTPUT(SUF) of the two functions.
 * FC_WG_DEF(SUF, T) then defines both for one element type. */
#ifndef FASTCONV_WINOGRAD_DRIVER_H
#define FASTCONV_WINOGRAD_DRIVER_H
#include <string.h>

#define FC_WG_DEF(SUF, T) \
static void WG_INPUT(SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT V, ptrdiff_t C, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t TH, ptrdiff_t TW, ptrdiff_t pt, ptrdiff_t pl, \
    ptrdiff_t c, ptrdiff_t t0, ptrdiff_t cs, ptrdiff_t xs, ptrdiff_t ta, ptrdiff_t tb) \
{ \
    T buf[WG_M * (WG_SEG + 1)]; \
    T P[WG_A][WG_M][WG_SEG + 1];      /* input rows, split by column phase */ \
    T Q[WG_A][WG_M][WG_SEG + 1];      /* after the vertical pass */ \
    for (ptrdiff_t t = ta; t < tb;) { \
        const ptrdiff_t n = t / (TH * TW), th = (t / TW) % TH, tw0 = t % TW; \
        ptrdiff_t len = TW - tw0; \
        if (len > tb - t) len = tb - t; \
        if (len > WG_SEG) len = WG_SEG; \
        const ptrdiff_t ih0 = th * WG_M - pt, iw0 = tw0 * WG_M - pl; \
        const ptrdiff_t ncol = WG_M * (len + 1); \
        ptrdiff_t lo = -iw0, hi = W - iw0; \
        /* a segment wholly in the left padding has lo past the buffer: clamp \
         * both ends into [0, ncol] (a padding wider than a segment wrote \
         * zeros past buf, up to the padding's width) */ \
        if (lo < 0) lo = 0; \
        if (lo > ncol) lo = ncol; \
        if (hi > ncol) hi = ncol; \
        if (hi < lo) hi = lo; \
        const T *xc = x + (n * C + c) * H * W; \
        for (ptrdiff_t i = 0; i < WG_A; ++i) { \
            const ptrdiff_t ih = ih0 + i; \
            if (ih < 0 || ih >= H) { \
                memset(buf, 0, sizeof(T) * ncol); \
            } else { \
                const T *row = xc + ih * W + iw0; \
                for (ptrdiff_t j = 0; j < lo; ++j) buf[j] = 0; \
                for (ptrdiff_t j = lo; j < hi; ++j) buf[j] = row[j]; \
                for (ptrdiff_t j = hi; j < ncol; ++j) buf[j] = 0; \
            } \
            for (ptrdiff_t u = 0; u <= len; ++u) \
                for (ptrdiff_t q = 0; q < WG_M; ++q) P[i][q][u] = buf[u * WG_M + q]; \
        } \
        for (ptrdiff_t q = 0; q < WG_M; ++q) \
            for (ptrdiff_t u = 0; u <= len; ++u) { \
                T d[WG_A], o[WG_A]; \
                for (ptrdiff_t i = 0; i < WG_A; ++i) d[i] = P[i][q][u]; \
                WG_BT(T, d, o); \
                for (ptrdiff_t i = 0; i < WG_A; ++i) Q[i][q][u] = o[i]; \
            } \
        T *out = V + c * cs + (t - t0); \
        for (ptrdiff_t i = 0; i < WG_A; ++i) \
            for (ptrdiff_t u = 0; u < len; ++u) { \
                T d[WG_A], o[WG_A]; \
                for (ptrdiff_t k = 0; k < WG_A; ++k) d[k] = Q[i][k % WG_M][u + k / WG_M]; \
                WG_BT(T, d, o); \
                for (ptrdiff_t j = 0; j < WG_A; ++j) out[(i * WG_A + j) * xs + u] = o[j]; \
            } \
        t += len; \
    } \
} \
\
static void WG_OUTPUT(SUF)(const T *FC_RESTRICT M, T *FC_RESTRICT y, ptrdiff_t K, \
    ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, \
    ptrdiff_t k, ptrdiff_t t0, ptrdiff_t cs, ptrdiff_t xs, ptrdiff_t ta, ptrdiff_t tb, \
    const T *FC_RESTRICT res, const T *FC_RESTRICT bias, int relu) \
{ \
    const int epilogue = res || bias || relu; \
    T S[WG_M][WG_A][WG_SEG];          /* after the vertical pass */ \
    T R[WG_M][WG_M * WG_SEG];         /* finished output rows of the segment */ \
    for (ptrdiff_t t = ta; t < tb;) { \
        const ptrdiff_t n = t / (TH * TW), th = (t / TW) % TH, tw0 = t % TW; \
        ptrdiff_t len = TW - tw0; \
        if (len > tb - t) len = tb - t; \
        if (len > WG_SEG) len = WG_SEG; \
        const T *in = M + k * cs + (t - t0); \
        for (ptrdiff_t b = 0; b < WG_A; ++b) \
            for (ptrdiff_t u = 0; u < len; ++u) { \
                T m[WG_A], o[WG_M]; \
                for (ptrdiff_t a = 0; a < WG_A; ++a) m[a] = in[(a * WG_A + b) * xs + u]; \
                WG_AT(T, m, o); \
                for (ptrdiff_t i = 0; i < WG_M; ++i) S[i][b][u] = o[i]; \
            } \
        for (ptrdiff_t i = 0; i < WG_M; ++i) \
            for (ptrdiff_t u = 0; u < len; ++u) { \
                T m[WG_A], o[WG_M]; \
                for (ptrdiff_t b = 0; b < WG_A; ++b) m[b] = S[i][b][u]; \
                WG_AT(T, m, o); \
                for (ptrdiff_t j = 0; j < WG_M; ++j) R[i][u * WG_M + j] = o[j]; \
            } \
        const ptrdiff_t ow0 = tw0 * WG_M; \
        ptrdiff_t ncol = WG_M * len; \
        if (ncol > OW - ow0) ncol = OW - ow0; \
        for (ptrdiff_t i = 0; i < WG_M; ++i) { \
            const ptrdiff_t oh = th * WG_M + i; \
            if (oh >= OH) break; \
            const ptrdiff_t at = ((n * K + k) * OH + oh) * OW + ow0; \
            if (epilogue) \
                fc_epilogue_row_##SUF(y + at, R[i], res ? res + at : NULL, \
                                      bias ? bias + k : NULL, ncol, relu); \
            else \
                memcpy(y + at, R[i], sizeof(T) * ncol); \
        } \
        t += len; \
    } \
}

#endif
