"""Argument checking for the public convolution functions.

Every public entry point validates here and nowhere else; backends and
kernels receive checked, contiguous, native-endian arrays and a
:class:`ConvParams` and never validate again.
"""
import math
import operator
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class ConvParams:
    """The full geometry of one NCHW convolution, padding resolved.

    ``pad`` is (top, bottom, left, right); asymmetric when TensorFlow-style
    'same' padding needs an extra row or column at the bottom/right.
    """
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: tuple
    pad: tuple
    dilation: tuple
    groups: int
    dtype: str

    @property
    def Cg(self):
        return self.C // self.groups

    @property
    def Kg(self):
        return self.K // self.groups

    @property
    def OH(self):
        return (self.H + self.pad[0] + self.pad[1] - self.dilation[0] * (self.R - 1) - 1) // self.stride[0] + 1

    @property
    def OW(self):
        return (self.W + self.pad[2] + self.pad[3] - self.dilation[1] * (self.S - 1) - 1) // self.stride[1] + 1

    @property
    def out_shape(self):
        return (self.N, self.K, self.OH, self.OW)

    @property
    def flops(self):
        """Multiply-adds times two of the direct algorithm."""
        return 2 * self.N * self.K * self.OH * self.OW * self.Cg * self.R * self.S

    @property
    def out_bytes(self):
        return self.N * self.K * self.OH * self.OW * np.dtype(self.dtype).itemsize

    @cached_property
    def live(self):
        """``(o0, o1, q0, q1)``: the output rows o0:o1 and columns q0:q1 whose
        windows reach the input, or None when they all do.  Every other output
        reads padding only and is exactly zero (before bias)."""
        rows = _live_range(self.H, self.pad[0], self.R, self.dilation[0], self.stride[0], self.OH)
        cols = _live_range(self.W, self.pad[2], self.S, self.dilation[1], self.stride[1], self.OW)
        if rows == (0, self.OH) and cols == (0, self.OW):
            return None
        return rows + cols

    def band(self, o0, o1, q0, q1):
        """The convolution that computes outputs ``[o0:o1, q0:q1]`` of this one
        from the input slice it reads: ``(params, (i0, i1, j0, j1))``, the slice
        being ``x[..., i0:i1, j0:j1]``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastconv._validation import conv2d_args
        >>> p = conv2d_args(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), None, 1, 100, 1, 1)[3]
        >>> p.live
        (98, 104, 98, 104)
        >>> sub, cut = p.band(*p.live)
        >>> sub.pad, sub.out_shape, cut
        ((2, 2, 2, 2), (1, 1, 6, 6), (0, 4, 0, 4))
        """
        (i0, i1, pt, pb), (j0, j1, pl, pr) = (
            _band_axis(self.H, self.pad[0], self.R, self.dilation[0], self.stride[0], o0, o1),
            _band_axis(self.W, self.pad[2], self.S, self.dilation[1], self.stride[1], q0, q1))
        sub = replace(self, H=i1 - i0, W=j1 - j0, pad=(pt, pb, pl, pr))
        return sub, (i0, i1, j0, j1)

    @property
    def key(self):
        """A hashable, JSON-friendly description used by the selection caches."""
        return (self.N, self.C, self.H, self.W, self.K, self.R, self.S, self.stride,
                self.pad, self.dilation, self.groups, self.dtype)


