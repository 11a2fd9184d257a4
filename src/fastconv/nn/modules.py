"""Layers, as ``torch.nn``: a :class:`Module` base class and the usual layers.

Assigning a :class:`Parameter`, a :class:`Module` or (through
``register_buffer``) a buffer to a module attribute registers it, so
``parameters()``, ``state_dict()`` and friends find it by PyTorch's dotted
names (``features.0.weight``, ``bn1.running_mean``).  Parameters are float32
and initialised as PyTorch's defaults unless told otherwise.
"""
import math
from collections import OrderedDict, namedtuple

import numpy as np

from .._validation import pair
from . import functional as F
from . import init
from .tensor import Tensor, is_grad_enabled, observer

__all__ = [
    "Parameter", "Module", "Sequential", "ModuleList", "Conv2d", "Linear", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "ReLU",
    "Sigmoid", "Tanh", "Flatten", "Identity", "LocalResponseNorm", "LogSoftmax", "Softmax",
    "CrossEntropyLoss", "MSELoss",
]


class Parameter(Tensor):
    """A Tensor that a Module registers as a trainable parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> p = nn.Parameter(np.zeros(3, np.float32))
    >>> p.requires_grad
    True
    """

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _positive_int(value, name, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}: {name} must be a positive int, got {value!r}")
    return int(value)


def _float_dtype(dtype, what):
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{what}: dtype must be float32 or float64, got {dt}")
    return dt


