"""``fastconv profile``: where a network's time goes, layer by layer.

    fastconv profile --model resnet50 --batch 8 [--eager | --train] [--json F] [--plot F]

Times one network (random weights, random input) op by op and prints a row
per layer (time, GFLOP/s, the backend chosen), the time per op kind, and the
share of the step spent outside convolutions.  By default the network runs
as :func:`fastconv.nn.inference` compiles it; ``--eager`` times the module
tree as it runs without compiling, ``--train`` one SGD-with-momentum step.
"""
import json
import sys

from ._plot import MissingPlotting, pyplot, save

#: Input size of each network when --size is not given.
_SIZES = {"lenet5": 28, "mnistcnn": 28, "inception_v3": 299, "inception_v4": 299}


def _factories():
    from fastconv import models
    names = ["lenet5", "mnistcnn", "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
             "vgg16_bn", "vgg19", "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101",
             "googlenet", "inception_v3", "inception_v4", "se_resnet50"]
    out = {}
    for n in names:
        out[n] = models.MNIST_MODELS[n] if n in models.MNIST_MODELS else getattr(models, n)
    return out


def add_arguments(parser):
    parser.add_argument("--model", default="resnet50", metavar="NAME",
                        help="the network: lenet5, mnistcnn, alexnet, vgg11..vgg19(_bn), resnet18..101, "
                             "googlenet, inception_v3, inception_v4, se_resnet50 (default resnet50)")
    parser.add_argument("--batch", type=int, default=8, metavar="N", help="batch size (default 8)")
    parser.add_argument("--size", type=int, default=None, metavar="S",
                        help="input height and width (default: the network's own, 224, 299 or 28)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--train", action="store_true", help="time a training step instead of inference")
    mode.add_argument("--eager", action="store_true",
                      help="time inference without compiling (fastconv.nn.inference) the network")
    parser.add_argument("--repeat", type=int, default=3, metavar="R",
                        help="timed steps after a warm-up; rows are medians (default 3)")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="threads (default: all cores)")
    parser.add_argument("--top", type=int, default=25, metavar="K",
                        help="print the K slowest layers (default 25; 0 prints every layer)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the profile as JSON")
    parser.add_argument("--plot", default=None, metavar="FILE",
                        help='write a chart (PNG); needs matplotlib: pip install "fastconv[bench]"')


def environment():
    """CPU, instruction set, threads and versions, without importing the peers."""
    import platform

    import numpy as np

    import fastconv
    from fastconv import _select, _threads, _tuning
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "avx2", "fma") if f in flags]
    blas = _threads.blas_info()
    return {"fastconv": fastconv.__version__, "python": platform.python_version(), "numpy": np.__version__,
            "cpu": _tuning.cpu_name(), "isa": isa, "kernels": _select.isa_class(),
            "threads": fastconv.get_num_threads(),
            "blas": [f"{b['internal_api']} {b['version']} ({b['architecture']})" for b in blas]}


def format_profile(prof, env, title, top=25):
    """The printed report of a :class:`fastconv._profile.Profile`.

    Examples
    --------
    >>> from fastconv._profile import Profile, Row
    >>> from fastconv.cli.profile import format_profile
    >>> p = Profile("eager", 2.0, [Row("conv1", "Conv2d", "conv", 1.5, 1, 0.003, "direct/cython")])
    >>> print(format_profile(p, {"cpu": "x", "isa": [], "threads": 1, "blas": []}, "net"))  # doctest: +ELLIPSIS
    net...
    """
    lines = [title, f"CPU: {env['cpu']}  ISA: {' '.join(env['isa']) or '?'} (kernels: "
                    f"{env.get('kernels', '?')})  threads: {env['threads']}  "
                    f"BLAS: {', '.join(env['blas']) or '?'}",
             f"step: {prof.step_ms:.2f} ms (median of the timed steps); outside convolutions: "
             f"{100 * prof.outside_conv_share():.1f}%", ""]
    rows = sorted(prof.rows, key=lambda r: -r.ms) if top else prof.rows
    shown = rows[:top] if top else rows
    head = f"{'layer':32s} {'op':28s} {'ms':>9} {'share':>6} {'GFLOP/s':>8}  backend"
    lines += [f"layers ({'the ' + str(len(shown)) + ' slowest of ' + str(len(rows)) if top else 'all'}):", head]
    for r in shown:
        gf = f"{r.gflops:8.1f}" if r.gflops else f"{'-':>8}"
        calls = f" x{r.calls}" if r.calls > 1 else ""
        lines.append(f"{(r.layer or '(model)')[:32]:32s} {(r.op + calls)[:28]:28s} {r.ms:9.3f} "
                     f"{100 * r.ms / prof.step_ms:5.1f}% {gf}  {r.backend}")
    lines += ["", "per op kind:", f"{'kind':22s} {'ms':>9} {'share':>6}"]
    for k, ms in prof.kinds().items():
        lines.append(f"{k:22s} {ms:9.3f} {100 * ms / prof.step_ms:5.1f}%")
    return "\n".join(lines)


