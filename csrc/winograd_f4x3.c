/* Winograd F(4x4,3x3) transforms (Lavin & Gray), interpolation points
 * 0, 1, -1, 2, -2 and infinity; the matrices are in backends/winograd.py.
 *
 * Both 2-D transforms are separable (B^T d B = rows then columns), and each
 * 1-D pass runs across a whole segment of neighbouring tiles so that the
 * inner loop is over tiles, stride 1, and vectorises.  The one awkward access
 * -- tile u reads columns 4u..4u+5 -- is paid once, by splitting each input
 * row into its 4 column phases (P[q][u] = row[4u + q]) when it is loaded;
 * afterwards tile u's column k is phase k % 4 at index u + k / 4.  Padding
 * is applied while loading, so no padded copy of the input exists. */
#include <string.h>
#include "winograd_f4x3.h"

#define WG_M 4
#define WG_A 6
#define WG_SEG WINOGRAD_F4X3_SEG

/* o = B^T d, sharing the sums the rows have in common. */
#define WG_BT(T, d, o) do { \
    const T t1 = d[4] - 4 * d[2], t2 = d[3] - 4 * d[1]; \
    const T t3 = d[4] - d[2], t4 = 2 * (d[3] - d[1]); \
    o[0] = 4 * d[0] - 5 * d[2] + d[4]; \
    o[1] = t1 + t2; \
    o[2] = t1 - t2; \
    o[3] = t3 + t4; \
    o[4] = t3 - t4; \
    o[5] = 4 * d[1] - 5 * d[3] + d[5]; \
} while (0)

/* o = A^T m (4 of 6). */
#define WG_AT(T, m, o) do { \
    const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4]; \
    o[0] = m[0] + a + c; \
    o[1] = b + 2 * e; \
    o[2] = a + 4 * c; \
    o[3] = b + 8 * e + m[5]; \
} while (0)

#define WG_INPUT(SUF) FC_NAME(winograd_f4x3_input_##SUF)
#define WG_OUTPUT(SUF) FC_NAME(winograd_f4x3_output_##SUF)
#include "winograd_driver.h"

FC_WG_DEF(f32, float)
FC_WG_DEF(f64, double)

FC_ISA_TABLE(winograd_f4x3) = {
    .isa = FC_ISA_NAME,
    .winograd_f4x3_input_f32 = FC_NAME(winograd_f4x3_input_f32),
    .winograd_f4x3_output_f32 = FC_NAME(winograd_f4x3_output_f32),
    .winograd_f4x3_input_f64 = FC_NAME(winograd_f4x3_input_f64),
    .winograd_f4x3_output_f64 = FC_NAME(winograd_f4x3_output_f64),
};