class Module:
    """Base class of every layer and model.

    Subclasses set their parameters and sub-modules as attributes in
    ``__init__`` (after ``super().__init__()``) and define ``forward``;
    calling the module calls ``forward``.

    Examples
    --------
    >>> from fastconv import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> [name for name, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration -------------------------------------------------------
    def _check_init(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning parameters or sub-modules")

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._check_init()
            self._remove(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_init()
            self._remove(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                f"(a Parameter or None is expected)")
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self._buffers[name] = None if value is None else (
                value if isinstance(value, Tensor) else Tensor(np.asarray(value)))
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                f"(a Module or None is expected)")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _remove(self, name):
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # Only reached when normal lookup fails: look in the registries.
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg in d and name in d[reg]:
                return d[reg][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for reg in (self._parameters, self._buffers, self._modules):
            if name in reg:
                del reg[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: param must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self._check_init()
        self._remove(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register a non-trainable state array (a running mean, a counter).

        Buffers are saved in ``state_dict`` (unless ``persistent=False``) and
        cast by ``double()``/``float()`` when floating.

        Examples
        --------
        >>> import numpy as np
        >>> from fastconv import nn
        >>> m = nn.Module()
        >>> m.register_buffer("count", np.zeros(()))
        >>> list(m.state_dict())
        ['count']
        """
        self._check_init()
        self._remove(name)
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(np.asarray(tensor))
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Register ``module`` (a Module or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: module must be a Module or None, got "
                            f"{type(module).__name__}")
        self._check_init()
        self._remove(name)
        self._modules[str(name)] = module

    # --- traversal ------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, once each."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items()
                        if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        """This module and every descendant."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """(name, module) for the direct sub-modules."""
        for k, c in self._modules.items():
            if c is not None:
                yield k, c

    def children(self):
        """The direct sub-modules."""
        for _, c in self.named_children():
            yield c

    def _named(self, registry, recurse=True):
        seen = set()
        mods = self.named_modules() if recurse else [("", self)]
        for prefix, m in mods:
            for k, v in getattr(m, registry).items():
                if v is None or id(v) in seen:
                    continue
                seen.add(id(v))
                yield (f"{prefix}.{k}" if prefix else k), v

    def named_parameters(self, recurse=True):
        """(dotted name, Parameter) pairs, each parameter once, in registration order.

        Examples
        --------
        >>> from fastconv import nn
        >>> [n for n, _ in nn.Sequential(nn.Linear(2, 2)).named_parameters()]
        ['0.weight', '0.bias']
        """
        return self._named("_parameters", recurse)

    def parameters(self, recurse=True):
        """The Parameters of this module and its descendants.

        Examples
        --------
        >>> from fastconv import nn
        >>> sum(p.numel() for p in nn.Linear(3, 2).parameters())
        8
        """
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse=True):
        """(dotted name, buffer Tensor) pairs."""
        return self._named("_buffers", recurse)

    def buffers(self, recurse=True):
        """The buffer Tensors of this module and its descendants."""
        for _, b in self.named_buffers(recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant, then on this module; return self.

        Examples
        --------
        >>> from fastconv import nn
        >>> def zero_bias(m):
        ...     if isinstance(m, nn.Linear):
        ...         nn.init.zeros_(m.bias)
        >>> float(nn.Sequential(nn.Linear(2, 2)).apply(zero_bias)[0].bias.numpy().sum())
        0.0
        """
        for c in self.children():
            c.apply(fn)
        fn(self)
        return self

    # --- modes and state ---------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (dropout on, batch-norm batch statistics) recursively."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Set evaluation mode recursively; same as ``train(False)``.

        Examples
        --------
        >>> from fastconv import nn
        >>> nn.Sequential(nn.Dropout()).eval()[0].training
        False
        """
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of every parameter."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter; return self.

        Examples
        --------
        >>> from fastconv import nn
        >>> any(p.requires_grad for p in nn.Linear(2, 2).requires_grad_(False).parameters())
        False
        """
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def to(self, dtype):
        """Cast floating parameters and buffers (and gradients) to ``dtype`` in place.

        ``"cpu"`` is accepted and changes nothing, so PyTorch-style
        ``model.to("cpu")`` runs unchanged.

        Examples
        --------
        >>> import numpy as np
        >>> from fastconv import nn
        >>> nn.Linear(2, 2).to(np.float64).bias.dtype
        dtype('float64')
        """
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        dt = _float_dtype(dtype, "to")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f":
                t.data = t.data.astype(dt)
                if t.grad is not None:
                    t.grad = t.grad.astype(dt)
        return self

    def double(self):
        """Cast floating parameters and buffers to float64; return self.

        Examples
        --------
        >>> from fastconv import nn
        >>> nn.Linear(2, 2).double().weight.dtype
        dtype('float64')
        """
        return self.to(np.float64)

    def float(self):
        """Cast floating parameters and buffers to float32; return self."""
        return self.to(np.float32)

    def state_dict(self):
        """Copies of every parameter and persistent buffer, by PyTorch's key names.

        Examples
        --------
        >>> from fastconv import nn
        >>> list(nn.BatchNorm2d(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        out = OrderedDict()
        for prefix, m in self.named_modules():
            pre = f"{prefix}." if prefix else ""
            for k, p in m._parameters.items():
                if p is not None:
                    out[pre + k] = p.data.copy()
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    out[pre + k] = b.data.copy()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters and buffers of the same names.

        Values may be numpy arrays, Tensors or anything ``np.asarray``
        accepts (CPU torch tensors); they are cast to each target's dtype.

        Parameters
        ----------
        state_dict : mapping of str to array
        strict : bool
            Raise ``ValueError`` on missing or unexpected keys.

        Returns
        -------
        IncompatibleKeys
            ``(missing_keys, unexpected_keys)``.

        Examples
        --------
        >>> from fastconv import nn
        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        """
        if not hasattr(state_dict, "items"):
            raise TypeError(f"load_state_dict: state_dict must be a mapping, got "
                            f"{type(state_dict).__name__}")
        targets = OrderedDict()
        for prefix, m in self.named_modules():
            pre = f"{prefix}." if prefix else ""
            for k, p in m._parameters.items():
                if p is not None:
                    targets[pre + k] = p
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    targets[pre + k] = b
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: state_dict does not match the module: "
                             f"missing keys {missing}, unexpected keys {unexpected}")
        values = {}
        for k, t in targets.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if isinstance(v, Tensor):
                v = v.data
            elif hasattr(v, "detach") and hasattr(v, "cpu"):
                # A torch tensor, possibly a parameter that requires grad.
                v = v.detach().cpu().numpy()
            v = np.asarray(v)
            if v.shape != t.shape:
                raise ValueError(f"load_state_dict: {k!r} has shape {v.shape}, the module "
                                 f"expects {t.shape}")
            values[k] = v
        # Checked everything before writing anything: a failed load changes nothing.
        for k, v in values.items():
            t = targets[k]
            t.data = np.array(v, dtype=t.dtype)
        return IncompatibleKeys(missing, unexpected)

    # --- calling ----------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        obs = observer()
        if obs is not None:
            return obs.call(self, args, kwargs)
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({k}): " + repr(c).replace("\n", "\n  ") for k, c in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


# =============================================================================
# Containers
# =============================================================================

