"""The Numba engine: @njit(parallel=True, cache=True, nogil=True) kernels.

Each module here mirrors the Cython module and the C file of the same stem,
function for function.  Nothing is compiled at import; a kernel compiles on
its first call and is cached on disk for the next process.

Kernels that differ only in their transforms (the Winograd tiles) are
written out once per tile rather than made by a factory: Numba does not
cache functions built from closures on disk, and a compile in every new
process is the cost this engine exists to avoid.  The C side shares one
driver (csrc/winograd_driver.h).
"""
from .._threads import size_numba_pool

# Before any kernel module imports numba: its pool is sized when it loads.
size_numba_pool()
