"""Shared fixtures: seeded generators and the optional oracles."""
import os
import shutil
import tempfile

import numpy as np
import pytest


def pytest_configure(config):
    # The suite keeps a tuning cache of its own: the user's (~/.cache/fastconv)
    # holds tuned shapes and the first self-measurement made on the machine,
    # which decided picks that tests pin (on an AMD EPYC Zen 5 a stored
    # factor once failed a cost-model test), and tests must not write to it.
    # Tests that need another directory still set it themselves.
    config._fastconv_cache = tempfile.mkdtemp(prefix="fastconv-tests-")
    os.environ["FASTCONV_CACHE_DIR"] = config._fastconv_cache


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "_fastconv_cache", ""), ignore_errors=True)


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


def unfused_epilogue(y, bias, residual, relu):
    """``relu((y + residual) + bias)`` as separate numpy passes, in the order the
    fused epilogues keep (each part when given).  ``bias`` runs along the axes
    after y's first: (K,) for NCHW outputs, (B2, M) for stacked matrices."""
    if residual is not None:
        y = y + residual
    if bias is not None:
        y = y + bias.reshape(bias.shape + (1,) * (y.ndim - 1 - bias.ndim))
    return np.maximum(y, y.dtype.type(0)) if relu else y


def run_isolated(code, timeout=120):
    """Run ``code`` in a fresh interpreter with this checkout's fastconv first on
    the path; a crash (signal) or a hang is then a failed assertion, not a dead run.

    Returns the child's stdout; fails the test on a non-zero exit or a timeout.
    """
    import os
    import subprocess
    import sys
    import textwrap
    # The fastconv this run imported (an installed copy in CI, the source tree in development).
    import fastconv
    src = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    try:
        res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                             text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the call did not return within {timeout} s")
    assert res.returncode == 0, (f"the child exited with status {res.returncode} "
                                 f"(negative: killed by that signal)\n{res.stderr[-2000:]}")
    return res.stdout
