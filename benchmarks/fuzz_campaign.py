"""A long fuzzing campaign over fastconv's public API (issue 18).

Draws random calls (tests/fuzz_harness.py's generator), runs them in a
worker process in batches, checks each against its oracle and prints the
counts of calls, crashes, hangs, wrong results and unclear errors, plus the
first few examples of each failure kind.  Every drawn call is run and counted.

    python benchmarks/fuzz_campaign.py --calls 100000 [--seed 1] [--minutes 30] [--api conv2d]

Exit status 1 when any crash, hang, wrong result or unclear error was seen.
"""
import argparse
import collections
import random
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fuzz_harness as fh  # noqa: E402

FAILURES = ("crash", "hang", "wrong", "unclear")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--minutes", type=float, default=None, help="stop after this long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per call before it is a hang")
    ap.add_argument("--api", choices=fh.APIS, default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="FASTCONV_NUM_THREADS of the worker (default: fastconv's); 1 runs many more calls "
                         "a second on a loaded machine, where OpenMP teams wait on busy cores")
    ap.add_argument("--examples", type=int, default=3, help="examples printed per failure kind")
    ap.add_argument("--every", type=float, default=60.0, help="seconds between progress lines")
    args = ap.parse_args(argv)

    # A stop request (Ctrl-C, kill) ends the campaign with its summary printed.
    stopped = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.append(True))
    r = random.Random(args.seed)
    worker = fh.Worker(timeout=args.timeout,
                       env={"FASTCONV_NUM_THREADS": str(args.threads)} if args.threads else None)
    counts = collections.Counter()
    examples = collections.defaultdict(list)
    t0 = last = time.monotonic()
    stop = t0 + 60 * args.minutes if args.minutes else float("inf")
    try:
        while counts["calls"] < args.calls and time.monotonic() < stop and not stopped:
            batch = [fh.gen_case(r, args.api) for _ in range(min(args.batch, args.calls - counts["calls"]))]
            for case, outcome in zip(batch, worker.run(batch)):
                counts["calls"] += 1
                kind, detail = fh.verdict(case, outcome)
                counts[kind] += 1
                if kind != "ok" and len(examples[kind]) < args.examples:
                    examples[kind].append(f"{fh.describe(case)}\n      -> {detail}")
            if time.monotonic() - last > args.every:
                last = time.monotonic()
                print(_line(counts, last - t0), flush=True)
    finally:
        worker.close()
    print(_line(counts, time.monotonic() - t0))
    for kind in FAILURES:
        for ex in examples[kind]:
            print(f"  {kind}: {ex}")
    return 1 if any(counts[k] for k in FAILURES) else 0


def _line(counts, seconds):
    return (f"{counts['calls']:,} calls in {seconds:,.0f} s ({counts['calls'] / max(seconds, 1e-9):,.0f}/s): "
            + ", ".join(f"{counts[k]} {k}" for k in FAILURES)
            + f" ({counts['unshipped']} results too large to copy back: shape and dtype checked)")


if __name__ == "__main__":
    sys.exit(main())
