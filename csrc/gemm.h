#ifndef FASTCONV_GEMM_H
#define FASTCONV_GEMM_H
#include "fc_common.h"

/* The epilogue of a product, applied to one block of its result while the
 * block is still in cache (fastconv._cython.gemm calls it right after the
 * block's BLAS call):
 *
 *     c[i, j] = relu((c[i, j] + r[i, j]) + bias[i])     i < rows, j < cols
 *
 * c's rows are ldc apart, r's ldr apart; r may be NULL (no residual), bias
 * may be NULL (no bias), relu 0 leaves the sum as it is.  The additions
 * happen in that order, each rounded, so that the result is bit for bit that
 * of the unfused passes (np.add, then the channel affine map with scale 1,
 * then np.maximum's ReLU: a NaN stays, -0.0 gives +0.0). */
#define FC_GEMM_DECL(SUF, T) \
    void (*gemm_epilogue_##SUF)(T *c, ptrdiff_t ldc, const T *r, ptrdiff_t ldr, \
        const T *bias, ptrdiff_t rows, ptrdiff_t cols, int relu);

typedef struct {
    const char *isa;
    FC_GEMM_DECL(f32, float)
    FC_GEMM_DECL(f64, double)
} fc_gemm_kernels;
FC_ISA_TABLES(gemm)
#endif
