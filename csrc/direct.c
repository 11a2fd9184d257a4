/* Direct convolution, register-blocked (see direct.h for the layouts).
 *
 * im2col pays for R*S copies of the input and a GEMM; when the filter bank is
 * small (few channels, few output channels, strided first layers) the
 * packing costs more than the product.  This kernel reads a zero-padded,
 * stride-phase-split copy of the input (one copy, the input's size) and keeps
 * a KB x QB block of outputs in vector registers while it walks the channels
 * and taps: per tap, NV vector loads of input and KB weight broadcasts feed
 * KB*NV fused multiply-adds.  Splitting the input by stride phase makes every
 * tap a contiguous, unit-stride read whatever the stride and dilation, and
 * flattening (oh, ow) into one index q = oh*Wq + ow lets a block span output
 * rows, so narrow outputs (10 pixels wide) still fill whole vectors; the
 * Wq - OW columns per row that this computes are discarded.
 *
 * Each output is summed in one fixed order (channel, then tap, ascending),
 * whatever the thread count: results are bitwise reproducible.
 *
 * The vector types are GCC/Clang vector extensions of one register of the
 * instruction set this object is compiled for (fc_isa.h), and the block
 * shapes below fit its register file: a block that needs more registers
 * than there are spills its accumulators on every tap (the 8 x 3 blocks of
 * 64 bytes ran 10-40x slower than im2col on AVX2's sixteen ymm registers). */
#include <string.h>
#include "direct.h"

/* Block shapes (KB channels, NV vectors) per register file: KB*NV
 * accumulators, NV input vectors and a broadcast weight (and, without FMA, a
 * product) must fit.  A and B serve groups of several output channels, ONE
 * groups of fewer than FC_DIRECT_SINGLE_BELOW.  The weight gradient keeps
 * WKB x WTB accumulators and loads WKB + WTB vectors per step. */
#if FC_VEC_REGS >= 32
/* AVX-512 (32 zmm), NEON (32 q): 24 + 3 + 1, 24 + 4 + 1, 8 + 1; 20 + 4 + 5 */
#  define FC_DIRECT_A 8, 3
#  define FC_DIRECT_B 6, 4
#  define FC_DIRECT_ONE 1, 8
#  define FC_DIRECT_WKB 4
#  define FC_DIRECT_WTB 5
#elif FC_HAS_FMA
/* AVX2 (16 ymm): 12 + 3 + 1, 12 + 2 + 1, 8 + 1; 9 + 3 + 3 */
#  define FC_DIRECT_A 4, 3
#  define FC_DIRECT_B 6, 2
#  define FC_DIRECT_ONE 1, 8
#  define FC_DIRECT_WKB 3
#  define FC_DIRECT_WTB 3
#else
/* SSE (16 xmm, no FMA): 12 + 2 + 1 + 1, 8 + 2 + 1 + 1, 8 + 1 + 1; 6 + 2 + 3 + 1 */
#  define FC_DIRECT_A 6, 2
#  define FC_DIRECT_B 4, 2
#  define FC_DIRECT_ONE 1, 8
#  define FC_DIRECT_WKB 2
#  define FC_DIRECT_WTB 3
#endif
#define FC_DIRECT_SINGLE_BELOW 4

#define FC_DIRECT_PACK(SUF, T) \
static void FC_NAME(direct_pack_input_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT xq, \
    ptrdiff_t H, ptrdiff_t W, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t Hq, ptrdiff_t Wq, \
    ptrdiff_t plane, ptrdiff_t pt, ptrdiff_t pl) \
{ \
    for (ptrdiff_t a = 0; a < sh; ++a) \
        for (ptrdiff_t b = 0; b < sw; ++b) { \
            T *dst = xq + (a * sw + b) * plane; \
            for (ptrdiff_t i = 0; i < Hq; ++i) { \
                const ptrdiff_t ih = i * sh + a - pt; \
                T *d = dst + i * Wq; \
                if (ih < 0 || ih >= H) { \
                    memset(d, 0, (size_t)Wq * sizeof(T)); \
                    continue; \
                } \
                const T *xr = x + ih * W; \
                if (sw == 1) { \
                    /* Unit stride: zeros, one row copy, zeros (the common case). */ \
                    const ptrdiff_t j0 = pl < Wq ? pl : Wq; \
                    const ptrdiff_t j1 = W + pl < Wq ? W + pl : Wq; \
                    const ptrdiff_t je = j1 > j0 ? j1 : j0; \
                    memset(d, 0, (size_t)j0 * sizeof(T)); \
                    if (je > j0) memcpy(d + j0, xr + (j0 - pl), (size_t)(je - j0) * sizeof(T)); \
                    memset(d + je, 0, (size_t)(Wq - je) * sizeof(T)); \
                    continue; \
                } \
                for (ptrdiff_t j = 0; j < Wq; ++j) { \
                    const ptrdiff_t iw = j * sw + b - pl; \
                    d[j] = (iw >= 0 && iw < W) ? xr[iw] : (T)0; \
                } \
            } \
            memset(dst + Hq * Wq, 0, (size_t)(plane - Hq * Wq) * sizeof(T)); \
        } \
}

