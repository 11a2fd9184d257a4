# cython: boundscheck=False, wraparound=False
"""What the Cython engine was built with: OpenMP or not, and its thread pool."""

cdef extern from "fc_common.h":
    int omp_get_max_threads() nogil

IF FASTCONV_HAS_OPENMP:
    HAS_OPENMP = True
ELSE:
    HAS_OPENMP = False


def max_threads():
    """OpenMP's default team size (1 when built without OpenMP)."""
    return omp_get_max_threads()
