"""The differentiable operations: one :class:`Function` per op, forward and backward side by side.

The public functions (``conv2d``, ``max_pool2d``, ``relu``, ``cross_entropy``
...) take and return :class:`~fastconv.nn.Tensor` objects with PyTorch's
arguments; the classes below them do the work on numpy arrays.  Convolution
runs forward through :func:`fastconv.conv2d`'s backends; its backward is
im2col + GEMM.  Pooling runs on the ``pool`` kernels of either engine.
"""
from functools import lru_cache

import numpy as np

from .. import _dispatch, _engines, _select
from ..backends import direct as direct_backend
from ..backends import im2col as im2col_backend
from .._blas import gemm
from .._threads import get_num_threads
from .._validation import conv2d_args, float_dtype, native, pair, pool2d_args
from .._workspace import buffer
from .tensor import Function, Tensor, unbroadcast

__all__ = [
    "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "relu", "sigmoid", "tanh",
    "linear", "dropout", "batch_norm", "batch_norm_relu", "flatten", "cat", "log_softmax",
    "cross_entropy",
    "nll_loss", "mse_loss", "local_response_norm", "softmax",
]


def _tensor(x, name, what):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, np.generic, float, int, list, tuple)):
        return Tensor(x)
    raise TypeError(f"{what}: {name} must be a Tensor or an array, got {type(x).__name__}")


def _float_tensor(x, name, what):
    t = _tensor(x, name, what)
    if t.dtype.kind != "f":
        raise TypeError(f"{what}: {name} must be a floating tensor, got dtype {t.dtype}")
    return t


# =============================================================================
# Elementwise arithmetic and reductions (the Tensor operators)
# =============================================================================