/* One block: KB channels x NV vectors of flat positions from q0, named by
 * its shape (direct_block_8x3_f32__avx512). */
#define FC_DIRECT_BLOCK_NAME_(KB, NV, SUF) FC_NAME(direct_block_##KB##x##NV##_##SUF)
#define FC_DIRECT_BLOCK_NAME(SHAPE, SUF) FC_DIRECT_BLOCK_NAME_(SHAPE, SUF)
#define FC_DIRECT_BLOCK_(SUF, T, SHAPE) FC_DIRECT_BLOCK(SUF, T, SHAPE)
#define FC_DIRECT_BLOCK(SUF, T, KB, NV) \
static void FC_DIRECT_BLOCK_NAME_(KB, NV, SUF)(const T *FC_RESTRICT xq, const T *FC_RESTRICT wp, T *FC_RESTRICT y, \
    const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t Cg, ptrdiff_t RS, ptrdiff_t cstride, \
    ptrdiff_t q0, ptrdiff_t Wq, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kn, \
    const T *FC_RESTRICT res, const T *FC_RESTRICT bias, int relu) \
{ \
    typedef T vec __attribute__((vector_size(FC_VEC_BYTES))); \
    enum { VL = FC_VEC_BYTES / sizeof(T), QB = NV * VL }; \
    vec acc[KB][NV]; \
    _Pragma("GCC unroll 8") for (int k = 0; k < KB; ++k) \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) acc[k][v] = (vec){0}; \
    const T *xb = xq + q0; \
    for (ptrdiff_t c = 0; c < Cg; ++c) { \
        const T *xc = xb + c * cstride; \
        const T *wc = wp + c * RS * KB; \
        for (ptrdiff_t t = 0; t < RS; ++t) { \
            const T *xs = xc + taps[t]; \
            const T *wt = wc + t * KB; \
            vec xv[NV]; \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) \
                memcpy(&xv[v], xs + v * VL, sizeof(vec)); \
            /* scalar * vector broadcasts the scalar; (vec){0} + w would not fold \
             * (-0.0 + 0.0 is +0.0) and costs an add per weight. */ \
            _Pragma("GCC unroll 8") for (int k = 0; k < KB; ++k) \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) acc[k][v] += wt[k] * xv[v]; \
        } \
    } \
    T out[KB][QB]; \
    _Pragma("GCC unroll 8") for (int k = 0; k < KB; ++k) \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; ++v) \
            memcpy(&out[k][v * VL], &acc[k][v], sizeof(vec)); \
    /* Out row segment by row segment: the block's positions are contiguous \
     * within an output row, so each valid run is one copy. */ \
    ptrdiff_t oh = q0 / Wq, ow = q0 - oh * Wq; \
    for (ptrdiff_t j = 0; j < QB && oh < OH; ) { \
        ptrdiff_t run = Wq - ow < QB - j ? Wq - ow : QB - j; \
        if (ow < OW) { \
            const ptrdiff_t n = OW - ow < run ? OW - ow : run; \
            for (ptrdiff_t k = 0; k < kn; ++k) { \
                const ptrdiff_t at = (k * OH + oh) * OW + ow; \
                if (res || bias || relu) \
                    fc_epilogue_row_##SUF(y + at, &out[k][j], res ? res + at : NULL, \
                                          bias ? bias + k : NULL, n, relu); \
                else \
                    memcpy(y + at, &out[k][j], (size_t)n * sizeof(T)); \
            } \
        } \
        j += run; \
        ow += run; \
        if (ow == Wq) { ow = 0; ++oh; } \
    } \
}

FC_DIRECT_PACK(f32, float)
FC_DIRECT_PACK(f64, double)
FC_DIRECT_BLOCK_(f32, float, FC_DIRECT_A)
FC_DIRECT_BLOCK_(f64, double, FC_DIRECT_A)
FC_DIRECT_BLOCK_(f32, float, FC_DIRECT_B)
FC_DIRECT_BLOCK_(f64, double, FC_DIRECT_B)
FC_DIRECT_BLOCK_(f32, float, FC_DIRECT_ONE)
FC_DIRECT_BLOCK_(f64, double, FC_DIRECT_ONE)

