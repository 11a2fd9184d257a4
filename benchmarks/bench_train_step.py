"""One SGD training step (forward, cross-entropy, backward, update) of the MNIST
networks, fastconv.nn against PyTorch at the same thread count.

The two networks of the field notes, at batch 64 on 28x28 inputs:
``lenet5`` (6@5x5 pad 2, pool, 16@5x5, pool, 120-84-10) and ``mnist-cnn``
(the Keras example: 32@3x3, 64@3x3, pool, dropout, 128, dropout, 10).
Both frameworks get the same weights and data from fixed seeds.

As a script it prints a table of minimum / median milliseconds per step and
the ratio to torch measured in the same run::

    python benchmarks/bench_train_step.py [--threads N] [--repeat R] [--batch B]

Under pytest-benchmark (one group per network)::

    python -m pytest benchmarks/bench_train_step.py --benchmark-enable
"""
import argparse
import statistics
import time

import numpy as np
import pytest

SEED = 20261125
BATCH = 64


def _lenet5(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def _mnist_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10))


MODELS = {"lenet5": _lenet5, "mnist-cnn": _mnist_cnn}


def _data(batch):
    rng = np.random.default_rng(SEED)
    return (rng.random((batch, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, batch))


def make_fastconv_step(name, batch=BATCH):
    """A zero-argument callable running one training step of fastconv.nn."""
    from fastconv import nn, optim
    import fastconv.nn.functional as F
    nn.manual_seed(SEED)
    model = MODELS[name](nn)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = _data(batch)
    x = nn.Tensor(x)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step, model


def make_torch_step(name, batch=BATCH, weights_from=None):
    """The same step in PyTorch (None when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    model = MODELS[name](torch.nn)
    if weights_from is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in weights_from.state_dict().items()})
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = _data(batch)
    x, y = torch.tensor(x), torch.tensor(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def _time(fn, repeat):
    fn()  # warm-up: Numba compilation, BLAS start-up, allocator
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def _threads(n):
    import fastconv
    fastconv.set_num_threads(n)
    try:
        import torch
        torch.set_num_threads(n)
    except ImportError:
        pass


def main(argv=None):
    import fastconv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=fastconv.get_num_threads())
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--batch", type=int, default=BATCH)
    args = ap.parse_args(argv)
    _threads(args.threads)
    print(f"batch {args.batch}, {args.threads} threads; ms per step (min / median), ratio of minima")
    print(f"{'model':<10} {'fastconv':>17} {'torch':>17} {'ratio':>7}")
    for name in MODELS:
        ours, model = make_fastconv_step(name, args.batch)
        theirs = make_torch_step(name, args.batch, weights_from=model)
        o = _time(ours, args.repeat)
        t = _time(theirs, args.repeat) if theirs is not None else None
        tt = f"{t[0] * 1e3:7.2f} / {t[1] * 1e3:7.2f}" if t else f"{'missing':>17}"
        ratio = f"{o[0] / t[0]:6.2f}x" if t else ""
        print(f"{name:<10} {o[0] * 1e3:7.2f} / {o[1] * 1e3:7.2f} {tt} {ratio:>7}")


@pytest.mark.parametrize("impl", ["fastconv", "torch"])
@pytest.mark.parametrize("name", list(MODELS))
def test_train_step(benchmark, name, impl):
    ours, model = make_fastconv_step(name)
    step = ours if impl == "fastconv" else make_torch_step(name, weights_from=model)
    if step is None:
        pytest.skip("torch is not installed")
    benchmark.group = f"train-step-{name}"
    benchmark.extra_info.update(model=name, impl=impl, batch=BATCH)
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)


if __name__ == "__main__":
    main()
