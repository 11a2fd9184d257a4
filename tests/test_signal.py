"""convolve2d / correlate2d against scipy.signal, for every backend and engine."""
import numpy as np
import pytest
import scipy.signal

import fastconv
from fastconv import _dispatch

from conftest import run_isolated

# scipy warns when it casts a complex fill value to a real type; so do the oracles here
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

FUNCS = ["convolve2d", "correlate2d"]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symm"]
DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64,
          np.float32, np.float64, np.complex64, np.complex128]


def _backend_engines():
    return [pytest.param(b, e, id=f"{b}-{e}") for b in fastconv.backends() for e in _dispatch.engines(b)]


def _random(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -100), min(info.max, 100)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _run(func, *args, backend, engine, **kwargs):
    """Call fastconv's ``func``; None when a backend with limits refuses the shape."""
    try:
        return getattr(fastconv, func)(*args, backend=backend, engine=engine, **kwargs)
    except ValueError as exc:
        # only Winograd (3x3 kernels) may refuse a valid call
        assert backend == "winograd" and "cannot serve" in str(exc), exc
        return None


def _tol(dtype):
    dtype = np.dtype(dtype)
    return 1e-4 if dtype in (np.float32, np.complex64) else 1e-10


class TestKnownAnswer:
    def test_classic_7x7_example(self):
        a = np.arange(1, 50).reshape(7, 7)
        k = np.array([[-1, 1, -1], [-2, 3, 1], [2, -4, 0]])
        for backend in fastconv.backends():
            out = _run("convolve2d", a, k, mode="same", boundary="fill", fillvalue=0, backend=backend, engine="auto")
            assert out.dtype == a.dtype
            np.testing.assert_array_equal(out[0], [-2, -8, -7, -6, -5, -4, 28])
            np.testing.assert_array_equal(out[-1], [-29, 13, 13, 13, 13, 13, 27])


@pytest.mark.parametrize("backend,engine", _backend_engines())
class TestParityWithScipy:
    @pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
    @pytest.mark.parametrize("func", FUNCS)
    def test_every_mode_and_boundary(self, backend, engine, func, dtype):
        rng = np.random.default_rng(1)
        for trial in range(3):
            s1 = tuple(rng.integers(1, 12, size=2))
            s2 = tuple(rng.integers(1, 7, size=2))
            a, k = _random(rng, s1, dtype), _random(rng, s2, dtype)
            for mode in MODES:
                for boundary in BOUNDARIES:
                    fill = [0, 3, -2.5][trial]
                    try:
                        ref = getattr(scipy.signal, func)(a, k, mode, boundary, fill)
                    except ValueError as exc:
                        with pytest.raises(ValueError, match=str(exc)[:20]):
                            getattr(fastconv, func)(a, k, mode, boundary, fill, backend=backend, engine=engine)
                        continue
                    out = _run(func, a, k, mode, boundary, fill, backend=backend, engine=engine)
                    if out is None:
                        continue
                    assert out.dtype == ref.dtype, (mode, boundary)
                    assert out.shape == ref.shape, (mode, boundary)
                    if np.dtype(dtype).kind in "iu":
                        np.testing.assert_array_equal(out, ref, err_msg=f"{mode} {boundary}")
                    else:
                        scale = max(np.abs(ref).max(), 1e-30)
                        assert np.abs(out - ref).max() / scale <= _tol(dtype), (mode, boundary)

    @pytest.mark.parametrize("func", FUNCS)
    def test_kernel_larger_than_image_with_symm_and_wrap(self, backend, engine, func):
        rng = np.random.default_rng(2)
        a, k = rng.standard_normal((3, 4)), rng.standard_normal((9, 11))
        for mode in ("full", "same"):
            for boundary in ("symm", "wrap"):
                ref = getattr(scipy.signal, func)(a, k, mode, boundary)
                out = _run(func, a, k, mode, boundary, backend=backend, engine=engine)
                if out is not None:
                    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)

    @pytest.mark.parametrize("func", FUNCS)
    def test_even_kernel_centring_in_same_mode(self, backend, engine, func):
        a = np.arange(30.0).reshape(5, 6)
        for kshape in [(2, 2), (4, 2), (2, 5), (4, 6)]:
            k = np.arange(1.0, 1 + np.prod(kshape)).reshape(kshape)
            for boundary in BOUNDARIES:
                ref = getattr(scipy.signal, func)(a, k, "same", boundary)
                out = _run(func, a, k, "same", boundary, backend=backend, engine=engine)
                if out is not None:
                    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)

    def test_valid_mode_swaps_the_larger_input_first(self, backend, engine):
        a, k = np.arange(6.0).reshape(2, 3), np.arange(20.0).reshape(4, 5)
        for func in FUNCS:
            ref = getattr(scipy.signal, func)(a, k, "valid")
            out = _run(func, a, k, "valid", backend=backend, engine=engine)
            if out is not None:
                np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


