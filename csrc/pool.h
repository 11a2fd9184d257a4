#ifndef FASTCONV_POOL_H
#define FASTCONV_POOL_H
#include "fc_common.h"

/* 2-D max and average pooling of one H x W plane into one OH x OW plane.
 *
 * Window (oh, ow) covers input rows oh*sh - ph ... oh*sh - ph + kh - 1 (and
 * likewise columns), clipped to the plane: padding never wins a max and, for
 * the average, counts only when count_include_pad is set (PyTorch's rule: the
 * divisor then includes the padding but not the part of a ceil_mode window
 * that hangs past it).  Every window must hold at least one input element;
 * the Python layer guarantees it (pad <= kernel/2, PyTorch's ceil_mode rule).
 *
 * max: idx[i] is the flat index h*W + w of the maximum in the plane; a NaN
 * wins (the last one in row-major order), as in PyTorch.
 * Backward kernels zero the plane gx first, then accumulate (+=), because
 * overlapping windows (stride < kernel) share inputs. */
#define FC_POOL_DECL(SUF, T) \
    void (*pool_max_plane_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT y, int64_t *FC_RESTRICT idx, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kh, ptrdiff_t kw, \
        ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw); \
    void (*pool_max_plane_bwd_##SUF)(const T *FC_RESTRICT gy, const int64_t *FC_RESTRICT idx, \
        T *FC_RESTRICT gx, ptrdiff_t HW, ptrdiff_t OHW); \
    void (*pool_avg_plane_##SUF)(const T *FC_RESTRICT x, T *FC_RESTRICT y, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kh, ptrdiff_t kw, \
        ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int count_include_pad); \
    void (*pool_avg_plane_bwd_##SUF)(const T *FC_RESTRICT gy, T *FC_RESTRICT gx, \
        ptrdiff_t H, ptrdiff_t W, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t kh, ptrdiff_t kw, \
        ptrdiff_t sh, ptrdiff_t sw, ptrdiff_t ph, ptrdiff_t pw, int count_include_pad);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_POOL_DECL(f32, float)
    FC_POOL_DECL(f64, double)
} fc_pool_kernels;
FC_ISA_TABLES(pool)
#endif
