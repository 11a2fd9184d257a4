"""fastconv.nn's autograd: values and gradients of every op against PyTorch and
central finite differences (float64), the pooling kernels of both engines, and
the graph mechanics (accumulation, broadcasting, no_grad, retain_graph)."""
import numpy as np
import pytest

import fastconv.nn.functional as F
from fastconv import _dispatch, _engines, nn
from fastconv._validation import conv2d_args
from fastconv.backends import direct as direct_backend
from fastconv.nn.tensor import Function, Tensor, unbroadcast

from conftest import TOL, rel_err, run_isolated

torch = pytest.importorskip("torch")


def _torch_run(fn, arrays, grad_out_seed=0):
    """Run ``fn`` on torch leaves made from ``arrays``; return (out, grads, g)."""
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    g = np.random.default_rng(grad_out_seed).standard_normal(out.shape).astype(arrays[0].dtype)
    out.backward(torch.tensor(g))
    return out.detach().numpy(), [t.grad.numpy() for t in leaves], g


def _ours_run(fn, arrays, g):
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(g)
    return out.numpy(), [t.grad for t in leaves]


def check_against_torch(ours, theirs, arrays, tol=None):
    ref_out, ref_grads, g = _torch_run(theirs, arrays)
    out, grads = _ours_run(ours, arrays, g)
    tol = tol or TOL[arrays[0].dtype]
    assert out.dtype == arrays[0].dtype
    assert out.shape == ref_out.shape
    assert rel_err(out, ref_out) < tol
    for a, gr, rg in zip(arrays, grads, ref_grads):
        assert gr.dtype == a.dtype and gr.shape == a.shape
        assert rel_err(gr, rg) < tol


