"""Benchmarks of fastconv against its peers, one per (case, implementation).

Parametrised as scipy's asv suites are: the case ids of ``fastconv._bench``
("lenet-conv2", "img512-k15-float32") times the implementations that can
serve them: the installed peers, fastconv ``auto`` and every backend/engine
``fastconv._dispatch.candidates`` offers, so new backends join unchanged.
Each case is its own pytest-benchmark group, so the report compares the
implementations of one case side by side::

    python -m pytest benchmarks --benchmark-enable
    python -m pytest benchmarks --benchmark-enable -k lenet-conv2 --bench-threads 1
    python -m pytest benchmarks --benchmark-enable -m "not slow"   # skip 2048x2048 images

Inputs come from fixed seeds; a warm-up round (Numba compilation, caches)
precedes the timed rounds.
"""
import pytest

from fastconv import _bench


def _params():
    out = []
    for case in _bench.ALL_CASES:
        marks = [pytest.mark.slow] if case.group == "images" and case.x_shape[0] > 512 else []
        for impl in _bench.peers(case) + _bench.fastconv_impls(case):
            out.append(pytest.param(case, impl, marks=marks,
                                    id=f"{case.name}-{impl.label.replace('/', '-')}"))
    return out


@pytest.mark.parametrize("case, impl", _params())
def test_conv(benchmark, case, impl, bench_rounds, bench_max_call):
    if impl.make is None:
        pytest.skip(impl.missing)
    est = _bench.estimate_seconds(impl, case)
    if est is not None and est > bench_max_call:
        pytest.skip(f"{impl.label}: estimated {est:.2g} s/call > --bench-max-call {bench_max_call:g} s")
    x, w = case.data()
    fn = impl.make(x, w)
    benchmark.group = case.name
    benchmark.extra_info.update(case=case.name, impl=impl.label, describe=case.describe(),
                                gflop=case.flops / 1e9)
    benchmark.pedantic(fn, rounds=bench_rounds, iterations=1, warmup_rounds=1)
