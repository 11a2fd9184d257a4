#ifndef FASTCONV_FFT_H
#define FASTCONV_FFT_H
#include "fc_common.h"

/* The frequency-domain channel sum of the FFT backend, for a block of rows
 * (image, tile), a block of output channels and a block of frequencies:
 *   y[i][j][f] = sum_{c<Cg} x[i][c][f] * conj(w[j][c][f])   i < nr, j < nk, f < nf
 * Complex numbers are interleaved (re, im) pairs of T, as numpy and
 * pocketfft store them; the strides are in complex elements:
 *   x[i][c][f] at x + 2*(i*xrs + c*xcs + f)
 *   w[j][c][f] at w + 2*(j*wks + c*wcs + f)
 *   y[i][j][f] at y + 2*(i*yrs + j*yks + f)
 * The caller sizes the block so that the w block (nk*Cg*nf) stays in L2
 * while the rows go by: each kernel spectrum is read from memory once per
 * block of rows rather than once per row.
 * The conjugate turns the product of spectra into a cross-correlation, so the
 * kernel is transformed as it is stored, unflipped.  Summation order is c
 * ascending, independent of the thread count. */
#define FC_FFT_DECL(SUF, T) \
    void (*fft_cmac_block_##SUF)(const T *FC_RESTRICT x, ptrdiff_t xrs, ptrdiff_t xcs, \
        const T *FC_RESTRICT w, ptrdiff_t wks, ptrdiff_t wcs, T *FC_RESTRICT y, ptrdiff_t yrs, \
        ptrdiff_t yks, ptrdiff_t nr, ptrdiff_t Cg, ptrdiff_t nk, ptrdiff_t nf);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_FFT_DECL(f32, float)
    FC_FFT_DECL(f64, double)
} fc_fft_kernels;
FC_ISA_TABLES(fft)
#endif