def finite_difference_check(fn, arrays, eps=1e-6, tol=1e-6, seed=1):
    """Compare the analytic gradient of sum(fn(*x) * g) with central differences."""
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g)
    for leaf, a in zip(leaves, arrays):
        num = np.zeros_like(a)
        it = np.nditer(a, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            old = a[i]
            a[i] = old + eps
            fp = (fn(*[Tensor(b) for b in arrays]).numpy() * g).sum()
            a[i] = old - eps
            fm = (fn(*[Tensor(b) for b in arrays]).numpy() * g).sum()
            a[i] = old
            num[i] = (fp - fm) / (2 * eps)
        assert rel_err(leaf.grad, num) < tol


DTYPES = [np.float32, np.float64]

CONV_CASES = {
    "lenet-conv1": dict(x=(2, 1, 12, 12), w=(3, 1, 5, 5), padding=2),
    "stride2-pad1": dict(x=(2, 3, 9, 8), w=(4, 3, 3, 3), stride=2, padding=1),
    "dilation2": dict(x=(1, 2, 10, 10), w=(3, 2, 3, 3), dilation=2),
    "groups2-asym": dict(x=(2, 4, 7, 9), w=(6, 2, 3, 2), groups=2, stride=(2, 1), padding=(1, 0)),
    "depthwise": dict(x=(2, 3, 6, 6), w=(3, 1, 3, 3), groups=3, padding=1),
    "1x1": dict(x=(2, 5, 4, 4), w=(3, 5, 1, 1)),
    "alexnet-conv1-like": dict(x=(1, 3, 23, 23), w=(4, 3, 11, 11), stride=4, padding=2),
    # fewer output pixels (2x2x2) than output channels: the input gradient
    # runs GEMM + col2im at stride 1 (ResNet's last stage on small inputs)
    "weight-bound": dict(x=(2, 4, 2, 2), w=(10, 4, 3, 3), padding=1),
}


@pytest.fixture(params=["direct", "im2col"])
def weight_grad_path(request, monkeypatch):
    """Force the weight gradient through the direct kernel or im2col + GEMM."""
    monkeypatch.setattr(F, "_DIRECT_WGRAD_MAX_WEIGHTS", 1 << 40 if request.param == "direct" else -1)
    return request.param


@pytest.fixture(params=["convolution", "columns"])
def input_grad_path(request, monkeypatch):
    """Force a stride-1 input gradient through the flipped-filter convolution or GEMM + col2im."""
    monkeypatch.setattr(F, "_weight_bound", lambda p: request.param == "columns")
    return request.param


class TestConv2d:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", list(CONV_CASES), ids=list(CONV_CASES))
    def test_matches_torch_values_and_gradients(self, case, dtype, rng, weight_grad_path):
        c = dict(CONV_CASES[case])
        xs, ws = c.pop("x"), c.pop("w")
        arrays = [rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
                  rng.standard_normal(ws[0]).astype(dtype)]
        check_against_torch(lambda x, w, b: F.conv2d(x, w, b, **c),
                            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **c), arrays)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", list(CONV_CASES), ids=list(CONV_CASES))
    def test_both_input_gradient_paths_match_torch(self, case, dtype, rng, input_grad_path):
        c = dict(CONV_CASES[case])
        xs, ws = c.pop("x"), c.pop("w")
        arrays = [rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)]
        check_against_torch(lambda x, w: F.conv2d(x, w, **c),
                            lambda x, w: torch.nn.functional.conv2d(x, w, **c), arrays)

    def test_a_weight_bound_layer_takes_the_column_path(self):
        from fastconv._validation import conv2d_args as args
        bound = args(np.zeros((2, 4, 2, 2)), np.zeros((10, 4, 3, 3)), None, 1, 1, 1, 1)[3]
        wide = args(np.zeros((2, 4, 8, 8)), np.zeros((10, 4, 3, 3)), None, 1, 1, 1, 1)[3]
        depthwise = args(np.zeros((1, 8, 4, 4)), np.zeros((8, 1, 3, 3)), None, 1, 1, 1, 8)[3]
        assert F._weight_bound(bound) and not F._weight_bound(wide) and not F._weight_bound(depthwise)

    @pytest.mark.parametrize("case", ["stride2-pad1", "groups2-asym", "lenet-conv1"])
    def test_batch_tiled_backward_matches_torch(self, case, rng, monkeypatch):
        # A tiny column budget forces one image per tile (of im2col's weight gradient).
        monkeypatch.setattr(F, "_COLS_BYTES", 1)
        monkeypatch.setattr(F, "_DIRECT_WGRAD_MAX_WEIGHTS", -1)
        c = dict(CONV_CASES[case])
        xs, ws = c.pop("x"), c.pop("w")
        arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
        check_against_torch(lambda x, w, b: F.conv2d(x, w, b, **c),
                            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **c), arrays)

    @pytest.mark.parametrize("engine", _dispatch.engines("direct"))
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", list(CONV_CASES), ids=list(CONV_CASES))
    def test_direct_weight_gradient_kernel_matches_torch(self, case, dtype, engine, rng):
        c = dict(CONV_CASES[case])
        xs, ws = c.pop("x"), c.pop("w")
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        x4, w4, _, p, _ = conv2d_args(x, w, None, c.get("stride", 1), c.get("padding", 0),
                                      c.get("dilation", 1), c.get("groups", 1))
        gy = rng.standard_normal(p.out_shape).astype(dtype)
        tw = torch.from_numpy(w.astype(np.float64)).requires_grad_()
        torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)), tw, **c).backward(
            torch.from_numpy(gy.astype(np.float64)))
        got = direct_backend.weight_grad(x4, gy, p, engine, 2)
        assert got.dtype == dtype
        assert rel_err(got, tw.grad.numpy()) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("engine", _dispatch.engines("direct"))
    @pytest.mark.parametrize("case", ["lenet-conv1", "stride2-pad1", "groups2-asym"])
    def test_direct_weight_gradient_in_image_chunks(self, case, engine, rng, monkeypatch):
        # One image per chunk (the sums then added chunk by chunk) against
        # one chunk of all: equal within rounding, and each the same bits on
        # any thread count.
        c = dict(CONV_CASES[case])
        xs, ws = (5,) + c.pop("x")[1:], c.pop("w")
        x = rng.standard_normal(xs).astype(np.float32)
        x4, _, _, p, _ = conv2d_args(x, rng.standard_normal(ws).astype(np.float32), None,
                                     c.get("stride", 1), c.get("padding", 0), 1, c.get("groups", 1))
        gy = rng.standard_normal(p.out_shape).astype(np.float32)
        whole = direct_backend.weight_grad(x4, gy, p, engine, 2)
        monkeypatch.setattr(direct_backend, "WGRAD_CHUNK_BYTES", 1)
        chunked = [direct_backend.weight_grad(x4, gy, p, engine, nt) for nt in (1, 2, 3)]
        assert rel_err(chunked[0], whole) < 1e-6
        assert all(np.array_equal(ch, chunked[0]) for ch in chunked[1:])

    def test_same_padding_even_kernel(self, rng):
        # TensorFlow SAME with an even kernel pads asymmetrically: the
        # stride-1 input gradient must crop the full correlation.
        arrays = [rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((3, 2, 2, 4)),
                  rng.standard_normal(3)]
        finite_difference_check(lambda x, w, b: F.conv2d(x, w, b, padding="same"), arrays)

    def test_gradient_matches_finite_differences(self, rng):
        arrays = [rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3)),
                  rng.standard_normal(2)]
        finite_difference_check(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), arrays)

    def test_without_bias_and_frozen_input(self, rng):
        x = Tensor(rng.standard_normal((1, 1, 4, 4)))
        w = Tensor(rng.standard_normal((1, 1, 2, 2)), requires_grad=True)
        F.conv2d(x, w).sum().backward()
        assert x.grad is None and w.grad.shape == (1, 1, 2, 2)

    def test_rejects_integer_input(self):
        with pytest.raises(TypeError, match="x must be a floating"):
            F.conv2d(Tensor(np.ones((1, 1, 3, 3), np.int64)), Tensor(np.ones((1, 1, 2, 2))))

    def test_rejects_bad_weight_shape(self):
        with pytest.raises(ValueError, match="weight"):
            F.conv2d(Tensor(np.ones((1, 2, 3, 3))), Tensor(np.ones((1, 1, 2, 2))))


