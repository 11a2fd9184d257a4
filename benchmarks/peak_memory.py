"""Peak memory of one call, per shape and backend, against its input and output bytes.

Each case runs in a fresh interpreter (so one case's kept buffers and
allocator state do not hide another's) with ``FASTCONV_MAX_WORKSPACE`` set to
the budget: the peak resident set of the first call is read from the kernel
(VmHWM after resetting it through /proc/self/clear_refs, Linux, once a small
call of each kind has paid the process's one-offs; it still includes the
call's own first-time costs, such as caches it fills, and glibc keeps
what a call frees, so a later call's RSS would show nothing), and the peak
of numpy's allocations from tracemalloc in a warm third call.  The target (issue 18): peak <= 2x (input +
output bytes) + budget.

    python benchmarks/peak_memory.py [--budget 67108864] [--quick]

(the median cases name the engine in the backend column)
"""
import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, sys, tracemalloc
import numpy as np
import fastconv

spec = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
if spec["kind"] == "conv2d":
    x = rng.standard_normal(spec["x"]).astype(spec["dtype"])
    w = rng.standard_normal(spec["w"]).astype(spec["dtype"])
    call = lambda: fastconv.conv2d(x, w, backend=spec["backend"], **spec["kw"])
elif spec["kind"] == "median":
    from fastconv import filters
    x = rng.standard_normal(spec["x"]).astype(spec["dtype"])
    call = lambda: filters.median_filter(x, spec["w"], engine=spec["backend"])
else:
    if np.dtype(spec["dtype"]).kind == "i":
        x = rng.integers(-100, 100, spec["x"]).astype(spec["dtype"])
        w = rng.integers(-3, 4, spec["w"]).astype(spec["dtype"])
    else:
        x = rng.standard_normal(spec["x"]).astype(spec["dtype"])
        w = rng.standard_normal(spec["w"]).astype(spec["dtype"])
    call = lambda: fastconv.convolve2d(x, w, backend=spec["backend"], **spec["kw"])


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024


# One-offs of the process, not of the call (thread pools and their buffers,
# the cost model's self-measurement, lazily loaded libraries): paid on a
# small call of each kind before measuring.
fastconv.conv2d(np.ones((1, 2, 8, 8), np.float32), np.ones((2, 2, 3, 3), np.float32), padding=1)
fastconv.convolve2d(np.ones((8, 8), x.dtype), np.ones((3, 3), x.dtype))
if spec["kind"] == "median":          # the engine's rank kernel (Numba: its compiled code, loaded)
    filters.median_filter(np.ones((8, 8), x.dtype), 4, engine=spec["backend"])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                      # VmHWM := VmRSS
rss0 = status("VmRSS")
y = call()                            # the first call: glibc keeps what a call frees,
rss_peak = status("VmHWM") - rss0     # so only this one shows the resident peak
del y
y = call()
del y
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
y = call()
traced = tracemalloc.get_traced_memory()[1] - base
tracemalloc.stop()
print(json.dumps({"io": x.nbytes + y.nbytes, "rss": rss_peak, "traced": traced}))
"""


def cases(quick):
    layer = dict(kind="conv2d", x=(8, 64, 56, 56), w=(64, 64, 3, 3), dtype="float32", kw=dict(padding=1))
    # The layer whose whole-image column matrix asked for 8 GiB (issue 18).
    dil = dict(kind="conv2d", x=(1, 64, 300 if quick else 1167, 300 if quick else 1167), w=(64, 64, 5, 5),
               dtype="float32", kw=dict(dilation=2))
    med = dict(kind="median", x=(1024, 1024), w=513 if not quick else 129, dtype="float32", kw={})
    pad = dict(kind="conv2d", x=(1, 2, 5, 5), w=(3, 2, 3, 3), dtype="float32", kw=dict(padding=1500))
    i8 = dict(kind="convolve2d", x=(2000, 2000), w=(5, 5), dtype="int8", kw=dict(mode="same"))
    f32 = dict(kind="convolve2d", x=(2048, 2048), w=(15, 15), dtype="float32", kw=dict(mode="same"))
    out = []
    for name, spec, backends in (
            ("resnet 3x3 (8,64,56,56)->64", layer, ["auto", "im2col", "winograd", "direct", "fft"]),
            (f"dilated 5x5 d2 {dil['x']}->64", dil, ["auto", "im2col"]),
            ("padding 1500 (1,2,5,5)->3", pad, ["auto", "fft", "winograd", "naive"]),
            ("convolve2d int8 2000^2 5x5", i8, ["auto"]),
            ("convolve2d f32 2048^2 15x15", f32, ["auto", "fft", "direct"]),
            (f"median f32 1024^2 {med['w']}x{med['w']} (ranks)", med, ["cython", "numba"])):
        out.extend((name, dict(spec, backend=b)) for b in backends)
    return out


def measure(spec, budget):
    env = dict(os.environ, FASTCONV_MAX_WORKSPACE=str(budget))
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True,
                         text=True, env=env, timeout=900)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else str(res.returncode)}
    return json.loads(res.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=64 << 20, help="FASTCONV_MAX_WORKSPACE in bytes")
    ap.add_argument("--quick", action="store_true", help="a smaller dilated layer")
    args = ap.parse_args(argv)
    mib = 1 << 20
    print(f"budget (FASTCONV_MAX_WORKSPACE) = {args.budget / mib:.0f} MiB; "
          f"ratio = peak / (input + output); target: peak <= 2 x (in+out) + budget")
    print(f"{'case':38s} {'backend':9s} {'in+out MiB':>10s} {'1st-call RSS':>12s} {'traced MiB':>10s} "
          f"{'ratio':>9s} {'within':>6s}")
    for name, spec in cases(args.quick):
        r = measure(spec, args.budget)
        if "error" in r:
            print(f"{name:38s} {spec['backend']:9s} error: {r['error']}")
            continue
        peak = max(r["rss"], r["traced"])
        ok = peak <= 2 * r["io"] + args.budget
        print(f"{name:38s} {spec['backend']:9s} {r['io'] / mib:10.1f} {r['rss'] / mib:12.1f} "
              f"{r['traced'] / mib:10.1f} {peak / r['io']:9.2f} {'yes' if ok else 'NO':>6s}")


if __name__ == "__main__":
    main()
