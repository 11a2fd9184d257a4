"""Inference of the classic networks: fastconv eager and compiled against PyTorch and ONNX Runtime.

Cases (the acceptance figures of the whole-network issue): VGG16 batch 1 and
ResNet-50 batch 8, both 224x224, float32, eval mode, 2 threads.  torch's
networks are built here from the same layer lists (torchvision is too heavy
to install) and loaded with fastconv's state dict; ONNX Runtime (when onnx and
onnxruntime are installed: ``pip install "fastconv[bench]"``) runs
``torch.onnx.export`` of that torch network on the CPU execution provider
with ``intra_op_num_threads`` = the threads and every graph optimisation on.

    python benchmarks/bench_inference.py [--rounds 3] [--threads 2] [--memory] [--tune]

The four take turns, round by round (``fastconv._select.take_turns``: one
untimed call before each timed one, the order rotated every round); each
row prints the minimum, the ratio to torch and to ONNX Runtime, and the max
output error relative to the output's scale, against torch.  ``--memory``
reports the compiled ResNet-50 batch 8's planned activation buffers against
its two largest live activations plus the weights.  ``--tune`` adds a fifth
racer, the network compiled with ``nn.inference(tune=True)`` (each layer's
candidates timed once; the time it takes is printed).
"""
import argparse
import warnings
import os
import tempfile
import time
import tracemalloc

import numpy as np
from _torch_nets import torch_resnet, torch_vgg16


CASES = {
    "vgg16": ("vgg16", torch_vgg16, 1),
    "resnet50": ("resnet50", lambda torch: torch_resnet(torch, "resnet50"), 8),
}


