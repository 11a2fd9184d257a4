"""``fastconv bench``: fastconv against scipy.signal, PyTorch and OpenCV.

Runs the cases of :mod:`fastconv._bench` with ``auto`` and every backend and
engine that can serve them, prints a table per case and the geometric means
of the ratios (peer time / fastconv time, so > 1 means fastconv is faster),
and writes every figure to ``bench.json`` and a chart to ``bench.png`` in
``--out``.  Which BLAS kernel ran is printed first: it moves the im2col
figures by up to 2x (see benchmarks/README.md).
"""
import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict

REF_TITLES = {
    "torch": "torch.nn.functional.conv2d",
    "convolve2d": "scipy.signal.convolve2d",
    "fft/oa": "the faster of scipy.signal.fftconvolve and oaconvolve",
    "cv2": "cv2.filter2D (correlation with a zero border: timing only)",
}


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="512x512 images and all layers, 2 repeats, slow backends capped, Cython "
                             "engine only where a backend has both (< 1 min)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="threads for fastconv, torch, OpenCV and scipy.fft (default: all cores)")
    parser.add_argument("--backends", default="all", metavar="all|auto|NAME,...",
                        help="forced backends to time besides auto: 'all', 'auto' (auto alone) or a "
                             "comma list of names or name/engine pairs")
    parser.add_argument("--cases", default="all", choices=("layers", "images", "all"),
                        help="which cases to run")
    parser.add_argument("--repeat", type=int, default=None, metavar="R",
                        help="timed repeats after the warm-up (default 7, or 2 with --quick)")
    parser.add_argument("--out", default="bench-out", metavar="DIR",
                        help="directory for bench.json and bench.png (default ./bench-out)")
    # Two tiny cases that run in a few seconds, for the smoke test.
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)


# --- environment ---------------------------------------------------------------

def _version(name):
    try:
        return __import__(name).__version__
    except ImportError:
        return None


