"""``fastconv transfer``: when does transfer learning pay?  A shots curve over seeds.

The protocol (the same on every data set):

1. Pre-train a small ResNet on classes 0-4 (the *source*): all of their
   training images by default, shifted at random by up to ``--shift`` pixels.
   ``--data fashion`` uses Fashion-MNIST (T-shirt, trouser, pullover, dress,
   coat: 30,000 images), ``default`` the 2,000 embedded MNIST digits 0-4.
2. Learn classes 5-9 (the *target*: sandal, shirt, sneaker, bag, ankle boot;
   or digits 5-9) from ``--shots`` training images per class, three ways:

   - **frozen**: the pre-trained body frozen (batch norm in eval mode), a new
     linear head trained on its features;
   - **finetune**: then the whole network, the body at ``--body-lr-scale``
     times the head's rate, batch-norm statistics kept;
   - **scratch**: the same network from a fresh initialisation on the same
     images, trained with Adam until it fits them: training accuracy 1.0, or
     the training loss no longer falls (``--scratch-patience`` epochs without
     a 1% improvement), or at most ``--scratch-cap`` epochs.  Each run's
     epochs, training accuracy and reason for stopping are printed.

3. Score each on every test image of classes 5-9.

Every shot count runs once per seed (``--seeds``); each seed pre-trains its
own source model and draws its own few-shot images, so the spread covers
both.  The table gives mean +- standard deviation over seeds per stage and
shot count; ``--json`` and ``--plot`` write it as data and as a curve.
"""
import contextlib
import functools
import json
import sys
import time

import numpy as np

FEATURES = ("stages", "last")
STAGES = ("frozen", "finetune", "scratch")
STAGE_TITLES = {"frozen": "frozen + head", "finetune": "fine-tuned", "scratch": "scratch (fitted)"}
OLD, NEW = range(0, 5), range(5, 10)
# Fall of the training loss that counts as still falling (the plateau test of fit): 1% of
# its best, and at least 0.001 (a mean cross-entropy of 0.001 is a probability > 0.999 on
# every image; on separable data the loss would otherwise shrink by 1% an epoch forever).
PLATEAU_TOL, PLATEAU_ABS = 0.01, 1e-3


def _int_list(text):
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--shots must be a comma-separated list of positive ints, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"--shots must be a comma-separated list of positive ints, got {text!r}")
    return sorted(set(values))


def add_arguments(parser):
    parser.description = (
        "When does transfer learning pay? A small ResNet is pre-trained on classes 0-4 (the source: all of "
        "their training images) and learns classes 5-9 (the target) from --shots images per class three ways: "
        "frozen features + a new head, fine-tuned whole, and the same network from scratch, trained past "
        "fitting its images until its training loss stops falling (epochs printed, capped by --cap). Each "
        "shot count runs at --seeds seeds; the table gives test accuracy on classes 5-9, mean ± std over "
        "seeds. See docs/transfer.md.")
    parser.add_argument("--data", default="default",
                        help="'default' (the embedded MNIST digits: 400 train / 100 test per class), "
                             "'fashion' (Fashion-MNIST from Debian's dataset-fashion-mnist), 'auto' "
                             "(Fashion-MNIST when installed, else the digits) or a directory of MNIST-format "
                             "IDX files. Source: classes 0-4; target: classes 5-9")
    parser.add_argument("--shots", default="1,5,10,50",
                        help="training images per target class, a comma-separated list (default 1,5,10,50)")
    parser.add_argument("--seeds", type=int, default=5,
                        help="runs per shot count, seeds --seed ... --seed + SEEDS - 1 (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--json", metavar="FILE", help="write the curve's table as JSON")
    parser.add_argument("--plot", metavar="FILE", help="write the curve as a PNG")
    parser.add_argument("--pretrain-per-class", type=int, default=0,
                        help="pre-training images per source class (default 0: all of them)")
    parser.add_argument("--pretrain-images", type=int, default=30000,
                        help="pre-training length in images seen, at least one epoch (default 30000: 15 "
                             "epochs of the 2,000 digits, one of Fashion-MNIST's 30,000)")
    parser.add_argument("--shift", type=int, default=2,
                        help="augmentation: random shifts of up to this many pixels (0: none) in pre-training, "
                             "fine-tuning and scratch")
    parser.add_argument("--head-epochs", type=int, default=100,
                        help="epochs of the new head on the cached frozen features (cheap)")
    parser.add_argument("--head-copies", type=int, default=8,
                        help="shifted copies of each image whose frozen features the head also trains on "
                             "(the augmentation the other stages get; default 8)")
    parser.add_argument("--cap", type=int, default=300,
                        help="most epochs of fine-tuning and of scratch (default 300); they stop earlier when "
                             "their training loss no longer falls")
    parser.add_argument("--patience", type=int, default=20,
                        help="fine-tuning and scratch stop after this many epochs without a 1%% fall of the "
                             "training loss (default 20)")
    parser.add_argument("--scratch-lr", type=float, default=1e-3, help="Adam's rate for scratch (default 1e-3)")
    parser.add_argument("--batch", type=int, default=25, help="batch of the few-shot stages (default 25)")
    parser.add_argument("--width", type=int, default=16, help="channels of the ResNet's first stage")
    parser.add_argument("--features", default="stages", choices=FEATURES,
                        help="what the head sees: 'stages' (default), the pooled outputs of all four stages "
                             "concatenated; 'last', those of the last stage only")
    parser.add_argument("--lr", type=float, default=0.05, help="SGD rate of pre-training and of the head")
    parser.add_argument("--finetune-lr", type=float, default=0.05,
                        help="fine-tuning: SGD rate of the head (default 0.05)")
    parser.add_argument("--body-lr-scale", type=float, default=0.1,
                        help="fine-tuning: the body's rate relative to the head's (default 0.1)")
    parser.add_argument("--test-per-class", type=int, default=0,
                        help="test images per target class (default 0: all)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: fastconv's)")


