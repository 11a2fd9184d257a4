"""Scratch arrays kept between calls, per thread.

A fresh multi-megabyte numpy array costs its page faults on first touch
(measured about 0.5 ms per MB on this project's VMs, as much as packing or
transforming a small layer), and glibc hands freed large blocks back to the
OS, so the next call faults again.  Backends that need scratch space of the
same size call after call (im2col's column matrix, the direct kernel's phase
planes, the FFT's single-plane spectra) take it from here instead.  Buffers
are per thread, so concurrent calls from several Python threads never share
one, and only buffers up to ``keep_bytes`` are kept, so a one-off huge call
does not pin its memory for the process's lifetime.
"""
import math
import threading

import numpy as np

_local = threading.local()


def buffer(name, shape, dtype, keep_bytes=64 << 20):
    """An uninitialised array of ``shape``, reused by later calls with ``name``.

    Parameters
    ----------
    name : str
        The slot; one buffer per name and thread, grown as needed.
    shape : tuple of int
    dtype : dtype
    keep_bytes : int
        Larger buffers are allocated for this call only.

    Returns
    -------
    ndarray
        C-contiguous; its contents are whatever the last user left.

    Examples
    --------
    >>> from fastconv._workspace import buffer
    >>> a = buffer("doc", (2, 3), "float32")
    >>> b = buffer("doc", (3, 2), "float32")
    >>> a.shape, b.shape, bool(a.base is b.base)
    ((2, 3), (3, 2), True)
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    key = f"{name}|{dtype.str}"
    buf = getattr(_local, key, None)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype)
        if buf.nbytes <= keep_bytes:
            setattr(_local, key, buf)
    return buf[:size].reshape(shape)
