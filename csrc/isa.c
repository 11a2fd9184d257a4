/* The CPU probe behind fastconv._isa (see isa.h). */
#include <string.h>
#include "isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

int fc_cpu_level(void)
{
    __builtin_cpu_init();
    if (!(__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3")
          && __builtin_cpu_supports("popcnt")))
        return -1;
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
          && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2")
          && __builtin_cpu_supports("f16c")))
        return 0;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
          && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq")
          && __builtin_cpu_supports("avx512vl")))
        return 1;
    return 2;
}

int fc_cpu_ident(char *vendor, char *brand, int *family, int *model)
{
    unsigned a, b, c, d;
    memset(vendor, 0, 13);
    memset(brand, 0, 49);
    *family = *model = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d))
        return 0;
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        const int fam = (int)((a >> 8) & 0xf), mod = (int)((a >> 4) & 0xf);
        *family = fam == 0xf ? fam + (int)((a >> 20) & 0xff) : fam;
        *model = (fam == 0x6 || fam == 0xf) ? mod + (int)(((a >> 16) & 0xf) << 4) : mod;
    }
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u)
        for (unsigned leaf = 0; leaf < 3; ++leaf) {
            unsigned r[4];
            __get_cpuid(0x80000002u + leaf, &r[0], &r[1], &r[2], &r[3]);
            memcpy(brand + 16 * leaf, r, 16);
        }
    return 1;
}

#else

int fc_cpu_level(void) { return 0; }

int fc_cpu_ident(char *vendor, char *brand, int *family, int *model)
{
    memset(vendor, 0, 13);
    memset(brand, 0, 49);
    *family = *model = 0;
    return 0;
}

#endif
