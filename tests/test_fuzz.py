"""Property tests over the whole public API (issue 18): random shapes (zero-size
ones too), dtypes, strides, paddings, dilations, groups and memory layouts
(non-contiguous, negative strides, big-endian, misaligned, read-only), on
every backend and engine.

Each call runs in a worker process (tests/fuzz_harness.py), so a crash or a
hang fails the test instead of ending the run; each result must equal its
oracle (NumPy float64 reference, scipy, torch) to the stated tolerance, or
the call must raise ValueError/TypeError/MemoryError naming an argument.

CI runs a bounded sample (FASTCONV_FUZZ_EXAMPLES per function, default 40:
about 360 calls); ``FASTCONV_FUZZ_EXAMPLES=N`` runs a longer campaign, and
benchmarks/fuzz_campaign.py a much longer one.
"""
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fuzz_harness as fh  # noqa: E402

pytest.importorskip("scipy")

EXAMPLES = int(os.environ.get("FASTCONV_FUZZ_EXAMPLES", "40"))


@pytest.fixture(scope="module")
def worker():
    w = fh.Worker(timeout=float(os.environ.get("FASTCONV_FUZZ_TIMEOUT", "120")))
    yield w
    w.close()


def _check(worker, r, api):
    case = fh.gen_case(r, api)
    (outcome,) = worker.run([case])
    kind, detail = fh.verdict(case, outcome)
    assert kind in ("ok", "unshipped"), f"{kind}: {fh.describe(case)} -> {detail}"


_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture])


class TestConv2d:
    @_SETTINGS
    @given(r=st.randoms(use_true_random=False))
    def test_equals_the_reference_or_refuses_by_name(self, worker, r):
        _check(worker, r, "conv2d")


class TestConvolve2d:
    @_SETTINGS
    @given(r=st.randoms(use_true_random=False))
    def test_equals_scipy_or_refuses_by_name(self, worker, r):
        _check(worker, r, "convolve2d")


class TestCorrelate2d:
    @_SETTINGS
    @given(r=st.randoms(use_true_random=False))
    def test_equals_scipy_or_refuses_by_name(self, worker, r):
        _check(worker, r, "correlate2d")


@pytest.mark.parametrize("api", ["mean_filter", "gaussian_filter", "sobel", "median_filter"])
class TestFilters:
    @_SETTINGS
    @given(r=st.randoms(use_true_random=False))
    def test_equals_scipy_ndimage_or_refuses_by_name(self, worker, r, api):
        _check(worker, r, api)


@pytest.mark.parametrize("api", ["max_pool2d", "avg_pool2d"])
class TestPooling:
    @_SETTINGS
    @given(r=st.randoms(use_true_random=False))
    def test_equals_torch_or_refuses_by_name(self, worker, r, api):
        pytest.importorskip("torch")
        _check(worker, r, api)


class TestHarness:
    """The harness itself: a crash and a hang are reported, not fatal."""

    def test_a_crashing_call_is_a_crash_and_the_worker_restarts(self):
        import numpy as np
        w = fh.Worker(timeout=20)
        try:
            kill = {"api": "conv2d", "arrays": {}, "kwargs": {}, "_raw": "import os; os.abort()"}
            good = fh.gen_case(__import__("random").Random(3), "convolve2d")
            outcomes = w.run([kill, good])
        finally:
            w.close()
        assert outcomes[0][0] == "crash" and "SIGABRT" in outcomes[0][1]
        assert outcomes[1][0] in ("ok", "raised") and w.restarts == 1
        assert isinstance(outcomes[1][1], (np.ndarray, str))

    def test_a_hanging_call_is_a_hang(self):
        w = fh.Worker(timeout=2)
        try:
            (outcome,) = w.run([{"api": "conv2d", "arrays": {}, "kwargs": {}, "_raw": "import time; time.sleep(60)"}])
        finally:
            w.close()
        assert outcome[0] == "hang"
