"""Where each engine's kernels live, and which engines this install has.

An engine module of stem ``s`` is ``fastconv._cython.s`` (compiled from
``_cython/s.pyx`` and ``csrc/s.c``) or ``fastconv._numba.s``; both expose the
same functions with the same arguments, so a backend calls
``kernels(engine, "im2col").pack(...)`` whichever engine was chosen.
"""
import importlib
from functools import lru_cache

from . import _threads

ENGINES = ("cython", "numba")


@lru_cache(maxsize=None)
def _load(engine, stem):
    try:
        return importlib.import_module(f"fastconv._{engine}.{stem}")
    except ImportError as exc:
        return exc


def kernels(engine, stem):
    """The engine module for ``stem``; ValueError if this install lacks it.

    In a fork child (``_threads.forked()``) Numba's kernels are served by the
    Cython engine's, which take the same arguments: Numba's OpenMP and TBB
    layers terminate a child of a process that used OpenMP.
    """
    if engine == "numba" and _threads.forked():
        if has("cython", stem):
            return _load("cython", stem)
        raise RuntimeError(f"engine='numba' cannot run {stem!r} kernels in a fork child of a process "
                           "that used OpenMP, and this install has no Cython engine for them; "
                           "start the process with multiprocessing's 'spawn' or 'forkserver' method")
    mod = _load(engine, stem)
    if isinstance(mod, ImportError):
        raise ValueError(f"engine={engine!r} is not available for {stem!r} here: {mod}")
    return mod


def has(engine, stem):
    """True when ``engine`` has kernels for ``stem`` in this install.

    Numba modules are found, not imported (importing numba costs ~0.3 s).
    """
    if engine == "numba":
        return numba_available() and _numba_found(stem)
    return not isinstance(_load(engine, stem), ImportError)


@lru_cache(maxsize=None)
def _numba_found(stem):
    # Found once per process: a file-system search costs ~85 us, a tenth of a small call.
    import importlib.util
    return importlib.util.find_spec(f"fastconv._numba.{stem}") is not None


@lru_cache(maxsize=None)
def numba_available():
    """True when numba is installed (found, not imported: importing it costs ~0.3 s)."""
    import importlib.util
    return importlib.util.find_spec("numba") is not None


def _numba_dispatchers(stem):
    import sys
    mod = sys.modules.get(f"fastconv._numba.{stem}")
    if mod is None:
        return []
    return [v for v in vars(mod).values() if hasattr(v, "signatures") and hasattr(v, "py_func")]


def numba_compiled(stem):
    """True when ``stem``'s Numba kernels have compiled in this process.

    Looked up without importing anything: a module never imported has not
    compiled.
    """
    ds = _numba_dispatchers(stem)
    return bool(ds) and all(d.signatures for d in ds)


def numba_compiled_list():
    """``stem:function[n signatures]`` for every Numba kernel compiled in this process."""
    import sys
    out = []
    for name in sorted(sys.modules):
        if name.startswith("fastconv._numba.") and sys.modules[name] is not None:
            stem = name.rsplit(".", 1)[1]
            out.extend(f"{stem}.{d.py_func.__name__}[{len(d.signatures)}]"
                       for d in _numba_dispatchers(stem) if d.signatures)
    return out


def pick(stem, engine="auto", what="engine"):
    """The engine to run ``stem``'s kernels: the named one, or for ``auto``
    the first available in ENGINES order (Cython first: it starts without a
    JIT compile).  ValueError names the argument when it cannot be had."""
    if engine not in ("auto",) + ENGINES:
        raise ValueError(f"{what}: engine must be 'auto', 'cython' or 'numba', got {engine!r}")
    for e in (ENGINES if engine == "auto" else (engine,)):
        if has(e, stem):
            return e
    raise ValueError(f"{what}: no engine{'' if engine == 'auto' else ' ' + repr(engine)} "
                     f"has {stem!r} kernels in this install")


def openmp_status():
    """(built with OpenMP, OpenMP's default team size) of the Cython engine."""
    mod = _load("cython", "openmp")
    if isinstance(mod, ImportError):
        return False, 0
    return bool(mod.HAS_OPENMP), mod.max_threads()