def _pool_engines():
    out = []
    if _engines.has("cython", "pool"):
        out.append("cython")
    if _engines.numba_available():
        out.append("numba")
    return out


@pytest.fixture(params=_pool_engines())
def pool_engine(request, monkeypatch):
    """Force the pooling kernels of one engine."""
    mod = _engines.kernels(request.param, "pool")
    monkeypatch.setattr(F, "_pool_kernels", lambda: mod)
    return request.param


POOL_CASES = {
    "2x2": dict(kernel_size=2),
    "alexnet-3s2": dict(kernel_size=3, stride=2),
    "pad1": dict(kernel_size=3, stride=2, padding=1),
    "ceil": dict(kernel_size=3, stride=2, ceil_mode=True),
    "ceil-pad-asym": dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True),
    "overlap-s1": dict(kernel_size=3, stride=1),
}


class TestMaxPool2d:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", list(POOL_CASES), ids=list(POOL_CASES))
    def test_matches_torch(self, case, dtype, pool_engine, rng):
        kw = POOL_CASES[case]
        x = rng.standard_normal((2, 3, 9, 10)).astype(dtype)
        check_against_torch(lambda t: F.max_pool2d(t, **kw),
                            lambda t: torch.nn.functional.max_pool2d(t, **kw), [x])

    def test_overlapping_windows_accumulate_gradient(self, pool_engine):
        # One global maximum read by every window: its gradient is their sum.
        x = np.zeros((1, 1, 5, 5))
        x[0, 0, 2, 2] = 1.0
        t = Tensor(x, requires_grad=True)
        F.max_pool2d(t, 3, stride=1).sum().backward()
        assert t.grad[0, 0, 2, 2] == 9 and t.grad.sum() == 9

    def test_nan_propagates(self, pool_engine):
        x = np.ones((1, 1, 2, 2), np.float32)
        x[0, 0, 1, 0] = np.nan
        assert np.isnan(F.max_pool2d(Tensor(x), 2).item())

    def test_3d_input(self, pool_engine, rng):
        x = rng.standard_normal((3, 4, 4))
        assert F.max_pool2d(Tensor(x), 2).shape == (3, 2, 2)

    def test_rejects_padding_over_half_kernel(self):
        with pytest.raises(ValueError, match="padding"):
            F.max_pool2d(Tensor(np.ones((1, 1, 4, 4))), 2, padding=2)

    def test_rejects_kernel_larger_than_input(self):
        with pytest.raises(ValueError, match="kernel_size"):
            F.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3)

    def test_rejects_bad_kernel_size(self):
        with pytest.raises(ValueError, match="kernel_size"):
            F.max_pool2d(Tensor(np.ones((1, 1, 4, 4))), 0)


class TestAvgPool2d:
    @pytest.mark.parametrize("count_include_pad", [True, False])
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", list(POOL_CASES), ids=list(POOL_CASES))
    def test_matches_torch(self, case, dtype, count_include_pad, pool_engine, rng):
        kw = dict(POOL_CASES[case], count_include_pad=count_include_pad)
        x = rng.standard_normal((2, 3, 9, 10)).astype(dtype)
        check_against_torch(lambda t: F.avg_pool2d(t, **kw),
                            lambda t: torch.nn.functional.avg_pool2d(t, **kw), [x])


