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
