#ifndef FASTCONV_DIRECT_H
#define FASTCONV_DIRECT_H
#include "fc_common.h"

/* The direct backend's stages (see direct.c and backends/direct.py).
 *
 * Phase planes.  Input plane (n, c) is copied, zero-padded, into sh*sw
 * "phase" planes of Hq x Wq, each followed by a zero tail up to `plane`
 * elements so that the last block's reads stay inside:
 *     xq[a][b][i*Wq + j] = x[i*sh + a - pt][j*sw + b - pl]   (0 outside x)
 * so that tap (r, s) of output pixel (oh, ow) reads phase plane
 * (r*dh % sh, s*dw % sw) at q + (r*dh / sh)*Wq + s*dw / sw, q = oh*Wq + ow:
 * an affine function of the flat index q, whatever the stride and dilation.
 * Outputs at ow >= OW in that flat index are computed and discarded.
 *
 * Packed weights (made by the caller).  wp[g][b][c][r][s][k] =
 * w[g*Kg + b*kb + k][c][r][s], zero for k past Kg, so that one block's kb
 * weights of a tap are contiguous.

 *
 * Blocks.  One call computes kb output channels x qb flat positions of one
 * image in registers: kb x nv vector accumulators, qb = nv * vector lanes.
 * Each instruction set has three block shapes (direct.c has the table):
 * block[0] and block[1] for groups of several output channels (the caller
 * takes the kb that pads a group's channels less, block[0] on a tie) and
 * block[2], kb = 1, for groups of fewer than single_below channels.
 * A block stores its outputs through the fused layer's epilogue:
 * y = relu((y + res) + bias[k]), res (y's layout, at the block's first
 * channel) and bias (at its first channel) each skipped when NULL, ReLU when
 * relu is nonzero, in the unfused passes' order and rounding. */
typedef void (*fc_direct_block_f32)(const float *FC_RESTRICT xq, const float *FC_RESTRICT wp,
    float *FC_RESTRICT y, const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t Cg, ptrdiff_t RS,
    ptrdiff_t cstride, ptrdiff_t q0, ptrdiff_t Wq, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kn,
    const float *FC_RESTRICT res, const float *FC_RESTRICT bias, int relu);
typedef void (*fc_direct_block_f64)(const double *FC_RESTRICT xq, const double *FC_RESTRICT wp,
    double *FC_RESTRICT y, const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t Cg, ptrdiff_t RS,
    ptrdiff_t cstride, ptrdiff_t q0, ptrdiff_t Wq, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kn,
    const double *FC_RESTRICT res, const double *FC_RESTRICT bias, int relu);

#define FC_DIRECT_PACK_DECL(SUF, T) \
    void (*direct_pack_input_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT xq, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t Hq, ptrdiff_t Wq, \
        ptrdiff_t plane, ptrdiff_t pt, ptrdiff_t pl);

/* Weight gradient of one (wgrad_kb channels) x (one input channel) x
 * (wgrad_tb taps) block: dw[k*dw_k + t] = sum over images n and flat
 * positions q < Lq of gyq[n*gy_n + k*Lq + q] * xq[n*x_n + taps[t] + q],
 * where gyq is the output gradient in the same flat layout as the outputs,
 * zero in the dropped columns and the tail, so those positions add nothing;
 * Lq is a multiple of the vector length (vec_bytes).  kn <= wgrad_kb
 * channels and tn <= wgrad_tb taps are valid; the rest are computed on
 * repeated rows and not stored.  With accumulate nonzero the sums are added
 * to dw instead (the caller runs the images in chunks). */
#define FC_DIRECT_WGRAD_DECL(SUF, T) \
    void (*direct_wgrad_##SUF)(const T *FC_RESTRICT xq, const T *FC_RESTRICT gyq, \
        T *FC_RESTRICT dw, const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t N, ptrdiff_t x_n, \
        ptrdiff_t gy_n, ptrdiff_t Lq, ptrdiff_t kn, ptrdiff_t tn, ptrdiff_t dw_k, int accumulate);

/* One instruction set's kernels and their tiles (fc_isa.h). */
typedef struct {
    const char *isa;
    int vec_bytes;              /* one vector register */
    int kb[3], nv[3];           /* the three block shapes */
    int single_below;
    int wgrad_kb, wgrad_tb;
    FC_DIRECT_PACK_DECL(f32, float)
    FC_DIRECT_PACK_DECL(f64, double)
    fc_direct_block_f32 block_f32[3];
    fc_direct_block_f64 block_f64[3];
    FC_DIRECT_WGRAD_DECL(f32, float)
    FC_DIRECT_WGRAD_DECL(f64, double)
} fc_direct_kernels;
FC_ISA_TABLES(direct)
#endif
