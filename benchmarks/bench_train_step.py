"""One SGD-with-momentum training step (forward, cross-entropy, backward, update),
fastconv.nn against PyTorch at the same thread count.

The three networks of the whole-network issue: the two of the field notes at
batch 64 on 28x28 inputs, ``lenet5`` (6@5x5 pad 2, pool, 16@5x5, pool,
120-84-10) and ``mnist-cnn`` (the Keras example: 32@3x3, 64@3x3, pool,
dropout, 128, dropout, 10), and torchvision's ``resnet18`` at batch 32 on
64x64 inputs (fastconv.models.resnet18 against the same layers built in torch
by ``_torch_nets``).  Both frameworks get the same weights and data.

As a script it prints a table of minimum / median milliseconds per step and
the ratio to torch measured in the same run (the two take turns step by
step, ``fastconv._select.take_turns``)::

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


def _resnet18(nn):
    if nn.__name__.startswith("torch"):
        import torch
        from _torch_nets import torch_resnet
        return torch_resnet(torch, "resnet18")
    from fastconv.models import resnet18
    return resnet18()


#: name -> (builder taking fastconv.nn or torch.nn, batch, input shape of one sample, classes)
MODELS = {"lenet5": (_lenet5, 64, (1, 28, 28), 10), "mnist-cnn": (_mnist_cnn, 64, (1, 28, 28), 10),
          "resnet18": (_resnet18, 32, (3, 64, 64), 1000)}


def _data(name, batch=None):
    _, default, shape, classes = MODELS[name]
    batch = batch or default
    rng = np.random.default_rng(SEED)
    return (rng.random((batch,) + shape, dtype=np.float32), rng.integers(0, classes, batch))


def make_fastconv_step(name, batch=None):
    """A zero-argument callable running one training step of fastconv.nn."""
    from fastconv import nn, optim
    import fastconv.nn.functional as F
    nn.manual_seed(SEED)
    model = MODELS[name][0](nn)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = _data(name, batch)
    x = nn.Tensor(x)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step, model


def make_torch_step(name, batch=None, weights_from=None):
    """The same step in PyTorch (None when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    model = MODELS[name][0](torch.nn)
    if weights_from is not None:
        model.load_state_dict({k: torch.tensor(v) for k, v in weights_from.state_dict().items()})
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = _data(name, batch)
    x, y = torch.tensor(x), torch.tensor(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def _time(fns, repeat):
    """(min, median) seconds of each callable, taking turns after a warm-up each."""
    from fastconv._select import take_turns
    for fn in fns:
        fn()  # warm-up: Numba compilation, BLAS start-up, allocator
    return [(min(t), statistics.median(t)) for t in take_turns(fns, min_rounds=repeat)]


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
    ap.add_argument("--repeat", type=int, default=10, help="timed rounds of turns (default 10)")
    ap.add_argument("--batch", type=int, default=None, help="batch of every network (default: its own)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args(argv)
    _threads(args.threads)
    from fastconv import _tuning
    print(f"CPU {_tuning.cpu_name()}, {args.threads} threads; ms per step (min / median), ratio of minima")
    print(f"{'model':<22} {'fastconv':>19} {'torch':>19} {'ratio':>7}")
    for name in args.models:
        ours, model = make_fastconv_step(name, args.batch)
        theirs = make_torch_step(name, args.batch, weights_from=model)
        o, t = _time([ours, theirs], args.repeat) if theirs is not None else (_time([ours], args.repeat)[0], None)
        tt = f"{t[0] * 1e3:8.2f} / {t[1] * 1e3:8.2f}" if t else f"{'missing':>19}"
        ratio = f"{o[0] / t[0]:6.2f}x" if t else ""
        x = _data(name, args.batch)[0]
        label = f"{name} b{x.shape[0]} {x.shape[2]}x{x.shape[3]}"
        print(f"{label:<22} {o[0] * 1e3:8.2f} / {o[1] * 1e3:8.2f} {tt} {ratio:>7}", flush=True)


@pytest.mark.parametrize("impl", ["fastconv", "torch"])
@pytest.mark.parametrize("name", list(MODELS))
def test_train_step(benchmark, name, impl):
    ours, model = make_fastconv_step(name)
    step = ours if impl == "fastconv" else make_torch_step(name, weights_from=model)
    if step is None:
        pytest.skip("torch is not installed")
    benchmark.group = f"train-step-{name}"
    benchmark.extra_info.update(model=name, impl=impl, batch=MODELS[name][1])
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)


if __name__ == "__main__":
    main()