class TestPoolingExtremeGeometry:
    """Windows, strides and paddings far past the image: computed right or refused by name."""

    @pytest.mark.parametrize("engine", _pool_engines())
    def test_window_wider_than_the_image_returns_at_once(self, engine):
        # A 2**30-wide window (half of it padding) used to walk every one of its taps.
        out = run_isolated(f"""
            import numpy as np
            import fastconv.nn.functional as F
            from fastconv import _engines
            from fastconv.nn.tensor import Tensor
            F._pool_kernels = lambda: _engines.kernels("{engine}", "pool")
            x = np.random.default_rng(0).standard_normal((1, 1, 6, 6))
            k = (2 ** 30, 2 ** 30)
            y = F.max_pool2d(Tensor(x), k, padding=2 ** 29).numpy()
            assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == x.max(), y
            a = F.avg_pool2d(Tensor(x), k, padding=2 ** 29).numpy()
            # divided by the padded area, 2**60
            assert abs(a[0, 0, 0, 0] - x.sum() / 2.0 ** 60) < 1e-12 * np.abs(x).sum() / 2.0 ** 60, a
            b = F.avg_pool2d(Tensor(x), k, padding=2 ** 29, count_include_pad=False).numpy()
            assert abs(b[0, 0, 0, 0] - x.mean()) < 1e-15, b
            print("ok")
        """, timeout=60)
        assert out.strip() == "ok"

    def test_huge_stride_is_computed_right(self, pool_engine, rng):
        x = rng.standard_normal((1, 1, 6, 6))
        kw = dict(kernel_size=2, stride=2 ** 31 - 1)
        check_against_torch(lambda t: F.max_pool2d(t, **kw),
                            lambda t: torch.nn.functional.max_pool2d(t, **kw), [x])
        check_against_torch(lambda t: F.avg_pool2d(t, **kw),
                            lambda t: torch.nn.functional.avg_pool2d(t, **kw), [x])

    @pytest.mark.parametrize("name,kw", [
        ("stride", dict(kernel_size=2, stride=2 ** 63 - 1)),
        ("kernel_size", dict(kernel_size=2 ** 62)),
        ("kernel_size", dict(kernel_size=(2, 2 ** 40), padding=(0, 2 ** 39))),
        ("padding", dict(kernel_size=2, padding=2 ** 31)),
    ])
    @pytest.mark.parametrize("func", ["max_pool2d", "avg_pool2d"])
    def test_past_int32_is_refused_by_name(self, func, name, kw):
        # stride 2**63-1 returned -inf, a 2**40-wide average wrapped its area
        with pytest.raises(ValueError, match=f"{func}: {name} must be < 2\\*\\*31"):
            getattr(F, func)(Tensor(np.ones((1, 1, 6, 6))), **kw)


class TestEmptyPlanes:
    @pytest.mark.parametrize("shape", [(1, 2, 4, 0), (1, 2, 0, 4), (2, 0, 3)])
    @pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
    def test_an_empty_plane_is_refused_naming_x_as_torch_does(self, pool, shape):
        x = torch.zeros(shape)
        with pytest.raises(RuntimeError):
            getattr(torch.nn.functional, pool.__name__)(x, 2, padding=1)
        with pytest.raises(ValueError, match="x must have a non-empty height and width"):
            pool(Tensor(np.zeros(shape)), 2, padding=1)

    def test_an_empty_batch_still_pools(self):
        assert F.max_pool2d(Tensor(np.zeros((0, 1, 4, 4))), 2).shape == (0, 1, 2, 2)


class TestAdaptiveAvgPool2d:
    @pytest.mark.parametrize("size,out", [((7, 7), 1), ((8, 8), (4, 2)), ((13, 11), (6, 6)),
                                          ((5, 5), (7, 3))])
    def test_matches_torch(self, size, out, rng):
        x = rng.standard_normal((2, 3) + size)
        check_against_torch(lambda t: F.adaptive_avg_pool2d(t, out),
                            lambda t: torch.nn.functional.adaptive_avg_pool2d(t, out), [x])