def _positive(args, *names):
    for n in names:
        if getattr(args, n) < 1:
            raise ValueError(f"--{n.replace('_', '-')} must be >= 1, got {getattr(args, n)}")


def load_split(data, split):
    """Images scaled to [-1, 1] as (N, 1, H, W) float32, and labels, for ``--data``.

    Examples
    --------
    >>> from fastconv.cli.transfer import load_split
    >>> x, y, name = load_split("default", "test")
    >>> x.shape, x.dtype, name
    ((1000, 1, 28, 28), dtype('float32'), 'MNIST (embedded 5,000 digits)')
    """
    from fastconv.data.mnist import FASHION_DIR, load_data
    if data == "auto":
        data = "fashion" if FASHION_DIR.is_dir() else "default"
    images, labels = load_data(data, split)
    name = {"fashion": "Fashion-MNIST", "default": "MNIST (embedded 5,000 digits)"}.get(data, str(data))
    x = (images.astype(np.float32) / 127.5 - 1.0)[:, None]
    return x, labels, name


def _take(x, y, classes, per_class, rng):
    """``per_class`` images of each class (0: all), shuffled, labels from 0."""
    idx = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    idx = rng.permutation(np.concatenate([i[:per_class] if per_class else i for i in idx]))
    return x[idx], y[idx] - min(classes)