def write_chart(path, prof, title):
    """Two panels: time per op kind, and per layer in network order coloured by kind."""
    plt = pyplot()
    kinds = prof.kinds()
    colours = {k: plt.cm.tab20(i % 20) for i, k in enumerate(kinds)}
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(13, 8), gridspec_kw={"height_ratios": [1, 2]})
    a1.barh(list(kinds), list(kinds.values()), color=[colours[k] for k in kinds])
    a1.invert_yaxis()
    a1.set_xlabel("ms per step")
    a1.set_title(f"{title}: {prof.step_ms:.1f} ms, {100 * prof.outside_conv_share():.0f}% outside convolutions")
    a2.bar(range(len(prof.rows)), [r.ms for r in prof.rows], color=[colours[r.kind] for r in prof.rows])
    a2.set_xlabel("op, in network order")
    a2.set_ylabel("ms")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in kinds if k != "python"]
    a2.legend(handles, [k for k in kinds if k != "python"], fontsize=7, ncol=4)
    save(fig, path)


def run(args, out=None):
    """Run ``fastconv profile`` with parsed ``args``; prints to ``out`` (stdout).

    Examples
    --------
    >>> from fastconv.cli import main
    >>> main(["profile", "--model", "lenet5", "--batch", "2", "--repeat", "1"])  # doctest: +SKIP
    0
    """
    import numpy as np

    import fastconv
    from fastconv import nn
    from fastconv._profile import profile

    out = out or sys.stdout
    factories = _factories()
    problems = []
    if args.model not in factories:
        problems.append(f"--model must be one of {', '.join(factories)}, got {args.model!r}")
    for name in ("batch", "repeat", "threads", "size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            problems.append(f"--{name} must be >= 1, got {v}")
    if args.top < 0:
        problems.append(f"--top must be >= 0, got {args.top}")
    if args.plot:
        try:
            pyplot()
        except MissingPlotting as exc:
            problems.append(f"--plot: {exc}")
    if problems:
        for p in problems:
            print(f"fastconv profile: {p}", file=sys.stderr)
        return 2
    mode = "train" if args.train else "eager" if args.eager else "compiled"
    mnist = args.model in ("lenet5", "mnistcnn")
    size = args.size or _SIZES.get(args.model, 224)
    nn.manual_seed(0)
    model = factories[args.model]() if mnist else factories[args.model](num_classes=1000)
    x = np.random.default_rng(0).standard_normal((args.batch, 1 if mnist else 3, size, size)).astype(np.float32)
    with fastconv.num_threads(args.threads or fastconv.get_num_threads()):
        env = environment()
        prof = profile(model, x, mode=mode, repeat=args.repeat)
    title = f"fastconv profile: {args.model}, batch {args.batch}, {size}x{size}, " + \
            {"compiled": "inference compiled by fastconv.nn.inference", "eager": "eager inference",
             "train": "one training step (SGD with momentum)"}[mode]
    print(format_profile(prof, env, title, args.top), file=out)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "model": args.model, "batch": args.batch, "size": size,
                       **prof.to_json()}, f, indent=1)
        print(f"\nwrote {args.json}", file=out)
    if args.plot:
        write_chart(args.plot, prof, f"{args.model} batch {args.batch} ({mode})")
        print(f"wrote {args.plot}", file=out)
    return 0
