"""Choosing the backend and engine for a call: the one place ``auto`` is resolved.

``resolve`` honours a backend or engine named by the caller (raising
``ValueError`` with the reason when it cannot serve the call) and otherwise
picks among the candidates that can.
"""
import numpy as np

from . import _engines, _select
from ._registry import (_module, backend_module, backends, candidates, engines,  # noqa: F401 (re-exported)
                        workspace_bytes)
from ._threads import get_num_threads
from ._workspace import check_allocation, max_workspace
from .backends import BACKENDS


def _check_names(backend, engine):
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {list(BACKENDS)}, got {backend!r}")
    if engine != "auto" and engine not in _engines.ENGINES:
        raise ValueError(f"engine must be 'auto', 'numba' or 'cython', got {engine!r}")


def _pick_engine(backend, engine):
    avail = engines(backend)
    if engine == "auto":
        if not avail:
            raise ValueError(f"backend {backend!r} has no engine available in this install")
        return avail[0]
    if engine not in avail:
        raise ValueError(f"engine {engine!r} cannot run backend {backend!r} here "
                         f"(available: {avail or 'none'})")
    return engine


def resolve(p, backend="auto", engine="auto", integer=False, exact=False):
    """Return ``(backend_module, engine)`` for geometry ``p``.

    ``exact=True`` (for inputs holding NaN or Inf) keeps ``auto`` off the
    backends that would spread a non-finite value over a whole tile.
    """
    _check_names(backend, engine)
    if backend != "auto":
        mod = backend_module(backend)
        why = mod.unsupported(p)
        if why is None and integer and not getattr(mod, "INTEGER_OK", False):
            why = "it computes in floating point and cannot reproduce integer arithmetic exactly"
        if why is not None:
            raise ValueError(f"backend {backend!r} cannot serve this call: {why}")
        return mod, _pick_engine(backend, engine)
    b, e = _select.choose(p, engine=engine, integer=integer, exact=exact)
    return backend_module(b), e


def resolve_for(p, backend, engine, arrays, integer=False):
    """``resolve`` for a call on ``arrays``: ``auto`` steers non-finite data
    away from backends that would spread a NaN or Inf over a whole tile."""
    if backend != "auto":
        return resolve(p, backend, engine, integer=integer)
    _check_names(backend, engine)
    # The hot path of every auto call: a memo lookup and no more (small
    # layers take 30 us, and each microsecond here is 3% of them).
    b, e = _select.choose(p, engine=engine, integer=integer)
    if b in _select.INEXACT_ON_NONFINITE and not integer \
            and not all(np.isfinite(a).all() for a in arrays):
        b, e = _select.choose(p, engine=engine, integer=integer, exact=True)
    return _module(b), e


def run(x, w, p, backend="auto", engine="auto", integer=False):
    """Convolve checked, contiguous arrays by geometry ``p``: the one place a
    backend is called.

    Before anything is allocated, an output the system cannot hold is refused
    (``MemoryError`` naming the geometry and the bytes).  Outputs whose windows
    read only padding are exact zeros and are not computed (a padding of
    10,000 on a small image: an FFT or Winograd tile over it would spread
    rounding noise there).  A call whose backend needs more scratch memory
    than the budget (``FASTCONV_MAX_WORKSPACE``) runs in bands of output rows.
    """
    if p.out_bytes > 1 << 30:
        check_allocation(p.out_bytes, _output_named(p))
    try:
        return _run_live(x, w, p, backend, engine, integer)
    except MemoryError as exc:
        # The system's free memory is not the process's: a ulimit, a cgroup or
        # fragmentation can refuse what check_allocation let through, and
        # numpy's message names no argument.
        if str(exc).startswith("conv2d:"):
            raise
        raise MemoryError(f"{_output_named(p)} ({p.out_bytes} bytes), or its workspace, could not be "
                          f"allocated: {exc}") from None


def _output_named(p):
    # Formatted only on the way to an error: run() is every call's hot path.
    return f"conv2d: the output {p.out_shape} of padding {p.pad}, stride {p.stride} and dilation {p.dilation}"


def _run_live(x, w, p, backend, engine, integer):
    live = p.live
    if live is None:
        return _run_banded(x, w, p, backend, engine, integer)
    o0, o1, q0, q1 = live
    y = np.zeros(p.out_shape, x.dtype)
    if o1 > o0 and q1 > q0:
        sub, (i0, i1, j0, j1) = p.band(o0, o1, q0, q1)
        xs = np.ascontiguousarray(x[:, :, i0:i1, j0:j1])
        y[:, :, o0:o1, q0:q1] = _run_banded(xs, w, sub, backend, engine, integer)
    return y


def _run_banded(x, w, p, backend, engine, integer):
    mod, eng = resolve_for(p, backend, engine, (x, w), integer)
    n_threads = get_num_threads()
    budget = max_workspace()
    ws = workspace_bytes(mod, p)
    if ws <= budget:
        return mod.conv2d(x, w, p, eng, n_threads)
    rows = max(1, min(p.OH, p.OH * budget // ws))
    while rows > 1 and mod.workspace_bytes(p.band(0, rows, 0, p.OW)[0]) > budget:
        rows //= 2
    one = mod.workspace_bytes(p.band(0, rows, 0, p.OW)[0])
    if one > budget:
        raise MemoryError(f"conv2d: backend {mod.__name__.rsplit('.', 1)[-1]!r} needs {one} bytes of "
                          f"workspace for one output row of {p.out_shape}, over the "
                          f"FASTCONV_MAX_WORKSPACE budget of {budget} bytes")
    y = np.empty(p.out_shape, x.dtype)
    for o0 in range(0, p.OH, rows):
        o1 = min(p.OH, o0 + rows)
        sub, (i0, i1, j0, j1) = p.band(o0, o1, 0, p.OW)
        xs = np.ascontiguousarray(x[:, :, i0:i1, j0:j1])
        y[:, :, o0:o1] = mod.conv2d(xs, w, sub, eng, n_threads)
    return y
