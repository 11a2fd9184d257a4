/* Product-accumulate of spectra for the FFT backend (see fft.h).
 *
 * Plain real arithmetic on interleaved pairs rather than C99 _Complex: without
 * -ffast-math a complex multiply calls __mulsc3 for C99's inf/nan rules, and
 * the explicit form vectorises.  Up to four output channels share each load
 * of x, so the inner loop reads 1 + 4 spectra per 4 products instead of 2 per
 * 1; the caller sizes nf so that the 4 y rows stay in L1 while c runs. */
#include "fft.h"

#define FC_FFT_DEF(SUF, T) \
static inline void cmac1_##SUF(const T *FC_RESTRICT x, ptrdiff_t xcs, const T *FC_RESTRICT w, \
    ptrdiff_t wcs, T *FC_RESTRICT y, ptrdiff_t Cg, ptrdiff_t nf) \
{ \
    for (ptrdiff_t f = 0; f < 2 * nf; ++f) y[f] = 0; \
    for (ptrdiff_t c = 0; c < Cg; ++c) { \
        const T *xc = x + 2 * c * xcs, *wc = w + 2 * c * wcs; \
        for (ptrdiff_t f = 0; f < nf; ++f) { \
            const T xr = xc[2 * f], xi = xc[2 * f + 1]; \
            const T wr = wc[2 * f], wi = wc[2 * f + 1]; \
            y[2 * f] += xr * wr + xi * wi; \
            y[2 * f + 1] += xi * wr - xr * wi; \
        } \
    } \
} \
\
static inline void cmac4_##SUF(const T *FC_RESTRICT x, ptrdiff_t xcs, const T *FC_RESTRICT w, \
    ptrdiff_t wks, ptrdiff_t wcs, T *FC_RESTRICT y, ptrdiff_t yks, ptrdiff_t Cg, ptrdiff_t nf) \
{ \
    T *FC_RESTRICT y0 = y, *FC_RESTRICT y1 = y + 2 * yks; \
    T *FC_RESTRICT y2 = y + 4 * yks, *FC_RESTRICT y3 = y + 6 * yks; \
    for (ptrdiff_t f = 0; f < 2 * nf; ++f) y0[f] = y1[f] = y2[f] = y3[f] = 0; \
    for (ptrdiff_t c = 0; c < Cg; ++c) { \
        const T *FC_RESTRICT xc = x + 2 * c * xcs; \
        const T *FC_RESTRICT w0 = w + 2 * c * wcs, *FC_RESTRICT w1 = w0 + 2 * wks; \
        const T *FC_RESTRICT w2 = w0 + 4 * wks, *FC_RESTRICT w3 = w0 + 6 * wks; \
        for (ptrdiff_t f = 0; f < nf; ++f) { \
            const T xr = xc[2 * f], xi = xc[2 * f + 1]; \
            y0[2 * f] += xr * w0[2 * f] + xi * w0[2 * f + 1]; \
            y0[2 * f + 1] += xi * w0[2 * f] - xr * w0[2 * f + 1]; \
            y1[2 * f] += xr * w1[2 * f] + xi * w1[2 * f + 1]; \
            y1[2 * f + 1] += xi * w1[2 * f] - xr * w1[2 * f + 1]; \
            y2[2 * f] += xr * w2[2 * f] + xi * w2[2 * f + 1]; \
            y2[2 * f + 1] += xi * w2[2 * f] - xr * w2[2 * f + 1]; \
            y3[2 * f] += xr * w3[2 * f] + xi * w3[2 * f + 1]; \
            y3[2 * f + 1] += xi * w3[2 * f] - xr * w3[2 * f + 1]; \
        } \
    } \
} \
\
static void FC_NAME(fft_cmac_block_##SUF)(const T *FC_RESTRICT x, ptrdiff_t xrs, ptrdiff_t xcs, \
    const T *FC_RESTRICT w, ptrdiff_t wks, ptrdiff_t wcs, T *FC_RESTRICT y, ptrdiff_t yrs, \
    ptrdiff_t yks, ptrdiff_t nr, ptrdiff_t Cg, ptrdiff_t nk, ptrdiff_t nf) \
{ \
    for (ptrdiff_t i = 0; i < nr; ++i) { \
        const T *xi = x + 2 * i * xrs; \
        T *yi = y + 2 * i * yrs; \
        ptrdiff_t j = 0; \
        for (; j + 4 <= nk; j += 4) \
            cmac4_##SUF(xi, xcs, w + 2 * j * wks, wks, wcs, yi + 2 * j * yks, yks, Cg, nf); \
        for (; j < nk; ++j) \
            cmac1_##SUF(xi, xcs, w + 2 * j * wks, wcs, yi + 2 * j * yks, Cg, nf); \
    } \
}

FC_FFT_DEF(f32, float)
FC_FFT_DEF(f64, double)

FC_ISA_TABLE(fft) = {
    .isa = FC_ISA_NAME,
    .fft_cmac_block_f32 = FC_NAME(fft_cmac_block_f32),
    .fft_cmac_block_f64 = FC_NAME(fft_cmac_block_f64),
};