def environment(counts):
    """The facts a reader needs to trust the figures: versions, threads, BLAS kernel.

    Examples
    --------
    >>> from fastconv.cli.bench import environment
    >>> "blas" in environment({"fastconv": 1})
    True
    """
    import fastconv
    from fastconv import _select, _threads, _tuning
    env = {
        "fastconv": fastconv.__version__, "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "cpu": _tuning.cpu_name(), "isa": _select.isa_class(),
        "numpy": _version("numpy"), "scipy": _version("scipy"), "numba": _version("numba"),
        "torch": _version("torch"), "cv2": _version("cv2"),
        "threads": counts,
        "blas": _threads.blas_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "FASTCONV_ISA",
                                                "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import numba
        env["numba_threading_layer"] = numba.config.THREADING_LAYER
    except ImportError:
        pass
    return env


def format_environment(env):
    lines = [f"fastconv {env['fastconv']} bench  (Python {env['python']}, numpy {env['numpy']}, "
             f"scipy {env['scipy']}, numba {env['numba']}, torch {env['torch'] or 'n/a'}, "
             f"cv2 {env['cv2'] or 'n/a'})"]
    caps = {k: v for k, v in env["env"].items()
            if k in ("FASTCONV_ISA", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") and v is not None}
    lines.append(f"CPU: {env.get('cpu', '?')}   fastconv kernels: {env.get('isa', '?')}   caps: "
                 + (", ".join(f"{k}={v}" for k, v in caps.items()) or "none"))
    lines.append("threads: " + ", ".join(f"{k} {v}" for k, v in env["threads"].items()))
    for lib in env["blas"] or [{"internal_api": "none found", "version": "", "architecture": "?",
                                "num_threads": "?"}]:
        lines.append(f"BLAS: {lib['internal_api']} {lib['version']}  kernel {lib['architecture']}  "
                     f"threads {lib['num_threads']}  ({os.path.basename(lib.get('filepath') or '?')})")
    set_vars = {k: v for k, v in env["env"].items() if k.startswith("OPENBLAS") and v is not None}
    lines.append("OpenBLAS kernel override: " + (
        ", ".join(f"{k}={v}" for k, v in set_vars.items()) if set_vars
        else "none (OpenBLAS's default kernel for this CPU)"))
    return "\n".join(lines)


# --- tables --------------------------------------------------------------------

def _ms(t):
    return f"{t * 1e3:10.3f}" if t is not None else f"{'-':>10}"


def _ratio(v):
    if v is None:
        return "n/a"
    return f"{v:.2f}" if v >= 0.1 else f"{v:.2g}"  # 0.0031, not 0.00


def format_case(res):
    """The table of one case: a row per implementation, then the ratios.

    Examples
    --------
    >>> from fastconv._bench import TINY, fastconv_impls, run_case
    >>> from fastconv.cli.bench import format_case
    >>> res = run_case(TINY[0], fastconv_impls(TINY[0]), repeat=1)
    >>> "auto" in format_case(res)
    True
    """
    c = res.case
    gflop = c.flops / 1e9
    refs = list(res.refs)
    title = f"{c.title}, " if c.group == "layers" else ""
    head = f"== {c.name}: {title}{c.describe()}, {gflop:.3g} GFLOP;  auto -> {res.auto_choice}"
    cols = f"   {'implementation':18s}{'min ms':>10}{'median ms':>11}{'runs':>5}{'warm-up ms':>11}" \
           f"{'GFLOP/s':>9}{'rel err':>9}" + "".join(f"{'vs ' + r:>15}" for r in refs)
    lines = [head, cols]
    for r in res.results:
        label = r.label if r.kind != "auto" else "fastconv auto"
        if r.skipped or r.error:
            note = f"n/a ({r.skipped})" if r.skipped and r.kind == "peer" else \
                   f"skipped: {r.skipped}" if r.skipped else f"FAILED: {r.error}"
            lines.append(f"   {label:18s}{note[:140]}")
            continue
        err = f"{'ref':>9}" if r.err == 0.0 and r.kind == "peer" else \
            f"{r.err:9.1e}" if r.err is not None else f"{'':9}"
        vs = ""
        if r.kind != "peer":
            vs = "".join(f"{_ratio(res.refs[ref] / r.min if res.refs[ref] else None):>15}" for ref in refs)
        wrong = ("  WRONG RESULT" if r.wrong else "") + (f"  ({r.note})" if r.note else "")
        lines.append(f"   {label:18s}{_ms(r.min)}{_ms(r.median):>11}{r.runs:5d}{_ms(r.warmup):>11}"
                     f"{c.flops / r.min / 1e9:9.1f}{err}{vs}{wrong}")
    best = res.best_forced
    ratios = res.ratios()
    parts = [f"{ref}: auto {_ratio(v['auto'])}, best forced {_ratio(v['best'])}" for ref, v in ratios.items()]
    lines.append(f"   best forced: {best.label + f' {best.min * 1e3:.3f} ms' if best else 'none'};  "
                 f"peer/fastconv (>1: fastconv faster): " + ";  ".join(parts))
    return "\n".join(lines)


def format_summary(summary):
    """The geometric means of the ratios, per group and peer.

    Examples
    --------
    >>> from fastconv.cli.bench import format_summary
    >>> print(format_summary({"layers": {"torch": {"auto": 0.5, "best": 0.6, "n": 8}}}))
    geometric mean of peer time / fastconv time (> 1: fastconv faster)
      group   peer          auto  best forced  cases
      layers  torch         0.50         0.60      8   torch.nn.functional.conv2d
    """
    lines = ["geometric mean of peer time / fastconv time (> 1: fastconv faster)",
             f"  {'group':8s}{'peer':12s}{'auto':>6}{'best forced':>13}{'cases':>7}"]
    for group, refs in summary.items():
        for ref, v in refs.items():
            lines.append(f"  {group:8s}{ref:12s}{_ratio(v['auto']):>6}{_ratio(v['best']):>13}{v['n']:7d}"
                         f"   {REF_TITLES.get(ref, ref)}")
    return "\n".join(lines)


# --- files ---------------------------------------------------------------------

def to_json(env, settings, case_results, summary):
    """Every figure of the run as a JSON-ready dict (times in seconds)."""
    cases = []
    for res in case_results:
        c = res.case
        best = res.best_forced
        cases.append({
            "name": c.name, "group": c.group, "title": c.title, "describe": c.describe(),
            "x_shape": c.x_shape, "w_shape": c.w_shape, "dtype": c.dtype, "stride": c.stride,
            "padding": c.padding, "flops": c.flops, "auto_choice": res.auto_choice,
            "best_forced": best.label if best else None,
            "reference_times": res.refs, "ratios": res.ratios(),
            "results": [asdict(r) for r in res.results],
        })
    return {"environment": env, "settings": settings, "cases": cases, "summary": summary,
            "ratio": "peer time / fastconv time (> 1: fastconv faster), minimum over repeats"}


def write_chart(path, case_results):
    """Bar chart, log scale: speed of fastconv auto relative to each peer, per case.

    Examples
    --------
    >>> from fastconv.cli.bench import write_chart
    >>> write_chart("/tmp/fastconv-empty-chart.png", [])
    """
    import matplotlib
    matplotlib.use("Agg")  # no display needed, and never steal one
    import matplotlib.pyplot as plt
    import numpy as np

    groups = [g for g in ("layers", "images") if any(r.case.group == g for r in case_results)]
    fig, axes = plt.subplots(len(groups) or 1, 1, figsize=(12, 4.5 * max(len(groups), 1)), squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        results = [r for r in case_results if r.case.group == group]
        refs = list(results[0].refs)
        xs = np.arange(len(results))
        width = 0.8 / len(refs)
        for i, ref in enumerate(refs):
            vals = [r.ratios()[ref]["auto"] for r in results]
            # Bars grow from 1 (parity) up or down, so slower reads as downwards.
            heights = [v - 1.0 if v else np.nan for v in vals]
            ax.bar(xs + (i - (len(refs) - 1) / 2) * width, heights, width, bottom=1.0,
                   label=f"vs {REF_TITLES.get(ref, ref)}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(xs, [r.case.name for r in results], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("peer time / fastconv auto time")
        ax.set_title(f"{group}: > 1 means fastconv is faster")
        ax.legend(fontsize=8)
    if not groups:
        axes[0, 0].text(0.5, 0.5, "no cases", ha="center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- the command -----------------------------------------------------------------

def run(args, out=None):
    """Run ``fastconv bench`` with parsed ``args``; prints to ``out`` (stdout).

    Examples
    --------
    >>> from fastconv.cli import main
    >>> main(["bench", "--tiny", "--out", "/tmp/fastconv-bench-doctest"])  # doctest: +SKIP
    0
    """
    import fastconv
    from fastconv import _bench

    out = out or sys.stdout
    try:
        selected = _bench.parse_backends(args.backends)
        cases = _bench.select_cases(args.cases, quick=args.quick, tiny=args.tiny)
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        if args.repeat is not None and args.repeat < 1:
            raise ValueError(f"--repeat must be >= 1, got {args.repeat}")
    except ValueError as exc:
        print(f"fastconv bench: {exc}", file=sys.stderr)
        return 2
    settings = dict(_bench.QUICK if args.quick or args.tiny else _bench.FULL)
    if args.tiny:
        settings["cython_first"] = False  # the smoke test exercises every engine
    if args.repeat is not None:
        settings["repeat"] = args.repeat
    n = args.threads or fastconv.get_num_threads()
    started = time.perf_counter()
    results = []
    with _bench.thread_settings(n) as counts:
        env = environment(counts)
        print(format_environment(env), file=out)
        print(f"timing: 1 warm-up call, then the min of at least {settings['repeat']} repeats "
              f"(more for calls under {settings['min_time']:g} s in all, none started after "
              f"{settings['budget']:g} s); forced backends estimated over {settings['max_call']:g} s/call "
              f"are skipped; then auto, its choice and the peers take turns for {settings['rematch']:g} s "
              f"more and keep the lower minimum; rel err is against the 'ref' row\n", file=out, flush=True)
        for case in cases:
            impls = _bench.peers(case) + _bench.fastconv_impls(case, selected, settings["cython_first"])
            res = _bench.run_case(case, impls, settings["repeat"], settings["budget"], settings["max_call"],
                                  settings["min_time"])
            _bench.rematch(case, impls, res, settings["rematch"])
            results.append(res)
            print(format_case(res) + "\n", file=out, flush=True)
    summary = _bench.summarize(results)
    print(format_summary(summary), file=out)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "bench.json")
    png_path = os.path.join(args.out, "bench.png")
    settings.update(quick=args.quick, cases=args.cases, backends=args.backends,
                    seconds=round(time.perf_counter() - started, 2))
    with open(json_path, "w") as f:
        json.dump(to_json(env, settings, results, summary), f, indent=1, default=str)
    write_chart(png_path, results)
    print(f"\nwrote {json_path} and {png_path} ({settings['seconds']:.1f} s)", file=out)
    return 0