/* Weight gradient (direct.h): KB x TB vector accumulators summed over images
 * and flat positions, then across their lanes.  Each sum runs in one fixed
 * order, whatever the thread count. */
#define FC_DIRECT_WGRAD(SUF, T) \
static void FC_NAME(direct_wgrad_##SUF)(const T *FC_RESTRICT xq, const T *FC_RESTRICT gyq, T *FC_RESTRICT dw, \
    const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t N, ptrdiff_t x_n, ptrdiff_t gy_n, ptrdiff_t Lq, \
    ptrdiff_t kn, ptrdiff_t tn, ptrdiff_t dw_k, int accumulate) \
{ \
    typedef T vec __attribute__((vector_size(FC_VEC_BYTES))); \
    enum { VL = FC_VEC_BYTES / sizeof(T), KB = FC_DIRECT_WKB, TB = FC_DIRECT_WTB }; \
    ptrdiff_t koff[KB], toff[TB]; \
    for (int k = 0; k < KB; ++k) koff[k] = (k < kn ? k : kn - 1) * Lq; \
    for (int t = 0; t < TB; ++t) toff[t] = taps[t < tn ? t : tn - 1]; \
    vec acc[KB][TB]; \
    _Pragma("GCC unroll 8") for (int k = 0; k < KB; ++k) \
        _Pragma("GCC unroll 8") for (int t = 0; t < TB; ++t) acc[k][t] = (vec){0}; \
    for (ptrdiff_t n = 0; n < N; ++n) { \
        const T *g = gyq + n * gy_n, *x = xq + n * x_n; \
        for (ptrdiff_t q = 0; q < Lq; q += VL) { \
            vec gv[KB], xv[TB]; \
            _Pragma("GCC unroll 8") for (int k = 0; k < KB; ++k) \
                memcpy(&gv[k], g + koff[k] + q, sizeof(vec)); \
            _Pragma("GCC unroll 8") for (int t = 0; t < TB; ++t) \
                memcpy(&xv[t], x + toff[t] + q, sizeof(vec)); \
            _Pragma("GCC unroll 8") for (int k = 0; k < KB; ++k) \
                _Pragma("GCC unroll 8") for (int t = 0; t < TB; ++t) acc[k][t] += gv[k] * xv[t]; \
        } \
    } \
    for (ptrdiff_t k = 0; k < kn; ++k) \
        for (ptrdiff_t t = 0; t < tn; ++t) { \
            T lanes[VL], s = 0; \
            memcpy(lanes, &acc[k][t], sizeof(vec)); \
            for (int l = 0; l < VL; ++l) s += lanes[l]; \
            dw[k * dw_k + t] = accumulate ? dw[k * dw_k + t] + s : s; \
        } \
}

FC_DIRECT_WGRAD(f32, float)
FC_DIRECT_WGRAD(f64, double)

#define FC_DIRECT_KB_(KB, NV) KB
#define FC_DIRECT_KB(SHAPE) FC_DIRECT_KB_(SHAPE)
#define FC_DIRECT_NV_(KB, NV) NV
#define FC_DIRECT_NV(SHAPE) FC_DIRECT_NV_(SHAPE)

FC_ISA_TABLE(direct) = {
    .isa = FC_ISA_NAME,
    .vec_bytes = FC_VEC_BYTES,
    .kb = {FC_DIRECT_KB(FC_DIRECT_A), FC_DIRECT_KB(FC_DIRECT_B), FC_DIRECT_KB(FC_DIRECT_ONE)},
    .nv = {FC_DIRECT_NV(FC_DIRECT_A), FC_DIRECT_NV(FC_DIRECT_B), FC_DIRECT_NV(FC_DIRECT_ONE)},
    .single_below = FC_DIRECT_SINGLE_BELOW,
    .wgrad_kb = FC_DIRECT_WKB,
    .wgrad_tb = FC_DIRECT_WTB,
    .direct_pack_input_f32 = FC_NAME(direct_pack_input_f32),
    .direct_pack_input_f64 = FC_NAME(direct_pack_input_f64),
    .block_f32 = {FC_DIRECT_BLOCK_NAME(FC_DIRECT_A, f32), FC_DIRECT_BLOCK_NAME(FC_DIRECT_B, f32),
                  FC_DIRECT_BLOCK_NAME(FC_DIRECT_ONE, f32)},
    .block_f64 = {FC_DIRECT_BLOCK_NAME(FC_DIRECT_A, f64), FC_DIRECT_BLOCK_NAME(FC_DIRECT_B, f64),
                  FC_DIRECT_BLOCK_NAME(FC_DIRECT_ONE, f64)},
    .direct_wgrad_f32 = FC_NAME(direct_wgrad_f32),
    .direct_wgrad_f64 = FC_NAME(direct_wgrad_f64),
};
