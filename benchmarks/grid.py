"""Does ``auto`` pick well?  Time every backend on a grid of shapes and count.

For each shape of :func:`shapes` (NCHW layers and single images, kernels 1
to 31, strides 1 and 2, batch 1 to 64) this times ``auto`` and every forced
backend/engine that ``fastconv._dispatch.candidates`` offers, and reports on
how many shapes ``auto`` is within 10% of the fastest forced candidate: the
acceptance test of the dispatch issue.

    python benchmarks/grid.py                 # the whole grid (a few minutes)
    python benchmarks/grid.py --tune          # fastconv.tune() each shape first
    python benchmarks/grid.py --limit 10 --threads 1 --out grid.json

Forced backends estimated over ``--max-call`` seconds per call are skipped
(they could not have been the fastest).  Timings on a busy machine are
noisy: each figure is the minimum of several repeats after a warm-up, auto
and the fastest forced candidate are then timed again taking turns (the same
conditions for both finalists), and a shape counts as a hit when auto's
minimum is at most 1.10 times the best.
"""
import argparse
import json
import sys

from fastconv import _bench

TOLERANCE = 1.10

# (N, C, H, K): batch 1 to 64, few to many channels, small to large planes.
_LAYER_BASES = (
    (1, 3, 64, 16),
    (1, 64, 56, 64),
    (8, 16, 32, 32),
    (8, 64, 28, 64),
    (32, 32, 14, 64),
    (64, 1, 28, 8),
    (64, 16, 14, 32),
    (4, 128, 14, 128),
)
_LAYER_KERNELS = (1, 3, 5, 7)
_IMAGE_SIZES = (128, 256, 512)
_IMAGE_KERNELS = (3, 7, 11, 15, 21, 31)


