"""Inference compiled once: :func:`inference` turns a module tree into a plan of fused steps.

The first call of the returned :class:`InferenceModel` on an input shape
traces the network (:mod:`fastconv.nn._trace`) and compiles the trace:

* an eval-mode ``BatchNorm`` right after a convolution is folded into the
  convolution's weights and bias (computed in float64, stored in the layer's
  dtype);
* the bias, a residual add and a ReLU after a convolution (or a ``Linear``)
  become the step's :class:`Epilogue`.  A convolution's backend applies it
  as it stores its outputs (im2col after each GEMM block, Winograd in its
  output transform, direct per register block; naive and FFT in passes
  after), so a ResNet block's residual add and ReLU cost no pass of their
  own; a ``Linear`` applies it in place right after its product;
* each convolution's backend and engine are chosen once, by the cost model
  (``fastconv._select``), or measured first with ``tune=True``;
* every activation lives in a buffer planned once from the values' lifetimes
  and reused call after call: steps write into them through ``out=``; a ReLU,
  an add or a batch norm whose input dies there works in place.

Anything else runs as the op it was (its ``Function.forward``), and a module
the trace could not see into runs as the module itself, so the result is
always the model's, up to rounding.

Examples
--------
>>> import numpy as np
>>> from fastconv import nn
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()).eval()
>>> fast = nn.inference(net)
>>> x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
>>> bool(np.allclose(fast(x).numpy(), net(nn.Tensor(x)).numpy(), atol=1e-5))
True
"""
import threading
from dataclasses import dataclass

import numpy as np

from .. import _dispatch, _select
from ..backends import apply_epilogue as _conv_epilogue
from .._blas import gemm
from .._threads import get_num_threads
from .._validation import conv_geometry, pool2d_args
from . import functional as F
from ._trace import Const, trace
from .tensor import Tensor, no_grad

__all__ = ["inference", "InferenceModel", "Epilogue"]


@dataclass(frozen=True)
class Epilogue:
    """What follows a product in its step, applied to the output in place.

    ``residual`` (whether a same-shaped tensor is added), then ``bias`` (per
    output channel, or None), then ``relu``: ``y = relu((y + r) + bias)``.
    Convolution backends apply it as they store their outputs
    (``fastconv.backends``); :func:`apply_epilogue` applies it after a
    ``Linear``'s product.
    """
    bias: object = None
    residual: bool = False
    relu: bool = False

    def __str__(self):
        parts = (["+bias"] if self.bias is not None else []) + (["+residual"] if self.residual else []) \
            + (["relu"] if self.relu else [])
        return " ".join(parts) or "-"


def apply_epilogue(y, ep, residual=None, channel_axis=1):
    """Apply ``ep`` to ``y`` in place (``residual``: the array to add, if any).

    ``channel_axis`` 1: a C-contiguous NCHW (or NC) output, by the backends'
    own epilogue (``fastconv.backends.apply_epilogue``); -1: a ``Linear``'s
    (..., features) output.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn.inference import Epilogue, apply_epilogue
    >>> y = np.array([[[[-2.0]], [[1.0]]]], np.float32)
    >>> apply_epilogue(y, Epilogue(bias=np.array([1.0, 1.0], np.float32), relu=True))
    >>> y.ravel()
    array([0., 2.], dtype=float32)
    """
    if channel_axis == 1:
        _conv_epilogue(y, (ep.bias, residual, ep.relu))
        return
    if residual is not None:
        np.add(y, residual, out=y)
    if ep.bias is not None:
        y += ep.bias
    if ep.relu:
        np.maximum(y, y.dtype.type(0), out=y)


# =============================================================================
# Steps: one per fused group or unfused op
# =============================================================================

class Step:
    """One step of the plan.  ``ins``: value indices or Consts; ``out``: value
    indices; ``view`` (set by the planner): the output arrays it writes."""
    kind = "op"
    plans_output = True     # the output is a planned buffer
    inplace_ok = False      # may write its output over ``ins[0]`` when that dies here

    def __init__(self, name, ops, ins, outs):
        self.name, self.ops, self.ins, self.outs = name, ops, ins, outs
        self.backend = ""
        self.flops = 0
        self.epilogue = None
        self.target = [None] * len(outs)   # planned output arrays
        self.inplace = False

    def args(self, env):
        return [r.array if isinstance(r, Const) else (None if r is None else env[r]) for r in self.ins]

    def describe(self):
        return "+".join(self.ops)


