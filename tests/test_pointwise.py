"""The ``pointwise`` kernels (eval-mode batch norm's channel affine map, ReLU) of
both engines, and the nn functions that run on them.

The oracle is numpy's own path, bit for bit: the kernels must round x*scale
and then + shift as two numpy ufuncs do (no FMA), and keep np.maximum's NaN
and signed-zero rules.
"""
import subprocess
import sys

import numpy as np
import pytest

import fastconv.nn.functional as F
from fastconv import _engines, nn

# The special values overflow on purpose (finfo.max * scale).
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

DTYPES = [np.float32, np.float64]
UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}

# Named shapes (N, C, ...): the channel is axis 1, the trailing axes one plane.
SHAPES = {
    "conv-4d": (3, 5, 7, 9),
    "bn1d-2d": (37, 19),            # one element per plane: channel changes every element
    "bn1d-3d": (4, 6, 33),
    "one-image": (1, 3, 16, 16),
    "tiny": (1, 1, 1),
}


def _pointwise_engines():
    out = []
    if _engines.has("cython", "pointwise"):
        out.append("cython")
    if _engines.numba_available():
        out.append("numba")
    return out


@pytest.fixture(params=_pointwise_engines())
def engine(request):
    return request.param


@pytest.fixture
def kern(engine):
    return _engines.kernels(engine, "pointwise")


def assert_bitwise(out, ref):
    assert out.dtype == ref.dtype and out.shape == ref.shape
    u = UINT[out.dtype]
    bad = np.flatnonzero(out.view(u) != ref.view(u))
    assert bad.size == 0, (f"{bad.size} elements differ, first at flat {bad[0]}: "
                           f"{out.flat[bad[0]]!r} vs {ref.flat[bad[0]]!r}")


def with_specials(x):
    """x with NaNs of both signs, infinities, signed zeros, tiny and huge values."""
    x = x.copy()
    f = x.reshape(-1)
    dt = x.dtype.type
    specials = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, np.finfo(x.dtype).tiny / 4,
                -np.finfo(x.dtype).tiny / 4, np.finfo(x.dtype).max, -np.finfo(x.dtype).max]
    for i, v in enumerate(specials):
        f[(7 * i + 3) % f.size::11] = dt(v)
    return x


def affine_numpy(x, scale, shift, relu=False):
    """The numpy path of BatchNorm's eval branch."""
    b = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = np.multiply(x, scale.reshape(b))
    y += shift.reshape(b)
    return np.maximum(y, y.dtype.type(0)) if relu else y


def affine_kernel(kern, x, scale, shift, relu=False, n_threads=2, out=None):
    y = np.empty_like(x) if out is None else out
    shape3 = x.shape[:2] + (int(np.prod(x.shape[2:])),)
    kern.channel_affine(x.reshape(shape3), scale, shift, y.reshape(shape3), relu, n_threads)
    return y


def operands(rng, shape, dtype):
    x = with_specials((rng.standard_normal(shape) * 3).astype(dtype))
    C = shape[1]
    scale = rng.standard_normal(C).astype(dtype)
    shift = rng.standard_normal(C).astype(dtype)
    return x, scale, shift


class TestReluGrad:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("n_threads", [1, 2, 3])
    def test_selects_the_gradient_where_the_output_is_positive(self, kern, dtype, n_threads, rng):
        y = np.maximum(rng.standard_normal(40_001).astype(dtype), dtype(0))
        y[:4] = [np.nan, 0.0, -0.0, 1.0]
        g = rng.standard_normal(y.size).astype(dtype)
        g[4:8] = [np.nan, np.inf, -np.inf, np.nan]
        y[4:8] = [0.0, 0.0, 0.0, 2.0]
        gx = np.full_like(g, 7.0)
        kern.relu_grad(g, y, gx, n_threads)
        assert_bitwise(gx, np.where(y > 0, g, dtype(0)))

    def test_matches_torch_threshold_backward(self, kern, rng):
        torch = pytest.importorskip("torch")
        x = rng.standard_normal(50_000).astype(np.float32)
        g = rng.standard_normal(x.size).astype(np.float32)
        g[::7] = np.nan
        xt = torch.from_numpy(x).requires_grad_()
        torch.relu(xt).backward(torch.from_numpy(g))
        y = np.maximum(x, np.float32(0))
        gx = np.empty_like(g)
        kern.relu_grad(g, y, gx, 2)
        np.testing.assert_array_equal(gx, xt.grad.numpy())

    def test_in_place_and_lengths_checked(self, kern, rng):
        y = np.abs(rng.standard_normal(30_000))
        g = rng.standard_normal(y.size)
        ref = np.where(y > 0, g, 0.0)
        kern.relu_grad(g, y, g, 2)
        assert_bitwise(g, ref)
        with pytest.raises(ValueError, match="one length"):
            kern.relu_grad(g, y[:-1], g, 2)


