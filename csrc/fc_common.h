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
#include "fc_isa.h"

#if defined(_OPENMP)
#include <omp.h>
#else
/* Keeps kernels compiling where the compiler has no OpenMP. */
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif

#define FC_RESTRICT __restrict__
#endif
