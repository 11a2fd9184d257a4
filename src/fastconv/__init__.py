"""fastconv: fast 2-D convolution on the CPU.

``conv2d`` follows PyTorch (NCHW cross-correlation), ``convolve2d`` and
``correlate2d`` follow scipy.signal; ``backend="auto"`` picks the algorithm
(naive, im2col, fft, winograd) and the engine (cython, numba) per shape.

Importing fastconv compiles nothing and imports neither scipy nor numba: the
engines load on the first call that needs them.
"""
__version__ = "0.1.0"

from . import _isa, filters
from ._conv import conv2d
from ._dispatch import backends
from ._select import explain, set_tuning, tune
from ._signal import convolve2d, correlate2d
from ._threads import get_num_threads, num_threads, set_num_threads

# FASTCONV_ISA is checked at import: a bad value fails here, not in the first kernel call.
_isa.active()

__all__ = [
    "__version__", "conv2d", "convolve2d", "correlate2d", "backends", "explain", "tune", "set_tuning",
    "filters", "get_num_threads", "set_num_threads", "num_threads",
]
