"""pytest-benchmark set-up for the fastconv benchmarks.

The project's pytest configuration collects ``tests/`` only, so these run
when named: ``python -m pytest benchmarks --benchmark-enable``.  Without
``--benchmark-enable`` (the project's addopts disable benchmarking) every
benchmark body runs once, which makes a quick smoke run.
"""
import pytest

# grid.py is a script (``python benchmarks/grid.py``), not a test module.
collect_ignore = ["grid.py"]


def pytest_addoption(parser):
    group = parser.getgroup("fastconv benchmarks")
    group.addoption("--bench-threads", type=int, default=None,
                    help="threads for fastconv, torch, OpenCV and scipy.fft (default: all cores)")
    group.addoption("--bench-rounds", type=int, default=5,
                    help="timed rounds per benchmark after one warm-up round (default 5)")
    group.addoption("--bench-max-call", type=float, default=2.0,
                    help="skip forced backends estimated slower than this many seconds per call")


@pytest.fixture(scope="session", autouse=True)
def bench_threads(request):
    """Every implementation runs with the same thread count for the whole session."""
    import fastconv
    from fastconv._bench import thread_settings
    n = request.config.getoption("--bench-threads") or fastconv.get_num_threads()
    with thread_settings(n) as counts:
        yield counts


@pytest.fixture(scope="session")
def bench_rounds(request):
    return request.config.getoption("--bench-rounds")


@pytest.fixture(scope="session")
def bench_max_call(request):
    return request.config.getoption("--bench-max-call")
