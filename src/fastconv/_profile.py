"""Where a network's time goes: per layer, per op kind, and the share outside convolutions.

Three ways to run a network are timed, op by op:

* ``eager``: the model under ``no_grad`` in eval mode, every ``Function``
  timed through the :func:`~fastconv.nn.tensor.observer` hook;
* ``compiled``: the plan of :func:`fastconv.nn.inference`, step by step (a
  fused step's time includes its epilogue);
* ``train``: one SGD-with-momentum step (forward, cross-entropy, backward,
  optimiser), each op's forward and backward timed apart.

Each mode returns a :class:`Profile`: rows per layer and op, with GFLOP/s for
the products and the backend the cost model chose, the totals per op kind and
the wall time of the whole step (Python between the ops included).
"""
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np

#: Op classes of fastconv.nn.functional by the kind the profile reports (others: 'other');
#: a compiled step reports its own ``kind``.
KINDS = {
    "Conv2d": "conv", "Linear": "linear", "BatchNorm": "batchnorm", "BatchNormReLU": "batchnorm+relu",
    "ReLU": "relu", "Add": "add",
    "MaxPool2d": "pool", "AvgPool2d": "pool", "AdaptiveAvgPool2d": "pool", "Cat": "cat",
    "Reshape": "reshape", "NLLLoss": "loss",
}


@dataclass
class Row:
    """One layer's op (summed over its calls in a step; the median over steps)."""
    layer: str
    op: str
    kind: str
    ms: float = 0.0
    calls: int = 0
    gflop: float = 0.0
    backend: str = ""

    @property
    def gflops(self):
        return self.gflop / (self.ms / 1e3) if self.ms > 0 and self.gflop else None


@dataclass
class Profile:
    """The outcome of :func:`profile`."""
    mode: str
    step_ms: float                       # wall time of a whole step (median)
    rows: list = field(default_factory=list)

    def kinds(self):
        """{kind: ms}, largest first, with 'python' the step's time outside every op."""
        out = {}
        for r in self.rows:
            out[r.kind] = out.get(r.kind, 0.0) + r.ms
        out["python"] = max(self.step_ms - sum(r.ms for r in self.rows), 0.0)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def outside_conv_share(self):
        """The share of the step's wall time spent outside convolutions (forward and backward)."""
        conv = sum(r.ms for r in self.rows if r.kind in ("conv", "conv backward"))
        return 1.0 - conv / self.step_ms if self.step_ms > 0 else 0.0

    def to_json(self):
        return {"mode": self.mode, "step_ms": self.step_ms,
                "outside_conv_share": self.outside_conv_share(),
                "kinds_ms": self.kinds(),
                "layers": [dict(asdict(r), gflops=r.gflops) for r in self.rows]}


class _Recorder:
    """Accumulates (layer, op) -> ms for one step."""

    def __init__(self):
        self.times, self.meta = {}, {}

    def add(self, key, kind, seconds, gflop=0.0, backend=""):
        t = self.times.get(key)
        self.times[key] = (seconds if t is None else t[0] + seconds, 1 if t is None else t[1] + 1)
        g, b, _ = self.meta.get(key, (0.0, "", kind))
        self.meta[key] = (g + gflop, b or backend, kind)


def _conv_meta(arrays, kwargs):
    """(GFLOP, backend/engine auto picks) of a conv op on ``arrays``."""
    from . import _select
    from ._validation import conv_geometry
    x, w = arrays[0], arrays[1]
    if x.ndim != 4 or x.dtype.kind != "f":
        return 0.0, ""
    p = conv_geometry(x.shape, w.shape, kwargs.get("stride", 1), kwargs.get("padding", 0),
                      kwargs.get("dilation", 1), kwargs.get("groups", 1), x.dtype)
    backend = kwargs.get("backend", "auto")
    if backend == "auto":
        b, e = _select.choose(p, engine=kwargs.get("engine", "auto"))
        backend = f"{b}/{e}"
    return p.flops / 1e9, backend


