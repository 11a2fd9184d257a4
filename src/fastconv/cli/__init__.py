"""The ``fastconv`` command (also ``python -m fastconv``).

Each subcommand lives in its own module of this package, which defines
``add_arguments(parser)`` and ``run(args) -> int``; the table below is the
only place they are listed.
"""
import argparse
import importlib
import sys

COMMANDS = {
    "info": "versions, backends, engines, threads, BLAS kernel and tuning cache",
    "bench": "benchmark fastconv against scipy, PyTorch and OpenCV",
    "profile": "time a network layer by layer: per layer, per op kind, outside convolutions",
    "tune": "measure the backends on given shapes, or clear the tuning cache",
    "train": "train a CNN on MNIST-format data",
    "evaluate": "evaluate a saved checkpoint on the test split",
    "transfer": "the transfer-learning example",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fastconv", description="Fast 2-D convolution on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            mod = importlib.import_module(f"fastconv.cli.{name}")
        except ImportError:
            continue  # a command whose module is not in this install
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    """Run the ``fastconv`` command line; returns the exit status.

    Examples
    --------
    >>> from fastconv.cli import main
    >>> main(["info"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