def _live_range(n, before, k, d, s, out):
    """Outputs [o0, o1) of one axis whose window reaches one of the n inputs."""
    extent = d * (k - 1) + 1
    o0 = max(0, -(-(before - extent + 1) // s))
    o1 = min(out, (before + n - 1) // s + 1)
    return (o0, max(o0, o1))


def _band_axis(n, before, k, d, s, o0, o1):
    """Input slice [i0, i1) and padding (before, after) that give outputs [o0, o1)."""
    extent = d * (k - 1) + 1
    first, last = o0 * s - before, (o1 - 1) * s - before + extent    # reads [first, last)
    i0, i1 = min(max(first, 0), n), max(min(last, n), 0)
    if i1 <= i0:                                   # only padding: keep one input row
        i0, i1 = (0, 1) if first < 0 else (n - 1, n)
    pt = i0 - first
    pb = (o1 - o0 - 1) * s + extent - (i1 - i0) - pt
    return i0, i1, pt, max(pb, 0)


#: Geometry arguments stay below this, and so do the padded input and the
#: kernel's span, so that every index the kernels compute fits in 64 bits.
INDEX_LIMIT = 2 ** 60


def _int_arg(value, name):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def pair(value, name, minimum):
    """Return ``value`` as a pair of ints, each at least ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        out = tuple(_int_arg(v, name) for v in value)
    else:
        v = _int_arg(value, name)
        out = (v, v)
    if min(out) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def native(a, dtype=None):
    """C-contiguous, native byte order, of ``dtype`` (default: own dtype)."""
    dt = np.dtype(dtype if dtype is not None else a.dtype)
    if not dt.isnative:
        dt = dt.newbyteorder("=")
    return np.ascontiguousarray(a, dtype=dt)


def float_dtype(*arrays, what="conv2d"):
    """The common floating dtype of ``arrays``; TypeError for anything else."""
    for name, a in arrays:
        if a.dtype.kind not in "f" or a.dtype.itemsize not in (4, 8):
            raise TypeError(f"{what}: {name} must be float32 or float64, got dtype {a.dtype}")
    return np.result_type(*(a.dtype for _, a in arrays)).newbyteorder("=")


def same_padding(size, k, stride, dilation):
    """TensorFlow SAME: output ceil(size/stride), extra pad at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, dtype):
    """Check the shapes and hyper-parameters of a conv2d; return its ConvParams.

    ``x_shape`` is 4-D (N, C, H, W); ``w_shape`` (K, C/groups, R, S).  A
    training loop asks about the same few geometries again and again, and
    building one cost a sixth of a 30 us call, so valid ones are memoised
    (ConvParams is immutable; a failing check raises every time).
    """
    args = (x_shape, w_shape, stride, padding, dilation, groups)
    if all(_plain(a) for a in args):
        return _memo_geometry(*args, dtype)
    return _conv_geometry(*args, dtype)


def _plain(v):
    # Only exact ints (and tuples of them) and strings are memoised on: True
    # and 1.0 hash like 1 but must still be refused.
    t = type(v)
    return t is int or t is str or (t is tuple and all(type(e) is int for e in v))


def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, dtype):
    if len(w_shape) != 4:
        raise ValueError(f"conv2d: weight must be 4-D (K, C/groups, R, S), got shape {tuple(w_shape)}")
    N, C, H, W = x_shape
    K, Cg, R, S = w_shape
    groups = _int_arg(groups, "groups")
    if groups < 1:
        raise ValueError(f"conv2d: groups must be >= 1, got {groups}")
    if C % groups or K % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both input channels ({C}) "
                         f"and output channels ({K})")
    if Cg != C // groups:
        raise ValueError(f"conv2d: weight has {Cg} input channels per group, expected "
                         f"C/groups = {C}/{groups} = {C // groups}")
    if min(N, C, H, W, K, R, S) < 1:
        raise ValueError(f"conv2d: empty x {tuple(x_shape)} or weight {tuple(w_shape)}")
    stride = pair(stride, "stride", 1)
    dilation = pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0, 0, 0, 0)
        elif padding == "same":
            pad = same_padding(H, R, stride[0], dilation[0]) + same_padding(W, S, stride[1], dilation[1])
        else:
            raise ValueError(f"conv2d: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    else:
        ph, pw = pair(padding, "padding", 0)
        pad = (ph, ph, pw, pw)
    for name, v in (("stride", stride), ("padding", pad), ("dilation", dilation)):
        if max(v) >= INDEX_LIMIT:
            raise ValueError(f"conv2d: {name} must be < 2**60 (64-bit index arithmetic), got {v}")
    for k, d in ((R, dilation[0]), (S, dilation[1])):
        if d * (k - 1) + 1 >= INDEX_LIMIT:
            raise ValueError(f"conv2d: dilation {dilation} spreads a {k}-tap kernel over "
                             f"{d * (k - 1) + 1} pixels, past 2**60 (64-bit index arithmetic)")
    p = ConvParams(N, C, H, W, K, R, S, stride, pad, dilation, groups, np.dtype(dtype).name)
    if p.OH < 1 or p.OW < 1:
        raise ValueError(
            f"conv2d: kernel {R}x{S} with dilation {dilation} is larger than the padded input "
            f"{H + pad[0] + pad[1]}x{W + pad[2] + pad[3]}")
    return p


_memo_geometry = lru_cache(maxsize=1024)(_conv_geometry)


def conv2d_args(x, weight, bias, stride, padding, dilation, groups):
    """Check conv2d's arguments.

    Returns ``(x4, w, b, params, squeeze)``: contiguous native arrays of one
    float dtype (x always 4-D), the geometry, and whether the caller gave a
    3-D CHW input and so expects a 3-D output.
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    if x.ndim not in (3, 4):
        raise ValueError(f"conv2d: x must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (K, C/groups, R, S), got shape {weight.shape}")
    arrays = [("x", x), ("weight", weight)]
    if bias is not None:
        bias = np.asarray(bias)
        arrays.append(("bias", bias))
    dtype = float_dtype(*arrays)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    p = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, dtype)
    if bias is not None and bias.shape != (p.K,):
        raise ValueError(f"conv2d: bias must have shape ({p.K},), got {bias.shape}")
    x = native(x, dtype)
    weight = native(weight, dtype)
    if bias is not None:
        bias = native(bias, dtype)
    return x, weight, bias, p, squeeze


# --- pooling ----------------------------------------------------------------

def pool_out(size, k, s, p, ceil_mode):
    """PyTorch's pooled length, including its ceil_mode rule (the last window
    must start inside the input or its left padding)."""
    out = (size + 2 * p - k + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


#: Pooling windows, strides and paddings stay below PyTorch's int32 limit, so
#: that every window sum, area and flat index fits the kernels' 64-bit integers.
POOL_LIMIT = 2 ** 31


def _pool_pair(value, name, minimum, what):
    out = pair(value, name, minimum)
    if max(out) >= POOL_LIMIT:
        raise ValueError(f"{what}: {name} must be < 2**31 (as PyTorch's), got {value!r}")
    return out


def pool2d_args(x, kernel_size, stride, padding, ceil_mode, what):
    """Check a pooling call.

    Returns ``(x3, geometry, lead, same)``: x as contiguous (P, H, W), the
    geometry (kh, kw, sh, sw, ph, pw, OH, OW), the leading shape to restore,
    and for ``padding="same"`` the TensorFlow padding (top, bottom, left,
    right) that the caller applies before pooling with the geometry (whose
    ph = pw = 0 then describes the padded input); otherwise None.
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"{what}: x must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    float_dtype(("x", x), what=what)
    kh, kw = _pool_pair(kernel_size, "kernel_size", 1, what)
    sh, sw = (kh, kw) if stride is None or (isinstance(stride, (list, tuple)) and not stride) \
        else _pool_pair(stride, "stride", 1, what)
    H, W = x.shape[-2:]
    if H == 0 or W == 0:  # as PyTorch: no window fits an empty plane, whatever the padding
        raise ValueError(f"{what}: x must have a non-empty height and width, got shape {x.shape}")
    same = None
    if isinstance(padding, str):
        if padding == "valid":
            ph = pw = 0
        elif padding == "same":
            same = same_padding(H, kh, sh, 1) + same_padding(W, kw, sw, 1)
            ph = pw = 0
            H, W = H + same[0] + same[1], W + same[2] + same[3]
        else:
            raise ValueError(f"{what}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    else:
        ph, pw = _pool_pair(padding, "padding", 0, what)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{what}: padding {padding!r} must be at most half the kernel_size "
                         f"{kernel_size!r}")
    OH = pool_out(H, kh, sh, ph, ceil_mode and same is None)
    OW = pool_out(W, kw, sw, pw, ceil_mode and same is None)
    if OH < 1 or OW < 1:
        raise ValueError(f"{what}: kernel_size {(kh, kw)} is larger than the padded input "
                         f"{(H + 2 * ph, W + 2 * pw)}")
    lead = x.shape[:-2]
    return native(x).reshape((-1,) + x.shape[-2:]), (kh, kw, sh, sw, ph, pw, OH, OW), lead, same