class TestChannelAffine:
    @pytest.mark.parametrize("n_threads", [1, 2, 5])
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
    def test_matches_numpy_bit_for_bit(self, kern, shape, dtype, n_threads, rng):
        x, scale, shift = operands(rng, SHAPES[shape], dtype)
        assert_bitwise(affine_kernel(kern, x, scale, shift, n_threads=n_threads),
                       affine_numpy(x, scale, shift))

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
    def test_fused_relu_matches_numpy_maximum(self, kern, shape, dtype, rng):
        x, scale, shift = operands(rng, SHAPES[shape], dtype)
        assert_bitwise(affine_kernel(kern, x, scale, shift, relu=True),
                       affine_numpy(x, scale, shift, relu=True))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_rounds_product_then_sum_not_fused(self, kern, dtype, rng):
        # On these operands a fused multiply-add rounds differently from
        # numpy's two roundings somewhere; the kernel must give numpy's.
        x = rng.standard_normal((4, 3, 4096)).astype(dtype)
        scale = rng.standard_normal(3).astype(dtype)
        shift = rng.standard_normal(3).astype(dtype)
        ref = affine_numpy(x, scale, shift)
        if dtype == np.float32:   # float64 holds x*s exactly: one rounding, as an FMA
            fused = (x.astype(np.float64) * scale[:, None] + shift[:, None]).astype(dtype)
            assert (fused != ref).any()
        assert_bitwise(affine_kernel(kern, x, scale, shift), ref)

    @pytest.mark.parametrize("relu", [False, True])
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_in_place(self, kern, dtype, relu, rng):
        x, scale, shift = operands(rng, (2, 4, 10, 10), dtype)
        ref = affine_numpy(x, scale, shift, relu)
        y = affine_kernel(kern, x, scale, shift, relu, out=x)
        assert y is x
        assert_bitwise(x, ref)

    def test_ranges_split_inside_planes(self, kern, rng):
        # More threads than planes and ranges that start mid-plane.
        x, scale, shift = operands(rng, (1, 2, 7, 5), np.float32)
        for n_threads in (1, 2, 3, 4, 8):
            assert_bitwise(affine_kernel(kern, x, scale, shift, n_threads=n_threads),
                           affine_numpy(x, scale, shift))

    def test_rows_split_mid_row(self, kern, rng):
        # (N, C): ranges of 16 elements cut rows of 19 channels anywhere.
        x, scale, shift = operands(rng, (40, 19), np.float64)
        for n_threads in (2, 7, 16):
            assert_bitwise(affine_kernel(kern, x, scale, shift, n_threads=n_threads),
                           affine_numpy(x, scale, shift))

    def test_empty_batch_writes_nothing(self, kern):
        x = np.zeros((0, 3, 4, 4), np.float32)
        y = affine_kernel(kern, x, np.ones(3, np.float32), np.ones(3, np.float32))
        assert y.shape == (0, 3, 4, 4)


class TestRelu:
    @pytest.mark.parametrize("n_threads", [1, 2, 5])
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_matches_np_maximum_bit_for_bit(self, kern, dtype, n_threads, rng):
        x = with_specials(rng.standard_normal(1001).astype(dtype))
        y = np.empty_like(x)
        kern.relu(x, y, n_threads)
        assert_bitwise(y, np.maximum(x, dtype(0)))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_nan_propagates_and_negative_zero_becomes_zero(self, kern, dtype):
        x = np.array([np.nan, -np.nan, -0.0, 0.0, -np.inf, np.inf, -1.5, 2.5], dtype)
        y = np.empty_like(x)
        kern.relu(x, y, 1)
        assert np.isnan(y[:2]).all() and np.signbit(y[1])   # the same NaN, sign and all
        assert not np.signbit(y[2]) and y[2] == 0
        assert list(y[3:]) == [0, 0, np.inf, 0, 2.5]
        assert_bitwise(y, np.maximum(x, dtype(0)))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_in_place(self, kern, dtype, rng):
        x = with_specials(rng.standard_normal(333).astype(dtype))
        ref = np.maximum(x, dtype(0))
        kern.relu(x, x, 2)
        assert_bitwise(x, ref)

    def test_empty(self, kern):
        x = np.zeros(0, np.float32)
        kern.relu(x, x, 2)


# -----------------------------------------------------------------------------
# nn functions: the kernels where they pay, numpy's path elsewhere, same bits
# -----------------------------------------------------------------------------

@pytest.fixture
def forced(engine, monkeypatch):
    """Run the nn functions on one engine's kernels, from any size up; count calls."""
    calls = []
    mod = _engines.kernels(engine, "pointwise")

    class Spy:
        def channel_affine(self, *a):
            calls.append("channel_affine")
            return mod.channel_affine(*a)

        def relu(self, *a):
            calls.append("relu")
            return mod.relu(*a)

    monkeypatch.setattr(F, "_pointwise",
                        lambda stem="pointwise": (engine, Spy()) if stem == "pointwise" else None)
    monkeypatch.setattr(F, "_POINTWISE_MIN", {engine: 1})
    return calls


