"""Where each engine's kernels live, and which engines this install has.

An engine module of stem ``s`` is ``fastconv._cython.s`` (compiled from
``_cython/s.pyx`` and ``csrc/s.c``) or ``fastconv._numba.s``; both expose the
same functions with the same arguments, so a backend calls
``kernels(engine, "im2col").pack(...)`` whichever engine was chosen.
"""
import importlib
from functools import lru_cache

ENGINES = ("cython", "numba")


@lru_cache(maxsize=None)
def _load(engine, stem):
    try:
        return importlib.import_module(f"fastconv._{engine}.{stem}")
    except ImportError as exc:
        return exc


def kernels(engine, stem):
    """The engine module for ``stem``; ValueError if this install lacks it."""
    mod = _load(engine, stem)
    if isinstance(mod, ImportError):
        raise ValueError(f"engine={engine!r} is not available for {stem!r} here: {mod}")
    return mod


def has(engine, stem):
    """True when ``engine`` has kernels for ``stem`` in this install."""
    return not isinstance(_load(engine, stem), ImportError)


@lru_cache(maxsize=None)
def numba_available():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def openmp_status():
    """(built with OpenMP, OpenMP's default team size) of the Cython engine."""
    mod = _load("cython", "openmp")
    if isinstance(mod, ImportError):
        return False, 0
    return bool(mod.HAS_OPENMP), mod.max_threads()
