"""``fastconv evaluate FILE``: test accuracy of a checkpoint written by ``fastconv train``."""
import contextlib
import sys


def add_arguments(parser):
    parser.add_argument("checkpoint", metavar="FILE", help="a .npz written by fastconv train --save")
    parser.add_argument("--data", default=None, metavar="default|fashion|DIR",
                        help="data whose test split to use (default: the data it was trained on)")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use only the first N test images (default: the training run's --limit)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="evaluation batch size (default: the training run's)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: fastconv's)")


def evaluate(path, data=None, limit=None, batch_size=None):
    """Reload a checkpoint and measure its accuracy on a test split.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint written by ``fastconv train``.
    data : {'default', 'fashion'} or path, optional
        Default: the data the checkpoint was trained on.
    limit : int, optional
        First ``limit`` test images only; default: as in training.
    batch_size : int, optional
        Default: the batch size training evaluated with, so the result is
        reproduced exactly.

    Returns
    -------
    accuracy : float
    meta : dict
        The checkpoint's metadata (``meta["test_accuracy"]`` is what
        training measured).

    Examples
    --------
    >>> from fastconv.cli.evaluate import evaluate
    >>> evaluate("lenet5.npz")  # doctest: +SKIP
    (0.981, {...})
    """
    from fastconv.cli.train import accuracy, build_model, load_checkpoint, load_split

    state, meta = load_checkpoint(path)
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = build_model(meta)
    model.load_state_dict(state)
    images, labels = load_split(data or meta["data"], "test", limit if limit is not None else meta.get("limit"))
    acc = accuracy(model, images, labels, meta["mean"], meta["std"],
                   batch_size or meta.get("eval_batch_size", 500))
    return acc, meta


def run(args):
    import fastconv

    if args.threads is not None and args.threads < 1:
        print(f"fastconv evaluate: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    try:
        with fastconv.num_threads(args.threads) if args.threads is not None else contextlib.nullcontext():
            acc, meta = evaluate(args.checkpoint, args.data, args.limit, args.batch_size)
    except (ValueError, TypeError, OSError) as e:
        print(f"fastconv evaluate: {e}", file=sys.stderr)
        return 2
    data = args.data or meta["data"]
    print(f"{meta['model']} (epoch {meta.get('epoch', '?')}) on {data} test: {100 * acc:.2f}%")
    if args.data is None and args.limit is None and "test_accuracy" in meta:
        same = "reproduced" if abs(acc - meta["test_accuracy"]) < 1e-12 else "DIFFERS from"
        print(f"{same} the {100 * meta['test_accuracy']:.2f}% measured at the end of training")
    return 0
