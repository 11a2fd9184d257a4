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
