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
 * Packed weights (made by the caller).  wp[g][kb][c][r][s][k] =
 * w[g*Kg + kb*KB + k][c][r][s], zero for k past Kg, so that one block's KB
 * weights of a tap are contiguous.
 *
 * Blocks.  One call computes KB output channels x QB flat positions of one
 * image in registers. */
#define FC_DIRECT_DECL(SUF, T) \
    void direct_pack_input_##SUF(const T *FC_RESTRICT x, T *FC_RESTRICT xq, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t Hq, ptrdiff_t Wq, \
        ptrdiff_t plane, ptrdiff_t pt, ptrdiff_t pl); \
    void direct_block_k8_##SUF(const T *FC_RESTRICT xq, const T *FC_RESTRICT wp, T *FC_RESTRICT y, \
        const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t Cg, ptrdiff_t RS, ptrdiff_t cstride, \
        ptrdiff_t q0, ptrdiff_t Wq, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kn); \
    void direct_block_k6_##SUF(const T *FC_RESTRICT xq, const T *FC_RESTRICT wp, T *FC_RESTRICT y, \
        const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t Cg, ptrdiff_t RS, ptrdiff_t cstride, \
        ptrdiff_t q0, ptrdiff_t Wq, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kn); \
    void direct_block_k1_##SUF(const T *FC_RESTRICT xq, const T *FC_RESTRICT wp, T *FC_RESTRICT y, \
        const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t Cg, ptrdiff_t RS, ptrdiff_t cstride, \
        ptrdiff_t q0, ptrdiff_t Wq, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kn);

/* Weight gradient of one (KB channels) x (one input channel) x (TB taps)
 * block: dw[k*dw_k + t] = sum over images n and flat positions q < Lq of
 * gyq[n*gy_n + k*Lq + q] * xq[n*x_n + taps[t] + q], where gyq is the output
 * gradient in the same flat layout as the outputs, zero in the dropped
 * columns and the tail, so those positions add nothing.  kn <= KB channels
 * and tn <= TB taps are valid; the rest are computed on repeated rows and
 * not stored. */
#define FC_DIRECT_WGRAD_DECL(SUF, T) \
    void direct_wgrad_##SUF(const T *FC_RESTRICT xq, const T *FC_RESTRICT gyq, T *FC_RESTRICT dw, \
        const ptrdiff_t *FC_RESTRICT taps, ptrdiff_t N, ptrdiff_t x_n, ptrdiff_t gy_n, ptrdiff_t Lq, \
        ptrdiff_t kn, ptrdiff_t tn, ptrdiff_t dw_k);
#define FC_DIRECT_WGRAD_KB 4
#define FC_DIRECT_WGRAD_TB 5

FC_DIRECT_WGRAD_DECL(f32, float)
FC_DIRECT_WGRAD_DECL(f64, double)
FC_DIRECT_DECL(f32, float)
FC_DIRECT_DECL(f64, double)

/* Flat positions per block: QB_K8 with 8 channels, QB_K6 with 6 (filter
 * banks of 6, 12, ... channels per group, LeNet's), QB_K1 with one. */
#define FC_DIRECT_QB_K8_f32 48
#define FC_DIRECT_QB_K8_f64 24
#define FC_DIRECT_QB_K6_f32 64
#define FC_DIRECT_QB_K6_f64 32
#define FC_DIRECT_QB_K1_f32 128
#define FC_DIRECT_QB_K1_f64 64
#endif