ELEMENTWISE = {
    "relu": (F.relu, torch.relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "log_softmax": (lambda t: F.log_softmax(t, dim=1), lambda t: torch.log_softmax(t, dim=1)),
    "softmax-last": (F.softmax, lambda t: torch.softmax(t, dim=-1)),
    "flatten": (F.flatten, lambda t: torch.flatten(t, 1)),
    "exp": (lambda t: t.exp(), torch.exp),
    "square": (lambda t: t ** 2, lambda t: t ** 2),
    "neg-sum-keepdims": (lambda t: (-t).sum(axis=(1, 3), keepdims=True),
                         lambda t: (-t).sum(dim=(1, 3), keepdim=True)),
    "mean-axis": (lambda t: t.mean(axis=2), lambda t: t.mean(dim=2)),
    "reshape-transpose": (lambda t: t.reshape(3, -1).transpose(), lambda t: t.reshape(3, -1).T),
    "transpose-axes": (lambda t: t.transpose(0, 2, 3, 1), lambda t: t.permute(0, 2, 3, 1)),
    "slice": (lambda t: t[:, 1:, ::2], lambda t: t[:, 1:, ::2]),
    "fancy-repeated": (lambda t: t[[0, 0, 2]], lambda t: t[[0, 0, 2]]),
    "lrn": (lambda t: F.local_response_norm(t, 3, alpha=0.5, beta=0.75, k=2.0),
            lambda t: torch.nn.functional.local_response_norm(t, 3, alpha=0.5, beta=0.75, k=2.0)),
    "lrn-even": (lambda t: F.local_response_norm(t, 2, alpha=1.0),
                 lambda t: torch.nn.functional.local_response_norm(t, 2, alpha=1.0)),
}


class TestElementwiseAndShapeOps:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("name", list(ELEMENTWISE), ids=list(ELEMENTWISE))
    def test_matches_torch(self, name, dtype, rng):
        ours, theirs = ELEMENTWISE[name]
        x = rng.standard_normal((3, 4, 5, 2)).astype(dtype)
        check_against_torch(ours, theirs, [x])

    @pytest.mark.parametrize("name", ["sigmoid", "tanh", "log_softmax", "lrn"])
    def test_gradient_matches_finite_differences(self, name, rng):
        finite_difference_check(ELEMENTWISE[name][0], [rng.standard_normal((2, 4, 2, 2))])

    def test_sigmoid_does_not_overflow(self):
        y = F.sigmoid(Tensor(np.array([-1000.0, 1000.0], np.float32))).numpy()
        assert np.all(np.isfinite(y)) and y[0] == 0 and y[1] == 1

    def test_cat_matches_torch(self, rng):
        arrays = [rng.standard_normal((2, c, 3)) for c in (1, 3, 2)]
        check_against_torch(lambda *t: F.cat(t, dim=1), lambda *t: torch.cat(t, dim=1), arrays)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1),
}


class TestArithmetic:
    @pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)),
                                        ((1,), (2, 3))], ids=str)
    @pytest.mark.parametrize("op", list(BINARY))
    def test_broadcast_gradients_match_torch(self, op, shapes, rng):
        arrays = [rng.standard_normal(s) for s in shapes]
        check_against_torch(BINARY[op], BINARY[op], arrays)

    @pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (4, 3)),
                                        ((3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2))], ids=str)
    def test_matmul_gradients_match_torch(self, shapes, rng):
        arrays = [rng.standard_normal(s) for s in shapes]
        check_against_torch(lambda a, b: a @ b, lambda a, b: a @ b, arrays)

    def test_scalars_keep_float32(self):
        t = Tensor(np.ones(2, np.float32), requires_grad=True)
        y = 2 * t + 1.5 - t / 3.0
        assert y.dtype == np.float32
        y.sum().backward()
        assert t.grad.dtype == np.float32

    def test_numpy_array_on_the_left_gives_a_tensor(self):
        t = Tensor(np.ones(2), requires_grad=True)
        y = np.array([1.0, 2.0]) * t
        assert isinstance(y, Tensor)
        y.sum().backward()
        np.testing.assert_array_equal(t.grad, [1.0, 2.0])

    def test_unbroadcast_sums_leading_and_unit_axes(self):
        assert unbroadcast(np.ones((2, 3, 4)), (3, 1)).tolist() == [[8.0]] * 3