def shapes():
    """The grid: 64 layers (8 bases x kernels 1/3/5/7 x strides 1/2) and 18 images.

    Layers are float32 with 'same'-style padding k // 2; images alternate
    float32 and float64, ``convolve2d(..., mode='same')``.

    Examples
    --------
    >>> import grid
    >>> len(grid.shapes()) >= 60
    True
    """
    out = []
    for N, C, H, K in _LAYER_BASES:
        for k in _LAYER_KERNELS:
            for s in (1, 2):
                out.append(_bench.Case(f"grid-n{N}c{C}h{H}k{K}-r{k}-s{s}", "layers", (N, C, H, H), (K, C, k, k),
                                       "float32", s, k // 2, title="grid layer"))
    for i, (n, k) in enumerate((n, k) for n in _IMAGE_SIZES for k in _IMAGE_KERNELS):
        dt = ("float32", "float64")[i % 2]
        out.append(_bench.Case(f"grid-img{n}-k{k}-{dt}", "images", (n, n), (k, k), dt, title="grid image"))
    return out


def _tune(case):
    """Run ``fastconv.tune`` on the geometry fastconv will serve; False if it does not exist."""
    import fastconv
    tune = getattr(fastconv, "tune", None)
    if tune is None:
        return False
    p = case.params()
    # Images are tuned as the 'valid' correlation convolve2d runs.
    tune((p.N, p.C, p.H, p.W), (p.K, p.Cg, p.R, p.S), stride=p.stride, padding=(p.pad[0], p.pad[2]),
         dilation=p.dilation, groups=p.groups, dtype=p.dtype)
    return True


def evaluate(cases, repeat=5, budget=2.0, max_call=1.0, min_time=0.1, tune=False, log=print):
    """Time auto and every forced candidate on each case; one row per case.

    Each row holds the case name, auto's choice and time, the fastest forced
    candidate and its time, ``ratio`` = auto / best and ``hit`` (ratio within
    :data:`TOLERANCE`), plus every candidate's time.

    Examples
    --------
    >>> import grid
    >>> from fastconv import _bench
    >>> rows = grid.evaluate(list(_bench.TINY[:1]), repeat=1, log=None)
    >>> rows[0]["best"] is not None
    True
    """
    rows = []
    for i, case in enumerate(cases):
        if tune and not _tune(case) and i == 0 and log:
            log("fastconv.tune does not exist in this install: --tune ignored")
        impls = _bench.fastconv_impls(case)
        res = _bench.run_case(case, impls, repeat, budget, max_call, min_time)
        auto, best = res.auto, res.best_forced
        if auto is not None and auto.ok and best is not None:
            _head_to_head(case, impls, auto, best, repeat)
        ratio = auto.min / best.min if auto is not None and auto.ok and best is not None else None
        row = {"case": case.name, "describe": case.describe(), "auto_choice": res.auto_choice,
               "auto_ms": auto.min * 1e3 if auto.ok else None,
               "best": best.label if best else None, "best_ms": best.min * 1e3 if best else None,
               "ratio": ratio, "hit": ratio is not None and ratio <= TOLERANCE,
               "times_ms": {r.label: (r.min * 1e3 if r.ok else None) for r in res.results},
               "skipped": {r.label: r.skipped or r.error or "wrong result"
                           for r in res.results if not r.ok}}
        rows.append(row)
        if log:
            log(f"{i + 1:3d}/{len(cases)} {case.name:34s} auto {row['auto_choice']:16s} "
                f"{_fmt(row['auto_ms'])} ms  best {str(row['best']):16s} {_fmt(row['best_ms'])} ms  "
                f"auto/best {_fmt(ratio, 2)}{'' if row['hit'] else '  MISS'}")
    return rows


def _head_to_head(case, impls, auto, best, rounds):
    """Time auto and the fastest forced candidate again, taking turns.

    Candidates are first timed one after the other, so a burst of noise (or
    a cache or allocator state left by the previous candidate) can land on
    one of them only; a 1.1x verdict needs the two finalists measured under
    the same conditions.  Alternating (each turn one untimed call, then one
    timed, as ``fastconv._select.measure`` does), each result's minimum is
    lowered to the best it reaches here.
    """
    import time
    x, w = case.data()
    fns = {r.label: i.make(x, w) for i in impls for r in (auto, best) if i.label == r.label}
    spent, n = 0.0, 0
    # As many rounds as ``measure`` gives a cheap call: at least ``rounds``
    # and 0.2 s per finalist, at most 2 s in all.
    while n < max(rounds, 3) or (spent < 0.4 and n < 1000):
        for r in (auto, best):
            fns[r.label]()              # settles: the other library's idle threads stop spinning
            t0 = time.perf_counter()
            fns[r.label]()
            dt = time.perf_counter() - t0
            r.min = min(r.min, dt)
            spent += dt
        n += 1
        if spent > 2.0:
            break


def _fmt(v, digits=3):
    return f"{v:9.{digits}f}" if v is not None else f"{'n/a':>9}"


def report(rows):
    """The verdict: how many shapes auto is within 10% of the best forced backend.

    Examples
    --------
    >>> import grid
    >>> grid.report([{"case": "a", "ratio": 1.05, "hit": True}, {"case": "b", "ratio": 1.5, "hit": False}])
    'auto within 10% of the fastest forced backend on 1 of 2 shapes (50%); worst: b 1.50x'
    """
    measured = [r for r in rows if r["ratio"] is not None]
    hits = sum(r["hit"] for r in measured)
    misses = sorted((r for r in measured if not r["hit"]), key=lambda r: -r["ratio"])
    worst = ", ".join(f"{r['case']} {r['ratio']:.2f}x" for r in misses[:5])
    pct = 100 * hits / len(measured) if measured else 0
    return (f"auto within {round(100 * (TOLERANCE - 1))}% of the fastest forced backend on {hits} of "
            f"{len(measured)} shapes ({pct:.0f}%)" + (f"; worst: {worst}" if worst else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tune", action="store_true", help="call fastconv.tune on each shape first")
    parser.add_argument("--threads", type=int, default=None, help="thread count (default: all cores)")
    parser.add_argument("--repeat", type=int, default=5, help="minimum timed repeats (default 5)")
    parser.add_argument("--max-call", type=float, default=1.0,
                        help="skip forced backends estimated over this many seconds per call")
    parser.add_argument("--limit", type=int, default=None, help="only the first N shapes")
    parser.add_argument("--match", default=None, help="only shapes whose name contains this")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)

    import fastconv
    cases = [c for c in shapes() if args.match is None or args.match in c.name][:args.limit]
    with _bench.thread_settings(args.threads or fastconv.get_num_threads()) as counts:
        print(f"{len(cases)} shapes; threads {counts}")
        rows = evaluate(cases, repeat=args.repeat, max_call=args.max_call, tune=args.tune)
    verdict = report(rows)
    print(verdict)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"verdict": verdict, "tolerance": TOLERANCE, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
