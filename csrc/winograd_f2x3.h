#ifndef FASTCONV_WINOGRAD_F2X3_H
#define FASTCONV_WINOGRAD_F2X3_H
#include "fc_common.h"

/* Winograd F(2x2,3x3) input and output transforms, one chunk of tiles each.
 *
 * Tiles are numbered t = (n*TH + th)*TW + tw over the whole batch; a block of
 * nt tiles starting at t0 is transformed into / out of the GEMM layout
 *   V[xi][c][t - t0]  (16 x C x nt)     M[xi][k][t - t0]  (16 x K x nt)
 * (row stride cs, plane stride xs, in elements: padded by the caller so that
 * the planes do not alias in the cache) with xi = 4*row + col of the 4x4 transformed tile.
 *
 * input:  V[.][c][ta-t0 .. tb-t0) = B^T d B for the 4x4 input patches of
 *         channel c whose top-left corner is (2*th - pt, 2*tw - pl) in the
 *         unpadded x (N x C x H x W); pixels outside x read as zero.
 * output: y[n][k][2*th + i][2*tw + j] = (A^T m A)[i][j] for the tiles
 *         [ta, tb) of output channel k, clipped to OH x OW.
 *         res (y's shape) and bias (K,) are added, each when not NULL,
 *         then ReLU when relu is nonzero (the fused layer's epilogue). */
#define FC_WG_F2X3_DECL(SUF, T) \
    void (*winograd_f2x3_input_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT V, ptrdiff_t C, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t TH, ptrdiff_t TW, ptrdiff_t pt, ptrdiff_t pl, \
        ptrdiff_t c, ptrdiff_t t0, ptrdiff_t cs, ptrdiff_t xs, ptrdiff_t ta, ptrdiff_t tb); \
    void (*winograd_f2x3_output_##SUF)(const T *FC_RESTRICT M, T *FC_RESTRICT y, ptrdiff_t K, \
        ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t TH, ptrdiff_t TW, \
        ptrdiff_t k, ptrdiff_t t0, ptrdiff_t cs, ptrdiff_t xs, ptrdiff_t ta, ptrdiff_t tb, \
        const T *FC_RESTRICT res, const T *FC_RESTRICT bias, int relu);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_WG_F2X3_DECL(f32, float)
    FC_WG_F2X3_DECL(f64, double)
} fc_winograd_f2x3_kernels;
FC_ISA_TABLES(winograd_f2x3)

/* Tiles per chunk, and the most tiles of one tile row handled in one pass
 * (bounds the stack buffers: 2 * 4 * 2 * 65 doubles = 8 KiB). */
#define WINOGRAD_F2X3_SEG 64
#endif