class TestLinearAndLosses:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_linear_matches_torch(self, dtype, rng):
        arrays = [rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype),
                  rng.standard_normal(3).astype(dtype)]
        check_against_torch(F.linear, torch.nn.functional.linear, arrays)

    def test_linear_on_3d_input(self, rng):
        arrays = [rng.standard_normal((2, 5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)]
        check_against_torch(F.linear, torch.nn.functional.linear, arrays)

    @pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_cross_entropy_matches_torch(self, dtype, reduction, rng):
        logits = (rng.standard_normal((6, 5)) * 3).astype(dtype)
        labels = rng.integers(0, 5, 6)
        check_against_torch(
            lambda z: F.cross_entropy(z, labels, reduction=reduction),
            lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(labels), reduction=reduction),
            [logits])

    def test_cross_entropy_finite_differences(self, rng):
        labels = np.array([0, 2, 1])
        finite_difference_check(lambda z: F.cross_entropy(z, labels), [rng.standard_normal((3, 4))])

    def test_cross_entropy_rejects_out_of_range_labels(self):
        with pytest.raises(ValueError, match="labels"):
            F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3]))

    def test_cross_entropy_rejects_float_labels(self):
        with pytest.raises(TypeError, match="labels"):
            F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))

    def test_nll_loss_matches_torch(self, rng):
        labels = rng.integers(0, 4, 5)
        check_against_torch(lambda z: F.nll_loss(z, labels),
                            lambda z: torch.nn.functional.nll_loss(z, torch.tensor(labels)),
                            [rng.standard_normal((5, 4))])

    def test_mse_loss_matches_torch(self, rng):
        check_against_torch(F.mse_loss, torch.nn.functional.mse_loss,
                            [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))])


def _bn_paths():
    out = ["numpy"]
    for eng in ("cython", "numba"):
        if _engines.has(eng, "batch_norm") and _engines.has(eng, "pointwise"):
            out.append(eng)
    return out


@pytest.fixture(params=_bn_paths())
def bn_path(request, monkeypatch):
    """Batch norm on numpy's passes, or forced onto one engine's batch_norm and
    pointwise kernels from any size up (they serve large inputs only)."""
    eng = request.param
    if eng == "numpy":
        monkeypatch.setattr(F, "_pointwise", lambda stem="pointwise": None)
    else:
        monkeypatch.setattr(F, "_pointwise", lambda stem="pointwise": (eng, _engines.kernels(eng, stem)))
        monkeypatch.setattr(F, "_POINTWISE_MIN", {eng: 1})
    return eng


@pytest.mark.usefixtures("bn_path")
class TestBatchNorm:
    @pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 3), (4, 3, 7)], ids=str)
    @pytest.mark.parametrize("training", [True, False])
    def test_matches_torch_and_updates_running_stats(self, shape, training, rng):
        x = rng.standard_normal(shape) * 2 + 1
        w, b = rng.standard_normal(3), rng.standard_normal(3)
        rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        ours_rm, ours_rv = rm.copy(), rv.copy()
        check_against_torch(
            lambda t, w_, b_: F.batch_norm(t, ours_rm, ours_rv, w_, b_, training, 0.3, 1e-5),
            lambda t, w_, b_: torch.nn.functional.batch_norm(t, trm, trv, w_, b_, training, 0.3, 1e-5),
            [x, w, b])
        assert rel_err(ours_rm, trm.numpy()) < 1e-12
        assert rel_err(ours_rv, trv.numpy()) < 1e-12

    def test_training_gradient_matches_finite_differences(self, rng):
        finite_difference_check(
            lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True),
            [rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(2), rng.standard_normal(2)])

    def test_relu_training_gradient_matches_finite_differences(self, rng):
        # away from the kink: no element within 1e-3 of zero after the norm
        x = rng.standard_normal((3, 2, 2, 2))
        finite_difference_check(
            lambda t, w, b: F.batch_norm_relu(t, None, None, w, b, training=True),
            [x, np.array([1.5, -0.7]), np.array([0.3, 0.2])])

    def test_eval_gradient_with_running_stats_matches_torch(self, rng):
        x = rng.standard_normal((4, 3, 5, 5))
        rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
        check_against_torch(
            lambda t: F.batch_norm(t, rm, rv, training=False),
            lambda t: torch.nn.functional.batch_norm(t, torch.tensor(rm), torch.tensor(rv), training=False),
            [x])

    def test_float32_training_matches_torch(self, rng):
        x = (rng.standard_normal((8, 16, 12, 12)) * 3 + 5).astype(np.float32)
        w, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
        check_against_torch(
            lambda t, w_, b_: F.batch_norm_relu(t, None, None, w_, b_, training=True),
            lambda t, w_, b_: torch.relu(torch.nn.functional.batch_norm(t, None, None, w_, b_, True)),
            [x, w, b], tol=1e-4)

    def test_rejects_single_value_per_channel_in_training(self):
        with pytest.raises(ValueError, match="more than 1 value"):
            F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)