# --- scipy.signal.convolve2d / correlate2d -----------------------------------

MODES = ("full", "same", "valid")
BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap",
              "symm": "symm", "symmetric": "symm"}


def signal_args(in1, in2, mode, boundary, what):
    """Check convolve2d/correlate2d arguments as scipy.signal does.

    Returns ``(in1, in2, mode, boundary)`` with the boundary alias resolved.
    The messages are scipy's, so code that matches on them keeps working.
    """
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    if not in1.ndim == in2.ndim == 2:
        raise ValueError(f"{what} inputs must both be 2-D arrays")
    if mode not in MODES:
        raise ValueError("Acceptable mode flags are 'valid', 'same', or 'full'.")
    if boundary == "reflect":  # in scipy's table, but its kernel refuses it
        raise ValueError("Incorrect boundary value.")
    if boundary not in BOUNDARIES:
        raise ValueError("Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), "
                         "and 'symmetric' (or 'symm').")
    bnd = BOUNDARIES[boundary]
    if bnd != "fill" and mode == "full" and in1.size == 0:
        # scipy itself dies of SIGFPE here (its periodic index divides by the
        # empty axis): an empty array has no periodic or mirrored extension.
        raise ValueError(f"{what}: boundary {boundary!r} cannot extend an empty in1 (shape "
                         f"{in1.shape}) to the {_full_shape(in1.shape, in2.shape)} output of "
                         f"mode 'full'; use boundary='fill'")
    if mode == "full" and any(n < 0 for n in _full_shape(in1.shape, in2.shape)):
        # scipy asks numpy for the negative shape and passes on its "negative
        # dimensions are not allowed", which names neither input.
        raise ValueError(f"{what}: in1 {in1.shape} and in2 {in2.shape} are both empty along an axis, so "
                         f"the mode 'full' output would have shape {_full_shape(in1.shape, in2.shape)}")
    return in1, in2, mode, bnd


