"""The FFT backend against im2col (and torch) on NCHW layers with large kernels.

The fast-algorithms issue asks FFT to beat im2col for kernels of 11 and
more on 64x64 and larger planes.  One pytest-benchmark group per layer
(stride 1, 'same' padding; batch and channels as small networks on such
planes have them), so the report puts fft's engines, im2col and torch side
by side::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python -m pytest benchmarks/test_bench_fft.py --benchmark-enable --bench-threads 2

Without ``--benchmark-enable`` each body runs once (a smoke test).
"""
import pytest

import fastconv
from _layers import layer_data, run, run_torch

LAYERS = {
    "n8c16h64-k11": ((8, 16, 64, 64), (16, 16, 11, 11)),
    "n4c8h128-k15": ((4, 8, 128, 128), (8, 8, 15, 15)),
    "n2c4h256-k21": ((2, 4, 256, 256), (8, 4, 21, 21)),
    "n1c3h512-k31": ((1, 3, 512, 512), (4, 3, 31, 31)),
}


def _data(name):
    return layer_data(LAYERS, name)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("backend, engine", [("fft", "cython"), ("fft", "numba"), ("im2col", "cython")],
                         ids=["fft-cython", "fft-numba", "im2col"])
def test_backend(benchmark, bench_rounds, bench_threads, name, backend, engine):
    if engine not in fastconv._dispatch.engines(backend):
        pytest.skip(f"{backend}/{engine} not available")
    x, w = _data(name)
    pad = w.shape[-1] // 2
    run(benchmark, name, f"{backend}/{engine}",
         lambda: fastconv.conv2d(x, w, padding=pad, backend=backend, engine=engine), bench_rounds)


@pytest.mark.parametrize("name", list(LAYERS))
def test_torch(benchmark, bench_rounds, bench_threads, name):
    run_torch(benchmark, name, LAYERS, name, bench_rounds)
