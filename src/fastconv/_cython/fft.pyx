# cython: boundscheck=False, wraparound=False, cdivision=True
"""Frequency-domain channel sum of the FFT backend over the C kernels in csrc/fft.c.

Parallel over blocks of (frequencies, rows of (image, tile), output
channels), output channels fastest, so consecutive blocks on one thread reuse
the same input spectra from L2; a single one-channel image still splits across
threads by frequency.  Block sizes as in fastconv._numba.fft.
"""
from cython.parallel cimport prange

from fastconv._isa import attach

ctypedef float complex c64
ctypedef double complex c128

ctypedef fused cplx:
    c64
    c128

cdef extern from "fft.h" nogil:
    ctypedef struct fc_fft_kernels:
        const char *isa
        void (*fft_cmac_block_f32)(const float *x, Py_ssize_t xrs, Py_ssize_t xcs, const float *w,
                                   Py_ssize_t wks, Py_ssize_t wcs, float *y, Py_ssize_t yrs,
                                   Py_ssize_t yks, Py_ssize_t nr, Py_ssize_t Cg, Py_ssize_t nk,
                                   Py_ssize_t nf) noexcept nogil
        void (*fft_cmac_block_f64)(const double *x, Py_ssize_t xrs, Py_ssize_t xcs, const double *w,
                                   Py_ssize_t wks, Py_ssize_t wcs, double *y, Py_ssize_t yrs,
                                   Py_ssize_t yks, Py_ssize_t nr, Py_ssize_t Cg, Py_ssize_t nk,
                                   Py_ssize_t nf) noexcept nogil
    const fc_fft_kernels *fc_fft
    const char *fc_fft_use(int level)


cdef enum:
    # Output channels per block share each load of x (csrc/fft.c unrolls by 4).
    KBLOCK = 4


cdef inline Py_ssize_t _clamp(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) nogil:
    return lo if v < lo else (hi if v > hi else v)


def cmac(const cplx[:, :, :, ::1] x,   # IN  input spectra (N, C, T, F)
         const cplx[:, :, ::1] w,      # IN  kernel spectra (K, Cg, F)
         cplx[:, :, :, ::1] y,         # OUT (N, K, T, F)
         Py_ssize_t groups, int n_threads):
    """y[n, k, t, f] = sum_c x[n, g*Cg + c, t, f] * conj(w[k, c, f]), g = k // (K/groups)."""
    cdef const fc_fft_kernels *table = fc_fft
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], T = y.shape[2], F = y.shape[3]
    cdef Py_ssize_t C = x.shape[1], Cg = w.shape[1], Kg = K // groups, rows = N * T
    cdef Py_ssize_t isz = sizeof(cplx)
    # y block (4 rows of fblock) in L1, w block (4 x Cg x fblock) in half of L2,
    # x block (rblock x Cg x fblock) in the other half.
    cdef Py_ssize_t fblock = _clamp((256 * 1024) // (KBLOCK * Cg * isz), 32, 16384 // isz)
    cdef Py_ssize_t rblock = _clamp((512 * 1024) // (Cg * fblock * isz), 1, rows)
    cdef Py_ssize_t nkb = (Kg + KBLOCK - 1) // KBLOCK
    cdef Py_ssize_t nfb = (F + fblock - 1) // fblock
    cdef Py_ssize_t nrb = (rows + rblock - 1) // rblock
    cdef Py_ssize_t chunk, rest, fb, rb, g, kb, r0, r1, nr, n, t, k0, nk, f0, nf, c0
    with nogil:
        for chunk in prange(nfb * nrb * groups * nkb, num_threads=n_threads, schedule="static"):
            fb = chunk // (nrb * groups * nkb)
            rest = chunk % (nrb * groups * nkb)
            rb = rest // (groups * nkb)
            g = (rest // nkb) % groups
            kb = rest % nkb
            r0 = rb * rblock
            r1 = min(r0 + rblock, rows)
            k0 = g * Kg + kb * KBLOCK
            nk = min(KBLOCK, (g + 1) * Kg - k0)
            f0 = fb * fblock
            nf = min(fblock, F - f0)
            c0 = g * Cg
            # Rows are evenly spaced (by F) only within one image: one call per image.
            while r0 < r1:
                n = r0 // T
                t = r0 % T
                nr = min(r1, (n + 1) * T) - r0
                if cplx is c64:
                    table.fft_cmac_block_f32(<const float *>&x[n, c0, t, f0], F, T * F,
                                             <const float *>&w[k0, 0, f0], Cg * F, F,
                                             <float *>&y[n, k0, t, f0], F, T * F, nr, Cg, nk, nf)
                else:
                    table.fft_cmac_block_f64(<const double *>&x[n, c0, t, f0], F, T * F,
                                             <const double *>&w[k0, 0, f0], Cg * F, F,
                                             <double *>&y[n, k0, t, f0], F, T * F, nr, Cg, nk, nf)
                r0 = r0 + nr


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_fft_use(level).decode()


attach("fft", use_isa)