class ConvStep(Step):
    kind = "conv"

    def __init__(self, name, ops, ins, outs, w, p, mod, engine, ep, residual):
        super().__init__(name, ops, ins, outs)
        # A backend that transforms its filters (Winograd) does it here, once,
        # rather than finding them in its cache on every call.
        prepare = getattr(mod, "prepare", None)
        self.w = w if prepare is None else prepare(w, p)
        self.p, self.mod, self.engine = p, mod, engine
        self.epilogue, self.residual = ep, residual
        self.backend = f"{mod.__name__.rsplit('.', 1)[-1]}/{engine}"
        self.flops = p.flops

    def run(self, env):
        x = env[self.ins[0]]
        res = None if self.residual is None else env[self.residual]
        ep = self.epilogue
        env[self.outs[0]] = self.mod.conv2d(x, self.w, self.p, self.engine, get_num_threads(),
                                            out=self.target[0], epilogue=(ep.bias, res, ep.relu))


class LinearStep(Step):
    kind = "linear"

    def __init__(self, name, ops, ins, outs, wt, ep, residual):
        super().__init__(name, ops, ins, outs)
        self.wt, self.epilogue, self.residual = wt, ep, residual
        self.backend = "gemm"

    def run(self, env):
        x = env[self.ins[0]]
        y = gemm(x, self.wt, out=self.target[0])
        apply_epilogue(y, self.epilogue, None if self.residual is None else env[self.residual],
                       channel_axis=-1)
        env[self.outs[0]] = y


class AffineStep(Step):
    """An eval batch norm not folded into a product (and a ReLU after it)."""
    kind = "batchnorm"
    inplace_ok = True

    def __init__(self, name, ops, ins, outs, scale, shift, relu):
        super().__init__(name, ops, ins, outs)
        self.scale, self.shift, self.relu = scale, shift, relu

    def run(self, env):
        x, y = env[self.ins[0]], self.target[0]
        pw = F._pointwise_for(x)
        if pw is not None:
            x3, y3 = x.reshape(x.shape[0], x.shape[1], -1), y.reshape(y.shape[0], y.shape[1], -1)
            pw[0].channel_affine(x3, self.scale, self.shift, y3, self.relu, pw[1])
        else:
            bshape = (1, -1) + (1,) * (x.ndim - 2)
            np.multiply(x, self.scale.reshape(bshape), out=y)
            y += self.shift.reshape(bshape)
            if self.relu:
                np.maximum(y, y.dtype.type(0), out=y)
        env[self.outs[0]] = y


class ReluStep(Step):
    kind = "relu"
    inplace_ok = True

    def run(self, env):
        x, y = env[self.ins[0]], self.target[0]
        pw = F._pointwise_for(x)
        if pw is not None:
            pw[0].relu(x.reshape(-1), y.reshape(-1), pw[1])
        else:
            np.maximum(x, x.dtype.type(0), out=y)
        env[self.outs[0]] = y


class AddStep(Step):
    kind = "add"
    inplace_ok = True

    def run(self, env):
        a, b = self.args(env)
        env[self.outs[0]] = np.add(a, b, out=self.target[0])


class PoolStep(Step):
    kind = "pool"

    def __init__(self, name, ops, ins, outs, geo, max_pool, cip, scratch):
        super().__init__(name, ops, ins, outs)
        self.geo, self.max_pool, self.cip, self.scratch = geo, max_pool, cip, scratch

    def run(self, env):
        x, y = env[self.ins[0]], self.target[0]
        kh, kw, sh, sw, ph, pw, OH, OW = self.geo
        x3 = x.reshape((-1,) + x.shape[-2:])
        y3 = y.reshape(x3.shape[0], OH, OW)
        k, nt = F._pool_kernels(), get_num_threads()
        if self.max_pool:
            idx = self.scratch.get(y3.size).reshape(y3.shape)
            k.max_pool2d_fwd(x3, y3, idx, kh, kw, sh, sw, ph, pw, nt)
        else:
            k.avg_pool2d_fwd(x3, y3, kh, kw, sh, sw, ph, pw, self.cip, nt)
        env[self.outs[0]] = y


