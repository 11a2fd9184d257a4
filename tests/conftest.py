"""Shared fixtures: seeded generators and the optional oracles."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def engines_for(backend):
    """The engines this install can run ``backend`` on (for parametrize)."""
    from fastconv import _dispatch
    try:
        return _dispatch.engines(backend)
    except ValueError:
        return []


def rel_err(out, ref):
    """Max error relative to the output's scale."""
    ref = np.asarray(ref, dtype=np.float64)
    scale = max(np.abs(ref).max(initial=0.0), 1e-30)
    return float(np.abs(np.asarray(out, dtype=np.float64) - ref).max(initial=0.0) / scale)


TOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}
