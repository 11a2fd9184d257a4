"""Benchmark cases and the measuring machinery behind ``fastconv bench``.

The cases are defined here once and used by the command, by the
pytest-benchmark suite in ``benchmarks/`` and by ``benchmarks/grid.py``; this
module ships inside the package so that ``fastconv bench`` works after a plain
``pip install .``.

A measurement is one warm-up call (which pays for Numba compilation, BLAS
start-up and cold caches and is reported apart), then the minimum and median
of timed repeats with ``time.perf_counter``.  The minimum is the figure the
ratios use: on a shared machine noise only ever adds time.  Two caps keep a
run short: a forced backend whose *estimated* cost per call exceeds
``max_call`` seconds is skipped before it runs (the reason goes in the table),
and repeats stop once their total time passes ``budget``.

The peers (scipy.signal, PyTorch, OpenCV) are optional apart from scipy:
a peer that is not installed is reported as missing, never an error.
"""
import gc
import math
import statistics
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

SEED = 20261125

# Conservative direct-loop throughput (FLOP/s) used only to decide, before
# running it, whether a forced backend would blow the time cap.  The naive
# backend measures 1.5-18 GFLOP/s on this project's 2-core machines depending
# on the shape; the low end keeps the quick run under a minute everywhere.
SLOW_RATES = {"naive": 2e9}

# Error limits relative to the output's scale, as in the tests.
TOL = {"float32": 1e-4, "float64": 1e-10}

#: Settings of the two run lengths (see :func:`measure`): the minimum number
#: of timed repeats, the time cheap calls repeat for, the time after which no
#: new repeat starts, and the estimated cost per call above which a forced
#: backend is skipped (seconds); whether to time only the Cython engine of a
#: backend that has both (see :func:`fastconv_impls`).
QUICK = {"repeat": 2, "min_time": 0.05, "budget": 0.5, "max_call": 0.3, "cython_first": True, "rematch": 0.5}
FULL = {"repeat": 7, "min_time": 0.2, "budget": 5.0, "max_call": 5.0, "cython_first": False, "rematch": 2.0}


