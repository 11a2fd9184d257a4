/* Winograd F(6x6,3x3) transforms (Lavin & Gray), interpolation points
 * 0, 1, -1, 2, -2, 1/2, -1/2 and infinity; the matrices are in
 * backends/winograd.py.
 *
 * Both 2-D transforms are separable (B^T d B = rows then columns), and each
 * 1-D pass runs across a whole segment of neighbouring tiles so that the
 * inner loop is over tiles, stride 1, and vectorises.  The one awkward access
 * -- tile u reads columns 6u..6u+7 -- is paid once, by splitting each input
 * row into its 6 column phases (P[q][u] = row[6u + q]) when it is loaded;
 * afterwards tile u's column k is phase k % 6 at index u + k / 6.  Padding
 * is applied while loading, so no padded copy of the input exists. */
#include <string.h>
#include "winograd_f6x3.h"

#define WG_M 6
#define WG_A 8
#define WG_SEG WINOGRAD_F6X3_SEG

/* o = B^T d, sharing the sums the rows have in common (NNPACK's grouping). */
#define WG_BT(T, d, o) do { \
    const T e1 = d[2] + d[6] - (T)4.25 * d[4], f1 = d[1] + d[5] - (T)4.25 * d[3]; \
    const T e2 = (T)0.25 * d[2] - (T)1.25 * d[4] + d[6]; \
    const T f2 = (T)0.5 * d[1] - (T)2.5 * d[3] + 2 * d[5]; \
    const T e3 = 4 * d[2] - 5 * d[4] + d[6], f3 = 2 * d[1] - (T)2.5 * d[3] + (T)0.5 * d[5]; \
    o[0] = d[0] - d[6] + (T)5.25 * (d[4] - d[2]); \
    o[1] = e1 + f1; \
    o[2] = e1 - f1; \
    o[3] = e2 + f2; \
    o[4] = e2 - f2; \
    o[5] = e3 + f3; \
    o[6] = e3 - f3; \
    o[7] = d[7] - d[1] + (T)5.25 * (d[3] - d[5]); \
} while (0)

/* o = A^T m (6 of 8). */
#define WG_AT(T, m, o) do { \
    const T a1 = m[1] + m[2], b1 = m[1] - m[2], a2 = m[3] + m[4], b2 = m[3] - m[4]; \
    const T a3 = m[5] + m[6], b3 = m[5] - m[6]; \
    o[0] = m[0] + a1 + a2 + a3; \
    o[1] = b1 + 2 * b2 + (T)0.5 * b3; \
    o[2] = a1 + 4 * a2 + (T)0.25 * a3; \
    o[3] = b1 + 8 * b2 + (T)0.125 * b3; \
    o[4] = a1 + 16 * a2 + (T)0.0625 * a3; \
    o[5] = b1 + 32 * b2 + (T)0.03125 * b3 + m[7]; \
} while (0)

#define WG_INPUT(SUF) FC_NAME(winograd_f6x3_input_##SUF)
#define WG_OUTPUT(SUF) FC_NAME(winograd_f6x3_output_##SUF)
#include "winograd_driver.h"

FC_WG_DEF(f32, float)
FC_WG_DEF(f64, double)

FC_ISA_TABLE(winograd_f6x3) = {
    .isa = FC_ISA_NAME,
    .winograd_f6x3_input_f32 = FC_NAME(winograd_f6x3_input_f32),
    .winograd_f6x3_output_f32 = FC_NAME(winograd_f6x3_output_f32),
    .winograd_f6x3_input_f64 = FC_NAME(winograd_f6x3_input_f64),
    .winograd_f6x3_output_f64 = FC_NAME(winograd_f6x3_output_f64),
};