@pytest.mark.usefixtures("bn_path")
class TestBatchNormReLU:
    @pytest.mark.parametrize("shape", [(4, 3, 5, 5), (6, 3)], ids=str)
    @pytest.mark.parametrize("training", [True, False])
    @pytest.mark.parametrize("affine", [True, False])
    def test_matches_torch_batch_norm_then_relu(self, shape, training, affine, rng):
        x = rng.standard_normal(shape) * 2 + 0.5
        w, b = rng.standard_normal(3), rng.standard_normal(3)
        rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        ours_rm, ours_rv = rm.copy(), rv.copy()
        if affine:
            check_against_torch(
                lambda t, w_, b_: F.batch_norm_relu(t, ours_rm, ours_rv, w_, b_, training, 0.3, 1e-5),
                lambda t, w_, b_: torch.relu(torch.nn.functional.batch_norm(t, trm, trv, w_, b_, training,
                                                                            0.3, 1e-5)),
                [x, w, b])
        else:
            check_against_torch(
                lambda t: F.batch_norm_relu(t, ours_rm, ours_rv, training=training, momentum=0.3),
                lambda t: torch.relu(torch.nn.functional.batch_norm(t, trm, trv, None, None, training, 0.3)),
                [x])
        assert rel_err(ours_rm, trm.numpy()) < 1e-12

    def test_float32_eval_forward_is_one_pass_equal_to_the_two_ops(self, rng):
        x = Tensor(rng.standard_normal((2, 8, 64, 64)).astype(np.float32))
        rm, rv = np.zeros(8, np.float32), np.ones(8, np.float32)
        w, b = Tensor(rng.standard_normal(8).astype(np.float32)), Tensor(rng.standard_normal(8).astype(np.float32))
        with nn.no_grad():
            fused = F.batch_norm_relu(x, rm, rv, w, b).numpy()
            apart = F.relu(F.batch_norm(x, rm, rv, w, b)).numpy()
        np.testing.assert_array_equal(fused, apart)

    def test_module_option_gives_the_fused_op(self, rng):
        bn = nn.BatchNorm2d(3)
        x = Tensor(rng.standard_normal((4, 3, 2, 2)), requires_grad=True)
        y = bn(x, relu=True)
        assert isinstance(y._ctx, F.BatchNormReLU) and (y.numpy() >= 0).all()


class TestDropout:
    def test_scales_kept_and_routes_gradient_through_mask(self):
        t = Tensor(np.ones((100, 100)), requires_grad=True)
        y = F.dropout(t, 0.25, generator=np.random.default_rng(0))
        kept = y.numpy() != 0
        assert 0.7 < kept.mean() < 0.8
        np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75)
        y.sum().backward()
        np.testing.assert_array_equal(t.grad, y.numpy())

    def test_identity_in_eval_and_zero_at_p1(self):
        t = Tensor(np.ones(5))
        assert F.dropout(t, 0.5, training=False) is t
        assert F.dropout(t, 1.0).numpy().sum() == 0

    def test_seeded_by_manual_seed(self):
        nn.manual_seed(3)
        a = F.dropout(Tensor(np.ones(50)), 0.5).numpy()
        nn.manual_seed(3)
        np.testing.assert_array_equal(a, F.dropout(Tensor(np.ones(50)), 0.5).numpy())

    def test_rejects_bad_p(self):
        with pytest.raises(ValueError, match="p must be"):
            F.dropout(Tensor(np.ones(2)), 1.5)


