# cython: boundscheck=False, wraparound=False
"""The CPU probe over csrc/isa.c: which instruction set this CPU runs, and what it is.

Compiled for the compiler's default target, not the kernels' baseline, so
that it runs on any CPU; fastconv._isa calls it once.
"""

cdef extern from "isa.h":
    int fc_cpu_level()
    int fc_cpu_ident(char *vendor, char *brand, int *family, int *model)


def cpu_level():
    """The best instruction set this CPU and OS run: 2 avx512, 1 avx2, 0 baseline, -1 below it."""
    return fc_cpu_level()


def cpu_ident():
    """(vendor, brand string, family, model) from CPUID, or None off x86-64."""
    cdef char vendor[13]
    cdef char brand[49]
    cdef int family, model
    if not fc_cpu_ident(vendor, brand, &family, &model):
        return None
    return vendor.decode("ascii", "replace"), brand.decode("ascii", "replace").strip(), family, model