def numpy_only(fn, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(F, "_pointwise", lambda stem="pointwise": None)
        return fn()


def eval_bn(x, C, rng, dtype=None, wdtype=None):
    dtype = dtype or x.dtype
    wdtype = wdtype or dtype
    rm = rng.standard_normal(C).astype(dtype)
    rv = (rng.random(C) + 0.5).astype(dtype)
    w = nn.Tensor(rng.standard_normal(C).astype(wdtype))
    b = nn.Tensor(rng.standard_normal(C).astype(wdtype))
    return lambda: F.batch_norm(nn.Tensor(x), rm, rv, w, b, training=False).numpy()


class TestBatchNormEval:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", ["conv-4d", "bn1d-2d", "bn1d-3d"])
    def test_kernel_equals_numpy_path(self, forced, shape, dtype, rng, monkeypatch):
        x = with_specials(rng.standard_normal(SHAPES[shape]).astype(dtype))
        bn = eval_bn(x, x.shape[1], rng)
        with nn.no_grad():
            ref = numpy_only(bn, monkeypatch)
            out = bn()
        assert forced == ["channel_affine"]
        assert_bitwise(out, ref)

    def test_module_in_eval_mode(self, forced, rng, monkeypatch):
        m = nn.BatchNorm1d(6)
        m.running_mean.data[:] = rng.standard_normal(6)
        m.running_var.data[:] = rng.random(6) + 0.5
        m.eval()
        x = nn.Tensor(rng.standard_normal((9, 6)).astype(np.float32))
        with nn.no_grad():
            ref = numpy_only(lambda: m(x).numpy(), monkeypatch)
            out = m(x).numpy()
        assert forced == ["channel_affine"]
        assert_bitwise(out, ref)

    def test_float64_weights_on_float32_input_keep_numpy_promotion(self, forced, rng,
                                                                   monkeypatch):
        x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
        bn = eval_bn(x, 3, rng, wdtype=np.float64)
        with nn.no_grad():
            ref = numpy_only(bn, monkeypatch)
            out = bn()
        assert forced == [] and out.dtype == np.float64
        assert_bitwise(out, ref)

    @pytest.mark.parametrize("make", [
        lambda a: a.transpose(0, 1, 3, 2),                       # not C-contiguous
        lambda a: a.astype(a.dtype.newbyteorder()),              # not native
    ], ids=["strided", "byteswapped"])
    def test_other_layouts_take_numpy_path(self, forced, make, rng, monkeypatch):
        x = make(rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
        bn = eval_bn(x, 3, rng, dtype=np.float32)
        with nn.no_grad():
            ref = numpy_only(bn, monkeypatch)
            out = bn()
        assert forced == []
        assert_bitwise(out, ref)

    def test_small_input_takes_numpy_path(self, engine, rng, monkeypatch):
        calls = []
        monkeypatch.setattr(F, "_pointwise",
                            lambda stem="pointwise": (engine, type("S", (), {
                                "channel_affine": lambda self, *a: calls.append(1)})()))
        x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
        with nn.no_grad():
            eval_bn(x, 3, rng)()
        assert calls == []

    def test_training_path_untouched(self, forced, rng):
        x = nn.Tensor(rng.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True)
        F.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32), training=True).sum() \
            .backward()
        assert forced == [] and x.grad.shape == (4, 3, 5, 5)


class TestReluFunction:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_kernel_equals_np_maximum(self, forced, dtype, rng):
        x = with_specials(rng.standard_normal((3, 4, 5, 6)).astype(dtype))
        out = F.relu(nn.Tensor(x)).numpy()
        assert forced == ["relu"]
        assert_bitwise(out, np.maximum(x, dtype(0)))

    def test_gradient_still_masks(self, forced, rng):
        x = nn.Tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
        F.relu(x).sum().backward()
        assert forced == ["relu"]
        np.testing.assert_array_equal(x.grad, (x.numpy() > 0).astype(x.dtype))

    def test_one_dimensional_input_takes_numpy_path(self, forced):
        out = F.relu(nn.Tensor(np.array([-1.0, np.nan, 2.0]))).numpy()
        assert forced == []
        assert np.isnan(out[1]) and list(out[[0, 2]]) == [0, 2]


class TestThresholds:
    def test_threads_grow_with_size(self, monkeypatch):
        monkeypatch.setattr(F, "_pointwise", lambda stem="pointwise": ("cython", object()))
        monkeypatch.setattr(F, "get_num_threads", lambda: 4)
        small = np.zeros((1, 1, 1 << 14), np.float32)
        big = np.zeros((8, 256, 56, 56), np.float32)
        assert F._pointwise_for(small)[1] == 1
        assert F._pointwise_for(big)[1] == 4
        assert F._pointwise_for(np.zeros((1, 1, 100), np.float32)) is None

    def test_import_compiles_nothing(self):
        code = ("import sys, fastconv, fastconv.nn, fastconv.nn.functional; "
                "print(any(m.startswith('fastconv._numba') for m in sys.modules), "
                "'numba' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.split()
        assert out == ["False", "False"]
