"""Memory: a training step keeps only what backward needs."""
import tracemalloc

import numpy as np

import fastconv.nn.functional as F
from fastconv import nn, optim
from fastconv.models import LeNet5


def test_lenet_step_allocates_at_most_three_times_its_activations():
    nn.manual_seed(0)
    model = LeNet5()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(nn.Tensor(x)), nn.Tensor(y)).backward()
        opt.step()

    step()  # optimizer state and caches exist before measuring
    activations = 0
    h = nn.Tensor(x)
    with nn.no_grad():
        for layer in model.features:
            h = layer(h)
            activations += h.data.nbytes
        h = F.flatten(h, 1)
        for layer in model.classifier:
            h = layer(h)
            activations += h.data.nbytes
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= 3 * activations, f"peak {peak / 1e6:.2f} MB vs activations {activations / 1e6:.2f} MB"


# --- bounded memory: workspace budget, bands, the integer path -----------------

import pytest  # noqa: E402
import scipy.signal  # noqa: E402

import fastconv  # noqa: E402
from fastconv import _dispatch, _select, _workspace  # noqa: E402
from fastconv._validation import conv2d_args  # noqa: E402


def _peak(fn):
    """(result, peak bytes allocated through tracemalloc during ``fn()``)."""
    fn()            # kept buffers and caches exist before measuring
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.fixture
def budget(monkeypatch):
    """Set the workspace budget (FASTCONV_MAX_WORKSPACE, read once) for one test."""
    def set_budget(nbytes):
        monkeypatch.setattr(_workspace, "_budget", [nbytes])
        _select.reset()
    yield set_budget
    _select.reset()


class TestWorkspaceBudget:
    def test_every_backend_reports_its_workspace(self):
        p = conv2d_args(np.zeros((2, 4, 16, 16)), np.zeros((4, 4, 3, 3)), None, 1, 1, 1, 1)[3]
        for b in fastconv.backends():
            ws = _dispatch.backend_module(b).workspace_bytes(p)
            assert isinstance(ws, int) and ws >= 0, b

    @pytest.mark.parametrize("backend", ["auto", "im2col", "naive", "direct"])
    def test_a_call_over_budget_runs_in_bands_within_it(self, rng, budget, backend):
        # A dilated 5x5 layer whose whole column matrix is 19x the budget (the
        # (1,64,1167,1167) layer of pytorch#9404 asked for 8 GiB at once).
        x = rng.standard_normal((1, 16, 120, 120)).astype(np.float32)
        w = rng.standard_normal((8, 16, 5, 5)).astype(np.float32)
        p = conv2d_args(x, w, None, 1, 0, 2, 1)[3]
        cap = 1 << 20
        assert _dispatch.backend_module("im2col").workspace_bytes(p) > 16 * cap
        want = fastconv.conv2d(x, w, dilation=2, backend="naive")
        budget(cap)
        y, peak = _peak(lambda: fastconv.conv2d(x, w, dilation=2, backend=backend))
        assert np.abs(y - want).max() <= 1e-4 * np.abs(want).max()
        assert peak <= 2 * (x.nbytes + y.nbytes) + cap, peak

    def test_auto_never_picks_a_backend_over_budget(self, budget):
        p = conv2d_args(np.zeros((8, 64, 56, 56), np.float32), np.zeros((64, 64, 3, 3), np.float32),
                        None, 1, 1, 1, 1)[3]
        sizes = {b: _dispatch.backend_module(b).workspace_bytes(p) for b in fastconv.backends()
                 if _dispatch.backend_module(b).unsupported(p) is None}
        for cap in sorted(sizes.values()):
            budget(cap)
            b, _ = _select.choose(p)
            assert sizes[b] <= cap, (cap, b, sizes)


class TestIntegerSignalMemory:
    def test_int8_convolve2d_stays_near_its_own_bytes(self, rng):
        # Widening the whole image to int64 and padding a copy took 12x the
        # input and output bytes, where scipy needs 1.5x.
        a = rng.integers(-128, 128, (600, 700), dtype=np.int8)
        k = rng.integers(-3, 4, (5, 5), dtype=np.int8)
        out, peak = _peak(lambda: fastconv.convolve2d(a, k))
        np.testing.assert_array_equal(out, scipy.signal.convolve2d(a, k))
        assert peak <= 2 * (a.nbytes + out.nbytes), peak / (a.nbytes + out.nbytes)