class _OpTimer:
    """The observer of eager and training runs: times each op's forward and backward."""

    def __init__(self, model, rec):
        self.names = {id(m): n for n, m in model.named_modules()}
        self.stack, self.rec, self.ctx = [], rec, {}

    def apply(self, cls, inputs, kwargs):
        name = self.stack[-1] if self.stack else ""
        gflop, backend = 0.0, ""
        if cls.__name__ == "Conv2d":
            gflop, backend = _conv_meta([getattr(t, "data", t) for t in inputs], kwargs)
        elif cls.__name__ == "Linear":
            x, w = inputs[0].data, inputs[1].data
            gflop, backend = 2 * x.size * w.shape[0] / 1e9, "gemm"
        t0 = time.perf_counter()
        out = cls._apply(inputs, kwargs)
        kind = KINDS.get(cls.__name__, "other")
        self.rec.add((name, cls.__name__), kind, time.perf_counter() - t0, gflop, backend)
        if out._ctx is not None:
            # Both gradients of a product cost about its forward each.
            self.ctx[id(out._ctx)] = (name, cls.__name__, kind, 2 * gflop)
        return out

    def backward(self, ctx, grad):
        name, op, kind, gflop = self.ctx.get(id(ctx), ("", type(ctx).__name__, "other", 0.0))
        t0 = time.perf_counter()
        out = ctx.backward(grad)
        self.rec.add((name, op + " backward"), kind + " backward", time.perf_counter() - t0, gflop)
        return out

    def call(self, module, args, kwargs):
        self.stack.append(self.names.get(id(module), type(module).__name__))
        try:
            return module.forward(*args, **kwargs)
        finally:
            self.stack.pop()


class _StepTimer:
    """The timer a compiled plan calls around each step."""

    def __init__(self, rec):
        self.rec = rec

    def __call__(self, step):
        return _Timed(self.rec, step)


class _Timed:
    def __init__(self, rec, step):
        self.rec, self.step = rec, step

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        s = self.step
        kind = "other" if s.kind == "module" else s.kind
        self.rec.add((s.name or "(model)", s.describe()), kind, time.perf_counter() - self.t0,
                     s.flops / 1e9, s.backend)
        return False


def _merge(recs, mode, walls):
    """Rows with each (layer, op)'s median time over the steps, in first-seen order."""
    keys = list(recs[0].times)
    rows = []
    for key in keys:
        ms = statistics.median(r.times.get(key, (0.0, 0))[0] for r in recs) * 1e3
        gflop, backend, kind = recs[0].meta[key]
        rows.append(Row(layer=key[0], op=key[1], kind=kind, ms=ms, calls=recs[0].times[key][1],
                        gflop=gflop, backend=backend))
    return Profile(mode=mode, step_ms=statistics.median(walls) * 1e3, rows=rows)


def profile(model, x, mode="compiled", repeat=3, labels=None, lr=0.01, momentum=0.9):
    """Time ``model`` on ``x`` op by op; see the module docstring for the modes.

    Parameters
    ----------
    model : fastconv.nn.Module
    x : ndarray, (N, C, H, W)
    mode : {'eager', 'compiled', 'train'}
    repeat : int
        Timed steps after one warm-up; each row is the median over them.
    labels : ndarray of int, optional
        Targets of the training step (default: ``arange(N) % classes``).
    lr, momentum : float
        The SGD step of ``train``.

    Returns
    -------
    Profile

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv._profile import profile
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    >>> p = profile(net, np.zeros((1, 1, 4, 4), np.float32), mode="eager", repeat=1)
    >>> [r.kind for r in p.rows]
    ['conv', 'relu', 'reshape', 'linear']
    """
    from . import nn, optim
    if mode not in ("eager", "compiled", "train"):
        raise ValueError(f"mode must be 'eager', 'compiled' or 'train', got {mode!r}")
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    recs, walls = [], []
    if mode == "compiled":
        fast = nn.inference(model)
        plan = fast.plan(x)
        plan.run(x)
        for _ in range(repeat):
            rec = _Recorder()
            t0 = time.perf_counter()
            plan.run(x, timer=_StepTimer(rec))
            walls.append(time.perf_counter() - t0)
            recs.append(rec)
        return _merge(recs, mode, walls)
    if mode == "eager":
        model.eval()
        step = _eager_step(model, x)
    else:
        model.train()
        opt = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        step = _train_step(model, x, opt, labels)
    step(None)
    for _ in range(repeat):
        rec = _Recorder()
        timer = _OpTimer(model, rec)
        t0 = time.perf_counter()
        step(timer)
        walls.append(time.perf_counter() - t0)
        recs.append(rec)
    return _merge(recs, mode, walls)


def _eager_step(model, x):
    from . import nn
    from .nn.tensor import observing

    def step(timer):
        with observing(timer), nn.no_grad():
            model(nn.Tensor(x))
    return step


def _train_step(model, x, opt, labels):
    from . import nn
    from .nn import functional as F
    from .nn.tensor import observing

    def step(timer):
        with observing(timer):
            logits = model(nn.Tensor(x))
            y = labels if labels is not None else np.arange(x.shape[0]) % logits.shape[1]
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
        t0 = time.perf_counter()
        opt.step()
        if timer is not None:
            timer.rec.add(("(optimizer)", "SGD step"), "optimizer", time.perf_counter() - t0)
    return step
