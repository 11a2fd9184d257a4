"""The Cython/OpenMP engine: thin nogil wrappers over the C kernels in csrc/."""
