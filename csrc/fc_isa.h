/* Instruction sets: every csrc/<stem>.c is compiled once per set (setup.py),
 * and each compile exports one table of its kernels, picked at run time.
 *
 * A kernel object is compiled with FC_ISA = FC_ISA_BASELINE, FC_ISA_AVX2 or
 * FC_ISA_AVX512 and that set's flags (x86-64-v2, -v3, -v4; plain C off
 * x86-64).  There FC_NAME(f) suffixes a kernel's name with the set
 * (direct_block_a_f32__avx2), so that profiles tell the copies apart, and
 * FC_VEC_BYTES / FC_VEC_REGS describe the register file that the blocked
 * kernels size their tiles for.
 *
 * The Cython wrapper is compiled once (FC_ISA undefined) with
 * FC_BUILT_AVX2 / FC_BUILT_AVX512 set for the sets whose objects were
 * built; FC_ISA_TABLES(stem) declares the tables and gives it
 *     fc_<stem>                the active table (baseline until told),
 *     fc_<stem>_use(level)     point it at the best set built at or below
 *                              level (0 baseline, 1 avx2, 2 avx512) and
 *                              return that set's name.
 * fastconv._isa decides the level, once, from CPUID (csrc/isa.c). */
#ifndef FASTCONV_ISA_H
#define FASTCONV_ISA_H

#define FC_ISA_BASELINE 0
#define FC_ISA_AVX2 1
#define FC_ISA_AVX512 2

#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)

#if defined(FC_ISA)
#  if FC_ISA == FC_ISA_AVX512
#    if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || !defined(__AVX512VL__)
#      error "FC_ISA_AVX512 objects need -march=x86-64-v4 (AVX-512 F/BW/DQ/VL)"
#    endif
#    define FC_ISA_SUFFIX __avx512
#    define FC_ISA_NAME "avx512"
#    define FC_VEC_BYTES 64          /* zmm */
#    define FC_VEC_REGS 32
#    define FC_HAS_FMA 1
#  elif FC_ISA == FC_ISA_AVX2
#    if !defined(__AVX2__) || !defined(__FMA__)
#      error "FC_ISA_AVX2 objects need -march=x86-64-v3 (AVX2 + FMA)"
#    endif
#    define FC_ISA_SUFFIX __avx2
#    define FC_ISA_NAME "avx2"
#    define FC_VEC_BYTES 32          /* ymm */
#    define FC_VEC_REGS 16
#    define FC_HAS_FMA 1
#  elif FC_ISA == FC_ISA_BASELINE
#    define FC_ISA_SUFFIX __baseline
#    define FC_ISA_NAME "baseline"
#    define FC_VEC_BYTES 16          /* xmm (SSE), or NEON's q registers */
#    if defined(__x86_64__)
#      define FC_VEC_REGS 16
#      define FC_HAS_FMA 0           /* x86-64-v2: a multiply, then an add */
#    elif defined(__aarch64__)
#      define FC_VEC_REGS 32
#      define FC_HAS_FMA 1
#    else
#      define FC_VEC_REGS 16
#      define FC_HAS_FMA 0
#    endif
#  else
#    error "unknown FC_ISA"
#  endif
#  define FC_NAME(f) FC_CAT(f, FC_ISA_SUFFIX)
#  define FC_ISA_TABLES(STEM) extern const fc_##STEM##_kernels FC_NAME(fc_##STEM##_kernels);
#else
/* The wrapper's side: the tables of the sets that were built. */
#  if defined(FC_BUILT_AVX2)
#    define FC_IF_AVX2(...) __VA_ARGS__
#  else
#    define FC_IF_AVX2(...)
#  endif
#  if defined(FC_BUILT_AVX512)
#    define FC_IF_AVX512(...) __VA_ARGS__
#  else
#    define FC_IF_AVX512(...)
#  endif
#  define FC_ISA_TABLES(STEM) \
    extern const fc_##STEM##_kernels fc_##STEM##_kernels__baseline; \
    FC_IF_AVX2(extern const fc_##STEM##_kernels fc_##STEM##_kernels__avx2;) \
    FC_IF_AVX512(extern const fc_##STEM##_kernels fc_##STEM##_kernels__avx512;) \
    static const fc_##STEM##_kernels *fc_##STEM = &fc_##STEM##_kernels__baseline; \
    static inline const char *fc_##STEM##_use(int level) \
    { \
        fc_##STEM = &fc_##STEM##_kernels__baseline; \
        FC_IF_AVX2(if (level >= FC_ISA_AVX2) fc_##STEM = &fc_##STEM##_kernels__avx2;) \
        FC_IF_AVX512(if (level >= FC_ISA_AVX512) fc_##STEM = &fc_##STEM##_kernels__avx512;) \
        return fc_##STEM->isa; \
    }
#endif

/* In a kernel object: the definition of this set's table of STEM. */
#define FC_ISA_TABLE(STEM) const fc_##STEM##_kernels FC_NAME(fc_##STEM##_kernels)

#endif
