"""The Cython/OpenMP engine: thin nogil wrappers over the C kernels in csrc/.

fastconv alternates OpenMP regions (packing, transforms) with BLAS calls
that want every core.  libgomp's default lets idle workers spin after a
region, and on a machine with few cores those spinning workers take the
cores BLAS is about to use: measured here (2 cores), an im2col ResNet layer
ran 2x slower.  So, unless the user chose otherwise, OpenMP workers sleep
when idle.  This must be set before libgomp loads, which happens when the
first module of this package is imported.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
