"""Helpers shared by the per-layer benchmark files (test_bench_winograd.py, test_bench_fft.py)."""
import numpy as np


def layer_data(layers, name):
    """float32 input and weights of ``layers[name] = (x_shape, w_shape)``, from a fixed seed."""
    xs, ws = layers[name]
    rng = np.random.default_rng(0)
    return rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)


def run(benchmark, group, label, fn, rounds):
    """Time ``fn`` as one pytest-benchmark entry of ``group``: one warm-up round, then ``rounds``."""
    benchmark.group = group
    benchmark.extra_info.update(layer=group, impl=label)
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


def run_torch(benchmark, group, layers, name, rounds):
    """torch.nn.functional.conv2d on ``layers[name]`` with 'same' padding, as one entry of ``group``."""
    import pytest
    torch = pytest.importorskip("torch")
    x, w = (torch.from_numpy(a) for a in layer_data(layers, name))
    with torch.no_grad():
        run(benchmark, group, "torch",
            lambda: torch.nn.functional.conv2d(x, w, padding=w.shape[-1] // 2), rounds)
