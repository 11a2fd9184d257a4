"""The ``batch_norm`` kernels (training-mode statistics, the backward's two
sums and its input gradient) of both engines.

The oracle is the same arithmetic in float64 numpy; the sums must not depend
on the thread count (each channel is summed by one thread in one order).
Through the nn functions they are checked against PyTorch and finite
differences in test_autograd.py (``bn_path``).
"""
import numpy as np
import pytest

from fastconv import _engines

DTYPES = [np.float32, np.float64]
SHAPES = [(4, 3, 25), (2, 5, 1), (1, 1, 7), (3, 16, 64), (2, 2, 1000)]


def _engines_with_kernels():
    out = []
    if _engines.has("cython", "batch_norm"):
        out.append("cython")
    if _engines.has("numba", "batch_norm"):
        out.append("numba")
    return out


@pytest.fixture(params=_engines_with_kernels())
def kern(request):
    return _engines.kernels(request.param, "batch_norm")


def _data(rng, shape, dtype, offset=0.0):
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    y = np.maximum(rng.standard_normal(shape), 0).astype(dtype)     # a ReLU's output
    return x, g, y


def _tol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-12


class TestStats:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    def test_mean_and_biased_variance(self, kern, shape, dtype, rng):
        x, _, _ = _data(rng, shape, dtype)
        mean, var = np.empty(shape[1]), np.empty(shape[1])
        kern.stats(x, mean, var, 2)
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=1e-12, atol=1e-14)

    def test_a_large_mean_does_not_cancel_the_variance(self, kern, rng):
        # one pass (E[x^2] - E[x]^2) in float32 would lose every digit here
        x = (1e4 + rng.standard_normal((8, 2, 256))).astype(np.float32)
        mean, var = np.empty(2), np.empty(2)
        kern.stats(x, mean, var, 2)
        np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2)), rtol=1e-10)

    def test_same_bits_on_any_thread_count(self, kern, rng):
        x, _, _ = _data(rng, (5, 7, 333), np.float32, offset=3.0)
        res = []
        for nt in (1, 2, 3):
            mean, var = np.empty(7), np.empty(7)
            kern.stats(x, mean, var, nt)
            res.append((mean, var))
        for mean, var in res[1:]:
            assert np.array_equal(mean, res[0][0]) and np.array_equal(var, res[0][1])

    def test_wrong_lengths_and_no_values_are_refused(self, kern):
        x = np.zeros((2, 3, 4), np.float32)
        with pytest.raises(ValueError, match="mean and var must have 3"):
            kern.stats(x, np.empty(2), np.empty(3), 1)
        with pytest.raises(ValueError, match="no values per channel"):
            kern.stats(np.zeros((0, 3, 4), np.float32), np.empty(3), np.empty(3), 1)


def _sums_numpy(g, y, x, mean):
    g64 = g.astype(np.float64)
    if y is not None:
        g64 = np.where(y > 0, g64, 0.0)
    d = x.astype(np.float64) - mean.astype(np.float64)[None, :, None]
    return g64.sum(axis=(0, 2)), (g64 * d).sum(axis=(0, 2))


