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
import os
import threading

import numpy as np

_local = threading.local()

#: The workspace budget's default: this share of the memory available when
#: fastconv first asks.
DEFAULT_BUDGET_SHARE = 0.25
_budget = []


def available_bytes():
    """Memory the system could still hand out now: MemAvailable plus free
    swap (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            info = {ln.split(":")[0]: int(ln.split()[1]) * 1024 for ln in f if ln.split()[1:]}
        return info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 1 << 34


def max_workspace():
    """The scratch memory one call may take, in bytes: ``FASTCONV_MAX_WORKSPACE``
    when set, else a quarter of the memory available at the first call.  Read
    once: the one place the budget is decided.

    Examples
    --------
    >>> from fastconv._workspace import max_workspace
    >>> max_workspace() > 0
    True
    """
    if not _budget:
        env = os.environ.get("FASTCONV_MAX_WORKSPACE", "").strip()
        if env:
            try:
                value = int(float(env))
            except ValueError:
                raise ValueError(f"FASTCONV_MAX_WORKSPACE must be a number of bytes, got {env!r}") from None
        else:
            value = int(DEFAULT_BUDGET_SHARE * available_bytes())
        _budget.append(max(value, 1 << 20))
    return _budget[0]


def _human(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}" if unit != "bytes" else f"{n} bytes"
        n /= 1024


def check_allocation(nbytes, what):
    """Raise MemoryError naming ``what`` when ``nbytes`` cannot be allocated now.

    Only requests past 1 GiB look at the system's free memory.
    """
    if nbytes > 1 << 30 and nbytes > available_bytes():
        raise MemoryError(f"{what} would take {nbytes} bytes ({_human(nbytes)}), more than the "
                          f"{_human(available_bytes())} this system can allocate")


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
