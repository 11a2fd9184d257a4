"""Inference of the classic networks, fastconv against PyTorch on the same weights.

Cases (the acceptance figures of the architectures issue): VGG16 batch 1 and
ResNet-50 batch 8, both 224x224, float32, eval mode, 2 threads.  torch's
networks are built here from the same layer lists (torchvision is too heavy
to install), loaded with fastconv's state dict, and their outputs compared.

    python benchmarks/bench_inference.py [--repeat 3] [--threads 2] [--memory]

Prints one row per case: best-of-``repeat`` wall time of each, the ratio
fastconv / torch, and the max output error relative to the output's scale.
``--memory`` also reports the peak numpy allocation of a VGG16 batch-8
forward under ``no_grad`` (tracemalloc).
"""
import argparse
import time
import tracemalloc

import numpy as np


def torch_vgg16(torch):
    tnn = torch.nn
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.ReLU(inplace=True)]
            c = v

    class VGG(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(*layers)
            self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
            self.classifier = tnn.Sequential(tnn.Linear(25088, 4096), tnn.ReLU(True), tnn.Dropout(),
                                             tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(),
                                             tnn.Linear(4096, 1000))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return VGG()


def torch_resnet50(torch):
    tnn = torch.nn

    class Bottleneck(tnn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(planes * 4)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            inplanes = 64
            for i, (planes, n) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
                stride = 1 if i == 0 else 2
                down = tnn.Sequential(tnn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                                      tnn.BatchNorm2d(planes * 4))
                blocks = [Bottleneck(inplanes, planes, stride, down)]
                inplanes = planes * 4
                blocks += [Bottleneck(inplanes, planes) for _ in range(1, n)]
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(2048, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


CASES = {
    "vgg16": ("vgg16", torch_vgg16, 1),
    "resnet50": ("resnet50", torch_resnet50, 8),
}


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def bench_case(name, repeat, size=224):
    """Time one case; returns a dict of the row's figures.

    Examples
    --------
    >>> row = bench_case("resnet50", repeat=1)  # doctest: +SKIP
    """
    import torch

    from fastconv import models, nn
    factory, torch_factory, batch = CASES[name]
    nn.manual_seed(0)
    ours = getattr(models, factory)().eval()
    ref = torch_factory(torch).eval()
    state = {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    ref.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    with nn.no_grad():
        ours(nn.Tensor(x[:1]))  # warm-up: Numba compilation, tuning cache
    with torch.no_grad():
        ref(torch.from_numpy(x[:1]))

    def run_ours():
        with nn.no_grad():
            return ours(nn.Tensor(x)).numpy()

    def run_torch():
        with torch.no_grad():
            return ref(torch.from_numpy(x)).numpy()

    t_ours, y_ours = _best(run_ours, repeat)
    t_torch, y_torch = _best(run_torch, repeat)
    err = float(np.abs(y_ours.astype(np.float64) - y_torch).max() / max(np.abs(y_torch).max(), 1e-30))
    return {"case": f"{name} batch {batch} {size}x{size}", "fastconv_ms": 1e3 * t_ours,
            "torch_ms": 1e3 * t_torch, "ratio": t_ours / t_torch, "rel_err": err}


def peak_memory_vgg16(batch=8, size=224):
    """Peak bytes numpy allocates during a VGG16 forward under no_grad.

    Examples
    --------
    >>> peak_memory_vgg16(batch=1)  # doctest: +SKIP
    """
    from fastconv import models, nn
    model = models.vgg16().eval()
    x = nn.Tensor(np.zeros((batch, 3, size, size), np.float32))
    tracemalloc.start()
    tracemalloc.reset_peak()
    with nn.no_grad():
        model(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args(argv)
    import torch

    import fastconv
    fastconv.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, torch {torch.__version__}, best of {args.repeat}")
    print(f"{'case':28s} {'fastconv ms':>12s} {'torch ms':>10s} {'ratio':>7s} {'rel err':>9s}")
    for name in args.cases:
        r = bench_case(name, args.repeat)
        print(f"{r['case']:28s} {r['fastconv_ms']:12.1f} {r['torch_ms']:10.1f} {r['ratio']:7.2f} {r['rel_err']:9.1e}")
    if args.memory:
        print(f"VGG16 batch 8 224x224 forward, peak numpy allocation: {peak_memory_vgg16() / 2**30:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
