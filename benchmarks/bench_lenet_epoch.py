"""One training epoch of LeNet-5 on Fashion-MNIST, fastconv against PyTorch side by side.

Both frameworks train the same network (``fastconv.models.LeNet5`` and its
torch twin with the same state-dict keys) from the same initial weights
(torch's initialisation, copied into fastconv), on the same batches in the
same order (one ``fastconv.data.BatchIterator``), with the same optimiser and
thread count.  Printed: the epoch time (training only) and throughput of
each, their ratio (target: fastconv <= 1.5x torch) and the two test
accuracies (target: within 1 point)::

    python benchmarks/bench_lenet_epoch.py [--threads 2] [--batch-size 64] [--data fashion]
    python benchmarks/bench_lenet_epoch.py --limit 6000        # a tenth of an epoch, quick look

Needs torch and Fashion-MNIST (``apt-get install dataset-fashion-mnist``, or
``--data default`` for the embedded digits).
"""
import argparse
import sys
import time


SEED = 20261125
TIME_TARGET = 1.5      # fastconv epoch time / torch epoch time
ACCURACY_TARGET = 1.0  # percentage points between the two test accuracies


def torch_lenet5(torch):
    """``fastconv.models.LeNet5`` in PyTorch, with the same state-dict keys."""
    tnn = torch.nn

    class LeNet5(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2))
            self.classifier = tnn.Sequential(
                tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    return LeNet5()


def train_torch(torch, model, batches, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    batches.set_epoch(0)
    t0 = time.perf_counter()
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def train_fastconv(model, batches, lr):
    from fastconv import nn, optim
    from fastconv.nn import functional as F

    opt = optim.Adam(model.parameters(), lr=lr)
    model.train()
    batches.set_epoch(0)
    t0 = time.perf_counter()
    for x, y in batches:
        loss = F.cross_entropy(model(nn.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def torch_accuracy(torch, model, images, labels, mean, std):
    from fastconv.data import BatchIterator

    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in BatchIterator(images, labels, 500, shuffle=False, mean=mean, std=std):
            correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
    return correct / len(labels)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="fashion", metavar="fashion|default|DIR")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)

    import torch

    import fastconv
    from fastconv.cli.train import accuracy, load_split
    from fastconv.data import BatchIterator, mean_std
    from fastconv.models import LeNet5

    try:
        train_x, train_y = load_split(args.data, "train", args.limit)
        test_x, test_y = load_split(args.data, "test")
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    mean, std = mean_std(train_x)
    batches = BatchIterator(train_x, train_y, args.batch_size, shuffle=True, seed=args.seed,
                            mean=mean, std=std)

    torch.manual_seed(args.seed)
    theirs = torch_lenet5(torch)
    ours = LeNet5()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})

    torch.set_num_threads(args.threads)
    print(f"LeNet-5, one epoch of {len(train_y):,} {args.data} images, batch {args.batch_size}, "
          f"Adam lr {args.lr:g}, {args.threads} threads; torch {torch.__version__}, "
          f"fastconv {fastconv.__version__}")
    with fastconv.num_threads(args.threads):
        t_torch = train_torch(torch, theirs, batches, args.lr)
        acc_torch = torch_accuracy(torch, theirs, test_x, test_y, mean, std)
        t_ours = train_fastconv(ours, batches, args.lr)
        acc_ours = accuracy(ours, test_x, test_y, mean, std)

    n = len(train_y)
    print(f"{'':10} {'epoch s':>9} {'img/s':>9} {'test acc':>9}")
    for name, t, acc in (("torch", t_torch, acc_torch), ("fastconv", t_ours, acc_ours)):
        print(f"{name:10} {t:9.2f} {n / t:9,.0f} {100 * acc:8.2f}%")
    ratio = t_ours / t_torch
    gap = 100 * abs(acc_ours - acc_torch)
    print(f"time fastconv/torch {ratio:.2f}x (target <= {TIME_TARGET}x: {'met' if ratio <= TIME_TARGET else 'MISSED'}); "
          f"accuracy gap {gap:.2f} points (target <= {ACCURACY_TARGET}: "
          f"{'met' if gap <= ACCURACY_TARGET else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
