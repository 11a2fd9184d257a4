"""Parameter initialisation, as ``torch.nn.init``, from one seedable generator.

Every random draw in :mod:`fastconv.nn` (initialisation, dropout) comes from a
module-level :class:`numpy.random.Generator`; :func:`manual_seed` resets it so
that a model and its training are reproducible.  The functions fill a
Tensor's array in place (keeping its dtype) and return the Tensor.
"""
import math

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed the generator behind initialisation and dropout.

    Examples
    --------
    >>> from fastconv import nn
    >>> nn.manual_seed(0)
    >>> a = nn.Linear(2, 2).weight.numpy().copy()
    >>> nn.manual_seed(0)
    >>> bool((nn.Linear(2, 2).weight.numpy() == a).all())
    True
    """
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def get_generator():
    """The module-level numpy Generator.

    Examples
    --------
    >>> from fastconv.nn.init import get_generator
    >>> 0 <= get_generator().random() < 1
    True
    """
    return _generator


def _array(tensor):
    from .tensor import Tensor
    a = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(a, np.ndarray):
        raise TypeError(f"init: expected a Tensor or ndarray, got {type(tensor).__name__}")
    return a


def _fill(tensor, values):
    a = _array(tensor)
    a[...] = values
    return tensor


# The generator draws float32 natively: drawing float64 and casting doubled the
# time and held a float64 copy of every weight (1.1 GB transient for VGG16).
_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


def _draw_into(a, method):
    """``method`` (Generator.random or standard_normal) drawn in ``a``'s dtype.

    Draws straight into ``a`` when it is C-contiguous and writeable, otherwise
    into a new array of its dtype; None for dtypes the generator cannot draw
    (the caller then draws float64 and casts).
    """
    if a.dtype not in _NATIVE:
        return None
    if a.flags.c_contiguous and a.flags.writeable and a.ndim > 0:
        method(dtype=a.dtype, out=a)
        return a
    return method(a.shape, dtype=a.dtype)


def calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn.init import calculate_fan_in_and_fan_out
    >>> calculate_fan_in_and_fan_out(np.zeros((6, 3, 5, 5)))
    (75, 150)
    """
    a = _array(tensor)
    if a.ndim < 2:
        raise ValueError(f"init: fan in and fan out need at least 2 axes, got shape {a.shape}")
    receptive = int(np.prod(a.shape[2:])) if a.ndim > 2 else 1
    return a.shape[1] * receptive, a.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for ``nonlinearity``.

    Examples
    --------
    >>> from fastconv.nn.init import calculate_gain
    >>> round(calculate_gain("relu"), 4)
    1.4142
    """
    if nonlinearity in ("linear", "conv2d", "sigmoid", "conv1d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> w = init.uniform_(np.zeros(3), -1, 1)
    >>> bool((abs(w) <= 1).all())
    True
    """
    arr = _array(tensor)
    draw = _draw_into(arr, _generator.random)
    if draw is None:
        return _fill(tensor, _generator.uniform(a, b, arr.shape))
    draw *= b - a
    draw += a
    return _fill(tensor, draw) if draw is not arr else tensor


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std**2).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.normal_(np.zeros(2), std=0.0)
    array([0., 0.])
    """
    arr = _array(tensor)
    draw = _draw_into(arr, _generator.standard_normal)
    if draw is None:
        return _fill(tensor, _generator.normal(mean, std, arr.shape))
    draw *= std
    draw += mean
    return _fill(tensor, draw) if draw is not arr else tensor


def constant_(tensor, val):
    """Fill with ``val``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.constant_(np.zeros(2), 3.0)
    array([3., 3.])
    """
    return _fill(tensor, val)


def zeros_(tensor):
    """Fill with 0.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.zeros_(np.ones(2))
    array([0., 0.])
    """
    return _fill(tensor, 0)


def ones_(tensor):
    """Fill with 1.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.ones_(np.zeros(2))
    array([1., 1.])
    """
    return _fill(tensor, 1)


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan).  PyTorch's layers use a=sqrt(5).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> w = init.kaiming_uniform_(np.zeros((4, 9)), a=np.sqrt(5))
    >>> bool((abs(w) <= 1 / 3).all())
    True
    """
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He normal: N(0, (gain / sqrt(fan))**2).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.kaiming_normal_(np.zeros((4, 9)), mode="fan_out", nonlinearity="relu").shape
    (4, 9)
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.xavier_uniform_(np.zeros((3, 3))).shape
    (3, 3)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Glorot normal: N(0, gain**2 * 2 / (fan_in + fan_out)).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.nn import init
    >>> init.xavier_normal_(np.zeros((3, 3))).shape
    (3, 3)
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