class TestGradSums:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    @pytest.mark.parametrize("masked", [False, True])
    def test_sums_through_the_mask(self, kern, shape, dtype, masked, rng):
        x, g, y = _data(rng, shape, dtype)
        y = y if masked else None
        mean = x.mean(axis=(0, 2)).astype(dtype)
        sg, sx = np.empty(shape[1]), np.empty(shape[1])
        kern.grad_sums(g, y, x, mean, sg, sx, 2)
        rg, rx = _sums_numpy(g, y, x, mean)
        np.testing.assert_allclose(sg, rg, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sx, rx, rtol=1e-12, atol=1e-12)

    def test_masked_units_drop_nan_and_infinite_gradients(self, kern):
        # as PyTorch's threshold_backward: an inactive unit passes 0, not NaN
        x = np.arange(8, dtype=np.float32).reshape(1, 2, 4)
        y = np.array([[[1, 0, 1, 0], [0, 0, 2, 0]]], np.float32)
        g = np.array([[[1, np.nan, 2, np.inf], [np.nan, -np.inf, 3, 5]]], np.float32)
        sg, sx = np.empty(2), np.empty(2)
        kern.grad_sums(g, y, x, np.zeros(2, np.float32), sg, sx, 1)
        assert list(sg) == [3.0, 3.0] and list(sx) == [0 * 1 + 2 * 2, 3 * 6]

    def test_same_bits_on_any_thread_count(self, kern, rng):
        x, g, y = _data(rng, (6, 5, 301), np.float32)
        mean = np.zeros(5, np.float32)
        res = []
        for nt in (1, 2, 4):
            sg, sx = np.empty(5), np.empty(5)
            kern.grad_sums(g, y, x, mean, sg, sx, nt)
            res.append(np.concatenate([sg, sx]))
        assert all(np.array_equal(r, res[0]) for r in res[1:])

    def test_shapes_checked(self, kern):
        x = np.zeros((2, 3, 4), np.float32)
        with pytest.raises(ValueError, match="y must have x's shape"):
            kern.grad_sums(x, np.zeros((2, 3, 5), np.float32), x, np.zeros(3, np.float32),
                           np.empty(3), np.empty(3), 1)
        with pytest.raises(ValueError, match="must have 3 elements"):
            kern.grad_sums(x, None, x, np.zeros(2, np.float32), np.empty(3), np.empty(3), 1)


class TestGradInput:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("shape", SHAPES, ids=str)
    @pytest.mark.parametrize("masked", [False, True])
    @pytest.mark.parametrize("n_threads", [1, 3])
    def test_formula(self, kern, shape, dtype, masked, n_threads, rng):
        x, g, y = _data(rng, shape, dtype)
        y = y if masked else None
        C = shape[1]
        mean, a, b, k = (rng.standard_normal(C).astype(dtype) for _ in range(4))
        gx = np.empty_like(x)
        kern.grad_input(g, y, x, mean, a, b, k, gx, n_threads)
        gm = g if y is None else np.where(y > 0, g, 0)
        c = (slice(None), None)     # (C, 1): broadcast over (N, C, L)
        ref = (gm - (x - mean[c]) * a[c] - b[c]) * k[c]
        np.testing.assert_allclose(gx, ref, rtol=_tol(dtype) * 10, atol=_tol(dtype) * 10)

    def test_in_place_on_g(self, kern, rng):
        x, g, y = _data(rng, (3, 4, 50), np.float32)
        C = 4
        mean, a, b, k = (rng.standard_normal(C).astype(np.float32) for _ in range(4))
        ref = np.empty_like(x)
        kern.grad_input(g, y, x, mean, a, b, k, ref, 2)
        kern.grad_input(g, y, x, mean, a, b, k, g, 2)
        np.testing.assert_array_equal(g, ref)

    def test_empty_batch_writes_nothing(self, kern):
        x = np.zeros((0, 3, 4), np.float32)
        v = np.zeros(3, np.float32)
        kern.grad_input(x, None, x, v, v, v, v, x, 2)

    def test_shapes_checked(self, kern):
        x = np.zeros((2, 3, 4), np.float32)
        v = np.zeros(3, np.float32)
        with pytest.raises(ValueError, match="gx must have x's shape"):
            kern.grad_input(x, None, x, v, v, v, v, np.zeros((2, 3, 5), np.float32), 1)
        with pytest.raises(ValueError, match="k must have 3 elements"):
            kern.grad_input(x, None, x, v, v, v, np.zeros(4, np.float32), x, 1)


def test_engines_agree(rng):
    if len(_engines_with_kernels()) < 2:
        pytest.skip("needs both engines")
    x, g, y = _data(rng, (4, 6, 99), np.float32)
    outs = []
    for eng in ("cython", "numba"):
        k = _engines.kernels(eng, "batch_norm")
        mean, var = np.empty(6), np.empty(6)
        k.stats(x, mean, var, 2)
        sg, sx = np.empty(6), np.empty(6)
        k.grad_sums(g, y, x, mean.astype(np.float32), sg, sx, 2)
        outs.append(np.concatenate([mean, var, sg, sx]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
