"""The package surface: import cost, backends, threads, the info command."""
import subprocess
import sys

import numpy as np
import pytest

import fastconv


class TestImport:
    def test_import_compiles_nothing_and_is_fast(self):
        code = ("import time, sys; t = time.perf_counter(); import fastconv; "
                "print(time.perf_counter() - t); print('numba' in sys.modules, 'scipy' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        assert float(out[0]) < 0.5
        assert out[1:] == ["False", "False"]


class TestBackends:
    def test_naive_is_always_there(self):
        assert "naive" in fastconv.backends()

    def test_every_listed_backend_has_an_engine(self):
        from fastconv import _dispatch
        for b in fastconv.backends():
            assert _dispatch.engines(b), b


class TestThreads:
    def test_set_and_restore(self):
        default = fastconv.get_num_threads()
        with fastconv.num_threads(1):
            assert fastconv.get_num_threads() == 1
        assert fastconv.get_num_threads() == default

    @pytest.mark.parametrize("bad,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)])
    def test_bad_count_is_named(self, bad, exc):
        with pytest.raises(exc, match="n_threads"):
            fastconv.set_num_threads(bad)

    def test_results_do_not_depend_on_thread_count_for_the_naive_backend(self, rng):
        x = rng.standard_normal((2, 3, 20, 20)).astype(np.float32)
        w = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
        ref = fastconv.conv2d(x, w, backend="naive")
        with fastconv.num_threads(1):
            np.testing.assert_array_equal(fastconv.conv2d(x, w, backend="naive"), ref)


class TestInfoCommand:
    def test_info_reports_backends_threads_and_blas(self):
        out = subprocess.run([sys.executable, "-m", "fastconv", "info"], capture_output=True, text=True,
                             check=True).stdout
        assert "backends:" in out and "naive" in out and "threads:" in out and "BLAS" in out


class TestGemm:
    """fastconv._blas.gemm: numpy's matmul semantics on the OpenMP team."""

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("layout", ["c", "a-transposed", "b-transposed", "b-strided"])
    @pytest.mark.parametrize("shapes", [((64, 576), (576, 3136)), ((3, 7, 33), (3, 33, 900)),
                                        ((2, 16, 75), (3, 2, 75, 400)), ((6, 25), (4, 25, 500)),
                                        ((3, 5), (5, 7))])
    def test_matches_numpy(self, dtype, layout, shapes, rng):
        from fastconv._blas import gemm
        a = rng.standard_normal(shapes[0]).astype(dtype)
        b = rng.standard_normal(shapes[1]).astype(dtype)
        if layout == "a-transposed":
            a = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
        elif layout == "b-transposed":
            b = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
        elif layout == "b-strided":
            b = np.repeat(b, 2, axis=-1)[..., ::2]
        ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
        out = gemm(a, b)
        assert out.dtype == dtype
        assert np.abs(out - ref).max() <= (1e-5 if dtype == np.float32 else 1e-12) * np.abs(ref).max()
        acc = gemm(a, b, out=out.copy(), accumulate=True)
        np.testing.assert_allclose(acc, 2 * out, rtol=1e-5)

    def test_writes_into_a_slice_of_a_larger_output(self, rng):
        from fastconv._blas import gemm
        w = rng.standard_normal((2, 16, 75)).astype(np.float32)
        cols = rng.standard_normal((2, 75, 3, 400)).astype(np.float32).transpose(2, 0, 1, 3)
        y = np.zeros((5, 2, 16, 400), np.float32)
        gemm(w, cols, out=y[1:4])
        np.testing.assert_allclose(y[1:4], np.matmul(w, cols), rtol=1e-4, atol=1e-4)
        assert not y[0].any() and not y[4].any()

    @pytest.mark.parametrize("sa, sb, out, what", [
        ((16, 75), (74, 400), None, "inner dimensions"),
        ((2, 16, 75), (3, 75, 400), None, "do not broadcast"),
        ((16, 75), (2, 75, 400), (2, 16, 399), "out must have shape")])
    def test_mismatched_shapes_raise_instead_of_reading_past_an_operand(self, sa, sb, out, what):
        from fastconv._blas import gemm
        out = None if out is None else np.zeros(out, np.float32)
        with pytest.raises(ValueError, match=what):
            gemm(np.ones(sa, np.float32), np.ones(sb, np.float32), out=out)

    def test_the_kernel_checks_its_own_shapes(self):
        gemm = pytest.importorskip("fastconv._cython.gemm").gemm
        a, b = np.ones((1, 2, 4, 5), np.float32), np.ones((1, 3, 5, 6), np.float32)
        with pytest.raises(ValueError, match="do not match"):
            gemm(a, b, np.zeros((1, 3, 4, 6), np.float32), False, 1)

    def test_blas_thread_count_is_restored(self):
        from threadpoolctl import threadpool_info

        from fastconv._blas import gemm
        before = {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}
        gemm(np.ones((64, 64), np.float32), np.ones((64, 640), np.float32))
        after = {d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}
        assert all(after[k] == v for k, v in before.items())