class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        return (g * self.b if self.needs_input_grad[0] else None,
                g * self.a if self.needs_input_grad[1] else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = g / self.b if self.needs_input_grad[0] else None
        gb = -g * self.a / (self.b * self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    def forward(self, a, exponent):
        if isinstance(exponent, Tensor) or np.ndim(exponent) != 0:
            raise TypeError("pow: the exponent must be a Python or numpy scalar")
        self.a, self.e = a, exponent
        return a ** exponent

    def backward(self, g):
        return (g * self.e * self.a ** (self.e - 1),)


class Exp(Function):
    def forward(self, a):
        self.y = np.exp(a)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return (g / self.a,)


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return gemm(a, b)

    def backward(self, g):
        a, b = self.a, self.b
        # Promote 1-D operands as matmul does, so one formula serves every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = np.expand_dims(g, -2) if a.ndim == 1 else g
        g2 = np.expand_dims(g2, -1) if b.ndim == 1 else g2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = gemm(g2, np.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = gemm(np.swapaxes(a2, -1, -2), g2)
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return tuple(int(a) % ndim if ndim else 0 for a in axes)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _norm_axis(axis, a.ndim), keepdims
        return np.asarray(a.sum(axis=self.axes, keepdims=keepdims))

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        return (np.broadcast_to(g, self.shape),)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _norm_axis(axis, a.ndim), keepdims
        self.count = int(np.prod([a.shape[i] for i in self.axes])) if a.ndim else 1
        return np.asarray(a.mean(axis=self.axes, keepdims=keepdims))

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        return (np.broadcast_to(g / self.count, self.shape),)


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, axes=None):
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, g):
        inv = None if self.axes is None else np.argsort(self.axes)
        return (np.transpose(g, inv),)


def _basic_index(idx):
    """True when ``idx`` selects each element at most once (no advanced indexing)."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
               for i in items)


class GetItem(Function):
    def forward(self, a, idx):
        self.shape, self.dtype, self.idx = a.shape, a.dtype, idx
        return a[idx]

    def backward(self, g):
        gx = np.zeros(self.shape, dtype=self.dtype)
        if _basic_index(self.idx):
            gx[self.idx] = g
        else:
            # Repeated indices must add up, which fancy assignment would not do.
            np.add.at(gx, self.idx, g)
        return (gx,)


# =============================================================================
# Convolution
# =============================================================================

class Conv2d(Function):
    """NCHW cross-correlation.

    Backward: the weight gradient of a small filter bank comes from the
    direct backend's kernel, which reads the input in place; a large one is
    one GEMM per group against the im2col column matrix (packed a batch tile
    at a time so memory stays bounded).  The input gradient is, at stride 1, itself
    a convolution (of the output gradient with the flipped, transposed
    filters) run by fastconv's fastest backend, and otherwise (strided, or
    with fewer output pixels than output channels: :func:`_weight_bound`) a
    GEMM followed by col2im.  A backend named for the forward pass also runs that inner
    convolution when it can serve it.
    """

    def forward(self, x, weight, bias, stride=1, padding=0, dilation=1, groups=1,
                backend="auto", engine="auto"):
        x4, w, b, p, squeeze = conv2d_args(x, weight, bias, stride, padding, dilation, groups)
        self.backend, self.engine = backend, engine
        # Weights that take gradients change every step: auto prices in the
        # filter transforms a backend cannot reuse from its cache.
        with _select.fresh_weights(len(self.needs_input_grad) > 1 and self.needs_input_grad[1]):
            y = _dispatch.run(x4, w, p, backend, engine)
        if b is not None:
            y += b[:, None, None]
        self.x, self.w, self.p, self.squeeze = x4, w, p, squeeze
        return y[0] if squeeze else y

    def backward(self, gy):
        x = self.x
        if self.squeeze:
            gy = gy[None]
        gy = native(gy, x.dtype)
        needs = self.needs_input_grad
        gw = self._weight_grad(gy) if needs[1] else None
        gb = gy.sum(axis=(0, 2, 3)) if len(needs) > 2 and needs[2] else None
        gx = None
        if needs[0]:
            gx = self._input_grad(gy)
            if self.squeeze:
                gx = gx[0]
        return gx, gw, gb

    def _tiles(self):
        """Batch tiles (n0, m) whose column matrix fits in _COLS_BYTES, or in
        the weights' own size when that is larger."""
        p = self.p
        per_image = p.C * p.R * p.S * p.OH * p.OW * self.x.itemsize
        # Deep layers on small planes (ResNet's last stages) have few columns
        # per image: a 2 MB tile held 28 images of 2x2 pixels, and each tile's
        # weight-gradient GEMM, summing over only 112 columns, wrote all 2.4M
        # weights again (65 GFLOP/s).  A tile as large as the weights at least
        # halves those passes and keeps memory within twice the gradient's.
        budget = max(_COLS_BYTES, p.K * p.Cg * p.R * p.S * self.x.itemsize)
        m = max(1, min(p.N, budget // max(per_image, 1)))
        return [(n0, min(m, p.N - n0)) for n0 in range(0, p.N, m)]

    def _grouped(self, gy):
        """(G, Kg, N*OH*OW): the output gradient as one matrix per group,
        columns ordered as the im2col matrix's."""
        p = self.p
        return gy.reshape(p.N, p.groups, p.Kg, -1).transpose(1, 2, 0, 3).reshape(p.groups, p.Kg, -1)

    def _weight_grad(self, gy):
        x, w, p = self.x, self.w, self.p
        G, L, rows = p.groups, p.OH * p.OW, p.Cg * p.R * p.S
        if p.K * rows <= _DIRECT_WGRAD_MAX_WEIGHTS and (p.R, p.S) != (1, 1) \
                and direct_backend.unsupported(p) is None:
            return direct_backend.weight_grad(x, np.ascontiguousarray(gy), p, _engine("direct"),
                                              get_num_threads())
        gy_g = self._grouped(gy)
        eng, nt = _engine("im2col"), get_num_threads()
        gw = np.zeros((G, p.Kg, rows), dtype=x.dtype)
        for n0, m in self._tiles():
            cols = im2col_backend.im2col(x[n0:n0 + m], p, eng, nt, out=_cols_buffer(G * rows, m * L, x.dtype))
            cols = cols.reshape(G, rows, m * L)
            for g in range(G):
                # 2-D products: numpy hands a transposed 2-D operand to BLAS
                # as a flag, but a transposed 3-D stack to its slow loop (45x here)
                gemm(gy_g[g, :, n0 * L:(n0 + m) * L], cols[g].T, out=gw[g], accumulate=True)
        return gw.reshape(w.shape)

    def _input_grad(self, gy):
        x, w, p = self.x, self.w, self.p
        G, Kg, Cg, R, S, L = p.groups, p.Kg, p.Cg, p.R, p.S, p.OH * p.OW
        pt, pb, pl, pr = p.pad
        dh, dw = p.dilation
        if p.stride == (1, 1) and not (self.backend == "auto" and _weight_bound(p)):
            # dx = full correlation of dy with the flipped filters, in/out swapped per group.
            wt = np.ascontiguousarray(w.reshape(G, Kg, Cg, R, S).transpose(0, 2, 1, 3, 4)
                                      .reshape(G * Cg, Kg, R, S)[:, :, ::-1, ::-1])
            eh, ew = dh * (R - 1), dw * (S - 1)
            if pt == pb and pl == pr and pt <= eh and pl <= ew:
                return _dispatch_conv(gy, wt, (eh - pt, ew - pl), p.dilation, G, self.backend, self.engine)
            full = _dispatch_conv(gy, wt, (eh, ew), p.dilation, G, self.backend, self.engine)
            return np.ascontiguousarray(full[:, :, pt:pt + p.H, pl:pl + p.W])
        # Strided (the zero-stuffed convolution would waste stride**2 of its
        # work) or weight-bound: the columns' gradient W^T dy, then col2im.
        # W^T goes to BLAS as a transposed view: a copy of ResNet's 512x4608
        # weights took as long as the product (2.2 against 1.2 ms a layer).
        eng, nt = _engine("im2col"), get_num_threads()
        wt = w.reshape(G, Kg, Cg * R * S).transpose(0, 2, 1)
        gy_g = self._grouped(gy)
        gx = np.zeros(x.shape, dtype=x.dtype)
        for n0, m in self._tiles():
            col = _cols_buffer(G * Cg * R * S, m * L, x.dtype)
            gemm(wt, gy_g[:, :, n0 * L:(n0 + m) * L], out=col.reshape(G, Cg * R * S, m * L))
            # col2im accumulates (+=): overlapping windows share input pixels.
            im2col_backend.col2im(col, p, eng, nt, out=gx[n0:n0 + m])
        return gx


def _cols_buffer(rows, cols, dtype):
    """The backward's column tile, kept between calls (``fastconv._workspace``).

    Fresh tiles of a few MB each were handed back to the system and faulted
    in again on every call: ResNet-18's (32,128,8,8) weight gradient took
    7.5 ms with 1,600 page faults a call where the same work on kept memory
    takes 2.5 (AMD EPYC Zen 5; glibc keeps such blocks only after a larger
    one has been freed, so it depended on what the process had done before).
    """
    return buffer("conv_backward_cols", (rows, cols), dtype)


def _weight_bound(p):
    """Whether a stride-1 layer has fewer output pixels in the batch than
    output channels per group, so that its input gradient costs more in
    per-step work on the weights than on the activations.

    The convolution path copies the flipped, transposed filters every step
    and its backend transforms them again (Winograd's filter transform, FFT's
    spectra); the GEMM + col2im path reads the weights in place.  Measured on
    ResNet-18's layers at batch 32 on 64x64 inputs (AMD EPYC Zen 5, AVX-512,
    2 threads, ms convolution / GEMM + col2im): 512 channels on 2x2 pixels
    (128 output pixels against 512 channels) 5.5 / 2.4; 256 on 4x4 (512
    against 256) 2.2 / 2.0, a tie; 128 on 8x8 1.2 / 2.0; 64 on 16x16 1.4 / 2.4.
    """
    return p.N * p.OH * p.OW <= p.Kg


#: Weight gradients of filter banks up to this many weights (and not 1x1: its
#: packing is a plain copy or subsample, and the product a plain GEMM) run on the
#: direct kernel, which reads the input in place; larger ones on im2col + GEMM.
#: Measured one thread, float32, ms im2col / direct:
#: LeNet (6,1,5,5) 1.04/0.37, (16,6,5,5) 1.18/0.50; (64,32,3,3) 27.8/22.6;
#: AlexNet (96,3,11,11) 28.1/26.4; ResNet (64,64,3,3) 36.0/25.9 but
#: (256,256,3,3) 17.5/25.6 and (512,512,3,3) 60.8/91.3.  Two threads, Intel Xeon
#: AVX-512: ResNet-18's 1x1 stride-2 (128,64,1,1) at batch 32 on 16x16, 0.41/1.35.
_DIRECT_WGRAD_MAX_WEIGHTS = 1 << 16

#: Bound on one backward tile's column matrix (bytes): small enough that a LeNet step at
#: batch 64 stays under 3x its activations (tests/test_memory.py), large enough for BLAS.
_COLS_BYTES = 2 << 20


@lru_cache(maxsize=None)
def _engine(stem):
    return _engines.pick(stem)


def _dispatch_conv(x, w, padding, dilation, groups, backend="auto", engine="auto"):
    """fastconv's own conv2d on checked arrays (the backward's inner convolutions);
    a named backend that cannot serve this geometry leaves the choice to auto."""
    x4, w4, _, p, _ = conv2d_args(x, w, None, 1, padding, dilation, groups)
    if backend != "auto" and _dispatch.backend_module(backend).unsupported(p) is not None:
        backend, engine = "auto", "auto"
    # The transposed filters are new arrays every step.
    with _select.fresh_weights():
        return _dispatch.run(x4, w4, p, backend, engine)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           backend="auto", engine="auto"):
    """2-D convolution (cross-correlation) of NCHW tensors, differentiable.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W) or (C, H, W)
    weight : Tensor, shape (K, C // groups, R, S)
    bias : Tensor, shape (K,), optional
    stride, padding, dilation, groups
        As :func:`fastconv.conv2d` (padding may also be 'same' or 'valid').
    backend, engine : str
        As :func:`fastconv.conv2d`, for the forward pass (and the backward's
        input-gradient convolution when the backend can serve it).

    Returns
    -------
    Tensor, shape (N, K, OH, OW)

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> x = nn.Tensor(np.ones((1, 1, 3, 3), np.float32))
    >>> w = nn.Tensor(np.ones((1, 1, 2, 2), np.float32), requires_grad=True)
    >>> y = F.conv2d(x, w)
    >>> y.shape
    (1, 1, 2, 2)
    >>> y.sum().backward()
    >>> w.grad[0, 0]
    array([[4., 4.],
           [4., 4.]], dtype=float32)
    """
    x = _float_tensor(x, "x", "conv2d")
    weight = _float_tensor(weight, "weight", "conv2d")
    if bias is not None:
        bias = _float_tensor(bias, "bias", "conv2d")
    return Conv2d.apply(x, weight, bias, stride=stride, padding=padding, dilation=dilation,
                        groups=groups, backend=backend, engine=engine)


class Linear(Function):
    def forward(self, x, weight, bias):
        if weight.ndim != 2:
            raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got "
                             f"shape {weight.shape}")
        if x.shape[-1:] != weight.shape[1:]:
            raise ValueError(f"linear: x's last axis ({x.shape[-1:]}) must equal weight's "
                             f"in_features ({weight.shape[1]})")
        self.x, self.w = x, weight
        y = gemm(x, weight.T)
        if bias is not None:
            y += bias
        return y

    def backward(self, g):
        x, w = self.x, self.w
        g2 = g.reshape(-1, g.shape[-1])
        gx = gemm(g, w) if self.needs_input_grad[0] else None
        gw = gemm(g2.T, x.reshape(-1, x.shape[-1])) if self.needs_input_grad[1] else None
        gb = g2.sum(axis=0) if len(self.needs_input_grad) > 2 and self.needs_input_grad[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``, as ``torch.nn.functional.linear``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.linear(nn.Tensor(np.ones((2, 3))), nn.Tensor(np.ones((4, 3)))).shape
    (2, 4)
    """
    x = _float_tensor(x, "x", "linear")
    weight = _float_tensor(weight, "weight", "linear")
    if bias is not None:
        bias = _float_tensor(bias, "bias", "linear")
    return Linear.apply(x, weight, bias)


# =============================================================================
# Pooling
# =============================================================================

@lru_cache(maxsize=None)
def _pool_kernels():
    return _engines.kernels(_engines.pick("pool", what="pooling"), "pool")


def _pad_same(x3, same, value):
    pt, pb, pl, pr = same
    return np.pad(x3, ((0, 0), (pt, pb), (pl, pr)), constant_values=value)


def _crop_same(g3, same):
    pt, pb, pl, pr = same
    return np.ascontiguousarray(g3[:, pt:g3.shape[1] - pb, pl:g3.shape[2] - pr])


class MaxPool2d(Function):
    def forward(self, x, kernel_size, stride=None, padding=0, ceil_mode=False):
        x3, geo, lead, same = pool2d_args(x, kernel_size, stride, padding, ceil_mode, "max_pool2d")
        if same is not None:
            # -inf never wins a SAME window: every window holds an input pixel
            x3 = _pad_same(x3, same, -np.inf)
        kh, kw, sh, sw, ph, pw, OH, OW = geo
        y = np.empty((x3.shape[0], OH, OW), dtype=x3.dtype)
        self.idx = np.empty((x3.shape[0], OH, OW), dtype=np.int64)
        _pool_kernels().max_pool2d_fwd(x3, y, self.idx, kh, kw, sh, sw, ph, pw, get_num_threads())
        self.x_shape, self.x3_shape, self.dtype, self.same = x.shape, x3.shape, x3.dtype, same
        return y.reshape(lead + (OH, OW))

    def backward(self, g):
        gy = native(g, self.dtype).reshape(self.idx.shape)
        gx = np.empty(self.x3_shape, dtype=self.dtype)
        _pool_kernels().max_pool2d_bwd(gy, self.idx, gx, get_num_threads())
        if self.same is not None:
            gx = _crop_same(gx, self.same)
        return (gx.reshape(self.x_shape),)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W) or (C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default: ``kernel_size``.
    padding : int, (int, int), 'valid' or 'same'
        Implicit -inf padding, at most half the kernel; 'same' is
        TensorFlow's SAME (output ceil(H / stride), any extra pad at the
        bottom/right).
    ceil_mode : bool
        Round the output size up (PyTorch's rule).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> x = nn.Tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    >>> F.max_pool2d(x, 2).numpy()[0, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    x = _float_tensor(x, "x", "max_pool2d")
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=bool(ceil_mode))


class AvgPool2d(Function):
    def forward(self, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True):
        x3, geo, lead, same = pool2d_args(x, kernel_size, stride, padding, ceil_mode, "avg_pool2d")
        kh, kw, sh, sw, ph, pw, OH, OW = geo
        self.scale = None
        if same is not None:
            # TensorFlow's SAME average leaves the padding out of the divisor:
            # pool the zero-padded input counting the pads, then rescale each
            # window by the share of it that lies inside the image.
            x3 = _pad_same(x3, same, 0)
            inside = _pad_same(np.ones((1,) + tuple(x.shape[-2:]), x3.dtype), same, 0)
            share = np.empty((1, OH, OW), dtype=x3.dtype)
            _pool_kernels().avg_pool2d_fwd(inside, share, kh, kw, sh, sw, 0, 0, True, get_num_threads())
            self.scale = 1.0 / share[0]
        y = np.empty((x3.shape[0], OH, OW), dtype=x3.dtype)
        _pool_kernels().avg_pool2d_fwd(x3, y, kh, kw, sh, sw, ph, pw, bool(count_include_pad),
                                       get_num_threads())
        if self.scale is not None:
            y *= self.scale
        self.geo, self.cip, self.same = geo, bool(count_include_pad), same
        self.x_shape, self.x3_shape, self.dtype = x.shape, x3.shape, x3.dtype
        return y.reshape(lead + (OH, OW))

    def backward(self, g):
        kh, kw, sh, sw, ph, pw, OH, OW = self.geo
        gy = native(g, self.dtype).reshape(self.x3_shape[0], OH, OW)
        if self.scale is not None:
            gy = np.ascontiguousarray(gy * self.scale)
        gx = np.empty(self.x3_shape, dtype=self.dtype)
        _pool_kernels().avg_pool2d_bwd(gy, gx, kh, kw, sh, sw, ph, pw, self.cip, get_num_threads())
        if self.same is not None:
            gx = _crop_same(gx, self.same)
        return (gx.reshape(self.x_shape),)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    ``count_include_pad`` chooses whether integer zero padding counts in
    each window's divisor (PyTorch's default: it does).  ``padding="same"``
    is TensorFlow's SAME, whose average leaves the padding out.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> x = nn.Tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    >>> F.avg_pool2d(x, 2).numpy()[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    x = _float_tensor(x, "x", "avg_pool2d")
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                           ceil_mode=bool(ceil_mode), count_include_pad=count_include_pad)


def _adaptive_bounds(size, out):
    """PyTorch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


class AdaptiveAvgPool2d(Function):
    def forward(self, x, output_size):
        if x.ndim not in (3, 4):
            raise ValueError(f"adaptive_avg_pool2d: x must be 4-D or 3-D, got shape {x.shape}")
        float_dtype(("x", x), what="adaptive_avg_pool2d")
        H, W = x.shape[-2:]
        if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
            output_size = tuple(H if o is None else o for o, H in zip(output_size, (H, W)))
        OH, OW = pair(output_size, "output_size", 1)
        self.x_shape, self.dtype, self.out = x.shape, x.dtype, (OH, OW)
        if H % OH == 0 and W % OW == 0:
            # Equal, non-overlapping windows: one reshape and a mean.
            return x.reshape(x.shape[:-2] + (OH, H // OH, OW, W // OW)).mean(axis=(-3, -1))
        y = np.empty(x.shape[:-2] + (OH, OW), dtype=x.dtype)
        for i, (h0, h1) in enumerate(_adaptive_bounds(H, OH)):
            for j, (w0, w1) in enumerate(_adaptive_bounds(W, OW)):
                y[..., i, j] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1))
        return y

    def backward(self, g):
        H, W = self.x_shape[-2:]
        OH, OW = self.out
        if H % OH == 0 and W % OW == 0:
            fh, fw = H // OH, W // OW
            gx = np.broadcast_to(g[..., :, None, :, None] / (fh * fw),
                                 g.shape[:-2] + (OH, fh, OW, fw))
            return (gx.reshape(self.x_shape),)
        gx = np.zeros(self.x_shape, dtype=self.dtype)
        for i, (h0, h1) in enumerate(_adaptive_bounds(H, OH)):
            for j, (w0, w1) in enumerate(_adaptive_bounds(W, OW)):
                # Windows overlap when H is not a multiple of OH: accumulate.
                gx[..., h0:h1, w0:w1] += (g[..., i, j] / ((h1 - h0) * (w1 - w0)))[..., None, None]
        return (gx,)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size, as PyTorch's.

    Parameters
    ----------
    output_size : int or (int, int)
        (OH, OW); a None entry keeps that input size.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.adaptive_avg_pool2d(nn.Tensor(np.ones((2, 3, 7, 7))), 1).shape
    (2, 3, 1, 1)
    """
    x = _float_tensor(x, "x", "adaptive_avg_pool2d")
    return AdaptiveAvgPool2d.apply(x, output_size=output_size)


# =============================================================================
# Activations, dropout, normalisation
# =============================================================================

# Eval-mode batch norm and ReLU run on the ``pointwise`` kernels: one parallel
# pass where numpy makes two (batch norm) or one single-threaded ones
# (ResNet-50 batch 8, 2 threads: batch norm 125 -> 36 ms, ReLU 40 -> 21 ms).
# Below _POINTWISE_MIN elements numpy's pass is as fast as a kernel call
# (float32, measured: a Cython call costs ~2 us, a Numba one ~5 us); below
# _POINTWISE_PER_THREAD elements per thread a second thread costs more than
# it saves (2 threads: 1 wins at 131k elements, 2 at 221k).
_POINTWISE_MIN = {"cython": 1 << 14, "numba": 1 << 16}
_POINTWISE_PER_THREAD = 100_000


@lru_cache(maxsize=None)
def _pointwise(stem="pointwise"):
    """(engine, kernels) of ``stem`` (``pointwise``, ``batch_norm``), or None
    where no engine has it."""
    try:
        eng = _engines.pick(stem)
    except ValueError:
        return None
    return eng, _engines.kernels(eng, stem)


def _pointwise_for(x, stem="pointwise"):
    """(kernels, n_threads) when ``stem``'s one-pass kernels pay for ``x``, else None."""
    pw = _pointwise(stem)
    if (pw is None or x.dtype not in (np.float32, np.float64) or not x.dtype.isnative
            or not x.flags.c_contiguous or x.ndim < 2 or x.size < _POINTWISE_MIN[pw[0]]):
        return None
    return pw[1], max(1, min(get_num_threads(), x.size // _POINTWISE_PER_THREAD))


class ReLU(Function):
    # The pointwise kernels: forward gives np.maximum's result bit for bit (a
    # NaN stays, -0.0 -> 0.0); backward selects g where the output is positive,
    # as PyTorch's threshold_backward does (an inactive unit's NaN or infinite
    # gradient gives 0).  Keeping the output instead of a mask saves the
    # forward a pass, and the backward's one pass replaces numpy's g * mask
    # (0.12 against about 0.02 ms on LeNet's first activation, 2 threads).
    def forward(self, x):
        pw = _pointwise_for(x)
        if pw is not None:
            y = np.empty_like(x)
            pw[0].relu(x.reshape(-1), y.reshape(-1), pw[1])
        else:
            y = np.maximum(x, x.dtype.type(0))
        if self.needs_input_grad:
            self.y = y
        return y

    def backward(self, g):
        y = self.y
        pw = _pointwise_for(y)
        if pw is not None and g.dtype == y.dtype and g.flags.c_contiguous and g.shape == y.shape:
            gx = np.empty_like(y)
            pw[0].relu_grad(g.reshape(-1), y.reshape(-1), gx.reshape(-1), pw[1])
            return (gx,)
        return (np.where(y > 0, g, g.dtype.type(0)),)


def relu(x, inplace=False):
    """max(x, 0); ``inplace`` is accepted for PyTorch compatibility and ignored.

    Examples
    --------
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.relu(nn.Tensor([-1.0, 0.5])).numpy()
    array([0. , 0.5], dtype=float32)
    """
    return ReLU.apply(_float_tensor(x, "x", "relu"))


class Sigmoid(Function):
    def forward(self, x):
        # The tanh form never overflows, unlike 1 / (1 + exp(-x)).
        self.y = 0.5 * (1 + np.tanh(0.5 * x))
        return self.y

    def backward(self, g):
        return (g * self.y * (1 - self.y),)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow.

    Examples
    --------
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.sigmoid(nn.Tensor([0.0])).item()
    0.5
    """
    return Sigmoid.apply(_float_tensor(x, "x", "sigmoid"))


class Tanh(Function):
    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        return (g * (1 - self.y * self.y),)


def tanh(x):
    """Hyperbolic tangent.

    Examples
    --------
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.tanh(nn.Tensor([0.0])).item()
    0.0
    """
    return Tanh.apply(_float_tensor(x, "x", "tanh"))


class Dropout(Function):
    def forward(self, x, p, generator):
        if p == 1:
            self.mask = np.zeros_like(x)
        else:
            self.mask = (generator.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
        return x * self.mask

    def backward(self, g):
        return (g * self.mask,)


def dropout(x, p=0.5, training=True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    Parameters
    ----------
    p : float in [0, 1]
    training : bool
        When False (or p == 0) ``x`` is returned unchanged.
    generator : numpy.random.Generator, optional
        Default: fastconv.nn's module generator (see :func:`fastconv.nn.manual_seed`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.dropout(nn.Tensor(np.ones(4)), 0.5, training=False).numpy()
    array([1., 1., 1., 1.])
    """
    x = _float_tensor(x, "x", "dropout")
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"dropout: p must be a float in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if generator is None:
        from .init import get_generator
        generator = get_generator()
    return Dropout.apply(x, p=float(p), generator=generator)


def _array_or_none(a, name):
    if a is None:
        return None
    a = a.data if isinstance(a, Tensor) else a
    if not isinstance(a, np.ndarray):
        raise TypeError(f"batch_norm: {name} must be a Tensor, an ndarray or None, "
                        f"got {type(a).__name__}")
    return a


class BatchNorm(Function):
    """Batch normalisation; :class:`BatchNormReLU` is the same op with a ReLU fused in."""
    relu = False

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps):
        if x.ndim < 2:
            raise ValueError(f"batch_norm: x must be (N, C, ...), got shape {x.shape}")
        C = x.shape[1]
        for name, a in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
            if a is not None and a.shape != (C,):
                raise ValueError(f"batch_norm: {name} must have shape ({C},), got {a.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, C) + (1,) * (x.ndim - 2)
        use_batch = training or running_mean is None or running_var is None
        # The batch_norm kernels (csrc/batch_norm.h) when they serve this x: the
        # statistics in two parallel passes and y in one, the backward in two,
        # where numpy makes about eight and nine single-threaded ones.
        kern = None
        if self.needs_input_grad and all(a is None or a.dtype == x.dtype for a in (weight, bias)):
            kern = _pointwise_for(x, "batch_norm")
            if kern is not None and _pointwise_for(x) is None:
                kern = None
        if use_batch:
            n = x.size // C
            if n < 2 and training:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                                 f"training, got input of shape {x.shape}")
            if kern is not None and n > 0:
                mean, var = np.empty(C), np.empty(C)
                kern[0].stats(x.reshape(x.shape[0], C, -1), mean, var, kern[1])
            else:
                mean = x.mean(axis=axes)
                var = x.var(axis=axes)
            if training and running_mean is not None:
                # In place: the caller's buffers are the running statistics.
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if training and running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (n / max(n - 1, 1))
        else:
            mean, var = running_mean, running_var
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        mean = mean.astype(x.dtype)
        if not self.needs_input_grad:
            # Nothing to save for a backward: one affine map, two passes over x
            # instead of four (inference is dominated by such passes), or one
            # parallel pass on the pointwise kernel, which rounds the product and
            # the sum as numpy does.  A scale or shift of another dtype (say
            # float64 weights on float32 x) keeps numpy's promotion.
            scale = invstd if weight is None else invstd * weight
            shift = -mean * scale if bias is None else bias - mean * scale
            pw = _pointwise_for(x)
            if pw is not None and scale.dtype == x.dtype and shift.dtype == x.dtype:
                y = np.empty_like(x)
                x3, y3 = x.reshape(x.shape[0], C, -1), y.reshape(x.shape[0], C, -1)
                pw[0].channel_affine(x3, np.ascontiguousarray(scale), np.ascontiguousarray(shift),
                                     y3, self.relu, pw[1])
                return y
            y = np.multiply(x, scale.reshape(bshape))
            y += shift.reshape(bshape)
            if self.relu:
                np.maximum(y, y.dtype.type(0), out=y)
            return y
        self.invstd, self.weight = invstd, weight
        self.axes, self.bshape, self.use_batch, self.kern = axes, bshape, use_batch, kern
        if kern is not None:
            # As PyTorch's CPU kernel: y = x * (invstd w) + (b - mean invstd w).
            # The backward reads x again instead of a kept x-hat.
            scale = invstd if weight is None else invstd * weight
            shift = -mean * scale if bias is None else bias - mean * scale
            y = np.empty_like(x)
            x3 = x.reshape(x.shape[0], C, -1)
            _pointwise_for(x)[0].channel_affine(x3, scale, shift, y.reshape(x3.shape),
                                                self.relu, kern[1])
            self.x, self.mean = x, mean
            if self.relu:
                self.y = y
            return y
        xhat = np.subtract(x, mean.reshape(bshape))
        xhat *= invstd.reshape(bshape)
        self.xhat = xhat
        y = xhat * weight.reshape(bshape) if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.reshape(bshape)
        if self.relu:
            np.maximum(y, y.dtype.type(0), out=y)
            self.y = y
        return y

    def backward(self, g):
        if self.kern is not None:
            return self._kernel_backward(g)
        xhat, axes, bshape, needs = self.xhat, self.axes, self.bshape, self.needs_input_grad
        if self.relu:
            g = g * (self.y > 0)    # the ReLU's backward, in the same function
        # Both sums are needed for the input gradient in training, whichever
        # parameter gradients are asked for: they are its two mean terms.
        want_sums = needs[0] and self.use_batch
        gw = (g * xhat).sum(axis=axes) if needs[1] or want_sums else None
        gb = g.sum(axis=axes) if needs[2] or want_sums else None
        gx = None
        if needs[0]:
            k = self.invstd if self.weight is None else self.invstd * self.weight
            if self.use_batch:
                # The batch statistics depend on x: with n values per channel,
                # mean(g * w) = w * gb / n and mean(g * w * xhat) = w * gw / n.
                n = xhat.size // xhat.shape[1]
                gx = xhat * (gw / n).reshape(bshape)
                np.subtract(g, gx, out=gx)
                gx -= (gb / n).reshape(bshape)
                gx *= k.reshape(bshape)
            else:
                gx = g * k.reshape(bshape)
        return (gx, gw if needs[1] else None, gb if needs[2] else None)

    def _kernel_backward(self, g):
        # The backward above, on the batch_norm kernels: one pass for both sums
        # (through the ReLU's mask) and one for the input gradient.
        x, needs, (kern, nt) = self.x, self.needs_input_grad, self.kern
        C = x.shape[1]
        shape3 = (x.shape[0], C, x.size // max(x.shape[0] * C, 1))
        g3 = np.ascontiguousarray(g, dtype=x.dtype).reshape(shape3)
        x3 = x.reshape(shape3)
        y3 = self.y.reshape(shape3) if self.relu else None
        sum_g, sum_gx = np.empty(C), np.empty(C)
        kern.grad_sums(g3, y3, x3, self.mean, sum_g, sum_gx, nt)
        invstd = self.invstd
        gw = (sum_gx * invstd).astype(x.dtype) if needs[1] else None
        gb = sum_g.astype(x.dtype) if needs[2] else None
        gx = None
        if needs[0]:
            k = invstd if self.weight is None else invstd * self.weight
            zero = np.zeros(C, x.dtype)
            a, b = zero, zero
            if self.use_batch:
                # the batch statistics' own dependence on x (see above)
                n = shape3[0] * shape3[2]
                a = (sum_gx * invstd * invstd / n).astype(x.dtype)
                b = (sum_g / n).astype(x.dtype)
            gx = np.empty_like(x)
            kern.grad_input(g3, y3, x3, self.mean, a, b, np.ascontiguousarray(k, dtype=x.dtype),
                            gx.reshape(shape3), nt)
        return (gx, gw, gb)


class BatchNormReLU(BatchNorm):
    """relu(batch_norm(x)) in one op: the ReLU's mask is applied inside the batch
    norm's backward, which computes its two reductions once and reuses them."""
    relu = True


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over axis 1 of an (N, C, ...) tensor, as PyTorch's.

    In training the batch's statistics normalise ``x`` and the running ones
    (arrays or Tensors, updated in place, the variance unbiased) move by
    ``momentum``; in evaluation the running ones are used.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> x = nn.Tensor(np.array([[1.0], [3.0]]))
    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> F.batch_norm(x, rm, rv, training=True).numpy().round(3)
    array([[-1.],
           [ 1.]])
    >>> rm
    array([0.2])
    """
    return _batch_norm(BatchNorm, x, running_mean, running_var, weight, bias, training, momentum, eps)


def batch_norm_relu(x, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5):
    """``relu(batch_norm(x, ...))`` as one op, forward and backward (the arguments of
    :func:`batch_norm`).

    The forward applies the ReLU in the normalisation's output pass; the
    backward applies the ReLU's mask and the normalisation's gradient in one
    function, its two per-channel reductions computed once.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> x = nn.Tensor(np.array([[1.0], [3.0]]), requires_grad=True)
    >>> y = F.batch_norm_relu(x, np.zeros(1), np.ones(1), training=True)
    >>> y.numpy().round(3)
    array([[0.],
           [1.]])
    """
    return _batch_norm(BatchNormReLU, x, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(op, x, running_mean, running_var, weight, bias, training, momentum, eps):
    what = "batch_norm_relu" if op.relu else "batch_norm"
    x = _float_tensor(x, "x", what)
    weight = None if weight is None else _float_tensor(weight, "weight", what)
    bias = None if bias is None else _float_tensor(bias, "bias", what)
    if momentum is None:
        raise ValueError(f"{what}: momentum must be a float; the module handles "
                         "momentum=None (cumulative average)")
    return op.apply(x, weight, bias,
                    running_mean=_array_or_none(running_mean, "running_mean"),
                    running_var=_array_or_none(running_var, "running_var"),
                    training=bool(training), momentum=float(momentum), eps=float(eps))


class LocalResponseNorm(Function):
    """y_c = x_c / (k + alpha/size * sum_{c' in window(c)} x_c'^2) ** beta, the
    window running from c - size//2 to c + (size-1)//2 (PyTorch's)."""

    def forward(self, x, size, alpha, beta, k):
        self.x, self.size, self.alpha, self.beta = x, size, alpha, beta
        self.d = k + (alpha / size) * _channel_window_sum(x * x, size // 2, (size - 1) // 2)
        self.dpow = self.d ** -beta
        return x * self.dpow

    def backward(self, g):
        x, size = self.x, self.size
        # d_c depends on x_j for every c whose window holds j: the window reversed.
        t = _channel_window_sum(g * x * self.dpow / self.d, (size - 1) // 2, size // 2)
        return (g * self.dpow - (2 * self.alpha * self.beta / size) * x * t,)


def _channel_window_sum(a, before, after):
    """out[:, c] = sum of a[:, c-before .. c+after] (clipped), along axis 1."""
    C = a.shape[1]
    pad = [(0, 0)] * a.ndim
    pad[1] = (before + 1, after)
    cs = np.cumsum(np.pad(a, pad), axis=1)
    return cs[:, before + 1 + after:before + 1 + after + C] - cs[:, :C]


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (AlexNet), as PyTorch's.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.local_response_norm(nn.Tensor(np.ones((1, 3, 2, 2))), size=2).shape
    (1, 3, 2, 2)
    """
    x = _float_tensor(x, "x", "local_response_norm")
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: x must be (N, C, ...) with at least 3 axes, "
                         f"got shape {x.shape}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    return LocalResponseNorm.apply(x, size=int(size), alpha=float(alpha), beta=float(beta),
                                   k=float(k))


# =============================================================================
# Shape ops
# =============================================================================

def flatten(x, start_dim=1, end_dim=-1):
    """Merge axes ``start_dim`` .. ``end_dim`` into one.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.flatten(nn.Tensor(np.zeros((2, 3, 4, 5)))).shape
    (2, 60)
    """
    x = _tensor(x, "x", "flatten")
    nd = max(x.ndim, 1)
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} must not come after end_dim {end_dim}")
    shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return x.reshape(shape)


class Cat(Function):
    def forward(self, *arrays, dim=1):
        self.sizes = [a.shape[dim] for a in arrays]
        self.dim = dim
        return np.concatenate(arrays, axis=dim)

    def backward(self, g):
        return tuple(np.split(g, np.cumsum(self.sizes)[:-1], axis=self.dim))


def cat(tensors, dim=1):
    """Concatenate tensors along ``dim`` (default 1, the channels).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.cat([nn.Tensor(np.zeros((1, 2))), nn.Tensor(np.ones((1, 3)))]).shape
    (1, 5)
    """
    tensors = [_tensor(t, f"tensors[{i}]", "cat") for i, t in enumerate(tensors)]
    if not tensors:
        raise ValueError("cat: tensors must not be empty")
    nd = tensors[0].ndim
    if any(t.ndim != nd for t in tensors):
        raise ValueError(f"cat: all tensors must have the same number of axes, got "
                         f"{[t.shape for t in tensors]}")
    if not -nd <= dim < nd:
        raise ValueError(f"cat: dim must be in [{-nd}, {nd}), got {dim}")
    return Cat.apply(*tensors, dim=dim % nd)


# =============================================================================
# Softmax and losses
# =============================================================================

def _log_softmax(x, dim):
    m = x.max(axis=dim, keepdims=True)
    z = x - m
    return z - np.log(np.exp(z).sum(axis=dim, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, dim=-1):
        self.dim = dim
        self.y = _log_softmax(x, dim)
        return self.y

    def backward(self, g):
        return (g - np.exp(self.y) * g.sum(axis=self.dim, keepdims=True),)


def log_softmax(x, dim=-1):
    """log(softmax(x)) along ``dim``, computed stably.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> np.exp(F.log_softmax(nn.Tensor([[1.0, 1.0]])).numpy())
    array([[0.5, 0.5]], dtype=float32)
    """
    return LogSoftmax.apply(_float_tensor(x, "x", "log_softmax"), dim=dim)


def softmax(x, dim=-1):
    """exp(log_softmax(x)) along ``dim``.

    Examples
    --------
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.softmax(nn.Tensor([[0.0, 0.0]])).numpy()
    array([[0.5, 0.5]], dtype=float32)
    """
    return log_softmax(x, dim).exp()


def _labels(labels, n, C, what):
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{what}: labels must be integer class indices, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{what}: labels must have shape ({n},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"{what}: labels must be in [0, {C}), got values in "
                         f"[{y.min()}, {y.max()}]")
    return y


_REDUCTIONS = ("mean", "sum", "none")


class NLLLoss(Function):
    """-logp[i, labels[i]], reduced; ``logp`` are log-probabilities."""

    def forward(self, logp, labels, reduction, softmax_first):
        self.labels, self.reduction, self.n = labels, reduction, logp.shape[0]
        self.logp = _log_softmax(logp, 1) if softmax_first else None
        self.shape, self.dtype = logp.shape, logp.dtype
        lp = self.logp if softmax_first else logp
        losses = -lp[np.arange(self.n), labels]
        if reduction == "none":
            return losses
        return np.asarray(losses.sum() / (self.n if reduction == "mean" else 1), dtype=logp.dtype)

    def backward(self, g):
        scale = g / self.n if self.reduction == "mean" else g
        if self.reduction == "none":
            scale = g[:, None]
        gx = np.zeros(self.shape, dtype=self.dtype)
        gx[np.arange(self.n), self.labels] = -1
        if self.logp is not None:
            # Fused log_softmax: d/dz = softmax - onehot.
            gx += np.exp(self.logp)
        return (gx * scale,)


def _loss_args(x, labels, reduction, what):
    x = _float_tensor(x, "logits" if what == "cross_entropy" else "input", what)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected (N, classes) scores, got shape {x.shape}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{what}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return x, _labels(labels, x.shape[0], x.shape[1], what)


def cross_entropy(logits, labels, reduction="mean"):
    """Softmax cross-entropy of (N, classes) scores against integer labels.

    Parameters
    ----------
    logits : Tensor, shape (N, classes)
    labels : array_like of int, shape (N,)
    reduction : {'mean', 'sum', 'none'}

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> z = nn.Tensor(np.zeros((2, 4)), requires_grad=True)
    >>> loss = F.cross_entropy(z, np.array([0, 3]))
    >>> round(loss.item(), 4)  # log(4): uniform over 4 classes
    1.3863
    """
    x, y = _loss_args(logits, labels, reduction, "cross_entropy")
    return NLLLoss.apply(x, labels=y, reduction=reduction, softmax_first=True)


def nll_loss(logp, labels, reduction="mean"):
    """Negative log-likelihood of (N, classes) log-probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.nll_loss(nn.Tensor(np.log([[0.5, 0.5]])), np.array([1])).item()
    0.6931471805599453
    """
    x, y = _loss_args(logp, labels, reduction, "nll_loss")
    return NLLLoss.apply(x, labels=y, reduction=reduction, softmax_first=False)


def mse_loss(x, target, reduction="mean"):
    """Mean squared error.

    Examples
    --------
    >>> from fastconv import nn
    >>> import fastconv.nn.functional as F
    >>> F.mse_loss(nn.Tensor([1.0, 3.0]), nn.Tensor([1.0, 1.0])).item()
    2.0
    """
    x = _float_tensor(x, "x", "mse_loss")
    target = _float_tensor(target, "target", "mse_loss")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    d = x - target
    sq = d * d
    return sq if reduction == "none" else (sq.mean() if reduction == "mean" else sq.sum())
