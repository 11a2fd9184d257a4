/* The epilogue of a BLAS product, one block at a time (see gemm.h).
 *
 * The block was just written by BLAS, so it is still in cache: applying bias,
 * residual and ReLU here costs one read of the residual from memory, where
 * separate passes over the whole output read and write it from memory two
 * or three times (measured on ResNet-50's 1x1 layers: the passes took as
 * long as the product).  Each row is one run of one channel, so the loops
 * are plain vector loops over contiguous elements. */
#include "gemm.h"

#define FC_GEMM_RELU(v) ((v) <= 0 ? 0 : (v))

/* One row: EXPR is the value before the optional ReLU. */
#define FC_GEMM_ROW(T, EXPR) \
    do { \
        if (relu) { for (ptrdiff_t j = 0; j < cols; ++j) { const T v = EXPR; ci[j] = FC_GEMM_RELU(v); } } \
        else { for (ptrdiff_t j = 0; j < cols; ++j) ci[j] = EXPR; } \
    } while (0)

/* A missing bias is not added as a zero: -0.0 + 0 would round to +0.0
 * where the unfused passes keep -0.0. */
#define FC_GEMM_DEF(SUF, T) \
static void FC_NAME(gemm_epilogue_##SUF)(T *c, ptrdiff_t ldc, const T *r, ptrdiff_t ldr, \
    const T *bias, ptrdiff_t rows, ptrdiff_t cols, int relu) \
{ \
    for (ptrdiff_t i = 0; i < rows; ++i) { \
        T *FC_RESTRICT ci = c + i * ldc; \
        const T *FC_RESTRICT ri = r ? r + i * ldr : NULL; \
        const T b = bias ? bias[i] : 0; \
        if (ri && bias) FC_GEMM_ROW(T, (ci[j] + ri[j]) + b); \
        else if (ri) FC_GEMM_ROW(T, ci[j] + ri[j]); \
        else if (bias) FC_GEMM_ROW(T, ci[j] + b); \
        else if (relu) FC_GEMM_ROW(T, ci[j]); \
    } \
}

FC_GEMM_DEF(f32, float)
FC_GEMM_DEF(f64, double)

FC_ISA_TABLE(gemm) = {
    .isa = FC_ISA_NAME,
    .gemm_epilogue_f32 = FC_NAME(gemm_epilogue_f32),
    .gemm_epilogue_f64 = FC_NAME(gemm_epilogue_f64),
};
