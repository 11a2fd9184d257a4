"""The Cython/OpenMP engine: thin nogil wrappers over the C kernels in csrc/.

All of fastconv's parallel work, matrix products included (``gemm.pyx``),
runs on one OpenMP team, so no second thread pool competes with libgomp's
spinning idle workers for the cores.
"""
