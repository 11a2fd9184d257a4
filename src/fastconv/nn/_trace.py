"""Recording a network's ops once, as a flat graph: what :mod:`fastconv.nn.inference` compiles.

The tracer runs the model once on a real input with itself installed as the
:func:`~fastconv.nn.tensor.observer`: every ``Function.apply`` becomes a
:class:`Node` (the op's class, its input values, its options) and every module
call a frame on a stack, so each node knows the dotted name of the layer that
issued it.  It is ``torch.jit.trace``'s idea, made safe for what a trace
cannot see:

* a module whose ``forward`` reads the values of a traced tensor (``.data``,
  ``.numpy()``, ``.item()``, printing) may branch on them or compute with numpy
  behind the graph's back;
* a module that feeds an op a tensor from outside the graph (neither the
  input, an op's output, the model's parameters and buffers, nor a scalar
  literal) may make it afresh on every call (noise, a counter).

Such a module call is recorded as one *opaque* node that calls the module
itself at run time, so it runs as the user wrote it; its inner ops are
dropped.  When the model's own forward does either, the whole model is opaque.
"""
import numpy as np

from .tensor import Tensor, no_grad, observer, observing


class Const:
    """An op input that is the same array on every call (a weight, a running mean, a literal)."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


class Value:
    """One array flowing through the graph: its shape, dtype and producing node."""
    __slots__ = ("index", "shape", "dtype", "producer")

    def __init__(self, index, shape, dtype, producer):
        self.index, self.shape, self.dtype, self.producer = index, tuple(shape), np.dtype(dtype), producer


class Node:
    """One recorded op.

    ``fn`` is the :class:`~fastconv.nn.Function` subclass, or None for an
    opaque module call (``module`` then holds the module).  ``inputs`` are
    value indices, :class:`Const` or None, ``kwargs`` the op's options,
    ``outputs`` value indices, ``name`` the dotted path of the issuing layer.
    """
    __slots__ = ("fn", "inputs", "kwargs", "outputs", "name", "module", "reason")

    def __init__(self, fn, inputs, kwargs, outputs, name, module=None, reason=None):
        self.fn, self.inputs, self.kwargs, self.outputs = fn, inputs, kwargs, outputs
        self.name, self.module, self.reason = name, module, reason

    @property
    def op(self):
        return "module" if self.fn is None else self.fn.__name__


class Graph:
    """What :func:`trace` returns: ``nodes`` in execution order, ``values``
    (value 0 is the input), ``outputs`` (value indices) and ``structure``
    ('tensor' or the tuple type of the model's result)."""

    def __init__(self, nodes, values, outputs, structure):
        self.nodes, self.values, self.outputs, self.structure = nodes, values, outputs, structure


class _Traced(Tensor):
    """A tensor under trace: reading its values outside an op is reported."""

    @property
    def data(self):
        tr = observer()
        if isinstance(tr, _Tracer) and not tr.in_op:
            tr.opaque("reads tensor values outside fastconv's ops")
        return self.__dict__["data"]

    @data.setter
    def data(self, value):
        self.__dict__["data"] = value

    # Shapes are fixed by the trace: reading them is safe.
    shape = property(lambda self: self.__dict__["data"].shape)
    dtype = property(lambda self: self.__dict__["data"].dtype)
    ndim = property(lambda self: self.__dict__["data"].ndim)

    def __len__(self):
        return len(self.__dict__["data"])


class _Frame:
    __slots__ = ("module", "name", "start", "reason")

    def __init__(self, module, name, start):
        self.module, self.name, self.start, self.reason = module, name, start, None


class _Tracer:
    def __init__(self, model):
        self.names = {id(m): n for n, m in model.named_modules()}
        self.constants = {id(t) for t in list(model.parameters()) + list(model.buffers())}
        self.nodes, self.values = [], []
        self.ref = {}           # id(tensor) -> value index
        self.keep = []          # the traced tensors, alive so that their ids stay unique
        self.stack = []
        self.in_op = False
        self.root_reason = None

    # --- bookkeeping ----------------------------------------------------------
    def new_value(self, t, producer):
        v = Value(len(self.values), t.shape, t.dtype, producer)
        self.values.append(v)
        t.__class__ = _Traced
        self.ref[id(t)] = v.index
        self.keep.append(t)
        return v.index

    def opaque(self, reason):
        if self.stack:
            if self.stack[-1].reason is None:
                self.stack[-1].reason = reason
        elif self.root_reason is None:
            self.root_reason = reason

    def input_ref(self, t):
        """The graph reference of an op input ``t``."""
        if t is None:
            return None
        if not isinstance(t, Tensor):
            return Const(t)
        i = self.ref.get(id(t))
        if i is not None:
            return i
        data = t.__dict__["data"]
        if id(t) not in self.constants and np.ndim(data) > 0:
            self.opaque("feeds an op a tensor computed outside the graph")
        return Const(data)

    # --- the observer protocol ---------------------------------------------------
    def apply(self, cls, inputs, kwargs):
        refs = [self.input_ref(t) for t in inputs]
        if any(isinstance(v, Tensor) for v in kwargs.values()):
            self.opaque("passes a tensor as an op option")
        self.in_op = True
        try:
            with no_grad():
                out = cls._apply(inputs, kwargs)
        finally:
            self.in_op = False
        node = Node(cls, refs, dict(kwargs), [], self.stack[-1].name if self.stack else "")
        node.outputs.append(self.new_value(out, len(self.nodes)))
        self.nodes.append(node)
        return out

    def backward(self, ctx, grad):
        return ctx.backward(grad)

    def call(self, module, args, kwargs):
        frame = _Frame(module, self.names.get(id(module), type(module).__name__), len(self.nodes))
        self.stack.append(frame)
        try:
            out = module.forward(*args, **kwargs)
        finally:
            self.stack.pop()
        if frame.reason is not None:
            self.collapse(frame, args, kwargs, out)
        return out

    def collapse(self, frame, args, kwargs, out):
        """Replace the frame's nodes by one opaque call of its module."""
        outs = [out] if isinstance(out, Tensor) else list(out) if isinstance(out, (tuple, list)) else None
        flat_args = all(isinstance(a, Tensor) or not isinstance(a, (tuple, list, dict)) for a in args)
        if outs is None or not all(isinstance(o, Tensor) for o in outs) or not flat_args or \
                any(isinstance(v, Tensor) for v in kwargs.values()):
            # Cannot stand alone as a node: its caller becomes opaque instead.
            self.opaque(f"{frame.name or 'the model'} ({frame.reason}) returns or takes "
                        f"something other than tensors")
            return
        dead = {i for n in self.nodes[frame.start:] for i in n.outputs}
        del self.nodes[frame.start:]
        # Values made inside are not in the graph any more: a later use of one
        # is a tensor from outside the graph.
        self.ref = {k: v for k, v in self.ref.items() if v not in dead}
        refs = [self.input_ref(a) if isinstance(a, Tensor) else Const(a) for a in args]
        node = Node(None, refs, dict(kwargs), [], frame.name, module=frame.module, reason=frame.reason)
        for o in outs:
            node.outputs.append(self.new_value(o, len(self.nodes)))
        self.nodes.append(node)


def trace(model, x):
    """Run ``model`` on ``x`` once and record its ops.

    Parameters
    ----------
    model : Module
        Run as it is (the caller sets eval mode).
    x : ndarray
        The input.

    Returns
    -------
    Graph
        Its ``nodes`` replay the model; an opaque node stands for a module
        call the trace could not see into.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.nn._trace import trace
    >>> g = trace(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), np.zeros((1, 1, 5, 5), np.float32))
    >>> [n.op for n in g.nodes]
    ['Conv2d', 'ReLU']
    """
    tr = _Tracer(model)
    xt = Tensor(x)
    tr.new_value(xt, None)
    try:
        with observing(tr), no_grad():
            out = model(xt)
    finally:
        for t in tr.keep:
            t.__class__ = Tensor
    outs = [out] if isinstance(out, Tensor) else list(out) if isinstance(out, (tuple, list)) else None
    reason = tr.root_reason
    if reason is None and (outs is None or not all(isinstance(o, Tensor) and id(o) in tr.ref
                                                   for o in outs)):
        reason = "returns something other than the tensors its ops computed"
    if reason is not None:
        node = Node(None, [0], {}, [1], "", module=model, reason=reason)
        out_value = Value(1, np.shape(outs[0].data) if outs else (), x.dtype, 0)
        return Graph([node], tr.values[:1] + [out_value], [1], "opaque")
    structure = "tensor" if isinstance(out, Tensor) else type(out)
    return Graph(tr.nodes, tr.values, [tr.ref[id(o)] for o in outs], structure)
