"""Thread counts for every pool fastconv drives: OpenMP, Numba and BLAS.

One setting serves all three.  Kernels run their own parallel loops and call
BLAS only outside them, so the pools never nest; ``n_threads`` is passed to
every native kernel explicitly rather than read from the environment.
"""
import os
import threading
from functools import lru_cache

_lock = threading.Lock()
_n_threads = None          # None: the machine's cores
_blas_applied = None       # the count last pushed to BLAS
_blas_controller = None


@lru_cache(maxsize=None)
def _machine_cores():
    # Asked once: every call resolves its thread count, and the affinity
    # system call was a tenth of auto's dispatch time on a 30 us call.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def get_num_threads():
    """Return the thread count fastconv's kernels use.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.get_num_threads() >= 1
    True
    """
    return _n_threads if _n_threads is not None else _machine_cores()


def _check_count(n):
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"n_threads must be a positive integer or None, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n}")
    return n


def set_num_threads(n):
    """Set the thread count of OpenMP, Numba and BLAS together.

    Parameters
    ----------
    n : int or None
        Threads to use; ``None`` restores the default, the machine's cores.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.set_num_threads(1)
    >>> fastconv.get_num_threads()
    1
    >>> fastconv.set_num_threads(None)
    """
    global _n_threads
    with _lock:
        _n_threads = None if n is None else _check_count(n)
    apply_blas_threads(force=True)


class num_threads:
    """Context manager that sets the thread count and restores it on exit.

    Examples
    --------
    >>> import fastconv
    >>> with fastconv.num_threads(1):
    ...     fastconv.get_num_threads()
    1
    """

    def __init__(self, n):
        self._n = None if n is None else _check_count(n)

    def __enter__(self):
        self._saved = _n_threads
        set_num_threads(self._n)
        return self

    def __exit__(self, *exc):
        set_num_threads(self._saved)
        return False


def apply_blas_threads(force=False):
    """Push the thread count to the loaded BLAS libraries (threadpoolctl).

    Cheap after the first call: threadpoolctl is consulted only when the count
    changed since it was last applied.
    """
    global _blas_applied, _blas_controller
    n = get_num_threads()
    if _blas_applied == n and not force:
        return
    with _lock:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            return
        if _blas_controller is None:
            _blas_controller = ThreadpoolController()
        _blas_controller.limit(limits=n, user_api="blas")
        _blas_applied = n


_numba_layer_set = False


def _pick_numba_layer(numba):
    """Prefer a thread-safe layer: workqueue aborts when two Python threads
    enter parallel kernels at once (numba#8563), and fastconv's kernels
    release the GIL so that they can."""
    global _numba_layer_set
    _numba_layer_set = True
    for pool in ("tbbpool", "omppool"):
        try:
            __import__(f"numba.np.ufunc.{pool}")
        except Exception:
            continue
        numba.config.THREADING_LAYER = "threadsafe"
        return


def numba_threads(n):
    """Set Numba's thread count for the calling thread, clamped to its pool."""
    import numba
    if not _numba_layer_set:
        _pick_numba_layer(numba)
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def blas_info():
    """Describe the loaded BLAS libraries: name, version, threads, kernel."""
    from threadpoolctl import threadpool_info
    return [
        {k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "filepath")}
        for d in threadpool_info() if d.get("user_api") == "blas"
    ]
