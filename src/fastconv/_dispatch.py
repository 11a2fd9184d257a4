"""Choosing the backend and engine for a call: the one place ``auto`` is resolved.

``resolve`` honours a backend or engine named by the caller (raising
``ValueError`` with the reason when it cannot serve the call) and otherwise
picks among the candidates that can.
"""
import numpy as np

from . import _engines, _select
from ._registry import _module, backend_module, backends, candidates, engines  # noqa: F401 (re-exported)
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
