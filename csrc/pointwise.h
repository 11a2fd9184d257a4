#ifndef FASTCONV_POINTWISE_H
#define FASTCONV_POINTWISE_H
#include "fc_common.h"

/* One-pass elementwise maps over a flat range [e0, e1) of a C-contiguous
 * array; the caller splits the array into ranges, one per thread.
 *
 * channel_affine: x is (N, C, L) flattened (L = the product of the trailing
 * dimensions, 1 for an (N, C) array), so element e belongs to channel
 * (e / L) % C, and
 *     y[e] = x[e] * scale[c] + shift[c]        rounded after the product and
 *                                               after the sum, as numpy's
 *                                               multiply then add (no FMA),
 * then, when relu is nonzero, max(y[e], 0) by relu's rule below.
 *
 * relu: y[e] = x[e] > 0 ? x[e] : 0, except that a NaN stays (the same NaN):
 * np.maximum(x, 0)'s result bit for bit, -0.0 giving +0.0.
 *
 * relu_grad: gx[e] = y[e] > 0 ? g[e] : 0, y being relu's output: the input
 * gradient of ReLU as PyTorch's threshold_backward selects it (a NaN or an
 * infinite gradient of an inactive unit gives 0, not NaN as g * mask would).
 *
 * x and y may be the same array (in place); they must not otherwise overlap
 * (gx may be g). */
#define FC_POINTWISE_DECL(SUF, T) \
    void (*pointwise_channel_affine_##SUF)(const T *x, const T *FC_RESTRICT scale, \
        const T *FC_RESTRICT shift, T *y, ptrdiff_t C, ptrdiff_t L, \
        ptrdiff_t e0, ptrdiff_t e1, int relu); \
    void (*pointwise_relu_##SUF)(const T *x, T *y, ptrdiff_t e0, ptrdiff_t e1); \
    void (*pointwise_relu_grad_##SUF)(const T *g, const T *y, T *gx, ptrdiff_t e0, ptrdiff_t e1);

/* One instruction set's kernels (fc_isa.h). */
typedef struct {
    const char *isa;
    FC_POINTWISE_DECL(f32, float)
    FC_POINTWISE_DECL(f64, double)
} fc_pointwise_kernels;
FC_ISA_TABLES(pointwise)
#endif
