"""Thread counts for every pool fastconv drives: OpenMP, Numba and BLAS.

One setting serves all three.  Kernels run their own parallel loops and call
BLAS only outside them, so the pools never nest; ``n_threads`` is passed to
every native kernel explicitly rather than read from the environment.

The default count follows the ecosystem's conventions, in order:
``FASTCONV_NUM_THREADS``; ``OMP_NUM_THREADS`` (Dask's nanny sets it to 1 in
every worker, Ray to the task's CPUs); the CPUs this process may run on, as
the affinity mask and the cgroup CPU quota allow (a container limited to 2
CPUs on a 64-core host must not start 64 threads).  Read once per process.
"""
import math
import os
import sys
import threading
import warnings
from functools import lru_cache

_lock = threading.Lock()
_n_threads = None          # None: the default (see default_num_threads)
_blas = {"applied": None, "controller": None, "modules": None, "setters": [], "hold": 0}


def _parse_count(value, name):
    """A positive thread count from an environment variable, or None when unset/empty."""
    if value is None or not value.strip():
        return None
    # OMP_NUM_THREADS may list one count per nesting level ("4,2"): the outer one is ours.
    head = value.split(",")[0].strip() if name == "OMP_NUM_THREADS" else value.strip()
    try:
        n = int(head)
    except ValueError:
        n = 0
    if n >= 1:
        return n
    msg = f"{name} must be a positive integer, got {value!r}"
    if name == "OMP_NUM_THREADS":
        # libgomp ignores a malformed value too; fastconv's own variable is refused.
        warnings.warn(msg + "; ignoring it", RuntimeWarning, stacklevel=3)
        return None
    raise ValueError(msg)


def cgroup_cpu_limit(root="/sys/fs/cgroup", proc_cgroup="/proc/self/cgroup"):
    """CPUs allowed by the cgroup CPU quota (rounded up), or None when unlimited.

    Reads cgroup v2's ``cpu.max`` and v1's ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` for this process's group and every ancestor, and
    keeps the tightest, as the JVM and Go's runtime do.

    Examples
    --------
    >>> from fastconv._threads import cgroup_cpu_limit
    >>> n = cgroup_cpu_limit()
    >>> n is None or n >= 1
    True
    """
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":                       # cgroup v2
            bases, names = [root], ("cpu.max",)
        elif "cpu" in controllers.split(","):       # cgroup v1
            bases = [os.path.join(root, c) for c in (controllers, "cpu", "cpu,cpuacct")]
            names = ("cpu.cfs_quota_us", "cpu.cfs_period_us")
        else:
            continue
        for base in bases:
            rel = path.strip("/")
            while True:
                q = _read_quota(os.path.join(base, rel), names)
                if q is not None:
                    limits.append(q)
                if not rel:
                    break
                rel = os.path.dirname(rel)
    return max(1, math.ceil(min(limits))) if limits else None


def _read_quota(folder, names):
    try:
        if len(names) == 1:
            with open(os.path.join(folder, names[0])) as f:
                quota, period = (f.read().split() + ["100000"])[:2]
        else:
            with open(os.path.join(folder, names[0])) as f:
                quota = f.read().strip()
            with open(os.path.join(folder, names[1])) as f:
                period = f.read().strip()
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    try:
        quota, period = int(quota), int(period)
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


@lru_cache(maxsize=None)
def default_num_threads():
    """The thread count when none was set: the environment, else the CPUs allowed.

    Asked once per process: every call resolves its thread count, and the
    affinity system call was a tenth of auto's dispatch time on a 30 us call.

    Examples
    --------
    >>> from fastconv._threads import default_num_threads
    >>> default_num_threads() >= 1
    True
    """
    for name in ("FASTCONV_NUM_THREADS", "OMP_NUM_THREADS"):
        n = _parse_count(os.environ.get(name), name)
        if n is not None:
            return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    return max(1, min(cpus, quota) if quota else cpus)


def get_num_threads():
    """Return the thread count fastconv's kernels use.

    ``set_num_threads`` wins; otherwise ``FASTCONV_NUM_THREADS``, then
    ``OMP_NUM_THREADS``, then the CPUs the affinity mask and cgroup quota allow.
    In a ``fork`` child of a process that ran fastconv's kernels it is 1
    whatever was set (see :func:`forked`).

    Examples
    --------
    >>> import fastconv
    >>> fastconv.get_num_threads() >= 1
    True
    """
    if _forked:
        return 1
    return _n_threads if _n_threads is not None else default_num_threads()


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
        Threads to use; ``None`` restores the default (``FASTCONV_NUM_THREADS``,
        ``OMP_NUM_THREADS``, else the CPUs this process may use).

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


def _blas_controllers():
    """threadpoolctl's handles on every loaded BLAS, listed again when a new one loads
    (importing the Cython GEMM loads scipy's OpenBLAS beside numpy's)."""
    _refresh_blas()
    return [c for c in _blas["controller"].lib_controllers if c.user_api == "blas"]


def _refresh_blas():
    # Cheap when nothing new loaded: a hold runs this around every product.
    if _blas["controller"] is not None and _blas["modules"] == _loaded_blas_count():
        return
    from threadpoolctl import ThreadpoolController
    ctl = ThreadpoolController()
    _blas["controller"] = ctl
    _blas["modules"] = _loaded_blas_count()
    _blas["setters"] = [_setter(c) for c in ctl.lib_controllers if c.user_api == "blas"]