class TestGraph:
    def test_gradients_accumulate_across_backward_calls(self):
        x = Tensor(np.array([2.0]), requires_grad=True)
        (x * x).backward()
        (x * 3).backward()
        np.testing.assert_array_equal(x.grad, [7.0])

    def test_shared_subexpression_sums_both_paths(self):
        x = Tensor(np.array([3.0]), requires_grad=True)
        y = x * x
        (y + y * x).backward()
        np.testing.assert_allclose(x.grad, [2 * 3 + 3 * 9])

    def test_no_grad_records_nothing(self):
        x = Tensor(np.ones(2), requires_grad=True)
        with nn.no_grad():
            assert not nn.is_grad_enabled()
            y = x * 2
        assert nn.is_grad_enabled()
        assert not y.requires_grad and y.is_leaf

    def test_second_backward_needs_retain_graph(self):
        x = Tensor(np.ones(2), requires_grad=True)
        y = (x * x).sum()
        y.backward(retain_graph=True)
        y.backward()
        np.testing.assert_array_equal(x.grad, [4.0, 4.0])
        with pytest.raises(RuntimeError, match="second time"):
            y.backward()

    def test_deep_chain_does_not_hit_recursion_limit(self):
        x = Tensor(np.ones(1), requires_grad=True)
        y = x
        for _ in range(5000):
            y = y + 1
        y.backward()
        assert x.grad[0] == 1

    def test_backward_of_non_scalar_needs_grad(self):
        y = Tensor(np.ones(2), requires_grad=True) * 2
        with pytest.raises(ValueError, match="grad must be given"):
            y.backward()

    def test_backward_without_graph_raises(self):
        with pytest.raises(ValueError, match="does not require grad"):
            Tensor(np.ones(1)).backward()

    def test_custom_function(self):
        class Cube(Function):
            def forward(self, x):
                self.x = x
                return x ** 3

            def backward(self, g):
                return (3 * self.x ** 2 * g,)

        x = Tensor(np.array([2.0]), requires_grad=True)
        Cube.apply(x).backward()
        np.testing.assert_array_equal(x.grad, [12.0])

    def test_item_detach_numpy(self):
        t = Tensor([[1.5]], requires_grad=True)
        assert t.item() == 1.5 and t.dtype == np.float32
        assert not t.detach().requires_grad and t.detach().numpy() is t.numpy()
        with pytest.raises(ValueError, match="one element"):
            Tensor([1.0, 2.0]).item()

    def test_integer_tensor_cannot_require_grad(self):
        with pytest.raises(TypeError, match="floating"):
            Tensor(np.array([1, 2]), requires_grad=True)


class TestSamePooling:
    """TensorFlow's SAME pooling: output ceil(H/stride), extra pad bottom/right,
    max over the window's pixels, average over the pixels inside the image."""

    @staticmethod
    def _reference(x, k, s, op):
        N, C, H, W = x.shape
        OH, OW = -(-H // s), -(-W // s)
        th = max((OH - 1) * s + k - H, 0)
        tw = max((OW - 1) * s + k - W, 0)
        top, left = th // 2, tw // 2
        out = np.empty((N, C, OH, OW))
        for i in range(OH):
            for j in range(OW):
                r0, c0 = i * s - top, j * s - left
                win = x[:, :, max(r0, 0):min(r0 + k, H), max(c0, 0):min(c0 + k, W)]
                out[:, :, i, j] = op(win, axis=(2, 3))
        return out

    @pytest.mark.parametrize("k,s,H,W", [(2, 2, 7, 8), (3, 2, 9, 6), (3, 1, 5, 5), (4, 3, 10, 11)])
    @pytest.mark.parametrize("kind", ["max", "avg"])
    def test_forward_matches_tensorflow_semantics(self, k, s, H, W, kind):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, H, W))
        f = F.max_pool2d if kind == "max" else F.avg_pool2d
        out = f(Tensor(x), k, s, padding="same").numpy()
        ref = self._reference(x, k, s, np.max if kind == "max" else np.mean)
        np.testing.assert_allclose(out, ref, rtol=1e-12)

    @pytest.mark.parametrize("kind", ["max", "avg"])
    def test_backward_matches_finite_differences(self, kind):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((1, 2, 7, 6))
        f = F.max_pool2d if kind == "max" else F.avg_pool2d
        t = Tensor(x.copy(), requires_grad=True)
        gy = rng.standard_normal(f(Tensor(x), 3, 2, padding="same").shape)
        (f(t, 3, 2, padding="same") * Tensor(gy)).sum().backward()
        eps, num = 1e-6, np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += eps
            xm[idx] -= eps
            num[idx] = ((f(Tensor(xp), 3, 2, padding="same").numpy() - f(Tensor(xm), 3, 2, padding="same").numpy())
                        * gy).sum() / (2 * eps)
        np.testing.assert_allclose(t.grad, num, rtol=1e-6, atol=1e-8)
