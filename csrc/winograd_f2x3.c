/* Winograd F(2x2,3x3) transforms (Lavin & Gray), interpolation points
 * 0, 1, -1 and infinity; the matrices are in backends/winograd.py.
 *
 * Both 2-D transforms are separable (B^T d B = rows then columns), and each
 * 1-D pass runs across a whole segment of neighbouring tiles so that the
 * inner loop is over tiles, stride 1, and vectorises.  The one awkward access
 * -- tile u reads columns 2u..2u+3 -- is paid once, by splitting each input
 * row into its 2 column phases (P[q][u] = row[2u + q]) when it is loaded;
 * afterwards tile u's column k is phase k % 2 at index u + k / 2.  Padding
 * is applied while loading, so no padded copy of the input exists. */
#include <string.h>
#include "winograd_f2x3.h"

#define WG_M 2
#define WG_A 4
#define WG_SEG WINOGRAD_F2X3_SEG

/* o = B^T d. */
#define WG_BT(T, d, o) do { \
    o[0] = d[0] - d[2]; \
    o[1] = d[1] + d[2]; \
    o[2] = d[2] - d[1]; \
    o[3] = d[3] - d[1]; \
} while (0)

/* o = A^T m (2 of 4). */
#define WG_AT(T, m, o) do { \
    o[0] = m[0] + m[1] + m[2]; \
    o[1] = m[1] - m[2] + m[3]; \
} while (0)

#define WG_INPUT(SUF) FC_NAME(winograd_f2x3_input_##SUF)
#define WG_OUTPUT(SUF) FC_NAME(winograd_f2x3_output_##SUF)
#include "winograd_driver.h"

FC_WG_DEF(f32, float)
FC_WG_DEF(f64, double)

FC_ISA_TABLE(winograd_f2x3) = {
    .isa = FC_ISA_NAME,
    .winograd_f2x3_input_f32 = FC_NAME(winograd_f2x3_input_f32),
    .winograd_f2x3_output_f32 = FC_NAME(winograd_f2x3_output_f32),
    .winograd_f2x3_input_f64 = FC_NAME(winograd_f2x3_input_f64),
    .winograd_f2x3_output_f64 = FC_NAME(winograd_f2x3_output_f64),
};
