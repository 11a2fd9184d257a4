"""``fastconv train``: train LeNet-5 or the Keras MNIST CNN on MNIST-format data.

With no arguments it trains LeNet-5 on the 5,000 MNIST digits embedded in
fastconv and writes ``lenet5.npz``; ``fastconv evaluate lenet5.npz`` reloads it.

A checkpoint is an ``.npz`` holding the model's ``state_dict`` under its
PyTorch key names plus one ``__meta__`` entry, a JSON string with the model
name and arguments, the data, the normalisation and the training history::

    z = np.load("lenet5.npz")
    model.load_state_dict({k: z[k] for k in z.files if k != "__meta__"})
"""
import contextlib
import json
import pathlib
import sys
import time

import numpy as np

from fastconv._atomic import write_atomic

FORMAT = "fastconv-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"

# Defaults for the README's job, ``fastconv train`` with no arguments: LeNet-5
# on the embedded digits.  SGD with Nesterov momentum, a cosine schedule and
# +-2 pixel shifts reached 97.8-98.3% on the 1,000 test digits over seeds 0-3
# in 12 epochs (Adam at 2e-3 reached 97.2-97.9%); about 15 s of CPU time.
DEFAULTS = {
    "model": "lenet5",
    "data": "default",
    "epochs": 12,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": {"adam": 2e-3, "sgd": 0.05},
    "momentum": 0.9,
    "weight_decay": 0.0,
    "schedule": "cosine",
    # Shifts are what 4,000 digits need; on the 60,000-image sets the few
    # epochs people give them are better spent on the images themselves.
    "augment": {"default": 2, "other": 0},
    "seed": 0,
    "eval_batch_size": 500,
}


