"""The choice behind ``backend="auto"``.

A first, static rule until the calibrated cost model lands: the fastest
general backend available that serves the shape.
"""
from . import _dispatch

_PREFERENCE = ("winograd", "im2col", "fft", "naive")


def choose(p, engine="auto", integer=False):
    """Return ``(backend, engine)`` for geometry ``p``."""
    cands = _dispatch.candidates(p, integer=integer)
    if engine != "auto":
        cands = [c for c in cands if c[1] == engine]
    if not cands:
        raise ValueError(f"no backend can serve this call with engine={engine!r}")
    rank = {b: i for i, b in enumerate(_PREFERENCE)}
    return min(cands, key=lambda c: (rank.get(c[0], 99), c[1] != "cython"))
