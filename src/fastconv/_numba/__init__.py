"""The Numba engine: @njit(parallel=True, cache=True, nogil=True) kernels.

Each module here mirrors the Cython module and the C file of the same stem,
function for function.  Nothing is compiled at import; a kernel compiles on
its first call and is cached on disk for the next process.
"""