@functools.lru_cache(maxsize=None)
def _stage_pooled_resnet():
    # Built on first use: importing the models costs time every `fastconv` command would pay.
    from fastconv import nn
    from fastconv.models.resnet import ResNet
    from fastconv.nn import functional as F

    class StagePooledResNet(ResNet):
        """A ResNet whose head sees the pooled outputs of all four stages, concatenated."""

        def __init__(self, block, layers, num_classes=1000, in_channels=3, width=64):
            super().__init__(block, layers, num_classes=num_classes, in_channels=in_channels, width=width)
            self.fc = nn.Linear(15 * width * block.expansion, num_classes)

        def forward_features(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            pooled = []
            for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
                x = layer(x)
                pooled.append(F.flatten(self.avgpool(x), 1))
            return F.cat(pooled, 1)

    return StagePooledResNet


def build(num_classes, width, seed, features="stages"):
    """The small ResNet of the example: BasicBlock x [1, 1, 1, 1], one input channel.

    ``features='stages'``: the head sees the globally average-pooled outputs
    of the four stages concatenated (15 x ``width`` features); ``'last'``:
    those of the last stage (8 x ``width``), as torchvision's ResNet.

    Examples
    --------
    >>> from fastconv.cli.transfer import build
    >>> build(5, 16, 0).fc.weight.shape, build(5, 16, 0, "last").fc.weight.shape
    ((5, 240), (5, 128))
    """
    from fastconv import nn
    from fastconv.models.resnet import BasicBlock, ResNet
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    nn.manual_seed(seed)
    cls = _stage_pooled_resnet() if features == "stages" else ResNet
    return cls(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, in_channels=1, width=width)


def _shift(x, s, rng):
    # Shifted-in pixels take the background value (-1 after scaling), not 0.
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)), constant_values=-1.0)
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    return np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def _epoch(model, opt, x, y, batch, rng, bn_frozen=False, head_only=False, shift=0):
    """One epoch of shuffled minibatches; returns the mean training loss."""
    from fastconv import nn
    from fastconv.nn import functional as F
    from fastconv.transfer import freeze_batchnorm
    model.train()
    if bn_frozen:
        freeze_batchnorm(model)
    order = rng.permutation(len(x))
    xs = _shift(x, shift, rng) if shift else x
    total = 0.0
    for i in range(0, len(x), batch):
        j = order[i:i + batch]
        inputs = nn.Tensor(xs[j])
        loss = F.cross_entropy(model.fc(inputs) if head_only else model(inputs), nn.Tensor(y[j]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += float(loss.numpy()) * len(j)
    return total / len(x)


def _train(model, opt, x, y, epochs, batch, rng, bn_frozen=False, head_only=False, shift=0):
    for _ in range(epochs):
        _epoch(model, opt, x, y, batch, rng, bn_frozen, head_only, shift)


def fit(model, opt, x, y, cap, batch, rng, patience=20, shift=0, bn_frozen=False):
    """Train until the training loss no longer falls: the schedule of scratch and fine-tuning.

    Training goes on past the first epoch at training accuracy 1.0 (measured
    after every epoch on the unaugmented images, eval mode): stopping there
    leaves a network that fits its images with a small margin: on held-out
    training images (seed 0, 5 digits per class) it scored 0.78 against
    0.88 when trained on to the plateau (docs/transfer.md).
    It stops when the mean training loss has not fallen 1% (and 0.001) below
    its best for ``patience`` epochs (``'plateau'``) or after ``cap`` epochs (``'cap'``).

    Returns
    -------
    dict
        ``epochs`` trained, ``fit_epoch`` (the first at training accuracy
        1.0, or None), ``train_acc`` and ``loss`` at the end, ``stopped``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn, optim
    >>> from fastconv.cli.transfer import fit
    >>> nn.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> x = np.eye(4, dtype=np.float32).reshape(4, 1, 2, 2); y = np.array([0, 1, 0, 1])
    >>> r = fit(model, optim.Adam(model.parameters(), lr=0.1), x, y, 500, 4, np.random.default_rng(0))
    >>> r["stopped"], r["train_acc"], r["fit_epoch"] < r["epochs"] < 500
    ('plateau', 1.0, True)
    """
    best, since, loss, acc, epoch, fit_epoch = np.inf, 0, np.nan, 0.0, 0, None
    stopped = "cap"
    for epoch in range(1, cap + 1):
        loss = _epoch(model, opt, x, y, batch, rng, bn_frozen=bn_frozen, shift=shift)
        acc = _acc(_predict(model, x), y)
        if acc == 1.0 and fit_epoch is None:
            fit_epoch = epoch
        if best == np.inf or loss < best - max(PLATEAU_TOL * best, PLATEAU_ABS):
            best, since = loss, 0
        else:
            since += 1
            if since >= patience:
                stopped = "plateau"
                break
    return {"epochs": epoch, "fit_epoch": fit_epoch, "train_acc": acc, "loss": loss, "stopped": stopped}


def _predict(model, x, batch=500, head_only=False):
    from fastconv import nn
    model.eval()
    out = []
    with nn.no_grad():
        for i in range(0, len(x), batch):
            t = nn.Tensor(x[i:i + batch])
            out.append((model.fc(t) if head_only else model(t)).numpy())
    return np.concatenate(out)


def _features(model, x, batch=500):
    from fastconv import nn
    model.eval()
    with nn.no_grad():
        return np.concatenate([model.forward_features(nn.Tensor(x[i:i + batch])).numpy()
                               for i in range(0, len(x), batch)])


def _acc(logits, y):
    return float((logits.argmax(1) == y).mean())


def prepare(args):
    """Check ``args`` and load the data: every error a user can fix, before any training.

    Returns a dict of the ``train`` and ``test`` splits (each ``(x, y)``, all
    classes), the target ``test`` images (classes 5-9, labels 0-4), the
    data set's ``name`` and the sorted ``shots``.

    Raises
    ------
    ValueError
        An argument out of range.
    FileNotFoundError
        The data is missing; for ``--data fashion`` the message says how to
        install it.

    Examples
    --------
    >>> import argparse
    >>> from fastconv.cli.transfer import add_arguments, prepare
    >>> p = argparse.ArgumentParser(); add_arguments(p)
    >>> d = prepare(p.parse_args(["--shots", "5,1"]))
    >>> d["shots"], d["target_test"][0].shape, d["name"]
    ([1, 5], (500, 1, 28, 28), 'MNIST (embedded 5,000 digits)')
    """
    shots = _int_list(args.shots)
    _positive(args, "seeds", "pretrain_images", "head_epochs", "cap", "patience", "batch", "width")
    for name in ("pretrain_per_class", "test_per_class", "shift", "head_copies"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    for name in ("lr", "scratch_lr", "finetune_lr", "body_lr_scale"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    xtr, ytr, name = load_split(args.data, "train")
    xte, yte, _ = load_split(args.data, "test")
    fewest = min(int((ytr == c).sum()) for c in NEW)
    if shots[-1] > fewest:
        raise ValueError(f"--shots: {shots[-1]} images per class asked, the training split has {fewest} of "
                         f"its rarest target class")
    target_test = _take(xte, yte, NEW, args.test_per_class, np.random.default_rng(args.seed))
    return {"train": (xtr, ytr), "test": (xte, yte), "target_test": target_test, "name": name,
            "shots": shots}


def pretrain(args, data, seed, log):
    """The source model of one seed: classes 0-4, returns (state dict, source test accuracy)."""
    from fastconv import optim
    rng = np.random.default_rng(seed)
    x_old, y_old = _take(*data["train"], OLD, args.pretrain_per_class, rng)
    model = build(5, args.width, seed, args.features)
    epochs = max(1, round(args.pretrain_images / len(x_old)))
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    _train(model, opt, x_old, y_old, epochs, 64, rng, shift=args.shift)
    x_old_test, y_old_test = _take(*data["test"], OLD, 0, rng)
    acc = _acc(_predict(model, x_old_test), y_old_test)
    log(f"seed {seed}: pre-trained on classes 0-4 ({len(x_old)} images, {epochs} epochs): source test "
        f"accuracy {acc:.3f}")
    return {k: np.array(v) for k, v in model.state_dict().items()}, acc


def few_shot(args, data, state, seed, shots):
    """The three stages on ``shots`` images per target class; returns {stage: result dict}."""
    from fastconv import optim
    from fastconv.transfer import freeze, param_groups, replace_head, unfreeze
    # One generator per stage, so a stage's draws do not depend on how long the one before ran.
    draw, rng_head, rng_ft, rng_scratch = (np.random.default_rng([seed, shots, i]) for i in range(4))
    x_new, y_new = _take(*data["train"], NEW, shots, draw)
    x_test, y_test = data["target_test"]
    batch = min(args.batch, len(x_new))
    out = {}

    # Frozen: with the body frozen and in eval mode its output never changes,
    # so compute it once and train the head on it.
    t = time.perf_counter()
    model = build(5, args.width, seed, args.features)
    model.load_state_dict(state)
    freeze(model)
    head = replace_head(model, 5)
    f_new, f_test = _features(model, x_new), _features(model, x_test)
    shifted = [_shift(x_new, args.shift, rng_head) for _ in range(args.head_copies if args.shift else 0)]
    f_aug = np.concatenate([f_new] + [_features(model, xs) for xs in shifted])
    y_aug = np.tile(y_new, 1 + len(shifted))
    opt = optim.SGD(head.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    _train(model, opt, f_aug, y_aug, args.head_epochs, batch, rng_head, head_only=True)
    out["frozen"] = {"acc": _acc(_predict(model, f_test, head_only=True), y_test),
                     "train_acc": _acc(_predict(model, f_new, head_only=True), y_new),
                     "epochs": args.head_epochs, "seconds": time.perf_counter() - t}

    # Fine-tune from the trained head: the body at a lower rate, its BN statistics kept.
    t = time.perf_counter()
    unfreeze(model)
    opt = optim.SGD(param_groups(model, lr=args.finetune_lr * args.body_lr_scale, head_lr=args.finetune_lr),
                    lr=args.finetune_lr, momentum=0.9, weight_decay=5e-4)
    r = fit(model, opt, x_new, y_new, args.cap, batch, rng_ft, args.patience, args.shift, bn_frozen=True)
    out["finetune"] = {"acc": _acc(_predict(model, x_test), y_test), **r, "seconds": time.perf_counter() - t}

    # Scratch: the same network, a fresh initialisation, the same images, until it fits them.
    t = time.perf_counter()
    scratch = build(5, args.width, seed + 10_000, args.features)
    opt = optim.Adam(scratch.parameters(), lr=args.scratch_lr)
    r = fit(scratch, opt, x_new, y_new, args.cap, batch, rng_scratch, args.patience, args.shift)
    out["scratch"] = {"acc": _acc(_predict(scratch, x_test), y_test), **r, "seconds": time.perf_counter() - t}
    return out


def summarise(runs, shots):
    """{shots: {stage: {mean, std, runs, ...}}} from per-seed results.

    ``runs`` is a list (one per seed) of {shots: {stage: result dict}}; the
    standard deviation is over seeds (ddof=1; 0 for a single seed).

    Examples
    --------
    >>> from fastconv.cli.transfer import summarise
    >>> r = [{5: {"frozen": {"acc": 0.5, "epochs": 9}}}, {5: {"frozen": {"acc": 0.7, "epochs": 9}}}]
    >>> s = summarise(r, [5])["5"]["frozen"]
    >>> round(s["mean"], 3), round(s["std"], 3), s["runs"]
    (0.6, 0.141, [0.5, 0.7])
    """
    table = {}
    for n in shots:
        table[str(n)] = {}
        for stage in runs[0][n]:
            per_seed = [r[n][stage] for r in runs]
            accs = np.array([p["acc"] for p in per_seed])
            entry = {"mean": float(accs.mean()), "std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                     "runs": [float(a) for a in accs]}
            for key in ("epochs", "fit_epoch", "train_acc", "stopped"):
                if key in per_seed[0]:
                    entry[key] = [p[key] for p in per_seed]
            table[str(n)][stage] = entry
    return table


def _span(values, fmt="{}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def format_table(table):
    """The curve's table as text: mean +- std per stage and shot count, scratch's schedule.

    ``scratch epochs`` is the range over seeds of the epochs trained,
    ``fit at`` that of the first epoch at training accuracy 1.0.

    Examples
    --------
    >>> from fastconv.cli.transfer import format_table
    >>> e = {"mean": 0.5, "std": 0.1, "runs": [0.4, 0.6], "epochs": [52, 60], "fit_epoch": [12, 30],
    ...      "train_acc": [1.0, 1.0], "stopped": ["plateau", "plateau"]}
    >>> print(format_table({"5": {"frozen": e, "finetune": e, "scratch": e}}))
    | shots | frozen + head | fine-tuned | scratch (fitted) | frozen - scratch | scratch epochs | fit at | train acc |
    |---|---|---|---|---|---|---|---|
    | 5 | 0.500 ± 0.100 | 0.500 ± 0.100 | 0.500 ± 0.100 | +0.0 | 52-60 | 12-30 | 1.000 |
    """
    head = ["shots", *(STAGE_TITLES[s] for s in STAGES), "frozen - scratch", "scratch epochs", "fit at", "train acc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, row in table.items():
        sc = row["scratch"]
        cells = [n, *(f"{row[s]['mean']:.3f} ± {row[s]['std']:.3f}" for s in STAGES),
                 f"{100 * (row['frozen']['mean'] - sc['mean']):+.1f}", _span(sc["epochs"]),
                 _span(sc["fit_epoch"]), _span(sc["train_acc"], "{:.3f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_plot(path, table, title):
    """Accuracy against shots per class (log axis), one line per stage, std as error bars.

    Examples
    --------
    >>> from fastconv.cli.transfer import write_plot
    >>> e = {"mean": 0.5, "std": 0.1, "runs": [0.4, 0.6]}
    >>> write_plot("/tmp/fastconv-transfer-doc.png", {"1": {"frozen": e}, "5": {"frozen": e}}, "demo")
    """
    import matplotlib
    matplotlib.use("Agg")  # no display needed, and never steal one
    import matplotlib.pyplot as plt

    shots = [int(n) for n in table]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for stage in STAGES:
        if stage not in table[str(shots[0])]:
            continue
        means = [table[str(n)][stage]["mean"] for n in shots]
        stds = [table[str(n)][stage]["std"] for n in shots]
        ax.errorbar(shots, means, yerr=stds, marker="o", capsize=4, label=STAGE_TITLES[stage])
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(n) for n in shots])
    ax.minorticks_off()
    ax.set_xlabel("training images per target class (log scale)")
    ax.set_ylabel("test accuracy, target classes 5-9")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curve(args, data, log):
    """Every shot count at every seed; returns the JSON document (``data``, ``shots``, ``protocol``)."""
    runs = []
    for seed in range(args.seed, args.seed + args.seeds):
        state, source_acc = pretrain(args, data, seed, log)
        per_shots = {}
        for n in data["shots"]:
            r = few_shot(args, data, state, seed, n)
            sc = r["scratch"]
            ft = r["finetune"]
            log(f"seed {seed}, {n:3d} shots: frozen {r['frozen']['acc']:.3f}  finetune {ft['acc']:.3f} "
                f"({ft['epochs']} epochs)  scratch {sc['acc']:.3f} (train accuracy {sc['train_acc']:.3f} after "
                f"{sc['epochs']} epochs, first 1.0 at epoch {sc['fit_epoch']}, {sc['stopped']})")
            per_shots[n] = r
        runs.append(per_shots)
    protocol = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("json", "plot")}
    protocol.update(source="classes 0-4", target="classes 5-9", test_images=len(data["target_test"][1]),
                    std="over seeds, ddof=1")
    return {"data": data["name"], "protocol": protocol, "shots": summarise(runs, data["shots"])}


def run(args):
    import fastconv
    try:
        data = prepare(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"fastconv transfer: {e}", file=sys.stderr)
        return 2

    def log(msg):  # flushed: the runs take a while, show each as it ends
        print(msg, flush=True)

    start = time.perf_counter()
    log(f"data: {data['name']}; source classes 0-4, target classes 5-9 ({len(data['target_test'][1])} test "
        f"images); shots {','.join(map(str, data['shots']))}; seeds {args.seed}..{args.seed + args.seeds - 1}")
    log(f"scratch: Adam lr {args.scratch_lr:g}, batch {args.batch}, shifts of up to {args.shift} px; it and "
        f"fine-tuning train past training accuracy 1.0 until the training loss has not fallen 1% in "
        f"{args.patience} epochs, cap {args.cap} epochs")
    # Scoped, so an in-process main([...]) leaves the caller's thread count alone.
    with fastconv.num_threads(args.threads) if args.threads is not None else contextlib.nullcontext():
        doc = curve(args, data, log)
    elapsed = time.perf_counter() - start
    doc["seconds"] = round(elapsed, 1)
    print()
    print(f"{data['name']}: test accuracy on classes 5-9, mean ± std over {args.seeds} seed(s)")
    print(format_table(doc["shots"]))
    for n, row in doc["shots"].items():
        gap = 100 * (row["frozen"]["mean"] - row["scratch"]["mean"])
        # The project's bar: a 10-point lead of frozen + head over the fitted baseline; say plainly where not.
        if n in ("5", "10"):
            print(f"{n} shots: frozen + head vs fitted scratch {gap:+.1f} points "
                  f"({'meets' if gap >= 10 else 'does not meet'} the 10-point bar)")
    print(f"total {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        write_plot(args.plot, doc["shots"],
                   f"{data['name']}: source 0-4, target 5-9, {args.seeds} seed(s), mean ± std")
        print(f"wrote {args.plot}")
    return 0
