"""The autograd engine: ``Tensor``, ``Function``, ``no_grad`` and ``backward``.

A :class:`Tensor` wraps a numpy array.  Every differentiable operation is a
:class:`Function` subclass (in :mod:`fastconv.nn.functional`) whose
``forward`` and ``backward`` work on raw arrays, side by side; ``apply`` runs
``forward`` and, when a gradient is wanted, links the output to its inputs.
``Tensor.backward`` orders that graph topologically and runs the backwards in
reverse, summing the gradients that meet at a tensor (micrograd's ``+=``).
"""
import threading

import numpy as np

_state = threading.local()


def observer():
    """The object watching every op and module call on this thread, or None.

    :mod:`fastconv.nn.inference` (tracing a network) and ``fastconv profile``
    (timing one) set it with :func:`observing`; it sees ``Function.apply``
    through ``apply(cls, inputs, kwargs)``, each backward through
    ``backward(ctx, grad)`` and each module call through ``call(module, args,
    kwargs)``, and must perform them.  Normally None: one attribute lookup per op.
    """
    return getattr(_state, "observer", None)


class observing:
    """Context manager installing ``obs`` as this thread's :func:`observer`.

    Examples
    --------
    >>> from fastconv.nn.tensor import observing, observer
    >>> with observing("watcher"):
    ...     observer()
    'watcher'
    >>> observer() is None
    True
    """

    def __init__(self, obs):
        self.obs = obs

    def __enter__(self):
        self._saved = observer()
        _state.observer = self.obs
        return self.obs

    def __exit__(self, *exc):
        _state.observer = self._saved
        return False


def is_grad_enabled():
    """True unless inside :class:`no_grad` (per thread, as in PyTorch).

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.is_grad_enabled()
    True
    >>> with nn.no_grad():
    ...     nn.is_grad_enabled()
    False
    """
    return getattr(_state, "grad_enabled", True)


class no_grad:
    """Context manager (or decorator) that stops recording the graph.

    Operations inside it produce tensors with ``requires_grad=False`` and keep
    nothing alive for a backward pass: use it for evaluation.

    Examples
    --------
    >>> from fastconv import nn
    >>> w = nn.Tensor([1.0, 2.0], requires_grad=True)
    >>> with nn.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    def __enter__(self):
        self._saved = is_grad_enabled()
        _state.grad_enabled = False
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self._saved
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with no_grad():
                return func(*args, **kwargs)
        return wrapper


def _as_array(data, dtype=None):
    """numpy array of ``data``; Python floats and lists become float32 (PyTorch's default)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        a = np.asarray(data)
    else:
        a = np.asarray(data)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    return a


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``, undoing numpy broadcasting.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn.tensor import unbroadcast
    >>> unbroadcast(np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class Function:
    """One differentiable operation: ``forward`` and ``backward`` on numpy arrays.

    Subclasses implement ``forward(self, *arrays, **options)`` returning the
    output array and ``backward(self, grad_output)`` returning one gradient
    (or None) per positional input; they keep what backward needs on ``self``.
    ``self.needs_input_grad[i]`` says whether input ``i`` wants a gradient, so
    backward can skip work.  Call an op with ``MyFunction.apply(*inputs,
    **options)``; positional inputs may be Tensors, arrays or None.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import Tensor, Function
    >>> class Square(Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, g):
    ...         return (2 * self.x * g,)
    >>> t = Tensor(np.array([3.0]), requires_grad=True)
    >>> Square.apply(t).backward(np.ones(1))
    >>> t.grad
    array([6.])
    """

    needs_input_grad = ()

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **kwargs):
        obs = getattr(_state, "observer", None)
        if obs is not None:
            return obs.apply(cls, inputs, kwargs)
        return cls._apply(inputs, kwargs)

    @classmethod
    def _apply(cls, inputs, kwargs):
        ctx = cls()
        arrays = [t.data if isinstance(t, Tensor) else t for t in inputs]
        track = is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad
                                          for t in inputs)
        if track:
            ctx.needs_input_grad = tuple(isinstance(t, Tensor) and t.requires_grad
                                         for t in inputs)
        out = Tensor(ctx.forward(*arrays, **kwargs), requires_grad=track)
        if track:
            ctx.parents = inputs
            out._ctx = ctx
        return out