# --- cases -------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One benchmark problem.

    ``group`` is ``"layers"`` (NCHW ``conv2d`` against torch; ``x_shape`` is
    (N, C, H, W), ``w_shape`` (K, C, R, S)) or ``"images"`` (a single
    ``convolve2d(..., mode='same')`` against scipy and OpenCV; ``x_shape`` is
    (H, W), ``w_shape`` (k, k)).
    """
    name: str
    group: str
    x_shape: tuple
    w_shape: tuple
    dtype: str = "float32"
    stride: int = 1
    padding: int = 0
    title: str = ""

    def data(self, seed=SEED):
        """Inputs ``(x, w)`` drawn from a generator seeded by ``seed`` and the name.

        Examples
        --------
        >>> from fastconv._bench import case
        >>> x, w = case("lenet-conv2").data()
        >>> x.shape, w.shape, x.dtype.name
        ((64, 6, 14, 14), (16, 6, 5, 5), 'float32')
        """
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        x = rng.standard_normal(self.x_shape, dtype=self.dtype)
        w = rng.standard_normal(self.w_shape, dtype=self.dtype)
        return x, w

    def params(self):
        """The :class:`~fastconv._validation.ConvParams` fastconv runs.

        For an image this is the geometry ``convolve2d`` itself runs (the
        'valid' correlation of the image zero-padded as scipy reads it), so
        ``candidates(params)`` lists the backends that can serve the case and
        ``auto``'s choice and tuning apply to the very call that is timed.

        Examples
        --------
        >>> from fastconv._bench import case
        >>> case("img512-k15-float64").params().pad
        (7, 7, 7, 7)
        """
        from ._signal import params_for
        from ._validation import conv2d_args
        if self.group == "images":
            return params_for(self.x_shape, self.w_shape, "same", self.dtype)
        # np.empty: conv2d_args only reads shapes and dtypes here.
        x, w = np.empty(self.x_shape, self.dtype), np.empty(self.w_shape, self.dtype)
        return conv2d_args(x, w, None, self.stride, self.padding, 1, 1)[3]

    @property
    def flops(self):
        """Floating-point operations of the direct algorithm (2 per multiply-add)."""
        return self.params().flops

    def describe(self):
        """A one-line description of the shapes.

        Examples
        --------
        >>> from fastconv._bench import case
        >>> case("resnet-1x1").describe()
        '(8,256,28,28) -> 64@1x1 float32'
        """
        if self.group == "images":
            return f"({self.x_shape[0]},{self.x_shape[1]}) * {self.w_shape[0]}x{self.w_shape[1]} " \
                   f"mode 'same' {self.dtype}"
        K, _, R, S = self.w_shape
        extra = (f" stride {self.stride}" if self.stride != 1 else "") + \
                (f" pad {self.padding}" if self.padding else "")
        return f"({','.join(map(str, self.x_shape))}) -> {K}@{R}x{S}{extra} {self.dtype}"


def _layer(name, x_shape, w_shape, stride=1, padding=0, title=""):
    return Case(name, "layers", x_shape, w_shape, "float32", stride, padding, title)


LAYERS = (
    _layer("lenet-conv1", (64, 1, 28, 28), (6, 1, 5, 5), padding=2, title="LeNet conv1"),
    _layer("lenet-conv2", (64, 6, 14, 14), (16, 6, 5, 5), title="LeNet conv2"),
    _layer("mnist-conv2", (64, 32, 14, 14), (64, 32, 3, 3), padding=1, title="MNIST CNN conv2"),
    _layer("vgg-conv3", (1, 128, 56, 56), (256, 128, 3, 3), padding=1, title="VGG conv3_1"),
    _layer("resnet-conv2", (8, 64, 56, 56), (64, 64, 3, 3), padding=1, title="ResNet conv2_x 3x3"),
    _layer("resnet-conv4", (8, 256, 14, 14), (256, 256, 3, 3), padding=1, title="ResNet conv4_x 3x3"),
    _layer("resnet-1x1", (8, 256, 28, 28), (64, 256, 1, 1), title="ResNet bottleneck 1x1"),
    _layer("alexnet-conv1", (8, 3, 227, 227), (96, 3, 11, 11), stride=4, title="AlexNet conv1"),
)

IMAGE_SIZES = (512, 2048)
IMAGE_KERNELS = (3, 5, 15, 31)
IMAGE_DTYPES = ("float32", "float64")


def image_case(size, k, dtype):
    """The single-image case ``img{size}-k{k}-{dtype}``.

    Examples
    --------
    >>> from fastconv._bench import image_case
    >>> image_case(512, 3, "float64").name
    'img512-k3-float64'
    """
    return Case(f"img{size}-k{k}-{dtype}", "images", (size, size), (k, k), dtype,
                title=f"{size}x{size} image, {k}x{k} kernel")


IMAGES = tuple(image_case(n, k, dt) for n in IMAGE_SIZES for dt in IMAGE_DTYPES for k in IMAGE_KERNELS)

# A few-second subset for smoke tests (``fastconv bench --tiny``).
TINY = (
    _layer("tiny-layer", (2, 3, 12, 12), (4, 3, 3, 3), padding=1, title="tiny layer"),
    image_case(32, 3, "float64"),
)

ALL_CASES = LAYERS + IMAGES


def case(name):
    """The case called ``name`` (a layer, an image or a tiny case).

    Examples
    --------
    >>> from fastconv._bench import case
    >>> case("alexnet-conv1").stride
    4
    """
    for c in ALL_CASES + TINY:
        if c.name == name:
            return c
    raise ValueError(f"unknown case {name!r}; known: {[c.name for c in ALL_CASES + TINY]}")


def select_cases(which="all", quick=False, tiny=False):
    """The cases of a run: ``which`` in {'layers', 'images', 'all'}.

    ``quick`` keeps the 512x512 images only; ``tiny`` replaces everything by
    two very small cases (for tests).

    Examples
    --------
    >>> from fastconv._bench import select_cases
    >>> len(select_cases("layers")), len(select_cases("images", quick=True))
    (8, 8)
    """
    if which not in ("layers", "images", "all"):
        raise ValueError(f"cases must be 'layers', 'images' or 'all', got {which!r}")
    pool = TINY if tiny else ALL_CASES
    out = [c for c in pool if which == "all" or c.group == which]
    if quick and not tiny:
        out = [c for c in out if c.group != "images" or c.x_shape[0] <= 512]
    return out


# --- implementations -----------------------------------------------------------

@dataclass
class Impl:
    """One way to compute a case.

    ``kind`` is ``"peer"``, ``"auto"`` or ``"forced"``; ``make(x, w)`` returns
    the zero-argument callable that is timed; ``reference`` marks the peer
    whose output the others are checked against; ``timing_only`` marks a peer
    that computes something slightly different (OpenCV's border), never
    checked.  A peer that is not installed has ``make=None`` and ``missing``
    saying why.
    """
    label: str
    kind: str
    make: object = None
    backend: str = None
    engine: str = None
    reference: bool = False
    timing_only: bool = False
    missing: str = None


def _optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def peers(case):
    """The peer implementations of ``case``, installed or not.

    Examples
    --------
    >>> from fastconv._bench import case, peers
    >>> [p.label for p in peers(case("lenet-conv2"))]
    ['torch']
    """
    if case.group == "layers":
        torch = _optional("torch")
        if torch is None:
            return [Impl("torch", "peer", missing="torch not installed")]

        def make_torch(x, w):
            import torch.nn.functional as F
            tx, tw = torch.from_numpy(x), torch.from_numpy(w)

            def f():
                with torch.no_grad():
                    return F.conv2d(tx, tw, stride=case.stride, padding=case.padding)
            return f
        return [Impl("torch", "peer", make_torch, reference=True)]

    import scipy.signal

    def scipy_peer(fn):
        return lambda x, w: (lambda: fn(x, w, mode="same"))
    out = [Impl("convolve2d", "peer", scipy_peer(scipy.signal.convolve2d), reference=True),
           Impl("fftconvolve", "peer", scipy_peer(scipy.signal.fftconvolve)),
           Impl("oaconvolve", "peer", scipy_peer(scipy.signal.oaconvolve))]
    cv2 = _optional("cv2")
    if cv2 is None:
        out.append(Impl("cv2.filter2D", "peer", missing="cv2 not installed"))
    else:
        def make_cv2(x, w):
            # filter2D correlates and extends the border: flipping the kernel
            # and a zero border make it the same computation, but its anchor
            # and border handling differ in corner cases, so timing only.
            wf = np.ascontiguousarray(w[::-1, ::-1])
            return lambda: cv2.filter2D(x, -1, wf, borderType=cv2.BORDER_CONSTANT)
        out.append(Impl("cv2.filter2D", "peer", make_cv2, timing_only=True))
    return out


def _fastconv_call(case, backend, engine):
    import fastconv
    if case.group == "images":
        return lambda x, w: (lambda: fastconv.convolve2d(x, w, mode="same", backend=backend, engine=engine))
    return lambda x, w: (lambda: fastconv.conv2d(x, w, stride=case.stride, padding=case.padding,
                                                  backend=backend, engine=engine))


def parse_backends(spec):
    """Turn ``--backends`` into a filter: None (all), or a set of names and pairs.

    ``spec`` is ``"all"``, ``"auto"`` (auto alone) or a comma list of backend
    names and ``backend/engine`` pairs.

    Examples
    --------
    >>> from fastconv._bench import parse_backends
    >>> parse_backends("all") is None, parse_backends("auto")
    (True, set())
    >>> sorted(parse_backends("naive/cython"))
    ['naive/cython']
    """
    from ._dispatch import backends, engines
    if spec in (None, "all"):
        return None
    if spec == "auto":
        return set()
    out = set()
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        name, _, eng = item.partition("/")
        if name not in backends():
            raise ValueError(f"backends: {name!r} is not an available backend; "
                             f"expected 'all', 'auto' or a comma list of {backends()} (optionally /engine)")
        if eng and eng not in engines(name):
            raise ValueError(f"backends: engine {eng!r} cannot run {name!r} here; available: {engines(name)}")
        out.add(item)
    return out


def fastconv_impls(case, selected=None, cython_first=False):
    """``auto`` and every (backend, engine) candidate that can serve ``case``.

    ``selected`` is :func:`parse_backends`'s filter.  Candidates come from
    ``fastconv._dispatch.candidates``, so new backends appear here unchanged.
    With ``cython_first`` (``--quick``) the Numba engine of a backend that
    also has a Cython engine is listed as skipped unless named explicitly:
    its first call in a fresh install compiles for seconds per backend and
    dtype, which alone would take a quick run past a minute.

    Examples
    --------
    >>> from fastconv._bench import case, fastconv_impls
    >>> impls = fastconv_impls(case("lenet-conv2"))
    >>> impls[0].label, "naive/cython" in [i.label for i in impls]
    ('auto', True)
    """
    from ._dispatch import candidates
    out = [Impl("auto", "auto", _fastconv_call(case, "auto", "auto"))]
    cands = candidates(case.params())
    for b, e in cands:
        label = f"{b}/{e}"
        if selected is not None and b not in selected and label not in selected:
            continue
        if cython_first and e == "numba" and (b, "cython") in cands and label not in (selected or ()):
            out.append(Impl(label, "forced", backend=b, engine=e,
                            missing=f"--quick: Cython engine only (Numba compiles on first call); "
                                    f"--backends {label} times it"))
            continue
        out.append(Impl(label, "forced", _fastconv_call(case, b, e), backend=b, engine=e))
    return out


def auto_choice(case):
    """``"backend/engine"`` that ``auto`` resolves to for ``case``.

    Examples
    --------
    >>> from fastconv._bench import auto_choice, case
    >>> "/" in auto_choice(case("lenet-conv2"))
    True
    """
    from ._dispatch import resolve
    mod, eng = resolve(case.params())
    return f"{mod.__name__.rsplit('.', 1)[-1]}/{eng}"


def estimate_seconds(impl, case):
    """Estimated seconds per call of a forced backend, or None if unknown.

    Examples
    --------
    >>> from fastconv._bench import Impl, case, estimate_seconds
    >>> round(estimate_seconds(Impl("naive/cython", "forced", backend="naive"), case("vgg-conv3")), 2)
    0.92
    """
    rate = SLOW_RATES.get(impl.backend) if impl.kind == "forced" else None
    return None if rate is None else case.flops / rate


# --- threads -----------------------------------------------------------------

@contextmanager
def thread_settings(n):
    """Give fastconv (OpenMP, Numba, BLAS), torch, OpenCV and scipy.fft ``n`` threads.

    The previous settings come back on exit.  scipy.signal.convolve2d has no
    threads at all; fftconvolve and oaconvolve get ``n`` through
    ``scipy.fft.set_workers``.

    Examples
    --------
    >>> import fastconv
    >>> from fastconv._bench import thread_settings
    >>> with thread_settings(1) as counts:
    ...     fastconv.get_num_threads()
    1
    """
    import scipy.fft

    import fastconv
    from . import _threads
    saved_fc = _threads._n_threads  # None (the default) must be restored as None
    torch, cv2 = _optional("torch"), _optional("cv2")
    saved_torch = torch.get_num_threads() if torch else None
    saved_cv2 = cv2.getNumThreads() if cv2 else None
    counts = {"fastconv": n, "scipy.fft": n, "scipy.convolve2d": 1}
    try:
        fastconv.set_num_threads(n)
        if torch:
            torch.set_num_threads(n)
            counts["torch"] = torch.get_num_threads()
        if cv2:
            cv2.setNumThreads(n)
            counts["cv2"] = cv2.getNumThreads()
        with scipy.fft.set_workers(n):
            yield counts
    finally:
        fastconv.set_num_threads(saved_fc)
        if torch:
            torch.set_num_threads(saved_torch)
        if cv2:
            cv2.setNumThreads(saved_cv2)


# --- measuring -----------------------------------------------------------------

@dataclass
class Timing:
    """The figures of one measurement, in seconds."""
    min: float
    median: float
    runs: int
    warmup: float


def measure(fn, repeat=5, budget=2.0, min_time=0.0, max_runs=1000):
    """Time ``fn()``: one warm-up call, then at least ``repeat`` timed calls.

    Cheap calls repeat further until they have run ``min_time`` seconds in
    all (as ``timeit``'s autorange does: the minimum of 2 runs of a 50 us
    call on a busy machine is mostly noise); no new call starts once
    ``budget`` seconds are spent, but at least one always runs.  The garbage
    collector is paused while timing, as ``timeit`` does.  Returns
    ``(Timing, output of the warm-up call)``.

    Examples
    --------
    >>> from fastconv._bench import measure
    >>> t, out = measure(lambda: sum(range(1000)), repeat=3)
    >>> t.runs, out, t.min <= t.median
    (3, 499500, True)
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    t0 = time.perf_counter()
    out = fn()
    warm = time.perf_counter() - t0
    times, total = [], 0.0
    enabled = gc.isenabled()
    gc.disable()
    try:
        while len(times) < max_runs and (not times or total < budget):
            if len(times) >= repeat and total >= min_time:
                break
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            times.append(dt)
            total += dt
    finally:
        if enabled:
            gc.enable()
    return Timing(min(times), statistics.median(times), len(times), warm), out


def rel_err(out, ref):
    """Max absolute difference relative to the largest ``|ref|``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._bench import rel_err
    >>> rel_err(np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    0.2
    """
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        return math.inf
    scale = max(float(np.abs(ref).max(initial=0.0)), 1e-30)
    return float(np.abs(out - ref).max(initial=0.0)) / scale


@dataclass
class Result:
    """What happened to one implementation on one case."""
    label: str
    kind: str
    backend: str = None
    engine: str = None
    min: float = None
    median: float = None
    runs: int = 0
    warmup: float = None
    err: float = None
    wrong: bool = False
    note: str = None        # e.g. timed by its warm-up call alone
    skipped: str = None     # why it did not run (not installed, over the cap)
    error: str = None       # the exception it raised

    @property
    def ok(self):
        return self.min is not None and not self.wrong


@dataclass
class CaseResult:
    """All results of one case, with the derived ratios."""
    case: Case
    results: list
    auto_choice: str = None
    refs: dict = field(default_factory=dict)

    def get(self, label):
        return next((r for r in self.results if r.label == label), None)

    @property
    def auto(self):
        return self.get("auto")

    @property
    def best_forced(self):
        """The fastest forced backend that ran and gave a right answer."""
        ok = [r for r in self.results if r.kind == "forced" and r.ok]
        return min(ok, key=lambda r: r.min) if ok else None

    def ratios(self):
        """``{reference: {"auto": peer/auto, "best": peer/best}}``; > 1 means fastconv is faster."""
        out = {}
        auto, best = self.auto, self.best_forced
        for name, t in self.refs.items():
            out[name] = {
                "auto": t / auto.min if t and auto is not None and auto.ok else None,
                "best": t / best.min if t and best is not None else None,
            }
        return out


def reference_times(case, results):
    """The peer time each ratio divides: one per reference column.

    Layers compare with torch; images with convolve2d, with the faster of
    fftconvolve and oaconvolve, and (timing only) with OpenCV.
    """
    def t(label):
        r = next((r for r in results if r.label == label), None)
        return r.min if r is not None and r.ok else None
    if case.group == "layers":
        return {"torch": t("torch")}
    fft = [v for v in (t("fftconvolve"), t("oaconvolve")) if v is not None]
    return {"convolve2d": t("convolve2d"), "fft/oa": min(fft) if fft else None,
            "cv2": t("cv2.filter2D")}


def run_case(case, impls, repeat=5, budget=2.0, max_call=5.0, min_time=0.0, seed=SEED):
    """Measure every implementation of ``case`` and check its output.

    Each output is compared with the reference peer's (or, without one, with
    the first forced naive result): a result off by more than the dtype's
    tolerance is marked wrong and left out of the ratios.  An implementation
    that raises is reported, not fatal: backends under development must not
    take the whole run down.

    Examples
    --------
    >>> from fastconv._bench import TINY, fastconv_impls, peers, run_case
    >>> res = run_case(TINY[0], fastconv_impls(TINY[0]), repeat=1)
    >>> res.auto.runs
    1
    """
    x, w = case.data(seed)
    results, outputs = [], {}
    ref_out = None
    for impl in impls:
        r = Result(impl.label, impl.kind, impl.backend, impl.engine)
        results.append(r)
        if impl.make is None:
            r.skipped = impl.missing or "not available"
            continue
        est = estimate_seconds(impl, case)
        if est is not None and est > max_call:
            r.skipped = f"est. {est:.2g} s/call > cap {max_call:g} s"
            continue
        try:
            fn = impl.make(x, w)
            if impl.kind == "forced" and impl.engine != "numba":
                # No compilation in this warm-up, so its time is an honest
                # upper bound: a forced backend that slow cannot be the
                # fastest, and repeating it would only lengthen the run.
                t0 = time.perf_counter()
                out = fn()
                warm = time.perf_counter() - t0
                if warm > max_call:
                    timing = Timing(warm, warm, 0, warm)
                    r.note = f"warm-up call only: {warm:.2g} s > cap {max_call:g} s"
                else:
                    timing, out = measure(fn, repeat, budget, min_time)
            else:
                timing, out = measure(fn, repeat, budget, min_time)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            r.error = f"{type(exc).__name__}: {exc}"
            continue
        r.min, r.median, r.runs, r.warmup = timing.min, timing.median, timing.runs, timing.warmup
        if hasattr(out, "numpy"):
            out = out.numpy()
        if impl.reference:
            ref_out = out
            r.err = 0.0
        elif not impl.timing_only:
            outputs[impl.label] = out
        if ref_out is None and impl.backend == "naive":
            ref_out = out
    if ref_out is not None:
        for r in results:
            if r.label in outputs:
                r.err = rel_err(outputs[r.label], ref_out)
                r.wrong = not r.err <= TOL[case.dtype]
    res = CaseResult(case, results, refs=reference_times(case, results))
    try:
        res.auto_choice = auto_choice(case)
    except Exception as exc:  # noqa: BLE001 - the selector is under development too
        res.auto_choice = f"error: {type(exc).__name__}: {exc}"
    return res


def rematch(case, impls, res, seconds=1.0, rounds=5, seed=SEED):
    """Time ``auto``, the backend it chose and the peers again, taking turns.

    :func:`run_case` times one implementation after another, so a slow
    window of a shared machine lands on whichever row ran in it (measured:
    ``auto`` at 2.27 ms on a case whose forced twin, the same code, took
    1.09 ms minutes later).  The rows that the ratios compare therefore run
    again in rounds, a rotating order of one untimed and one timed call each
    (as the grid's final does), for at least ``rounds`` rounds and about
    ``seconds`` in all, and each keeps the lower of its two minimums.  Rows
    too slow for ``rounds`` rounds to fit in ``seconds``, and forced rows
    other than auto's choice, keep their first figure.  The peer times
    behind the ratios are recomputed.

    Examples
    --------
    >>> from fastconv._bench import TINY, fastconv_impls, rematch, run_case
    >>> impls = fastconv_impls(TINY[0])
    >>> res = run_case(TINY[0], impls, repeat=1)
    >>> before = res.auto.min
    >>> rematch(TINY[0], impls, res, seconds=0.01).auto.min <= before
    True
    """
    x, w = case.data(seed)
    wanted = {"auto", res.auto_choice} | {i.label for i in impls if i.kind == "peer"}
    members = [(i, r) for i in impls if i.label in wanted and i.make is not None
               and (r := res.get(i.label)) is not None and r.ok]
    cap = seconds / (2 * rounds * max(len(members), 1))
    members = [(i, r) for i, r in members if r.min <= cap]
    if len(members) < 2:
        return res
    from ._select import take_turns
    enabled = gc.isenabled()
    gc.disable()
    try:
        # ``seconds`` covers the untimed calls too: half of it is timed.
        times = take_turns([i.make(x, w) for i, _ in members], rounds, seconds / 2)
    finally:
        if enabled:
            gc.enable()
    for (_, r), ts in zip(members, times):
        r.min = min([r.min] + ts)
    res.refs = reference_times(case, res.results)
    return res


def geomean(values):
    """Geometric mean of the positive numbers in ``values`` (None if none).

    Examples
    --------
    >>> from fastconv._bench import geomean
    >>> geomean([1.0, 4.0, None])
    2.0
    """
    vals = [v for v in values if v]
    return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None


def summarize(case_results):
    """Geometric means of the ratios per group and reference.

    Returns ``{group: {reference: {"auto": g, "best": g, "n": cases}}}``.

    Examples
    --------
    >>> from fastconv._bench import summarize
    >>> summarize([])
    {}
    """
    out = {}
    for res in case_results:
        for ref, r in res.ratios().items():
            slot = out.setdefault(res.case.group, {}).setdefault(ref, {"auto": [], "best": []})
            slot["auto"].append(r["auto"])
            slot["best"].append(r["best"])
    return {g: {ref: {"auto": geomean(v["auto"]), "best": geomean(v["best"]),
                      "n": sum(1 for a in v["auto"] if a)}
                for ref, v in refs.items()}
            for g, refs in out.items()}