class Sequential(Module):
    """Modules applied in order; indexable, sliceable and assignable like a list.

    Examples
    --------
    >>> from fastconv import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> len(net), type(net[-1]).__name__, len(net[:2])
    (3, 'Linear', 2)
    >>> net[-1] = nn.Linear(8, 5)
    >>> net[-1].out_features
    5
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for k, m in modules[0].items():
                self.add_module(k, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} must be a Module, got "
                                    f"{type(m).__name__}")
                self.add_module(str(i), m)

    def _key(self, idx):
        keys = list(self._modules)
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: index must be an int or a slice, got {idx!r}")
        if not -len(keys) <= idx < len(keys):
            raise IndexError(f"{type(self).__name__}: index {idx} out of range for length {len(keys)}")
        return keys[idx]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def __setitem__(self, idx, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: item must be a Module, got "
                            f"{type(module).__name__}")
        self._modules[self._key(idx)] = module

    def __delitem__(self, idx):
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key(idx)]
        for k in keys:
            del self._modules[k]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end; return self."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        mods = list(self._modules.values())
        # While gradients are recorded, a ReLU followed by a max pooling runs
        # as the pooling followed by the ReLU: max and ReLU commute exactly,
        # values and gradients (the same element wins every window, and a
        # window whose maximum is <= 0 passes no gradient either way), and the
        # ReLU and its backward then touch a quarter of the elements (LeNet's
        # and AlexNet's blocks).  Inference keeps the order: there the ReLU is
        # free in the convolution's epilogue.
        reorder = is_grad_enabled()
        i = 0
        while i < len(mods):
            m = mods[i]
            if reorder and type(m) is ReLU and i + 1 < len(mods) and type(mods[i + 1]) is MaxPool2d:
                x = m(mods[i + 1](x))
                i += 2
            else:
                x = m(x)
                i += 1
        return x


class ModuleList(Module):
    """A list of modules, registered so their parameters are found.

    Examples
    --------
    >>> from fastconv import nn
    >>> blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    >>> len(list(blocks.parameters()))
    6
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx):
        n = len(self)
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"ModuleList: index must be an int or a slice, got {idx!r}")
        if not -n <= idx < n:
            raise IndexError(f"ModuleList: index {idx} out of range for length {n}")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: item must be a Module, got {type(module).__name__}")
        self._modules[self._index(idx)] = module

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end; return self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append each of ``modules``; return self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        """Insert ``module`` before ``index``."""
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        self.extend(mods)


# =============================================================================
# Layers with parameters
# =============================================================================

