"""Winograd against torch (and im2col) on the stride-1 3x3 layers of the issue.

One pytest-benchmark group per layer, so the report puts winograd's tiles,
im2col and torch side by side; the acceptance figure is the geometric mean
over the four layers of torch's time over winograd's (target >= 0.9 at 2
threads with OpenBLAS at its default kernel)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python -m pytest benchmarks/test_bench_winograd.py --benchmark-enable --bench-threads 2

Without ``--benchmark-enable`` each body runs once (a smoke test).
"""
import pytest

import fastconv
from _layers import layer_data, run, run_torch
from fastconv._validation import conv2d_args

wg = pytest.importorskip("fastconv.backends.winograd")

LAYERS = {
    "mnist-conv2": ((64, 32, 14, 14), (64, 32, 3, 3)),
    "vgg-conv3": ((1, 128, 56, 56), (256, 128, 3, 3)),
    "resnet-conv2": ((8, 64, 56, 56), (64, 64, 3, 3)),
    "resnet-conv4": ((8, 256, 14, 14), (256, 256, 3, 3)),
}

# (label, engine, tile): tile None is the backend's own choice.
WINOGRAD = [("winograd", "cython", None), ("winograd-F2", "cython", 2),
            ("winograd-F4", "cython", 4), ("winograd-F6", "cython", 6),
            ("winograd-numba", "numba", None)]


def _data(name):
    return layer_data(LAYERS, name)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("label, engine, tile", WINOGRAD, ids=[w[0] for w in WINOGRAD])
def test_winograd(benchmark, bench_rounds, bench_threads, name, label, engine, tile):
    if engine not in fastconv._dispatch.engines("winograd"):
        pytest.skip(f"engine {engine} not available")
    x, w = _data(name)
    if tile is None:
        fn = lambda: fastconv.conv2d(x, w, padding=1, backend="winograd", engine=engine)  # noqa: E731
    else:
        x4, w4, _, p, _ = conv2d_args(x, w, None, 1, 1, 1, 1)
        n = fastconv.get_num_threads()
        fn = lambda: wg.conv2d_tile(x4, w4, p, engine, n, m=tile)  # noqa: E731
    run(benchmark, name, label, fn, bench_rounds)


@pytest.mark.parametrize("name", list(LAYERS))
def test_im2col(benchmark, bench_rounds, bench_threads, name):
    if "im2col" not in fastconv.backends():
        pytest.skip("im2col backend not available")
    x, w = _data(name)
    run(benchmark, name, "im2col",
         lambda: fastconv.conv2d(x, w, padding=1, backend="im2col"), bench_rounds)


@pytest.mark.parametrize("name", list(LAYERS))
def test_torch(benchmark, bench_rounds, bench_threads, name):
    run_torch(benchmark, name, LAYERS, name, bench_rounds)
