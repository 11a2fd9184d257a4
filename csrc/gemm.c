/* The epilogue of a BLAS product, one block at a time (see gemm.h).
 *
 * The block was just written by BLAS, so it is still in cache: applying bias,
 * residual and ReLU here costs one read of the residual from memory, where
 * separate passes over the whole output read and write it from memory two
 * or three times (measured on ResNet-50's 1x1 layers: the passes took as
 * long as the product).  Each row is one run of one channel
 * (fc_epilogue_row, fc_common.h). */
#include "gemm.h"

#define FC_GEMM_DEF(SUF, T) \
static void FC_NAME(gemm_epilogue_##SUF)(T *c, ptrdiff_t ldc, const T *r, ptrdiff_t ldr, \
    const T *bias, ptrdiff_t rows, ptrdiff_t cols, int relu) \
{ \
    for (ptrdiff_t i = 0; i < rows; ++i) \
        fc_epilogue_row_##SUF(c + i * ldc, c + i * ldc, r ? r + i * ldr : NULL, \
                              bias ? bias + i : NULL, cols, relu); \
}

FC_GEMM_DEF(f32, float)
FC_GEMM_DEF(f64, double)

FC_ISA_TABLE(gemm) = {
    .isa = FC_ISA_NAME,
    .gemm_epilogue_f32 = FC_NAME(gemm_epilogue_f32),
    .gemm_epilogue_f64 = FC_NAME(gemm_epilogue_f64),
};
