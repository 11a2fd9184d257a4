/* Winograd F(4x4,3x3) transforms (Lavin & Gray), interpolation points
 * 0, 1, -1, 2, -2 and infinity; the matrices are in backends/winograd.py.
 *
 * Both 2-D transforms are separable (B^T d B = rows then columns), and each
 * 1-D pass runs across a whole segment of neighbouring tiles so that the
 * inner loop is over tiles, stride 1, and vectorises.  The one awkward access
 * -- tile u reads columns 4u..4u+5 -- is paid once, by splitting each input
 * row into its 4 column phases (P[q][u] = row[4u + q]) when it is loaded;
 * afterwards tile u's column k is phase k % 4 at index u + k / 4.  Padding
 * is applied while loading, so no padded copy of the input exists. */
#include <string.h>
#include "winograd_f4x3.h"

#define WG_M 4
#define WG_A 6
#define WG_SEG WINOGRAD_F4X3_SEG

/* o = B^T d, sharing the sums the rows have in common. */
#define WG_BT(T, d, o) do { \
    const T t1 = d[4] - 4 * d[2], t2 = d[3] - 4 * d[1]; \
    const T t3 = d[4] - d[2], t4 = 2 * (d[3] - d[1]); \
    o[0] = 4 * d[0] - 5 * d[2] + d[4]; \
    o[1] = t1 + t2; \
    o[2] = t1 - t2; \
    o[3] = t3 + t4; \
    o[4] = t3 - t4; \
    o[5] = 4 * d[1] - 5 * d[3] + d[5]; \
} while (0)

/* o = A^T m (4 of 6). */
#define WG_AT(T, m, o) do { \
    const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4]; \
    o[0] = m[0] + a + c; \
    o[1] = b + 2 * e; \
    o[2] = a + 4 * c; \
    o[3] = b + 8 * e + m[5]; \
} while (0)

#define FC_WG_DEF(SUF, T) \
void winograd_f4x3_input_##SUF(const T *FC_RESTRICT x, T *FC_RESTRICT V, ptrdiff_t C, \
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
        if (lo < 0) lo = 0; \
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
void winograd_f4x3_output_##SUF(const T *FC_RESTRICT M, T *FC_RESTRICT y, ptrdiff_t K, \
    ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, \
    ptrdiff_t k, ptrdiff_t t0, ptrdiff_t cs, ptrdiff_t xs, ptrdiff_t ta, ptrdiff_t tb) \
{ \
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
            memcpy(y + ((n * K + k) * OH + oh) * OW + ow0, R[i], sizeof(T) * ncol); \
        } \
        t += len; \
    } \
}

FC_WG_DEF(f32, float)
FC_WG_DEF(f64, double)