def backward(tensor, grad=None, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) * grad into every leaf's ``.grad``.

    Parameters
    ----------
    tensor : Tensor
        The output to differentiate.
    grad : array_like, optional
        The gradient flowing into ``tensor``; default 1 for a one-element
        tensor (a loss), required otherwise.
    retain_graph : bool
        Keep the graph so that backward can run through it again; by default
        it is released as it is consumed, freeing the saved activations.

    Examples
    --------
    >>> from fastconv import nn
    >>> x = nn.Tensor([1.0, 2.0], requires_grad=True)
    >>> nn.backward((x * x).sum())
    >>> x.grad
    array([2., 4.], dtype=float32)
    """
    if not tensor.requires_grad:
        raise ValueError("backward: tensor does not require grad (no graph leads to it)")
    if grad is None:
        if tensor.data.size != 1:
            raise ValueError(f"backward: grad must be given for a non-scalar tensor of shape "
                             f"{tensor.shape}")
        grad = np.ones_like(tensor.data)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=tensor.dtype)
        if grad.shape != tensor.shape:
            raise ValueError(f"backward: grad must have the tensor's shape {tensor.shape}, "
                             f"got {grad.shape}")

    # Iterative topological sort: deep networks would overflow recursion.
    order, seen, stack = [], set(), [(tensor, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None and node._ctx.parents is not None:
            for p in node._ctx.parents:
                if isinstance(p, Tensor) and p.requires_grad and id(p) not in seen:
                    stack.append((p, False))

    grads = {id(tensor): grad}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx is None:
            # A leaf: accumulate, as PyTorch does across backward calls.
            buf = getattr(node, "_grad_buffer", None)
            if node.grad is None:
                if buf is not None and buf.shape == g.shape:
                    # The optimiser's kept gradient array: no fresh one per step.
                    np.copyto(buf, g, casting="unsafe")
                    node.grad = buf
                else:
                    # A private copy: g may be a view shared with other gradients.
                    node.grad = np.array(g, dtype=node.dtype)
            elif node.grad is buf:
                buf += g
            else:
                node.grad = node.grad + g
            continue
        if ctx.parents is None:
            raise RuntimeError("backward: trying to backward through the graph a second time; "
                               "pass retain_graph=True the first time")
        obs = getattr(_state, "observer", None)
        in_grads = ctx.backward(g) if obs is None else obs.backward(ctx, g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for p, pg in zip(ctx.parents, in_grads):
            if pg is None or not isinstance(p, Tensor) or not p.requires_grad:
                continue
            if pg.shape != p.shape:
                pg = unbroadcast(pg, p.shape)
            if pg.dtype != p.dtype:
                pg = pg.astype(p.dtype)
            prev = grads.get(id(p))
            grads[id(p)] = pg if prev is None else prev + pg
        if not retain_graph:
            # Free the saved activations; the emptied ctx makes a second pass fail loudly.
            ctx.__dict__.clear()
            ctx.parents = None


class Tensor:
    """A numpy array that records the operations applied to it.

    Parameters
    ----------
    data : array_like
        The values.  numpy arrays keep their dtype; Python floats and lists of
        them become float32, as in PyTorch.
    requires_grad : bool
        Whether ``backward`` should compute a gradient for this tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import Tensor
    >>> w = Tensor(np.array([[1.0, 2.0]]), requires_grad=True)
    >>> loss = (w * w).sum()
    >>> loss.backward()
    >>> w.grad
    array([[2., 4.]])
    """

    # numpy defers to Tensor's reflected operators (array + tensor -> Tensor).
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False):
        self.data = _as_array(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        if self.requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require grad, got dtype "
                            f"{self.data.dtype}")

    # --- array-like attributes --------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, prefix='Tensor(')}{grad})"

    def numel(self):
        """Number of elements."""
        return self.data.size

    def numpy(self):
        """The underlying array (shared, not copied).

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([1.0]).numpy()
        array([1.], dtype=float32)
        """
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number.

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([2.5]).item()
        2.5
        """
        if self.data.size != 1:
            raise ValueError(f"item: tensor must have one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def detach(self):
        """A tensor sharing the data, cut from the graph.

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([1.0], requires_grad=True).detach().requires_grad
        False
        """
        return Tensor(self.data)

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = bool(flag)
        return self

    def backward(self, grad=None, retain_graph=False):
        """Compute gradients of this tensor w.r.t. the leaves; see :func:`backward`.

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> x = Tensor([3.0], requires_grad=True)
        >>> (x * x).backward()
        >>> x.grad
        array([6.], dtype=float32)
        """
        backward(self, grad, retain_graph=retain_graph)

    # --- operators ----------------------------------------------------------
    def _other(self, other):
        # Scalars and arrays take this tensor's dtype, so float32 stays float32.
        if isinstance(other, Tensor):
            return other
        a = np.asarray(other)
        if a.dtype.kind in "biuf" and self.dtype.kind == "f":
            a = a.astype(self.dtype, copy=False)
        return Tensor(a)

    def __add__(self, other):
        from . import functional as F
        return F.Add.apply(self, self._other(other))

    def __radd__(self, other):
        from . import functional as F
        return F.Add.apply(self._other(other), self)

    def __sub__(self, other):
        from . import functional as F
        return F.Sub.apply(self, self._other(other))

    def __rsub__(self, other):
        from . import functional as F
        return F.Sub.apply(self._other(other), self)

    def __mul__(self, other):
        from . import functional as F
        return F.Mul.apply(self, self._other(other))

    def __rmul__(self, other):
        from . import functional as F
        return F.Mul.apply(self._other(other), self)

    def __truediv__(self, other):
        from . import functional as F
        return F.Div.apply(self, self._other(other))

    def __rtruediv__(self, other):
        from . import functional as F
        return F.Div.apply(self._other(other), self)

    def __matmul__(self, other):
        from . import functional as F
        return F.MatMul.apply(self, self._other(other))

    def __rmatmul__(self, other):
        from . import functional as F
        return F.MatMul.apply(self._other(other), self)

    def __neg__(self):
        from . import functional as F
        return F.Neg.apply(self)

    def __pow__(self, exponent):
        from . import functional as F
        return F.Pow.apply(self, exponent=exponent)

    def __getitem__(self, idx):
        from . import functional as F
        if isinstance(idx, Tensor):
            idx = idx.data
        return F.GetItem.apply(self, idx=idx)

    # --- methods --------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (all by default).

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([[1.0, 2.0], [3.0, 4.0]]).sum(axis=0)
        Tensor([4. 6.])
        """
        from . import functional as F
        return F.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (all by default).

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([1.0, 2.0, 6.0]).mean().item()
        3.0
        """
        from . import functional as F
        return F.Mean.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        """The same values in a new shape (one -1 allowed).

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([1.0, 2.0, 3.0, 4.0]).reshape(2, -1).shape
        (2, 2)
        """
        from . import functional as F
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return F.Reshape.apply(self, shape=shape)

    def view(self, *shape):
        """Alias of :meth:`reshape` (PyTorch's name)."""
        return self.reshape(*shape)

    def transpose(self, *axes):
        """Permute the axes (reverse them when none are given), as numpy.

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([[1.0, 2.0]]).transpose().shape
        (2, 1)
        """
        from . import functional as F
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return F.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return self.transpose()

    def relu(self):
        """max(x, 0).

        Examples
        --------
        >>> from fastconv.nn import Tensor
        >>> Tensor([-1.0, 2.0]).relu()
        Tensor([0. 2.])
        """
        from . import functional as F
        return F.relu(self)

    def sigmoid(self):
        """1 / (1 + exp(-x))."""
        from . import functional as F
        return F.sigmoid(self)

    def tanh(self):
        """Hyperbolic tangent."""
        from . import functional as F
        return F.tanh(self)

    def exp(self):
        """Elementwise e**x."""
        from . import functional as F
        return F.Exp.apply(self)

    def log(self):
        """Elementwise natural logarithm."""
        from . import functional as F
        return F.Log.apply(self)

    def flatten(self, start_dim=0):
        """Merge the axes from ``start_dim`` on into one."""
        from . import functional as F
        return F.flatten(self, start_dim)