class TestIntegerSemantics:
    @pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64])
    def test_overflow_wraps_bit_for_bit_as_scipy(self, dtype):
        info = np.iinfo(dtype)
        a = np.full((6, 6), info.max, dtype)
        k = np.full((3, 3), info.max // 3 + 1, dtype)
        ref = scipy.signal.convolve2d(a, k, "same")
        np.testing.assert_array_equal(fastconv.convolve2d(a, k, "same"), ref)

    def test_mixed_integer_types_promote_as_scipy(self):
        a = np.ones((4, 4), np.uint8)
        k = np.ones((2, 2), np.int8)
        assert fastconv.convolve2d(a, k).dtype == scipy.signal.convolve2d(a, k).dtype == np.int16

    def test_fractional_fillvalue_truncates_for_integers(self):
        a = np.ones((3, 3), int)
        ref = scipy.signal.convolve2d(a, np.ones((2, 2), int), fillvalue=2.7)
        np.testing.assert_array_equal(fastconv.convolve2d(a, np.ones((2, 2), int), fillvalue=2.7), ref)


class TestOtherTypes:
    def test_long_double_goes_to_scipy(self):
        a = np.ones((3, 3), np.longdouble)
        assert fastconv.convolve2d(a, a).dtype == np.longdouble

    def test_bool_is_refused_as_scipy_refuses_it(self):
        # scipy's ValueError, with the arguments named (scipy's message names none)
        with pytest.raises(ValueError, match="not available for this type"):
            scipy.signal.convolve2d(np.ones((3, 3), bool), np.ones((2, 2), bool))
        with pytest.raises(ValueError, match="in1 and in2 must be"):
            fastconv.convolve2d(np.ones((3, 3), bool), np.ones((2, 2), bool))

    def test_named_backend_refuses_a_type_it_cannot_serve(self):
        with pytest.raises(ValueError, match="cannot serve"):
            fastconv.convolve2d(np.ones((3, 3), np.longdouble), np.ones((2, 2)), backend="naive")

    def test_nan_and_inf_propagate_as_scipy(self):
        a = np.zeros((6, 7))
        a[2, 3], a[5, 0] = np.nan, np.inf
        ref = scipy.signal.convolve2d(a, np.ones((3, 3)), "same")
        out = fastconv.convolve2d(a, np.ones((3, 3)), "same", backend="naive")
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))


class TestBadInput:
    @pytest.mark.parametrize("dtype", [bool, np.float16])
    @pytest.mark.parametrize("func", FUNCS)
    def test_types_scipy_lacks_are_refused_naming_the_inputs(self, func, dtype):
        with pytest.raises(ValueError, match=r"in1 and in2 .* got dtype"):
            getattr(fastconv, func)(np.ones((4, 4), dtype), np.ones((2, 2), dtype))

    @pytest.mark.parametrize("args,kwargs", [
        ((np.ones(3), np.ones((2, 2))), {}),
        ((np.ones((3, 3)), np.ones((2, 2))), {"mode": "wide"}),
        ((np.ones((3, 3)), np.ones((2, 2))), {"boundary": "reflect"}),
        ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": [1, 2]}),
        ((np.ones((3, 3)), np.ones((2, 2))), {"fillvalue": 1j}),
        ((np.ones((2, 5)), np.ones((4, 3))), {"mode": "valid"}),
    ])
    @pytest.mark.parametrize("func", FUNCS)
    def test_errors_are_scipys(self, func, args, kwargs):
        with pytest.raises(ValueError) as ref:
            getattr(scipy.signal, func)(*args, **kwargs)
        with pytest.raises(ValueError) as out:
            getattr(fastconv, func)(*args, **kwargs)
        assert str(out.value) == str(ref.value).replace("convolve2d inputs", f"{func} inputs")


EMPTY_SHAPES = [((0, 3), (2, 2)), ((3, 0), (2, 2)), ((0, 0), (2, 2)), ((0, 3), (0, 2)),
                ((3, 0), (0, 2)), ((0, 0), (0, 2)), ((3, 3), (0, 2))]


def _scipy_crashes(s1, s2, mode, boundary):
    # scipy.signal dies of SIGFPE on these (never call it on them here)
    return boundary != "fill" and mode == "full" and 0 in s1


class TestEmptyInputs:
    @pytest.mark.parametrize("boundary", BOUNDARIES)
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("s1,s2", EMPTY_SHAPES)
    @pytest.mark.parametrize("func", FUNCS)
    def test_empty_inputs_give_scipys_result_or_error(self, func, s1, s2, mode, boundary):
        if _scipy_crashes(s1, s2, mode, boundary):
            pytest.skip("scipy crashes here: see test_empty_input_with_periodic_boundary_is_refused")
        a, b = np.ones(s1), 2 * np.ones(s2)
        try:
            ref = getattr(scipy.signal, func)(a, b, mode, boundary, 5)
        except ValueError as exc:
            with pytest.raises(ValueError, match="."):
                getattr(fastconv, func)(a, b, mode, boundary, 5)
            return
        out = getattr(fastconv, func)(a, b, mode, boundary, 5)
        assert out.shape == ref.shape and out.dtype == ref.dtype
        np.testing.assert_array_equal(out, ref)

    @pytest.mark.parametrize("func", FUNCS)
    def test_full_mode_of_two_empty_axes_is_refused_by_name(self, func):
        # scipy passes on numpy's "negative dimensions are not allowed" here,
        # which names neither input (found by the fuzz campaign).
        with pytest.raises(ValueError, match=r"in1 \(0, 0\) and in2 \(0, 2\).*\(-1, 1\)"):
            getattr(fastconv, func)(np.ones((0, 0)), np.ones((0, 2)))

    @pytest.mark.parametrize("boundary", ["wrap", "symm"])
    @pytest.mark.parametrize("func", FUNCS)
    def test_empty_input_with_periodic_boundary_is_refused(self, func, boundary):
        # Handed to scipy, these killed the interpreter with SIGFPE.
        out = run_isolated(f"""
            import numpy as np, fastconv
            for s1, s2 in [((0, 3), (2, 2)), ((3, 0), (2, 2)), ((0, 0), (2, 2)), ((0, 10), (3, 0))]:
                try:
                    fastconv.{func}(np.ones(s1), np.ones(s2), "full", "{boundary}")
                except ValueError as exc:
                    assert "boundary" in str(exc) and "empty" in str(exc), exc
                    print("refused")
        """)
        assert out.split() == ["refused"] * 4
