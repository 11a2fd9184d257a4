"""Which backends and engines this install has, and which can serve a geometry.

Both the dispatcher (``_dispatch``) and the cost model (``_select``) ask
these questions; they live here so that neither module imports the other
in a circle (``_dispatch`` asks ``_select`` to choose, ``_select`` asks
this module what there is to choose from).
"""
import importlib
from functools import lru_cache

from . import _engines
from .backends import BACKENDS


@lru_cache(maxsize=None)
def _module(name):
    try:
        return importlib.import_module(f"fastconv.backends.{name}")
    except ImportError:
        return None


def backend_module(name):
    mod = _module(name)
    if mod is None:
        raise ValueError(f"backend {name!r} is not available in this install")
    return mod


def backends():
    """Names of the convolution backends available in this install.

    Examples
    --------
    >>> import fastconv
    >>> "naive" in fastconv.backends()
    True
    """
    return [b for b in BACKENDS if _module(b) is not None]


def engines(backend):
    """Engines that can run ``backend``'s kernels here, fastest to start first."""
    mod = backend_module(backend)
    out = []
    for e in _engines.ENGINES:
        if e not in mod.ENGINES:
            continue
        if not _engines.has(e, getattr(mod, "STEM", backend)):
            continue
        out.append(e)
    return out


def candidates(p, integer=False):
    """(backend, engine) pairs that can serve geometry ``p``."""
    out = []
    for b in backends():
        mod = backend_module(b)
        if mod.unsupported(p) is not None or (integer and not getattr(mod, "INTEGER_OK", False)):
            continue
        out.extend((b, e) for e in engines(b))
    return out
