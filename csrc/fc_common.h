/* Shared definitions for fastconv's C kernels.
 *
 * Kernels fill caller-owned outputs and never validate: the Python layer has
 * checked shapes, dtypes and contiguity before any of them runs.  Sizes and
 * indices are ptrdiff_t so that images past 2**31 elements index correctly.
 */
#ifndef FASTCONV_COMMON_H
#define FASTCONV_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "fc_isa.h"

#if defined(_OPENMP)
#include <omp.h>
#else
/* Keeps kernels compiling where the compiler has no OpenMP. */
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

#define FC_RESTRICT __restrict__

/* g where y > 0, else +0: the ReLU's backward as a mask on g's bits.
 * A select compiled as a branch, and so it was in the short runs of small
 * planes that never reach the vector loop, mispredicts on every other element
 * of a ReLU's output: the fused BatchNorm+ReLU backward ran 5x slower than
 * the plain one ((32,512,2,2): 0.66 against 0.12 ms, AMD EPYC Zen 5, 1
 * thread).  The mask keeps a NaN or Inf of g where y > 0 and drops it where
 * not, as the select (and PyTorch's threshold_backward) does.  Used by every
 * ReLU backward (batch_norm.c, pointwise.c). */
#define FC_RELU_KEEP_DEF(SUF, T, BITS) \
static inline T fc_relu_keep_##SUF(T g, T y) \
{ \
    BITS b; \
    memcpy(&b, &g, sizeof b); \
    b &= (BITS)0 - (BITS)(y > 0); \
    memcpy(&g, &b, sizeof b); \
    return g; \
}
FC_RELU_KEEP_DEF(f32, float, uint32_t)
FC_RELU_KEEP_DEF(f64, double, uint64_t)

/* A fused layer's epilogue on one run of n outputs of one channel:
 *     dst[j] = relu((src[j] + res[j]) + *bias)
 * a part skipped when res or bias is NULL or relu is 0.  The sums are
 * rounded in that order, as the unfused passes round them (np.add, then the
 * channel affine map with scale 1), and ReLU is np.maximum's (a NaN stays,
 * -0.0 gives +0.0); a missing bias is not added as a zero, which would turn
 * -0.0 into +0.0.  The branches sit outside the loops so that each loop
 * vectorises.  dst may be src (in place).  Used by every kernel that stores
 * a product (gemm.c, direct.c, winograd_driver.h). */
#define FC_EPILOGUE_RUN(T, EXPR) \
    do { \
        if (relu) { for (ptrdiff_t j = 0; j < n; ++j) { const T v = EXPR; dst[j] = v <= 0 ? 0 : v; } } \
        else { for (ptrdiff_t j = 0; j < n; ++j) dst[j] = EXPR; } \
    } while (0)

#define FC_EPILOGUE_ROW_DEF(SUF, T) \
static inline void fc_epilogue_row_##SUF(T *dst, const T *src, const T *FC_RESTRICT res, \
    const T *FC_RESTRICT bias, ptrdiff_t n, int relu) \
{ \
    const T b = bias ? *bias : 0; \
    if (res && bias) FC_EPILOGUE_RUN(T, (src[j] + res[j]) + b); \
    else if (res) FC_EPILOGUE_RUN(T, src[j] + res[j]); \
    else if (bias) FC_EPILOGUE_RUN(T, src[j] + b); \
    else FC_EPILOGUE_RUN(T, src[j]); \
}

FC_EPILOGUE_ROW_DEF(f32, float)
FC_EPILOGUE_ROW_DEF(f64, double)
#endif
