#ifndef FASTCONV_ISA_PROBE_H
#define FASTCONV_ISA_PROBE_H

/* What this CPU can run, asked once by fastconv._isa.  Compiled for the
 * compiler's default target (never -march=x86-64-v2 or above), so that it
 * runs on any CPU and can say what is missing.
 *
 * fc_cpu_level: the best instruction set (fc_isa.h) whose kernels this CPU
 * and its operating system can run: 2 (AVX-512 F/BW/CD/DQ/VL, with AVX2 and
 * FMA), 1 (AVX2, FMA, BMI1/2, F16C), 0 (x86-64-v2: SSE4.2, SSSE3, POPCNT;
 * any CPU off x86-64), or -1 (an x86-64 CPU below x86-64-v2).
 * __builtin_cpu_supports reports AVX and AVX-512 only when the OS saves
 * their registers (XGETBV), so a set reported here is safe to run.
 *
 * fc_cpu_ident: vendor (13 bytes), brand string (49 bytes), family and model
 * (the display values, extended fields folded in); 0 when the CPU has no
 * CPUID (off x86-64), 1 otherwise. */
int fc_cpu_level(void);
int fc_cpu_ident(char *vendor, char *brand, int *family, int *model);
#endif
