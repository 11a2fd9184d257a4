"""The choice behind ``backend="auto"``: cost model, ``explain`` and ``tune``.

The order of authority, per call:

1. a winner measured by :func:`tune` (or by ``set_tuning(True)``) for this
   shape, dtype, thread count, CPU and version, from the persistent cache;
2. otherwise the cost model: each backend's time is a non-negative linear
   combination of its operation counts (multiply-adds in its main loop,
   elements it packs or transforms, FFT work, outputs written, one call),
   with coefficients fitted by measurement on this machine
   (``fastconv tune --calibrate``) or, before any calibration, the
   coefficients fitted on the reference machine that ship with fastconv.

Exactness comes before speed: FFT and Winograd spread a NaN or Inf over a
whole tile, so callers pass ``exact=True`` for non-finite data and get only
backends that keep non-finite values where the oracles put them.  Engines:
a Numba kernel not yet compiled in this process costs a compile (seconds),
so it is chosen only when the Cython engine cannot serve.

Choices are memoised per geometry; the model and cache are read once.
"""
import json
import math
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import _engines, _registry, _tuning
from ._threads import get_num_threads

# Backends that spread a NaN/Inf beyond the outputs that read it.
INEXACT_ON_NONFINITE = frozenset({"fft", "winograd"})

# Seconds a first Numba compile costs, charged to an uncompiled Numba kernel.
NUMBA_COMPILE_S = 2.0

_lock = threading.Lock()
_memo = {}
_tuning_on = False
_state = {"data": None}


# --- the cost model ---------------------------------------------------------

# Per-core L1 data cache of the machines the model is built for (48 KiB here,
# 32-48 KiB on AVX-512 cores); only the feature split depends on it.
_L1_BYTES = 48 * 1024