class Conv2d(Module):
    """2-D convolution layer, as ``torch.nn.Conv2d`` (weight (out, in/groups, kh, kw)).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> conv = nn.Conv2d(1, 6, 5, padding=2)
    >>> conv(nn.Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
    (2, 6, 28, 28)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=np.float32, *, backend="auto",
                 engine="auto"):
        super().__init__()
        what = "Conv2d"
        # fastconv's choice of algorithm; attributes, so a trained model can be switched
        self.backend, self.engine = backend, engine
        self.in_channels = _positive_int(in_channels, "in_channels", what)
        self.out_channels = _positive_int(out_channels, "out_channels", what)
        self.groups = _positive_int(groups, "groups", what)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels ({in_channels}) "
                             f"and out_channels ({out_channels})")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', got {padding_mode!r}")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.dilation = pair(dilation, "dilation", 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding must be 'same', 'valid', an int or a pair, "
                                 f"got {padding!r}")
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", 0)
        dt = _float_dtype(dtype, what)
        self.weight = Parameter(np.empty((out_channels, in_channels // groups) + self.kernel_size, dt))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: Kaiming uniform a=sqrt(5), bias U(+-1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, backend=self.backend, engine=self.engine)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}"
                + (f", groups={self.groups}" if self.groups != 1 else "")
                + (", bias=False" if self.bias is None else ""))


class Linear(Module):
    """Fully connected layer ``y = x @ weight.T + bias``, as ``torch.nn.Linear``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.Linear(784, 10)(nn.Tensor(np.zeros((5, 784), np.float32))).shape
    (5, 10)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        dt = _float_dtype(dtype, "Linear")
        self.weight = Parameter(np.empty((out_features, in_features), dt))
        if bias:
            self.bias = Parameter(np.empty(out_features, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's default: Kaiming uniform a=sqrt(5), bias U(+-1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class _BatchNorm(Module):
    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        what = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", what)
        if eps <= 0:
            raise ValueError(f"{what}: eps must be > 0, got {eps}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{what}: momentum must be in [0, 1] or None, got {momentum}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = _float_dtype(dtype, what)
        if affine:
            self.weight = Parameter(np.ones(num_features, dt))
            self.bias = Parameter(np.zeros(num_features, dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dt))
            self.register_buffer("running_var", np.ones(num_features, dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """Running mean 0, variance 1, count 0."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x, relu=False):
        """Normalise ``x``; ``relu=True`` returns ``relu(bn(x))`` as one fused op
        (:func:`functional.batch_norm_relu`), forward and backward."""
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected {' or '.join(map(str, self._ndims))}-D "
                             f"input, got shape {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                # PyTorch's cumulative moving average.
                momentum = 1.0 / float(self.num_batches_tracked.data)
        # Without running statistics (None buffers) evaluation uses the batch's too.
        use_batch = self.training or not self.track_running_stats
        op = F.batch_norm_relu if relu else F.batch_norm
        return op(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, momentum,
                  self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, as ``torch.nn.BatchNorm2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> bn = nn.BatchNorm2d(3)
    >>> bn(nn.Tensor(np.random.rand(4, 3, 5, 5).astype(np.float32))).shape
    (4, 3, 5, 5)
    >>> int(bn.num_batches_tracked.item())
    1
    """
    _ndims = (4,)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, as ``torch.nn.BatchNorm1d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.BatchNorm1d(3)(nn.Tensor(np.random.rand(4, 3).astype(np.float32))).shape
    (4, 3)
    """
    _ndims = (2, 3)


# =============================================================================
# Layers without parameters
# =============================================================================

class MaxPool2d(Module):
    """Max pooling layer, as ``torch.nn.MaxPool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.MaxPool2d(3, stride=2)(nn.Tensor(np.zeros((1, 2, 55, 55)))).shape
    (1, 2, 27, 27)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling layer, as ``torch.nn.AvgPool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.AvgPool2d(2)(nn.Tensor(np.zeros((1, 6, 28, 28)))).shape
    (1, 6, 14, 14)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool2d``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.AdaptiveAvgPool2d((6, 6))(nn.Tensor(np.zeros((1, 256, 13, 13)))).shape
    (1, 256, 6, 6)
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Dropout(Module):
    """Dropout in training mode, identity in evaluation mode.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> d = nn.Dropout(0.5).eval()
    >>> d(nn.Tensor(np.ones(3))).numpy()
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a float in [0, 1], got {p!r}")
        self.p = float(p)

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0); ``inplace`` is accepted and ignored.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.ReLU(inplace=True)(nn.Tensor([-1.0, 1.0])).numpy()
    array([0., 1.], dtype=float32)
    """

    def __init__(self, inplace=False):
        super().__init__()

    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    """Logistic function.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.Sigmoid()(nn.Tensor([0.0])).item()
    0.5
    """

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.Tanh()(nn.Tensor([0.0])).item()
    0.0
    """

    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """Merge axes ``start_dim`` .. ``end_dim`` (default: all but the batch axis).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.Flatten()(nn.Tensor(np.zeros((2, 16, 5, 5)))).shape
    (2, 400)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim, self.end_dim)


class Identity(Module):
    """Returns its input; any constructor arguments are ignored.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.Identity(54, unused="x")(nn.Tensor([1.0])).item()
    1.0
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class LocalResponseNorm(Module):
    """Local response normalisation across channels, as ``torch.nn.LocalResponseNorm``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.LocalResponseNorm(5, k=2.0)(nn.Tensor(np.ones((1, 8, 3, 3)))).shape
    (1, 8, 3, 3)
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = _positive_int(size, "size", "LocalResponseNorm")
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.LogSoftmax(dim=1)(nn.Tensor([[0.0, 0.0]])).shape
    (1, 2)
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.log_softmax(x, self.dim)


class Softmax(Module):
    """softmax(x) along ``dim``.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.Softmax(dim=1)(nn.Tensor([[0.0, 0.0]])).numpy()
    array([[0.5, 0.5]], dtype=float32)
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy against integer labels; see :func:`functional.cross_entropy`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> loss = nn.CrossEntropyLoss()(nn.Tensor(np.zeros((2, 2))), np.array([0, 1]))
    >>> round(loss.item(), 4)
    0.6931
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits, labels):
        return F.cross_entropy(logits, labels, self.reduction)


class MSELoss(Module):
    """Mean squared error.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.MSELoss()(nn.Tensor([2.0]), nn.Tensor([0.0])).item()
    4.0
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, x, target):
        return F.mse_loss(x, target, self.reduction)