def _full_shape(s1, s2):
    return tuple(a + b - 1 for a, b in zip(s1, s2))


def swap_needed(mode, shape1, shape2):
    """scipy's rule: in 'valid' mode the larger input comes first."""
    if mode != "valid":
        return False
    ok1 = all(a >= b for a, b in zip(shape1, shape2))
    ok2 = all(b >= a for a, b in zip(shape1, shape2))
    if not (ok1 or ok2):
        raise ValueError("For 'valid' mode, one must be at least as large as the other in every dimension")
    return not ok1


def fill_scalar(fillvalue, dtype):
    """Convert ``fillvalue`` to ``dtype`` as scipy does (through complex)."""
    fv = np.asarray(fillvalue)
    if fv.size != 1:
        raise ValueError("`fillvalue` must be scalar or an array with one element.")
    fv = complex(fv.reshape(()).astype(np.complex128))
    if dtype.kind != "c":
        if fv.imag != 0:
            raise ValueError("could not cast `fillvalue` directly to the output type "
                             "(it was first converted to complex).")
        fv = fv.real
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if not math.isfinite(fv) or not info.min <= math.trunc(fv) <= info.max:
                raise ValueError("could not cast `fillvalue` directly to the output type "
                                 "(it was first converted to complex).")
            return np.array(math.trunc(fv)).astype(dtype)[()]
    return np.array(fv).astype(dtype)[()]