def _setter(lib):
    # OpenBLAS's own openblas_set_num_threads, found once.  threadpoolctl's
    # set_num_threads costs about 3 us per library per call (a hold around
    # every GEMM of a training step adds up), and for a pthreads OpenBLAS it
    # does nothing when called from another Python thread than the first
    # that set it: a hold taken on a Dask worker thread would not hold.
    # Calls are serialised by _lock.
    if lib.internal_api == "openblas":
        try:
            fn = lib._get_symbol("openblas_set_num_threads")
        except Exception:  # a threadpoolctl without the helper
            fn = None
        if fn is not None:
            return fn
    return lib.set_num_threads


def _loaded_blas_count():
    m = sys.modules
    return ("numpy" in m) + ("scipy.linalg" in m) + ("fastconv._cython.gemm" in m)


def apply_blas_threads(force=False):
    """Push the thread count to the loaded BLAS libraries (threadpoolctl).

    Cheap after the first call: threadpoolctl is consulted only when the count
    changed since it was last applied.  While a call holds BLAS at one thread
    (:class:`single_threaded_blas`) the new count is only recorded; the last
    holder to leave applies it.
    """
    n = get_num_threads()
    if _blas["applied"] == n and not force:
        return
    with _lock:
        if _blas["hold"] == 0:
            _set_blas(n)


def _set_blas(n):
    # Caller holds _lock.
    _refresh_blas()
    for set_threads in _blas["setters"]:
        set_threads(n)
    _blas["applied"] = n


class single_threaded_blas:
    """Hold every BLAS library at one thread for the duration of a block.

    fastconv's products run as one single-threaded BLAS call per block on its
    own OpenMP team (``fastconv._cython.gemm``).  A BLAS that starts its own
    threads inside that team oversubscribes the cores, prints OpenBLAS's
    "Detect OpenMP Loop" warning, and can round differently (other tail
    kernels), so results would depend on what other Python threads do.  The
    hold is counted across Python threads: BLAS returns to fastconv's thread
    count when the last holder leaves, and ``set_num_threads`` meanwhile only
    records the count.
    """

    def __enter__(self):
        with _lock:
            if _blas["hold"] == 0 and _blas["applied"] != 1:
                _set_blas(1)
            _blas["hold"] += 1
        return self

    def __exit__(self, *exc):
        with _lock:
            _blas["hold"] -= 1
            n = get_num_threads()
            if _blas["hold"] == 0 and _blas["applied"] != n:
                _set_blas(n)
        return False


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


_NUMBA_MARK = "_FASTCONV_NUMBA_NUM_THREADS"


def size_numba_pool():
    """Size Numba's pool by fastconv's default count, if Numba has not loaded yet.

    Numba sizes its pool from the host's cores when it loads: in a container
    allowed 2 of 64 CPUs it would start 64 threads.  An explicit
    ``NUMBA_NUM_THREADS`` is left as it is.  Imports Numba (the caller is
    about to).
    """
    if "numba" in sys.modules:
        return
    env = os.environ
    if env.get("NUMBA_NUM_THREADS") and env.get("NUMBA_NUM_THREADS") != env.get(_NUMBA_MARK):
        return  # the user's, not one a parent fastconv set
    # The variable must stay set: Numba re-reads its environment at every
    # compile and raises once its pool has started if the count changed.  The
    # mark lets a child process tell our value from a user's and size its own.
    env["NUMBA_NUM_THREADS"] = env[_NUMBA_MARK] = str(max(get_num_threads(), default_num_threads()))
    try:
        import numba  # noqa: F401
    except ImportError:
        pass


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


# --- fork ---------------------------------------------------------------------
# GNU OpenMP cannot be reused in a fork child: the parent's worker threads are
# gone, and the child's first team of more than one thread waits for them for
# ever (gcc bug 52303); Numba's OpenMP and TBB layers terminate the child
# instead.  As PyTorch does, a fork child of a process that ran fastconv's
# kernels runs them on one thread (a one-thread team never touches the pool)
# and routes Numba kernels to the Cython engine's (``_engines.kernels``).
_forked = False
_NATIVE = ("fastconv._cython.", "fastconv._numba.", "numba.np.ufunc.", "torch")
# Native modules that start no threads: the CPU probe, loaded by every import.
_NO_THREADS = frozenset({"fastconv._cython.isa"})


def forked():
    """True in a ``fork`` child of a process that had loaded native kernels
    (fastconv's engines, Numba's thread pools or torch's OpenMP).

    Examples
    --------
    >>> from fastconv._threads import forked
    >>> forked()
    False
    """
    return _forked


def _after_fork_in_child():
    global _forked, _lock
    _forked = _forked or any(name.startswith(_NATIVE) and name not in _NO_THREADS
                             for name in list(sys.modules))
    # A lock another thread held at the fork stays held in the child for ever.
    _lock = threading.Lock()
    # BLAS gets the child's count (1) on its next use; a hold taken by a
    # thread that does not exist here must not pin it.
    _blas.update(applied=None, hold=0, controller=None)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