class MeanPoolStep(Step):
    """Adaptive average pooling over equal windows: a mean into the buffer."""
    kind = "pool"

    def __init__(self, name, ops, ins, outs, out_hw):
        super().__init__(name, ops, ins, outs)
        self.out_hw = out_hw

    def run(self, env):
        x, y = env[self.ins[0]], self.target[0]
        (OH, OW), (H, W) = self.out_hw, x.shape[-2:]
        np.mean(x.reshape(x.shape[:-2] + (OH, H // OH, OW, W // OW)), axis=(-3, -1), out=y)
        env[self.outs[0]] = y


class CatStep(Step):
    kind = "cat"

    def __init__(self, name, ops, ins, outs, dim):
        super().__init__(name, ops, ins, outs)
        self.dim = dim

    def run(self, env):
        env[self.outs[0]] = np.concatenate(self.args(env), axis=self.dim, out=self.target[0])


class ReshapeStep(Step):
    kind = "reshape"
    plans_output = False

    def __init__(self, name, ops, ins, outs, shape):
        super().__init__(name, ops, ins, outs)
        self.shape = shape

    def run(self, env):
        env[self.outs[0]] = env[self.ins[0]].reshape(self.shape)


class GenericStep(Step):
    """An op run as it is (``Function.forward``): allocates its output."""
    kind = "other"
    plans_output = False

    def __init__(self, name, ops, ins, outs, fn, kwargs):
        super().__init__(name, ops, ins, outs)
        self.fn, self.kwargs = fn, kwargs

    def run(self, env):
        env[self.outs[0]] = self.fn().forward(*self.args(env), **self.kwargs)


class ModuleStep(Step):
    """A module call the trace could not see into, run as the module itself."""
    kind = "module"
    plans_output = False

    def __init__(self, name, ins, outs, module, reason):
        super().__init__(name, [f"{type(module).__name__} (unfused: {reason})"], ins, outs)
        self.module = module

    def run(self, env):
        args = [Tensor(a) if isinstance(r, int) else a for r, a in zip(self.ins, self.args(env))]
        training = self.module.training
        if training:
            self.module.eval()
        try:
            with no_grad():
                out = self.module(*args)
        finally:
            if training:
                self.module.train()
        outs = [out] if isinstance(out, Tensor) else list(out)
        for i, o in zip(self.outs, outs):
            env[i] = o.data


class _Scratch:
    """One int64 array shared by every max pool's (unused) argmax output."""

    def __init__(self):
        self.a = np.empty(0, np.int64)

    def reserve(self, n):
        if n > self.a.size:
            self.a = np.empty(n, np.int64)

    def get(self, n):
        return self.a[:n]


# =============================================================================
# From the trace to the steps
# =============================================================================

def _fold_batchnorm(w, b, bn_node, dtype):
    """Weights and bias of conv(x; w, b) followed by eval batch norm ``bn_node``."""
    rm, rv, eps = bn_node.kwargs["running_mean"], bn_node.kwargs["running_var"], bn_node.kwargs["eps"]
    gamma, beta = (None if r is None else r.array for r in bn_node.inputs[1:3])
    scale = 1.0 / np.sqrt(rv.astype(np.float64) + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -rm.astype(np.float64) * scale
    if beta is not None:
        shift = shift + beta
    if b is not None:
        shift = shift + b * scale
    w = (w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(dtype)
    return w, shift.astype(dtype)


def _bn_affine(node, dtype):
    """(scale, shift) of an eval batch norm node, as the eager op rounds them."""
    rm, rv, eps = node.kwargs["running_mean"], node.kwargs["running_var"], node.kwargs["eps"]
    gamma, beta = (None if r is None else r.array for r in node.inputs[1:3])
    invstd = (1.0 / np.sqrt(rv + eps)).astype(dtype)
    scale = invstd if gamma is None else invstd * gamma
    shift = -rm.astype(dtype) * scale if beta is None else beta - rm.astype(dtype) * scale
    return np.ascontiguousarray(scale, dtype), np.ascontiguousarray(shift, dtype)


def _is_eval_bn(node, v):
    k = node.kwargs
    return (node.fn in (F.BatchNorm, F.BatchNormReLU) and node.inputs[0] == v and not k.get("training")
            and k.get("running_mean") is not None and k.get("running_var") is not None
            and all(r is None or isinstance(r, Const) for r in node.inputs[1:3]))


class _Compiler:
    def __init__(self, graph, tune):
        self.g, self.tune = graph, tune
        self.uses = {}
        for n in graph.nodes:
            for r in n.inputs:
                if isinstance(r, int):
                    self.uses.setdefault(r, []).append(n)
        for o in graph.outputs:
            self.uses.setdefault(o, []).append(None)
        self.taken = set()
        self.scratch = _Scratch()

    def sole_user(self, v):
        users = self.uses.get(v, [])
        ok = len(users) == 1 and users[0] is not None and id(users[0]) not in self.taken
        return users[0] if ok else None

    def epilogue_chain(self, v, bias, members):
        """Extend a product's group by an add and a ReLU; return (epilogue, residual, last value)."""
        residual, relu = None, False
        n = self.sole_user(v)
        if n is not None and n.fn is F.Add and n.inputs.count(v) == 1 and \
                all(isinstance(r, int) for r in n.inputs):
            other = n.inputs[1] if n.inputs[0] == v else n.inputs[0]
            vo, vr = self.g.values[v], self.g.values[other]
            # Only a residual computed before this product: the product that
            # comes last takes the add, so no step waits for a later one.
            if vo.shape == vr.shape and vo.dtype == vr.dtype and \
                    (vr.producer is None or vr.producer < self.g.values[members[0].outputs[0]].producer):
                residual, v = other, n.outputs[0]
                members.append(n)
                n = self.sole_user(v)
        if n is not None and n.fn is F.ReLU:
            relu, v = True, n.outputs[0]
            members.append(n)
        return Epilogue(bias=bias, residual=residual is not None, relu=relu), residual, v

    def conv(self, node):
        x, w, b = node.inputs
        vx = self.g.values[x] if isinstance(x, int) else None
        if vx is None or len(vx.shape) != 4 or not isinstance(w, Const) or \
                not (b is None or isinstance(b, Const)):
            return None
        k = node.kwargs
        dtype = vx.dtype
        if w.array.dtype != dtype or (b is not None and b.array.dtype != dtype):
            return None
        p = conv_geometry(vx.shape, w.array.shape, k["stride"], k["padding"], k["dilation"], k["groups"],
                          dtype)
        weight, bias = w.array, None if b is None else b.array
        members, ops, v = [node], ["conv"], node.outputs[0]
        bn = self.sole_user(v)
        if bn is not None and _is_eval_bn(bn, v):
            weight, bias = _fold_batchnorm(weight, bias, bn, dtype)
            members.append(bn)
            ops.append("bn")
            v = bn.outputs[0]
        bias = None if bias is None else np.ascontiguousarray(bias)
        if bn is not None and bn.fn is F.BatchNormReLU and members[-1] is bn:
            ep, residual = Epilogue(bias=bias, relu=True), None
        else:
            ep, residual, v = self.epilogue_chain(v, bias, members)
        ops += (["add"] if ep.residual else []) + (["relu"] if ep.relu else [])
        backend, engine = k.get("backend", "auto"), k.get("engine", "auto")
        if self.tune and backend == "auto":
            _select.tune(vx.shape, w.array.shape, k["stride"], k["padding"], k["dilation"], k["groups"],
                         dtype, engine=engine)
        mod, eng = _dispatch.resolve(p, backend, engine)
        return members, ConvStep(node.name, ops, [x], [v], np.ascontiguousarray(weight), p, mod, eng,
                                 ep, residual)

    def linear(self, node):
        x, w, b = node.inputs
        if not isinstance(x, int) or not isinstance(w, Const) or not (b is None or isinstance(b, Const)) \
                or len(self.g.values[x].shape) != 2 or w.array.dtype != self.g.values[x].dtype:
            return None
        members = [node]
        ep, residual, v = self.epilogue_chain(node.outputs[0], None if b is None else b.array, members)
        ops = ["linear"] + (["add"] if ep.residual else []) + (["relu"] if ep.relu else [])
        step = LinearStep(node.name, ops, [x], [v], w.array.T, ep, residual)
        step.flops = 2 * int(np.prod(self.g.values[x].shape)) * w.array.shape[0]
        return members, step

    def single(self, node):
        """The step of an op that is not fused with others."""
        fn, ins, outs, k, name = node.fn, node.inputs, node.outputs, node.kwargs, node.name
        op = node.op.lower()
        if fn is None:
            return [node], ModuleStep(name, ins, outs, node.module, node.reason)
        if _is_eval_bn(node, ins[0]) and isinstance(ins[0], int) and len(self.g.values[ins[0]].shape) >= 2:
            scale, shift = _bn_affine(node, self.g.values[ins[0]].dtype)
            relu = None if fn.relu else self.sole_user(outs[0])
            fuse = fn.relu or (relu is not None and relu.fn is F.ReLU)
            members = [node, relu] if relu is not None and fuse else [node]
            return members, AffineStep(name, ["bn"] + (["relu"] if fuse else []), ins[:1], members[-1].outputs,
                                       scale, shift, fuse)
        if fn is F.ReLU and isinstance(ins[0], int):
            return [node], ReluStep(name, [op], ins, outs)
        if fn is F.Add and all(isinstance(r, int) for r in ins) and \
                self.g.values[ins[0]].shape == self.g.values[ins[1]].shape == self.g.values[outs[0]].shape:
            return [node], AddStep(name, [op], ins, outs)
        if fn in (F.MaxPool2d, F.AvgPool2d) and isinstance(ins[0], int) and \
                not isinstance(k.get("padding"), str):
            v = self.g.values[ins[0]]
            probe = np.lib.stride_tricks.as_strided(np.zeros(1, v.dtype), v.shape, (0,) * len(v.shape))
            _, geo, _, _ = pool2d_args(probe, k["kernel_size"], k.get("stride"), k.get("padding", 0),
                                       k.get("ceil_mode", False), op)
            if fn is F.MaxPool2d:
                self.scratch.reserve(int(np.prod(self.g.values[outs[0]].shape)))
            return [node], PoolStep(name, [op], ins, outs, geo, fn is F.MaxPool2d, k.get("count_include_pad", True),
                            self.scratch)
        if fn is F.AdaptiveAvgPool2d and isinstance(ins[0], int):
            (H, W), (OH, OW) = self.g.values[ins[0]].shape[-2:], self.g.values[outs[0]].shape[-2:]
            if H % OH == 0 and W % OW == 0:
                return [node], MeanPoolStep(name, [op], ins, outs, (OH, OW))
        if fn is F.Cat and all(isinstance(r, int) for r in ins):
            return [node], CatStep(name, [op], ins, outs, k["dim"])
        if fn is F.Reshape and isinstance(ins[0], int):
            return [node], ReshapeStep(name, [op], ins, outs, self.g.values[outs[0]].shape)
        return [node], GenericStep(name, [op], ins, outs, fn, k)

    def steps(self):
        """The steps in a valid order: each where its last member ran in the trace
        (a producer's last member always precedes its consumers' last members)."""
        pos = {id(n): i for i, n in enumerate(self.g.nodes)}
        keyed = []
        for node in self.g.nodes:
            if id(node) in self.taken:
                continue
            group = None
            if node.fn is F.Conv2d:
                group = self.conv(node)
            elif node.fn is F.Linear:
                group = self.linear(node)
            if group is None:
                group = self.single(node)
            members, step = group
            self.taken.update(id(m) for m in members)
            keyed.append((pos[id(members[-1])], step))
        keyed.sort(key=lambda t: t[0])
        return [s for _, s in keyed]


# =============================================================================
# Buffer planning
# =============================================================================

def _plan_buffers(steps, values, outputs):
    """Give each planned output a view of a pooled buffer; return the buffers.

    A value's buffer is free once the last step reading it (or reading a view
    of it) has run; a step whose ``inplace_ok`` allows it takes its input's
    buffer when it is that input's only reader.  Buffers are sized once, so
    steady-state calls allocate no activation.
    """
    readers = {}
    for i, s in enumerate(steps):
        for r in s.ins + [getattr(s, "residual", None)]:
            if isinstance(r, int):
                readers.setdefault(r, []).append(i)
    for o in outputs:
        readers.setdefault(o, []).append(len(steps))
    # Pass 1: slots (one per planned output not computed in place), the slots
    # each value may view, and the last step that reads each slot.
    slot_of, deps, last, created, size = {}, {0: set()}, {}, {}, {}
    for i, s in enumerate(steps):
        if s.plans_output:
            o, src = s.outs[0], s.ins[0] if s.ins and isinstance(s.ins[0], int) else None
            if s.inplace_ok and src in slot_of and readers.get(src) == [i] and \
                    values[src].shape == values[o].shape and values[src].dtype == values[o].dtype:
                slot_of[o], s.inplace = slot_of[src], True
            else:
                slot_of[o] = len(created)
                created[slot_of[o]] = i
                size[slot_of[o]] = (int(np.prod(values[o].shape)), values[o].dtype)
            deps[o] = {slot_of[o]}
        else:
            viewed = set()
            for r in s.ins:
                if isinstance(r, int):
                    viewed |= deps[r]
            for o in s.outs:
                deps[o] = viewed   # the output may be a view of an input
        for o in s.outs:
            for slot in deps[o]:
                last[slot] = max(last.get(slot, i), max(readers.get(o, [i])))
    # Pass 2: best-fit buffers over the slots' lifetimes.
    ends = {}
    for slot, li in last.items():
        ends.setdefault(li, []).append(slot)
    pool, free, assign = [], [], {}
    for i, s in enumerate(steps):
        for slot in [sl for sl, c in created.items() if c == i]:
            n, dt = size[slot]
            fits = [b for b in free if pool[b].dtype == dt and pool[b].size >= n]
            if fits:
                b = min(fits, key=lambda b: pool[b].size)
            else:
                same = [b for b in free if pool[b].dtype == dt]
                b = max(same, key=lambda b: pool[b].size) if same else None
                if b is None:
                    b = len(pool)
                    pool.append(None)
                pool[b] = np.empty(n, dt)   # sized at compile time only
            if b in free:
                free.remove(b)
            assign[slot] = b
        for slot in ends.get(i, []):
            free.append(assign[slot])
    for s in steps:
        if s.plans_output:
            v = values[s.outs[0]]
            s.buffer = assign[slot_of[s.outs[0]]]
            s.target[0] = pool[s.buffer][:int(np.prod(v.shape))].reshape(v.shape)
    return pool


# =============================================================================
# The compiled model
# =============================================================================

class _Plan:
    def __init__(self, model, x, tune):
        graph = trace(model, x)
        self.values = graph.values
        self.outputs, self.structure = graph.outputs, graph.structure
        self.steps = _Compiler(graph, tune).steps()
        self.buffers = _plan_buffers(self.steps, graph.values, graph.outputs)
        self.env = [None] * len(graph.values)
        self.lock = threading.Lock()

    def run(self, x, timer=None):
        with self.lock:
            env = self.env
            env[0] = x
            try:
                if timer is None:
                    for s in self.steps:
                        s.run(env)
                else:
                    for s in self.steps:
                        with timer(s):
                            s.run(env)
                # Copies: the buffers are overwritten by the next call.
                return [np.array(env[o]) for o in self.outputs]
            finally:
                for i in range(len(env)):
                    env[i] = None


class InferenceModel:
    """A module tree compiled for evaluation; see :func:`inference`.

    Calling it with an (N, C, H, W) array or Tensor returns what
    ``model.eval()`` returns under ``no_grad`` (a Tensor, or a tuple of them),
    computed by the plan compiled for that input's shape and dtype (compiled
    on first use).
    """

    def __init__(self, model, tune=False):
        from .modules import Module
        if not isinstance(model, Module):
            raise TypeError(f"inference: model must be a fastconv.nn.Module, got {type(model).__name__}")
        self.model, self.tune = model, bool(tune)
        self._plans = {}
        self._lock = threading.Lock()

    def _input(self, x):
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        if a.dtype.kind != "f":
            raise TypeError(f"inference: x must be a floating array or Tensor, got dtype {a.dtype}")
        return np.ascontiguousarray(a)

    def plan(self, x):
        """The compiled plan for ``x``'s shape and dtype (compiling it if new)."""
        a = self._input(x)
        key = (a.shape, a.dtype.str)
        p = self._plans.get(key)
        if p is None:
            with self._lock:
                p = self._plans.get(key)
                if p is None:
                    with _eval(self.model):
                        p = self._plans[key] = _Plan(self.model, a, self.tune)
        return p

    def __call__(self, x):
        a = self._input(x)
        plan = self.plan(a)
        if plan.structure == "opaque" or not np.isfinite(a).all():
            # The planned backends may spread a NaN over a tile: eager picks per call.
            with _eval(self.model), no_grad():
                return self.model(Tensor(a))
        return self._wrap(plan, plan.run(a))

    def _wrap(self, plan, arrays):
        outs = [Tensor(o) for o in arrays]
        if plan.structure == "tensor":
            return outs[0]
        return plan.structure(*outs) if hasattr(plan.structure, "_fields") else plan.structure(outs)

    def explain(self, x):
        """The plan for an input like ``x``, one line per step (x: an array or a shape).

        Examples
        --------
        >>> import numpy as np
        >>> from fastconv import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        >>> print(nn.inference(net).explain((1, 1, 8, 8)))  # doctest: +ELLIPSIS
        step  layer ...
        """
        if isinstance(x, tuple):
            x = np.zeros(x, np.float32)
        plan = self.plan(x)
        rows = [("step", "layer", "ops", "output", "backend", "GFLOP", "epilogue", "buffer")]
        for i, s in enumerate(plan.steps):
            shape = "x".join(map(str, plan.values[s.outs[0]].shape)) if plan.values[s.outs[0]] else "?"
            buf = "in place" if s.inplace else (f"#{s.buffer}" if s.plans_output else "allocates")
            rows.append((str(i), s.name or "(model)", s.describe(), shape, s.backend or "-",
                         f"{s.flops / 1e9:.3f}" if s.flops else "-",
                         str(s.epilogue) if s.epilogue is not None else "-", buf))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        mb = sum(b.nbytes for b in plan.buffers) / 2 ** 20
        unfused = sum(1 for s in plan.steps if not s.plans_output and s.kind != "reshape")
        lines.append(f"{len(plan.steps)} steps, {len(plan.buffers)} activation buffers of {mb:.1f} MiB "
                     f"in all, planned once; {unfused} steps allocate their output each call")
        return "\n".join(lines)


class _eval:
    """Evaluation mode for the duration, then the modes the modules had."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc):
        for m, t in self.modes:
            object.__setattr__(m, "training", t)
        return False


def inference(model, *, tune=False):
    """Compile ``model`` for evaluation: fused, planned and with its backends chosen once.

    Parameters
    ----------
    model : Module
        Any module tree of fastconv's layers (a user module the trace cannot
        see into runs as itself).  It is compiled in evaluation mode, whatever
        its mode, from the weights it has at the first call on each input
        shape: compile again after changing them.
    tune : bool
        Measure every convolution's candidates (:func:`fastconv.tune`) at
        compile time instead of trusting the cost model.

    Returns
    -------
    InferenceModel
        Call it as the model; ``explain(x)`` prints the plan layer by layer.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import LeNet5
    >>> fast = nn.inference(LeNet5())
    >>> fast(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 10)
    """
    return InferenceModel(model, tune=tune)