def add_arguments(parser):
    from fastconv.models import MNIST_MODELS

    d = DEFAULTS
    parser.add_argument("--model", choices=sorted(MNIST_MODELS), default=d["model"],
                        help="the network (default: %(default)s)")
    parser.add_argument("--data", default=d["data"], metavar="default|fashion|DIR",
                        help="'default': the 5,000 MNIST digits embedded in fastconv; 'fashion': "
                             "Fashion-MNIST from Debian's dataset-fashion-mnist; or a directory of "
                             "MNIST-format IDX files (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=d["epochs"], help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"], help="default: %(default)s")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default=d["optimizer"],
                        help="adam, or sgd with Nesterov momentum (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"learning rate (default: {d['lr']['adam']} for adam, {d['lr']['sgd']} for sgd)")
    parser.add_argument("--momentum", type=float, default=d["momentum"], help="sgd momentum (default: %(default)s)")
    parser.add_argument("--weight-decay", type=float, default=d["weight_decay"], help="default: %(default)s")
    parser.add_argument("--schedule", choices=["cosine", "step", "none"], default=d["schedule"],
                        help="learning-rate schedule over the epochs; 'step' divides by 10 at 2/3 "
                             "(default: %(default)s)")
    parser.add_argument("--augment", type=int, default=None, metavar="PIXELS",
                        help="shift training images randomly by up to this many pixels, 0 for none "
                             f"(default: {d['augment']['default']} on the embedded digits, "
                             f"{d['augment']['other']} on other data)")
    parser.add_argument("--batch-norm", action="store_true", help="add batch normalisation to the model")
    parser.add_argument("--backend", default="auto",
                        help="convolution backend: auto or one of fastconv.backends() (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: fastconv's)")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help="seed of the initialisation, data order, shifts and dropout (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use only the first N images of each split (quick runs)")
    parser.add_argument("--save", default=None, metavar="FILE",
                        help="checkpoint written after every epoch (default: <model>.npz)")
    parser.add_argument("--no-save", action="store_true", help="write no checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


# --- checkpoints ----------------------------------------------------------------

def save_checkpoint(path, state_dict, meta):
    """Write ``state_dict`` and ``meta`` to ``path`` atomically.

    The file is written to a temporary file in the same directory, synced
    and moved into place with ``os.replace``, so ``path`` always holds either
    the old or the new complete checkpoint, even if the process is killed;
    temporary files of killed writers are removed by the next write.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``.npz`` file.
    state_dict : mapping of str to ndarray
        ``model.state_dict()``.
    meta : dict
        JSON-serialisable facts stored beside the weights.

    Examples
    --------
    >>> import os, tempfile
    >>> from fastconv import nn
    >>> from fastconv.cli.train import save_checkpoint, load_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "lin.npz")
    >>> save_checkpoint(path, nn.Linear(2, 1).state_dict(), {"model": "linear"})
    >>> state, meta = load_checkpoint(path)
    >>> sorted(state), meta["model"]
    (['bias', 'weight'], 'linear')
    """
    if META_KEY in state_dict:
        raise ValueError(f"state_dict must not contain the reserved key {META_KEY!r}")
    path = pathlib.Path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    arrays = {k: np.asarray(v) for k, v in state_dict.items()}
    arrays[META_KEY] = np.array(json.dumps(meta))
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """Read a checkpoint written by ``fastconv train``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    state_dict : dict of str to ndarray
        For ``model.load_state_dict``.
    meta : dict
        Model name and arguments, data, normalisation, history.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a fastconv checkpoint.

    Examples
    --------
    >>> from fastconv.cli.train import load_checkpoint
    >>> load_checkpoint("missing.npz")
    Traceback (most recent call last):
    ...
    FileNotFoundError: checkpoint 'missing.npz' does not exist
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} is not a file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - foreign bytes fail in zipfile, zlib, numpy's parser...
        reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise ValueError(f"{path} is not a fastconv checkpoint (a damaged, truncated or foreign "
                         f".npz; {reason})") from None
    if META_KEY not in arrays:
        raise ValueError(f"{path} is an .npz without the {META_KEY!r} entry of a fastconv checkpoint")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except ValueError as e:
        raise ValueError(f"{path}: the checkpoint's {META_KEY!r} entry is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path}: unknown checkpoint format {got!r}")
    return arrays, meta


def build_model(meta):
    """The model a checkpoint's ``meta`` describes, freshly initialised.

    Examples
    --------
    >>> from fastconv.cli.train import build_model
    >>> type(build_model({"model": "lenet5", "model_kwargs": {}})).__name__
    'LeNet5'
    """
    from fastconv.models import MNIST_MODELS

    name = meta.get("model")
    if name not in MNIST_MODELS:
        raise ValueError(f"checkpoint model must be one of {sorted(MNIST_MODELS)}, got {name!r}")
    return MNIST_MODELS[name](**meta.get("model_kwargs", {}))


# --- what runs the convolutions ---------------------------------------------------

def conv_layers(model, input_shape, dtype=np.float32):
    """``(name, x_shape, conv)`` for every Conv2d of ``model.features``, in order.

    Shapes are found by running a single zero image through ``features``
    layer by layer, then given the batch size of ``input_shape``.

    Examples
    --------
    >>> from fastconv.models import LeNet5
    >>> from fastconv.cli.train import conv_layers
    >>> [(n, s) for n, s, _ in conv_layers(LeNet5(), (64, 1, 28, 28))]
    [('features.0', (64, 1, 28, 28)), ('features.3', (64, 6, 14, 14))]
    """
    from fastconv import nn

    out = []
    was_training = model.training
    model.eval()
    try:
        with nn.no_grad():
            x = nn.Tensor(np.zeros((1,) + tuple(input_shape[1:]), dtype))
            for name, layer in model.features.named_children():
                if isinstance(layer, nn.Conv2d):
                    out.append((f"features.{name}", (input_shape[0],) + tuple(x.shape[1:]), layer))
                x = layer(x)
    finally:
        model.train(was_training)
    return out


def conv_choice(x_shape, conv, backend="auto", dtype="float32"):
    """``(backend, engine, reason)`` fastconv runs a Conv2d layer's forward pass with.

    Uses ``fastconv.explain`` when this install has it, else the dispatcher.

    Examples
    --------
    >>> from fastconv import nn
    >>> from fastconv.cli.train import conv_choice
    >>> conv_choice((64, 1, 28, 28), nn.Conv2d(1, 6, 5, padding=2))[0] in __import__("fastconv").backends()
    True
    """
    import fastconv
    from fastconv import _dispatch
    from fastconv._validation import conv2d_args

    w_shape = tuple(conv.weight.shape)
    args = (conv.stride, conv.padding, conv.dilation, conv.groups)
    explain = getattr(fastconv, "explain", None)
    if backend == "auto" and explain is not None:
        e = explain(tuple(x_shape), w_shape, *args, dtype=dtype)
        return e.choice[0], e.choice[1], e.reason
    # The dispatcher needs arrays only for their shapes: zero-stride views cost nothing.
    x = np.broadcast_to(np.zeros((), dtype), x_shape)
    w = np.broadcast_to(np.zeros((), dtype), w_shape)
    p = conv2d_args(x, w, None, *args)[3]
    mod, eng = _dispatch.resolve(p, backend)
    return mod.__name__.rsplit(".", 1)[-1], eng, "named by --backend" if backend != "auto" else "dispatcher"


def describe_conv(name, x_shape, conv):
    k = conv.weight.shape
    pad = conv.padding if isinstance(conv.padding, str) else conv.padding[0]
    return f"{name} {x_shape} -> {k[0]}@{k[2]}x{k[3]}" + (f" pad {pad}" if pad else "")


# --- training -------------------------------------------------------------------------

def _resolve_and_check(args):
    """Fill the data-dependent defaults into ``args``, then check every value."""
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.lr is not None and not args.lr > 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if args.augment is None:
        args.augment = DEFAULTS["augment"]["default" if args.data == "default" else "other"]
    if args.augment < 0:
        raise ValueError(f"--augment must be >= 0 pixels, got {args.augment}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")


def load_split(data, split, limit=None):
    """Images and labels of ``split``, the first ``limit`` of them if given."""
    from fastconv.data import load_data

    images, labels = load_data(data, split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def check_trainable(data, train_x, test_x):
    """ValueError naming the data when it cannot be trained on or evaluated.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.cli.train import check_trainable
    >>> check_trainable("d", np.zeros((5, 28, 28), np.uint8), np.zeros((5, 28, 28), np.uint8))
    Traceback (most recent call last):
    ...
    ValueError: d: every train image is the constant 0: there is nothing to learn and no spread to normalise by
    """
    for split, images in (("train", train_x), ("test", test_x)):
        if len(images) == 0:
            raise ValueError(f"{data}: the {split} split holds no images")
    if train_x.min() == train_x.max():
        raise ValueError(f"{data}: every train image is the constant {train_x.flat[0]}: there is "
                         "nothing to learn and no spread to normalise by")


def data_spec(data):
    """What the checkpoint records as the data: a name, or an absolute directory."""
    return data if data in ("default", "fashion") else str(pathlib.Path(data).resolve())


def accuracy(model, images, labels, mean, std, batch_size=DEFAULTS["eval_batch_size"]):
    """Fraction of ``images`` ``model`` classifies as ``labels`` (eval mode, no grad).

    Examples
    --------
    >>> from fastconv.models import LeNet5
    >>> from fastconv.data import load_mnist
    >>> from fastconv.cli.train import accuracy
    >>> x, y = load_mnist(split="test")
    >>> 0.0 <= accuracy(LeNet5(), x[:50], y[:50], 0.13, 0.31) <= 1.0
    True
    """
    from fastconv import nn
    from fastconv.data import BatchIterator

    was_training = model.training
    model.eval()
    correct = 0
    try:
        with nn.no_grad():
            for x, y in BatchIterator(images, labels, batch_size, shuffle=False, mean=mean, std=std):
                correct += int((model(nn.Tensor(x)).data.argmax(axis=1) == y).sum())
    finally:
        model.train(was_training)
    return correct / len(labels)


def _make_optimizer(args, model):
    from fastconv import optim

    lr = args.lr if args.lr is not None else DEFAULTS["lr"][args.optimizer]
    if args.optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=args.momentum,
                        weight_decay=args.weight_decay, nesterov=args.momentum > 0)
    if args.schedule == "cosine":
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    elif args.schedule == "step":
        sched = optim.lr_scheduler.StepLR(opt, step_size=max(1, (2 * args.epochs) // 3))
    else:
        sched = None
    return lr, opt, sched


def _progress(total, desc, quiet):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=quiet,
                dynamic_ncols=True, file=sys.stderr)


def run(args):
    import fastconv

    try:
        _resolve_and_check(args)
        train_x, train_y = load_split(args.data, "train", args.limit)
        test_x, test_y = load_split(args.data, "test", args.limit)
        check_trainable(args.data, train_x, test_x)
    except (ValueError, TypeError, OSError) as e:
        print(f"fastconv train: {e}", file=sys.stderr)
        return 2
    # Scoped, so an in-process main([...]) leaves the caller's thread count alone.
    with fastconv.num_threads(args.threads) if args.threads is not None else contextlib.nullcontext():
        return _train(args, train_x, train_y, test_x, test_y)


def _train(args, train_x, train_y, test_x, test_y):
    import fastconv
    from fastconv import nn
    from fastconv.data import BatchIterator, mean_std
    from fastconv.nn import functional as F

    save = None if args.no_save else pathlib.Path(args.save or f"{args.model}.npz")

    nn.manual_seed(args.seed)
    mean, std = mean_std(train_x)
    num_classes = max(10, int(max(train_y.max(), test_y.max())) + 1)
    model_kwargs = {"num_classes": num_classes, "in_channels": 1, "batch_norm": args.batch_norm}
    meta = {"model": args.model, "model_kwargs": model_kwargs, "data": data_spec(args.data),
            "limit": args.limit, "mean": mean, "std": std, "eval_batch_size": DEFAULTS["eval_batch_size"],
            "seed": args.seed, "fastconv": fastconv.__version__,
            "args": {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "command"}}
    model = build_model(meta)
    lr, opt, sched = _make_optimizer(args, model)
    batches = BatchIterator(train_x, train_y, args.batch_size, shuffle=True, seed=args.seed,
                            mean=mean, std=std, max_shift=args.augment)

    n_params = sum(p.data.size for p in model.parameters())
    print(f"{args.model}: {n_params:,} parameters; data {args.data}: {len(train_y):,} train, "
          f"{len(test_y):,} test images; {fastconv.get_num_threads()} threads")
    print(f"{args.optimizer} lr {lr:g}, schedule {args.schedule}, batch {args.batch_size}, "
          f"{args.epochs} epochs, shifts up to {args.augment} px, seed {args.seed}")
    try:
        for name, x_shape, conv in conv_layers(model, (args.batch_size, 1) + train_x.shape[1:]):
            backend, engine, reason = conv_choice(x_shape, conv, args.backend)
            print(f"  {describe_conv(name, x_shape, conv)}: {backend}/{engine} ({reason})")
    except ValueError as e:
        print(f"fastconv train: --backend {args.backend}: {e}", file=sys.stderr)
        return 2
    if args.backend != "auto":
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.backend = args.backend

    history = []
    epoch = 0
    try:
        for epoch in range(1, args.epochs + 1):
            model.train()
            batches.set_epoch(epoch - 1)
            loss_sum, correct, seen = 0.0, 0, 0
            t0 = time.perf_counter()
            with _progress(len(batches), f"epoch {epoch}/{args.epochs}", args.quiet) as bar:
                for x, y in batches:
                    logits = model(nn.Tensor(x))
                    loss = F.cross_entropy(logits, y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    loss_sum += loss.item() * len(y)
                    correct += int((logits.data.argmax(axis=1) == y).sum())
                    seen += len(y)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}",
                                    img_s=f"{seen / (time.perf_counter() - t0):,.0f}")
            train_time = time.perf_counter() - t0
            if sched is not None:
                sched.step()
            test_acc = accuracy(model, test_x, test_y, mean, std, DEFAULTS["eval_batch_size"])
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch, "loss": loss_sum / seen, "train_accuracy": correct / seen,
                            "test_accuracy": test_acc, "seconds": seconds})
            print(f"epoch {epoch}/{args.epochs}: loss {loss_sum / seen:.4f}  train {100 * correct / seen:.2f}%  "
                  f"test {100 * test_acc:.2f}%  {seconds:.1f} s ({seen / train_time:,.0f} img/s)", flush=True)
            if save is not None:
                save_checkpoint(save, model.state_dict(),
                                {**meta, "epoch": epoch, "test_accuracy": test_acc, "history": history})
    except KeyboardInterrupt:
        kept = f"; {save} holds epoch {epoch - 1}" if save is not None and epoch > 1 else ""
        print(f"\ninterrupted during epoch {epoch}{kept}", file=sys.stderr)
        return 130
    total = sum(h["seconds"] for h in history)
    print(f"done: test accuracy {100 * history[-1]['test_accuracy']:.2f}% in {total:.1f} s"
          + (f"; checkpoint {save} (fastconv evaluate {save})" if save is not None else ""))
    return 0