def _onnx_session(torch, ref, x, threads):
    """An ONNX Runtime session of ``ref`` exported for inputs shaped as ``x``, or None
    when onnx or onnxruntime is missing."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime as ort
    except ImportError:
        return None
    path = os.path.join(tempfile.mkdtemp(prefix="fastconv-ort-"), "model.onnx")
    with warnings.catch_warnings():
        # The TorchScript exporter needs no onnxscript; torch 2.9+ calls it legacy.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(ref, (torch.from_numpy(x),), path, input_names=["x"], output_names=["y"],
                          dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def build(name):
    """(fastconv model, torch model with the same weights, batch) of a case."""
    import torch

    from fastconv import models, nn
    factory, torch_factory, batch = CASES[name]
    nn.manual_seed(0)
    ours = getattr(models, factory)().eval()
    ref = torch_factory(torch).eval()
    ref.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    return ours, ref, batch


def bench_case(name, rounds, threads, size=224, tune=False):
    """Time one case; returns a dict of the row's figures (ms, ratios, errors).

    ``tune``: also a network compiled with ``nn.inference(tune=True)`` (each
    layer's candidates timed once, into the tuning cache), as a fifth racer.

    Examples
    --------
    >>> row = bench_case("resnet50", rounds=1, threads=2)  # doctest: +SKIP
    """
    import torch

    from fastconv import nn
    from fastconv._select import take_turns
    ours, ref, batch = build(name)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    fast = nn.inference(ours)
    sess = _onnx_session(torch, ref, x, threads)
    outs = {}

    def keep(label, y):
        outs[label] = y
        return y

    def run_eager():
        with nn.no_grad():
            return keep("fastconv eager", ours(nn.Tensor(x)).numpy())

    def run_compiled():
        return keep("fastconv compiled", fast(x).numpy())

    def run_torch():
        with torch.no_grad():
            return keep("torch", ref(torch.from_numpy(x)).numpy())

    def run_ort():
        return keep("onnxruntime", sess.run(None, {"x": x})[0])

    fns = {"fastconv eager": run_eager, "fastconv compiled": run_compiled, "torch": run_torch}
    if sess is not None:
        fns["onnxruntime"] = run_ort
    t0 = time.perf_counter()
    fast(x)   # compiles: trace, fold, plan (timed apart)
    compile_s = time.perf_counter() - t0
    tune_s = None
    if tune:
        tuned = nn.inference(ours, tune=True)
        t0 = time.perf_counter()
        tuned(x)   # times every layer's candidates once
        tune_s = time.perf_counter() - t0
        fns["fastconv tuned"] = lambda: keep("fastconv tuned", tuned(x).numpy())
    times = take_turns(list(fns.values()), min_rounds=rounds)
    best = {k: min(t) for k, t in zip(fns, times)}
    y_ref = outs["torch"].astype(np.float64)
    scale = max(np.abs(y_ref).max(), 1e-30)
    errs = {k: float(np.abs(outs[k] - y_ref).max() / scale) for k in fns}
    return {"case": f"{name} batch {batch} {size}x{size}", "ms": {k: 1e3 * v for k, v in best.items()},
            "rel_err": errs, "compile_s": compile_s, "tune_s": tune_s, "rounds": rounds}


def memory_report(name="resnet50", size=224):
    """Planned activation memory of the compiled network against the issue's bound:
    1.5x (the two largest live activations + the weights).

    Examples
    --------
    >>> memory_report()  # doctest: +SKIP
    """
    from fastconv import nn
    ours, _, batch = build(name)
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    fast = nn.inference(ours)
    fast(x)
    plan = fast.plan(x)
    weights = sum(s.w.nbytes for s in plan.steps if hasattr(s, "w")) + \
        sum(s.wt.nbytes for s in plan.steps if hasattr(s, "wt"))
    acts = sorted((int(np.prod(v.shape)) * v.dtype.itemsize for v in plan.values if v is not None),
                  reverse=True)
    buffers = sum(b.nbytes for b in plan.buffers)
    fast(x)
    tracemalloc.start()
    fast(x)
    transient = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bound = acts[0] + acts[1] + weights
    return {"case": f"{name} batch {batch} {size}x{size}", "buffers": buffers, "n_buffers": len(plan.buffers),
            "weights": weights, "two_largest": acts[0] + acts[1], "transient_peak": transient,
            "ratio": (buffers + weights + transient) / bound}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of turns (default 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--tune", action="store_true",
                        help="also race the network compiled with nn.inference(tune=True)")
    args = parser.parse_args(argv)
    import torch

    import fastconv
    from fastconv import _tuning
    fastconv.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    try:
        import onnxruntime
        ort_v = onnxruntime.__version__
    except ImportError:
        ort_v = "not installed (pip install onnx onnxruntime)"
    print(f"CPU {_tuning.cpu_name()}, threads {args.threads}, torch {torch.__version__}, "
          f"onnxruntime {ort_v}; minimum of {args.rounds} rounds of turns")
    peers = ["fastconv eager", "fastconv compiled"] + (["fastconv tuned"] if args.tune else []) \
        + ["torch", "onnxruntime"]
    print(f"{'case':28s}" + "".join(f"{p + ' ms':>22s}" for p in peers)
          + f"{'compiled/torch':>15s}{'compiled/ORT':>13s}" + (f"{'tuned/ORT':>11s}" if args.tune else ""))
    for name in args.cases:
        r = bench_case(name, args.rounds, args.threads, tune=args.tune)
        ms = r["ms"]
        cells = "".join(f"{ms[p]:>22.1f}" if p in ms else f"{'n/a':>22s}" for p in peers)
        ort = ms.get("onnxruntime")
        ort_ratio = f"{ms['fastconv compiled'] / ort:13.2f}" if ort else f"{'n/a':>13s}"
        if args.tune:
            ort_ratio += f"{ms['fastconv tuned'] / ort:11.2f}" if ort else f"{'n/a':>11s}"
        print(f"{r['case']:28s}{cells}{ms['fastconv compiled'] / ms['torch']:15.2f}{ort_ratio}")
        print(f"{'  rel err vs torch':28s}" + "".join(
            f"{r['rel_err'][p]:>22.1e}" if p in r["rel_err"] else f"{'n/a':>22s}" for p in peers)
            + f"   (compile {r['compile_s']:.1f} s" + (f", tuning {r['tune_s']:.0f} s" if args.tune else "") + ")")
    if args.memory:
        m = memory_report()
        mib = 2 ** 20
        print(f"{m['case']} compiled: {m['n_buffers']} activation buffers {m['buffers'] / mib:.0f} MiB, "
              f"weights {m['weights'] / mib:.0f} MiB, a steady call's transient peak "
              f"{m['transient_peak'] / mib:.1f} MiB; two largest activations {m['two_largest'] / mib:.0f} MiB; "
              f"(buffers + weights + transient) / (two largest + weights) = {m['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