def features(p, backend, fresh=False):
    """Operation counts of ``backend`` on geometry ``p``: [calls, macs, moved, out]
    (and, for ``direct``, the multiply-adds of its one-channel blocks apart and
    its (block, input channel) pairs; for ``im2col``, its reorder pass, its
    pointwise multiply-adds, its GEMM calls, its strided packing and its
    packed calls' fixed cost; for
    ``fft``, a single plane's transforms and the one-dimensional transforms
    of every plane).

    ``macs`` are the multiply-adds of the backend's main loop (for Winograd
    its transformed-domain products, for FFT the spectral product), ``moved``
    the elements it packs, pads or transforms, ``out`` the outputs written.
    ``fresh``: the weights differ from call to call (training), so Winograd
    and FFT transform their filters every call instead of finding them in
    their caches.
    """
    N, K, OH, OW = p.out_shape
    Cg, R, S, G = p.Cg, p.R, p.S, p.groups
    Hp, Wp = p.H + p.pad[0] + p.pad[1], p.W + p.pad[2] + p.pad[3]
    out = N * K * OH * OW
    direct = out * Cg * R * S
    if backend == "naive":
        return [1.0, direct, N * p.C * Hp * Wp, out]
    if backend == "direct":
        # The work its register blocks really do (channels rounded up to the
        # block, the flat index's Wq - OW dropped columns, the last block's
        # tail), and its one phase-split copy of the input.
        # One-channel blocks (depthwise, single images) load a vector per
        # multiply-add where the 8- and 6-channel blocks load one per 6 to 8:
        # their multiply-adds are a feature of their own.
        from .backends import direct as mod
        kb, qb, Hq, Wq, plane, _ = mod.layout(p, 4)
        blocks = N * G * math.ceil(p.Kg / kb) * math.ceil(OH * Wq / qb)
        # Each (block, input channel) pair also costs a switch to another
        # channel's planes, which few taps per channel (1x1) do not hide.
        macs = blocks * kb * qb * Cg * R * S
        # A block re-reads its kb x Cg x R x S weights for every flat
        # position vector: when that slab outgrows L1 (deep layers with big
        # kernels), its multiply-adds wait on L2 and get a rate of their own.
        deep = kb > 1 and kb * Cg * R * S * np.dtype(p.dtype).itemsize > _L1_BYTES
        return [1.0, 0 if kb == 1 or deep else macs, N * p.C * p.stride[0] * p.stride[1] * plane, out,
                macs if kb == 1 else 0, blocks * Cg, macs if deep else 0]
    if backend == "im2col":
        # Its "batch" layout (many small images in one GEMM) writes the
        # product to a scratch matrix and reorders it into NCHW: an extra
        # pass over the outputs, strided, that the per-image layout avoids.
        from .backends import im2col as mod
        pointwise = mod.is_pointwise(p)
        nb, _, layout = (1, G, "image") if pointwise else mod._plan(p, 4, get_num_threads())
        # A pointwise layer is one plain GEMM on the input as it lies, which
        # BLAS runs faster per multiply-add than the products over packed tiles.
        # A strided or padded 1x1 layer packs a subsampled copy (counted
        # below) and then runs the same deep GEMM (K = its input channels),
        # at the pointwise rate: at the packed rate, fitted on 3x3 layers, the
        # model priced ResNet's 1x1 stride-2 layers 1.5x too high and gave
        # them to direct, which was 1.3-2.4x slower.
        one_by_one = R == 1 and S == 1
        packed = 0 if pointwise else N * G * Cg * R * S * OH * OW
        # Every GEMM is a hand-over to fastconv's OpenMP team and a BLAS call
        # (fitted: about half a microsecond): one per image and group in the
        # per-image layout, one per tile and group in the batch layout.
        gemms = N * G if layout == "image" else math.ceil(N / nb) * G
        # A strided packing gathers every s-th input element where a stride-1
        # one copies runs of a row: its own rate.  (Without it, the grid's
        # stride-2 layers ran 1.1-1.6x slower than predicted and its stride-1
        # ones 0.6-0.9x: one rate cannot fit both.)
        strided = packed if p.stride != (1, 1) else 0
        # A packed call also takes the workspace and hands the cores from the
        # packing's OpenMP team to BLAS's: a fixed cost the plain GEMM of a
        # pointwise layer skips.  (With one constant for both, fitted mostly
        # on pointwise calls, a 3-channel 64x64 image at 1x1 stride 2 was
        # priced at 17 us on im2col and took 32, against naive's 21.)
        return [1.0, 0 if one_by_one else direct, packed, out, out if layout == "batch" else 0,
                direct if one_by_one else 0, gemms, strided, 0.0 if pointwise else 1.0]
    if backend == "fft":
        # The lengths, tiles and polyphase channels the backend itself plans.
        # One plane runs on kept buffers with its kernel's spectrum cached:
        # two transforms whose rate is a feature of its own.
        from .backends import fft as mod
        f = mod.plan_for(p)
        L = f["L1"] * (f["L2"] // 2 + 1)
        per = L * max(math.log2(L), 1.0)
        # A 2-D transform is L1 + L2/2+1 one-dimensional ones, and each of
        # those costs a call into pocketfft whatever its length: on many small
        # planes that cost, not the n log n, is the transform.  (Priced by
        # n log n alone, 1024 planes of 15x15 were predicted at 0.02 ms and
        # took 0.5, and LeNet's input gradients went to FFT at twice
        # direct's time.)
        lines = f["L1"] + f["L2"] // 2 + 1
        if f["single"]:
            return [1.0, 0.0, 0.0, out, 2.0 * per, 2.0 * lines]
        T = f["tiles"]
        planes = T * N * (f["C"] + K) + K * f["Cg"]
        if fresh:
            # The fit timed calls that found their kernel spectra in the cache;
            # fresh kernels are transformed on every call.
            planes += K * f["Cg"]
        return [1.0, 4.0 * N * K * f["Cg"] * T * L, planes * per, out, 0.0, planes * lines]
    if backend == "winograd":
        from .backends.winograd import choose_tile
        m = choose_tile(p, fresh)
        tiles = N * math.ceil(OH / m) * math.ceil(OW / m)
        a2 = (m + 2) ** 2
        # Fresh filters are transformed per call: alpha^2 elements per
        # filter, the same kind of work per element as the tile transforms.
        # (Unpriced, ResNet-18 training at batch 32 gave its 2x2-pixel
        # 512-channel layers to Winograd, whose filter transform then cost
        # more than the whole product on im2col.)
        filters = a2 * K * Cg if fresh else 0
        return [1.0, a2 * K * Cg * tiles, a2 * tiles * (p.C + K) + filters, out]
    raise ValueError(f"no cost model for backend {backend!r}")


# The shipped coefficients (data/cost_model.json): one fit per instruction-set
# class and reference CPU.  Another CPU ranks the kernels differently (the
# grid scored 78% on coefficients fitted on an earlier reference machine,
# 91-95% on its own), so on a CPU no fit was made on, the fit of its class is
# rescaled per backend by a short self-measurement (``self_measure``), and
# ``fastconv tune --calibrate`` refits every row there.
_FALLBACK = {  # used only for a (backend, engine, dtype) with no fitted row
    "naive": [2e-5, 1.0 / 8e9, 1.0 / 2e9, 1.0 / 2e9],
    "direct": [2e-5, 1.0 / 1e11, 1.0 / 2e9, 1.0 / 2e9, 1.0 / 5e10, 1e-8, 1.0 / 7e10],
    "im2col": [3e-5, 1.0 / 2e11, 1.0 / 1e9, 1.0 / 2e9, 1.0 / 5e8, 1.0 / 2e11, 5e-7, 1.0 / 2e9, 1e-5],
    "fft": [6e-5, 1.0 / 4e9, 1.0 / 2e9, 1.0 / 2e9, 1.0 / 2e9, 2e-8],
    "winograd": [5e-5, 1.0 / 2e11, 1.0 / 1e9, 1.0 / 2e9],
}


def isa_class():
    """The instruction-set class the native kernels run at ('avx512', 'avx2', 'baseline')."""
    from . import _isa
    return _isa.active()


def _model_key(backend, engine, dtype):
    return f"{backend}|{engine}|{dtype}|t{get_num_threads()}|{isa_class()}|{_tuning.cpu_name()}"


def _data():
    if _state["data"] is None:
        _state["data"] = _tuning.load()
    return _state["data"]


def _same_cpu(fit_cpu, cpu):
    # A fit names its CPU without the stepping: steppings of one model rank alike.
    return cpu == fit_cpu or cpu.startswith(fit_cpu.rstrip(")") + ",")


@lru_cache(maxsize=None)
def shipped_fits():
    """The fits of data/cost_model.json: dicts with isa, cpu, threads, coeffs."""
    from importlib import resources
    text = resources.files("fastconv").joinpath("data", "cost_model.json").read_text()
    return tuple(json.loads(text)["fits"])


def _family_model(cpu):
    # "AMD EPYC (cpu family 26, model 2, stepping 1)" -> (26, 2); None where not given
    m = re.search(r"cpu family (\d+), model (\d+)", cpu)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _nearest_generation(fits, cpu):
    """The fit whose CPU family and model numbers are nearest ``cpu``'s.

    A vendor's family number marks a generation of cores (AMD: 25 is Zen 3
    and Zen 4, 26 is Zen 5), and a generation ranks the kernels alike: a
    Zen 5 fit serves another Zen 5 better than a Zen 4 fit does.  The first
    fit wins where the numbers are missing or tie.
    """
    here = _family_model(cpu)

    def distance(f):
        there = _family_model(f["cpu"])
        if here is None or there is None:
            return (math.inf, math.inf)
        return (abs(there[0] - here[0]), abs(there[1] - here[1]))
    return min(fits, key=distance)


def shipped_fit(isa=None, cpu=None):
    """The shipped fit for this CPU's class: its own if one was made on it,
    else the one of its class from the same vendor and the nearest family
    and model (:func:`_nearest_generation`), else the first of its class,
    else the nearest class below, else above.  Returns (fit, exact)."""
    return _shipped_fit(isa or isa_class(), cpu or _tuning.cpu_name())


@lru_cache(maxsize=None)
def _shipped_fit(isa, cpu):
    # Resolved once per (class, CPU): every prediction asks for its row.
    fits = shipped_fits()
    order = {"avx512": ["avx512", "avx2", "baseline"], "avx2": ["avx2", "baseline", "avx512"],
             "baseline": ["baseline", "avx2", "avx512"]}.get(isa, [isa])
    for cls in order:
        same = [f for f in fits if f["isa"] == cls]
        for f in same:
            if cls == isa and _same_cpu(f["cpu"], cpu):
                return f, True
        vendor = [f for f in same if f["cpu"].split()[0] == cpu.split()[0]]
        if vendor:
            return _nearest_generation(vendor, cpu), False
        if same:
            return same[0], False
    return None, False


def coefficients(backend, engine, dtype):
    """Cost coefficients, in this order: calibrated on this machine (``fastconv
    tune --calibrate``); the shipped fit made on this CPU at this instruction
    set; the shipped fit of its class rescaled by :func:`self_measure`; the
    fallback.  A row of another length than the fallback's (fitted by an
    older version on other features) is passed over.
    """
    n = len(_FALLBACK[backend])
    row = _data()["models"].get(_model_key(backend, engine, dtype))
    if row is not None and len(row) == n:
        return row
    fit, exact = shipped_fit()
    row = fit["coeffs"].get(f"{backend}|{engine}|{dtype}") if fit else None
    if row is None or len(row) != n:
        return _FALLBACK[backend]
    if exact and fit["threads"] == get_num_threads():
        return row
    return [c * self_measure().get(backend, 1.0) for c in row]


# Shapes timed by the self-measurement, each standing for a rate the model
# leans on: BLAS's GEMM and Winograd's transforms on a mid-size 3x3 layer,
# the direct kernel's blocks on LeNet's layers, FFT on a large kernel.
PROBE_SHAPES = [
    # (x_shape, w_shape, stride, padding, groups), the backends timed on it
    (((4, 64, 28, 28), (64, 64, 3, 3), 1, 1, 1), ("im2col", "winograd")),
    (((64, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1), ("direct",)),
    (((64, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1), ("direct", "im2col")),
    (((1, 1, 256, 256), (1, 1, 15, 15), 1, 7, 1), ("fft",)),
    (((1, 1, 64, 64), (1, 1, 3, 3), 1, 1, 1), ("naive", "direct")),
]
_PROBE_LIMITS = (1 / 20, 20.0)


def self_measure(force=False):
    """Per-backend factors by which this CPU's times differ from the shipped fit's.

    On a CPU no shipped fit was made on (or at another thread count), each
    backend's Cython kernels are timed on :data:`PROBE_SHAPES` (a quarter of a
    second in all) and compared with what the shipped fit predicts; the
    geometric mean of the ratios scales that backend's coefficients.  The
    factors are stored in the tuning cache, keyed by CPU, instruction set and
    thread count, so each machine measures once.  ``FASTCONV_SELF_MEASURE=0``
    skips it (factors of 1).

    Examples
    --------
    >>> from fastconv._select import self_measure
    >>> all(f > 0 for f in self_measure().values())
    True
    """
    import os
    key = f"t{get_num_threads()}|{isa_class()}|{_tuning.cpu_name()}"
    probes = _data().setdefault("probes", {})
    if key in probes and not force:
        return probes[key]
    if os.environ.get("FASTCONV_SELF_MEASURE", "1") == "0":
        return {}
    fit, _ = shipped_fit()
    ratios = {}
    for (xs, ws, st, pad, g), names in PROBE_SHAPES:
        p = _params(xs, ws, st, pad, 1, g, np.dtype("float32"))
        cands = [c for c in _registry.candidates(p) if c[1] == "cython" and c[0] in names]
        for (b, e), t in measure(p, cands, budget=0.02, min_rounds=3).items():
            row = fit["coeffs"].get(f"{b}|{e}|float32") if fit else None
            if row is not None and len(row) == len(_FALLBACK[b]):
                ratios.setdefault(b, []).append(t / max(float(np.dot(features(p, b), row)), 1e-9))
    lo, hi = _PROBE_LIMITS
    factors = {b: float(min(hi, max(lo, math.exp(np.mean(np.log(r)))))) for b, r in ratios.items()}
    probes[key] = factors
    try:
        _tuning.update("probes", key, factors)
    except OSError:
        pass  # an unwritable cache only costs the measurement again next time
    return factors


def model_source():
    """One line saying which coefficients the cost model uses here (for ``fastconv info``)."""
    calibrated = sum(k.endswith(f"|t{get_num_threads()}|{isa_class()}|{_tuning.cpu_name()}")
                     for k in _data()["models"])
    fit, exact = shipped_fit()
    if fit is None:
        base = "built-in fallback rates (no shipped fit)"
    else:
        base = f"shipped {fit['isa']} fit from {fit['cpu']} at {fit['threads']} threads"
    if calibrated:
        return f"calibrated here ({calibrated} rows); else {base}"
    if exact and fit["threads"] == get_num_threads():
        return base + " (this CPU)"
    probes = _data().get("probes", {}).get(f"t{get_num_threads()}|{isa_class()}|{_tuning.cpu_name()}")
    scale = ", ".join(f"{b} x{f:.2f}" for b, f in sorted(probes.items())) if probes else \
        "self-measurement on the first auto call"
    return f"{base}, rescaled for this CPU: {scale}"


def _compile_penalty(backend, engine):
    if engine != "numba":
        return 0.0
    stem = getattr(_registry.backend_module(backend), "STEM", backend)
    return 0.0 if _engines.numba_compiled(stem) else NUMBA_COMPILE_S


def predict(p, backend, engine, fresh=False, compile=True):
    """Predicted seconds for ``backend``/``engine`` on ``p`` (``fresh``: weights
    that change from call to call, see :func:`fresh_weights`; ``compile``: a
    Numba kernel not yet compiled in this process is charged its compile)."""
    f = features(p, backend, fresh)
    c = coefficients(backend, engine, p.dtype)
    return float(np.dot(f, c)) + (_compile_penalty(backend, engine) if compile else 0.0)


# --- choosing ---------------------------------------------------------------

def _entry_key(p, engine="auto"):
    from . import __version__
    return "|".join([__version__, _tuning.cpu_name(), isa_class(), f"t{get_num_threads()}", f"e{engine}",
                     ",".join(map(str, p.key))])


def _candidates(p, engine, integer, exact):
    cands = _registry.candidates(p, integer=integer)
    if engine != "auto":
        cands = [c for c in cands if c[1] == engine]
    if exact:
        cands = [c for c in cands if c[0] not in INEXACT_ON_NONFINITE]
    return cands


_local = threading.local()


@contextmanager
def fresh_weights(on=True):
    """Within the block, calls have weights that change from call to call.

    A training step's convolutions (``fastconv.nn``'s forward with weights
    that take gradients, and the input gradient's transposed filters) never
    see the same filters twice, so Winograd's filter transform is paid on
    every call and :func:`choose` prices it in.  Measured (tuned) timings,
    taken with the filters cached, are not used for such calls.

    Examples
    --------
    >>> from fastconv import _select
    >>> with _select.fresh_weights():
    ...     _select.weights_are_fresh()
    True
    >>> _select.weights_are_fresh()
    False
    """
    before = getattr(_local, "fresh", False)
    _local.fresh = bool(on)
    try:
        yield
    finally:
        _local.fresh = before


def weights_are_fresh():
    """Whether this thread is inside :func:`fresh_weights`."""
    return getattr(_local, "fresh", False)


def choose(p, engine="auto", integer=False, exact=False):
    """Return ``(backend, engine)`` for geometry ``p`` (memoised)."""
    fresh = weights_are_fresh()
    memo_key = (p.key, engine, integer, exact, get_num_threads(), _tuning_on, fresh)
    hit = _memo.get(memo_key)
    if hit is not None:
        return hit
    cands = _candidates(p, engine, integer, exact)
    if not cands:
        raise ValueError(f"no backend can serve this call with engine={engine!r}")
    modelled = min(cands, key=lambda c: predict(p, *c, fresh=fresh))
    choice = None
    tuned = None if fresh else _data()["entries"].get(_entry_key(p, engine))
    if tuned is not None:
        choice = _best_measured(tuned, cands, modelled)
    if choice is None and _tuning_on and not integer and not fresh:
        choice = _best_measured(_measure_and_store(p, engine), cands, modelled)
    if choice is None:
        choice = modelled
    with _lock:
        _memo[memo_key] = choice
    return choice


# A measured winner replaces the model's choice only when it is this much
# faster: two runs of one kernel differ by several percent on a shared
# machine, and a flip between near-equals on such noise gains nothing.
_MEASURED_MARGIN = 1.05


def _best_measured(record, cands, modelled):
    times = {tuple(k.split("/")): v for k, v in record.get("times", {}).items()}
    served = [c for c in cands if c in times]
    if not served:
        return None
    best = min(served, key=times.get)
    if modelled in times and times[modelled] <= _MEASURED_MARGIN * times[best]:
        return modelled
    return best


# --- measuring --------------------------------------------------------------

def _random_inputs(p, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((p.N, p.C, p.H, p.W)).astype(p.dtype)
    w = rng.standard_normal((p.K, p.Cg, p.R, p.S)).astype(p.dtype)
    return x, w


def settled_call(fn):
    """Seconds of one call of ``fn`` made right after an untimed one.

    OpenBLAS's and OpenMP's idle threads spin for a while after a call, and
    on two cores they steal the next library's cores (direct kernels timed
    right after a BLAS call measured up to 10x slow): the untimed call
    absorbs what the previous caller left behind.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def take_turns(fns, min_rounds=5, seconds=0.0, max_rounds=1000, max_seconds=math.inf):
    """Time the callables ``fns`` round by round; each one's list of seconds.

    In every round each makes one :func:`settled_call`, in an order rotated
    by one from the round before: in a fixed order each would always follow
    the same neighbour and inherit whatever its threads leave behind, and
    taking turns lets a burst of noise or a slow clock land on all alike.
    Rounds go on while fewer than ``min_rounds`` have run or fewer than
    ``seconds`` have been timed, up to ``max_rounds``, and none starts once
    ``max_seconds`` have been timed.

    Examples
    --------
    >>> from fastconv._select import take_turns
    >>> calls = []
    >>> times = take_turns([lambda: calls.append("a"), lambda: calls.append("b")], min_rounds=2)
    >>> [len(t) for t in times], calls
    ([2, 2], ['a', 'a', 'b', 'b', 'b', 'b', 'a', 'a'])
    """
    times = [[] for _ in fns]
    order = list(range(len(fns)))
    spent, n = 0.0, 0
    while n < max_rounds and (n < min_rounds or spent < seconds) and spent <= max_seconds:
        k = n % max(len(fns), 1)
        for i in order[k:] + order[:k]:
            dt = settled_call(fns[i])
            times[i].append(dt)
            spent += dt
        n += 1
    return times


# Candidates slower than this per call are not called a third time.
_RECHECK_S = 0.5


def measure(p, cands, budget=0.2, max_rounds=50, min_rounds=5):
    """Seconds per call of each (backend, engine) in ``cands`` on random data of ``p``.

    Each candidate is called twice first (a Numba kernel compiles on its
    first call); those within 3x of the fastest second call then take turns
    (:func:`take_turns`) until ``budget`` seconds per racer are spent (at
    least ``min_rounds`` rounds).  Each racer's figure is its median over
    the rounds: on a shared 2-core VM a kernel can run its fastest calls
    only now and then (on one grid layer im2col and direct had the same
    minimum while im2col's median call was 1.3x direct's), and the typical
    call is what a user gets.  The others keep their faster warm call.
    """
    x, w = _random_inputs(p)
    threads = get_num_threads()
    fns = {c: (lambda mod=_registry.backend_module(c[0]), e=c[1]: mod.conv2d(x, w, p, e, threads))
           for c in cands}
    out = {c: settled_call(fns[c]) for c in cands}
    fastest = min(out.values(), default=0.0)
    for c in cands:
        # A second call can still pay a one-off (a thread pool's start, a
        # kept buffer's first pages, the previous candidate's spinning
        # threads): one more look before ruling it out.
        if 3 * fastest < out[c] < _RECHECK_S:
            out[c] = min(out[c], settled_call(fns[c]))
    racers = [c for c in cands if out[c] <= 3 * fastest]
    times = take_turns([fns[c] for c in racers], min_rounds, budget * len(racers), max_rounds)
    for c, ts in zip(racers, times):
        if ts:
            out[c] = float(np.median(ts))
    return out


# ``tune`` leaves out a candidate the cost model prices at more than this many
# times the best and more than _PRUNE_S seconds a call: the model errs by
# 2-3x at worst on the grid, and on ResNet-50's layers the naive loop, timed
# twice or four times per layer at up to a second a call, took most of a
# 3.5-minute ``nn.inference(tune=True)``.  Small layers are timed whole.
_PRUNE_RATIO = 8.0
_PRUNE_S = 0.01


def _worth_timing(p, cands):
    """The candidates ``tune`` times: all but those the model rules out (see _PRUNE_RATIO)."""
    # Priced without a Numba engine's compile: tune asks what runs fastest from now on.
    cost = {c: predict(p, *c, compile=False) for c in cands}
    best = min(cost.values(), default=0.0)
    return [c for c in cands if cost[c] <= max(_PRUNE_RATIO * best, _PRUNE_S)]


def _measure_and_store(p, engine):
    cands = _worth_timing(p, _candidates(p, engine, integer=False, exact=False))
    times = measure(p, cands)
    record = {"times": {f"{b}/{e}": t for (b, e), t in times.items()}, "when": time.time()}
    key = _entry_key(p, engine)
    _tuning.update("entries", key, record)
    _data()["entries"][key] = record
    return record


def set_tuning(on):
    """Measure every new shape on first use, as ``torch.backends.cudnn.benchmark``.

    Parameters
    ----------
    on : bool
        When true, ``backend="auto"`` times the candidates the first time it
        meets a shape and stores the winner in the persistent cache.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.set_tuning(False)
    """
    global _tuning_on
    _tuning_on = bool(on)


def reset():
    """Forget memoised choices and re-read the cache (after it changed on disk)."""
    with _lock:
        _memo.clear()
        _state["data"] = None


# --- the public explain / tune ----------------------------------------------

@dataclass
class Explanation:
    """The choice for one geometry and the figures behind it."""
    choice: tuple
    reason: str
    candidates: list = field(default_factory=list)
    geometry: object = None

    def __str__(self):
        lines = [f"choice: {self.choice[0]}/{self.choice[1]} - {self.reason}",
                 f"{'backend':10s} {'engine':7s} {'predicted ms':>13s} {'measured ms':>12s}  note"]
        for c in self.candidates:
            pm = "" if c["predicted_ms"] is None else f"{c['predicted_ms']:.3f}"
            mm = "" if c["measured_ms"] is None else f"{c['measured_ms']:.3f}"
            lines.append(f"{c['backend']:10s} {c['engine'] or '':7s} {pm:>13s} {mm:>12s}  {c['note']}")
        return "\n".join(lines)


def _params(x_shape, w_shape, stride, padding, dilation, groups, dtype):
    from ._validation import conv_geometry
    for name, shape in (("x_shape", x_shape), ("w_shape", w_shape)):
        if hasattr(shape, "ndim") and shape.ndim > 1:   # an array passed for its shape
            raise TypeError(f"{name} must be a shape (a tuple of int), got an array of shape "
                            f"{shape.shape}; pass {name.split('_')[0]}.shape")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    if len(x_shape) == 3:
        x_shape = (1,) + tuple(x_shape)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W) or (C, H, W), got {tuple(x_shape)}")
    return conv_geometry(tuple(x_shape), tuple(w_shape), stride, padding, dilation, groups, dtype)


def explain(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, dtype="float32", *, engine="auto"):
    """Say which backend and engine ``auto`` picks for a shape, and why.

    Parameters
    ----------
    x_shape, w_shape : tuple of int
        (N, C, H, W) and (K, C // groups, R, S).
    stride, padding, dilation, groups
        As for :func:`fastconv.conv2d`.
    dtype : str or dtype
        'float32' or 'float64'.
    engine : {'auto', 'cython', 'numba'}

    Returns
    -------
    Explanation
        ``choice`` (backend, engine), ``reason``, and ``candidates``: one dict
        per backend/engine with the predicted and (if tuned) measured
        milliseconds, or the reason it cannot serve the shape.

    Examples
    --------
    >>> import fastconv
    >>> e = fastconv.explain((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> e.choice[0] in fastconv.backends()
    True
    """
    p = _params(x_shape, w_shape, stride, padding, dilation, groups, np.dtype(dtype))
    tuned = _data()["entries"].get(_entry_key(p, engine))
    measured = {}
    if tuned is not None:
        measured = {tuple(k.split("/")): v for k, v in tuned.get("times", {}).items()}
    rows = []
    for b in _registry.backends():
        mod = _registry.backend_module(b)
        why = mod.unsupported(p)
        if why is not None:
            rows.append(dict(backend=b, engine=None, predicted_ms=None, measured_ms=None, note=f"cannot serve: {why}"))
            continue
        for e in _registry.engines(b):
            if engine != "auto" and e != engine:
                continue
            note = "" if _compile_penalty(b, e) == 0 else f"first call compiles (~{NUMBA_COMPILE_S:.0f} s)"
            rows.append(dict(backend=b, engine=e, predicted_ms=1e3 * predict(p, b, e),
                             measured_ms=1e3 * measured[(b, e)] if (b, e) in measured else None, note=note))
    choice = choose(p, engine=engine)
    if tuned is not None and choice in measured:
        reason = (f"measured by tune() ({1e3 * measured[choice]:.3f} ms; a measured winner "
                  f"replaces the model's choice when {_MEASURED_MARGIN:g}x faster)")
    else:
        src = "calibrated on this machine" if _data()["models"].get(_model_key(*choice, p.dtype)) else \
            model_source()
        reason = f"lowest predicted time ({1e3 * predict(p, *choice):.3f} ms; cost model, {src})"
    return Explanation(choice, reason, rows, p)


def tune(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, dtype="float32", *, engine="auto"):
    """Time every candidate on this shape and remember the fastest.

    The candidates take turns (see :func:`measure`); the measured winner
    replaces the cost model's choice when it is at least 5% faster, so
    near-ties measured on noise do not flip the choice.  The winner is
    stored in the persistent tuning cache (see ``fastconv info``), so later
    processes use it too.

    Parameters
    ----------
    x_shape, w_shape, stride, padding, dilation, groups, dtype, engine
        As for :func:`explain`.

    Returns
    -------
    Explanation
        As :func:`explain` returns, now with measured times.

    Examples
    --------
    >>> import fastconv
    >>> e = fastconv.tune((1, 1, 32, 32), (1, 1, 3, 3), padding=1)  # doctest: +SKIP
    >>> e.reason  # doctest: +SKIP
    "measured by tune() (0.012 ms; a measured winner replaces the model's choice when 1.05x faster)"
    """
    p = _params(x_shape, w_shape, stride, padding, dilation, groups, np.dtype(dtype))
    _measure_and_store(p, engine)
    with _lock:
        _memo.clear()
    return explain(x_shape, w_shape, stride, padding, dilation, groups, dtype, engine=engine)


# --- calibration ------------------------------------------------------------

CALIBRATION_SHAPES = [
    # (x_shape, w_shape, stride, padding, groups)
    ((1, 1, 64, 64), (1, 1, 3, 3), 1, 1, 1),
    ((1, 1, 256, 256), (1, 1, 5, 5), 1, 2, 1),
    ((1, 1, 256, 256), (1, 1, 15, 15), 1, 7, 1),
    ((1, 1, 128, 128), (1, 1, 31, 31), 1, 15, 1),
    ((16, 3, 32, 32), (16, 3, 5, 5), 1, 2, 1),
    ((32, 16, 16, 16), (32, 16, 3, 3), 1, 1, 1),
    ((8, 32, 28, 28), (32, 32, 3, 3), 1, 1, 1),
    ((4, 64, 32, 32), (64, 64, 3, 3), 1, 1, 1),
    ((2, 128, 16, 16), (128, 128, 3, 3), 1, 1, 1),
    ((4, 64, 28, 28), (128, 64, 1, 1), 1, 0, 1),
    ((2, 32, 64, 64), (32, 32, 3, 3), 2, 1, 1),
    ((4, 32, 32, 32), (32, 1, 3, 3), 1, 1, 32),
    ((2, 8, 64, 64), (8, 8, 9, 9), 1, 4, 1),
    ((2, 3, 96, 96), (16, 3, 11, 11), 4, 2, 1),
    ((1, 16, 128, 128), (16, 16, 7, 7), 1, 3, 1),
    ((64, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1),
    ((8, 32, 56, 56), (32, 1, 3, 3), 2, 1, 32),
    ((32, 1, 28, 28), (8, 1, 7, 7), 2, 3, 1),
    ((8, 32, 28, 28), (64, 32, 5, 5), 1, 2, 1),
    ((16, 16, 32, 32), (32, 16, 7, 7), 1, 3, 1),
    ((1, 1, 512, 512), (1, 1, 11, 11), 1, 5, 1),
    ((64, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),
    ((4, 3, 227, 227), (96, 3, 11, 11), 4, 0, 1),
    ((16, 64, 14, 14), (64, 64, 3, 3), 1, 1, 1),
    ((4, 128, 28, 28), (128, 128, 3, 3), 2, 1, 1),
    ((16, 32, 16, 16), (64, 32, 3, 3), 2, 1, 1),
    ((32, 8, 28, 28), (16, 8, 3, 3), 2, 1, 1),
    ((4, 128, 28, 28), (256, 128, 1, 1), 1, 0, 1),
    ((8, 256, 14, 14), (64, 256, 1, 1), 1, 0, 1),
    ((4, 64, 56, 56), (128, 64, 1, 1), 2, 0, 1),
    # Few-call-overhead and mid-size shapes where the fit was thin: tiny
    # 1x1 layers, 3x3 layers of 64 channels (Winograd against direct),
    # one-channel strided layers, single images with small and large kernels.
    ((1, 3, 48, 48), (8, 3, 1, 1), 1, 0, 1),
    ((2, 64, 48, 48), (64, 64, 3, 3), 1, 1, 1),
    ((4, 48, 24, 24), (48, 48, 3, 3), 1, 1, 1),
    ((32, 1, 32, 32), (8, 1, 3, 3), 2, 1, 1),
    ((32, 1, 24, 24), (16, 1, 5, 5), 1, 2, 1),
    ((1, 1, 384, 384), (1, 1, 3, 3), 1, 1, 1),
    ((1, 1, 384, 384), (1, 1, 21, 21), 1, 10, 1),
    ((1, 1, 192, 192), (1, 1, 25, 25), 1, 12, 1),
    ((16, 24, 12, 12), (48, 24, 5, 5), 1, 2, 1),
    ((2, 128, 12, 12), (128, 128, 7, 7), 1, 3, 1),
    ((4, 96, 16, 16), (96, 96, 5, 5), 1, 2, 1),
    ((1, 1, 96, 96), (1, 1, 3, 3), 1, 1, 1),
    ((1, 4, 48, 48), (12, 4, 1, 1), 1, 0, 1),
    ((48, 1, 24, 24), (8, 1, 3, 3), 1, 1, 1),
    ((32, 16, 12, 12), (32, 16, 3, 3), 2, 1, 1),
    ((16, 48, 16, 16), (48, 48, 7, 7), 1, 3, 1),
    # Bottleneck 1x1 expansions on big planes: per image the input outgrows
    # L2, and the direct kernel re-reads it for every block of 8 outputs.
    ((4, 64, 56, 56), (256, 64, 1, 1), 1, 0, 1),
    ((4, 128, 28, 28), (512, 128, 1, 1), 1, 0, 1),
    # Strided 1x1 projections (ResNet's downsampling) and a strided 7x7 of
    # many channels: im2col against direct where their costs cross.
    ((8, 256, 56, 56), (512, 256, 1, 1), 2, 0, 1),
    ((8, 1024, 14, 14), (2048, 1024, 1, 1), 2, 0, 1),
    ((4, 96, 24, 24), (96, 96, 7, 7), 2, 3, 1),
    ((16, 32, 20, 20), (48, 32, 5, 5), 2, 2, 1),
    ((4, 96, 18, 18), (96, 96, 3, 3), 2, 1, 1),
    # Strided 1x1 layers on small planes and many images (im2col's batch
    # layout): without them the fit priced its reorder pass from 3x3 layers
    # alone, at 1 ns an output where it takes 0.16, and under the AVX2 cap
    # gave (64,16,14,14) -> 32@1x1 stride 2 to direct at 1.5x im2col's time.
    ((32, 24, 16, 16), (48, 24, 1, 1), 2, 0, 1),
    ((64, 32, 12, 12), (64, 32, 1, 1), 2, 0, 1),
    ((16, 128, 10, 10), (128, 128, 1, 1), 2, 0, 1),
    # A small strided 1x1 layer on one image: the packed call's fixed cost.
    ((1, 8, 40, 40), (8, 8, 1, 1), 2, 0, 1),
]


def calibrate(dtypes=("float32", "float64"), budget=0.25, verbose=False, passes=2):
    """Fit the cost model's coefficients by timing the calibration shapes here.

    Every shape is timed in each of ``passes`` passes over the whole set and
    the fit uses every timing: two calibrations of one pass each, scored
    against the same grid's timings, chose well on 78 and on 75 of 82
    shapes, their two passes pooled on 78 (the machine's speed drifts
    between the passes, and the drift averages out).

    Returns the fitted rows, also stored in the tuning cache.
    """
    from scipy.optimize import nnls
    fitted = {}
    for dtype in dtypes:
        rows = {}
        for xs, ws, st, pad, g in CALIBRATION_SHAPES * passes:
            p = _params(xs, ws, st, pad, 1, g, np.dtype(dtype))
            cands = _registry.candidates(p)
            # the naive loop on a big layer takes seconds and teaches nothing new
            cands = [c for c in cands if not (c[0] == "naive" and p.flops > 4e8)]
            for c, t in measure(p, cands, budget).items():
                rows.setdefault(c, []).append((features(p, c[0]), t))
                if verbose:
                    print(f"  {dtype} {xs}x{ws} s{st} {c[0]}/{c[1]}: {1e3 * t:.3f} ms")
        for (b, e), data in rows.items():
            A = np.array([f for f, _ in data], dtype=np.float64)
            t = np.array([t for _, t in data])
            # relative least squares: every shape counts alike, big or small
            coef, _ = nnls(A / t[:, None], np.ones(len(t)))
            key = _model_key(b, e, dtype)
            fitted[key] = coef.tolist()
            _tuning.update("models", key, coef.tolist())
    reset()
    return fitted


def info():
    """What ``fastconv info`` shows of the selection state."""
    data = _data()
    return {
        "cost model": model_source(),
        "tuning cache": f"{_tuning.cache_path()} ({len(data['entries'])} tuned shapes, "
                        f"{len(data['models'])} calibrated model rows)",
        "numba kernels compiled": ", ".join(_engines.numba_compiled_list()) or "none in this process",
    }
