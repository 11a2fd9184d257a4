"""fastconv._blas: the one wrapper of BLAS (which library, the epilogue, the fallbacks)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import _blas

from conftest import TOL, rel_err

needs_cython = pytest.mark.skipif(not _blas._engine(), reason="the Cython engine is not built")


def _child(code, **env):
    full = {k: v for k, v in os.environ.items() if k != _blas.BLAS_ENV}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join([str(Path(fastconv.__file__).parents[1])]
                                         + [p for p in [full.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                          timeout=120)


class TestLibrary:
    @needs_cython
    def test_products_follow_numpy_when_it_ships_scipy_openblas64(self):
        expected = "numpy's" if _blas._numpy_openblas() else "scipy's"
        assert _blas.blas_library().startswith(expected)

    @needs_cython
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("library", ["numpy", "scipy"])
    def test_either_library_gives_numpys_product(self, library, dtype):
        proc = _child(
            "import numpy as np; from fastconv import _blas\n"
            "rng = np.random.default_rng(0)\n"
            f"a = rng.standard_normal((3, 70, 90)).astype(np.{dtype.__name__})\n"
            f"b = rng.standard_normal((90, 130)).astype(np.{dtype.__name__})\n"
            "ref = np.matmul(a.astype(np.float64), b.astype(np.float64))\n"
            "got = _blas.gemm(a, b)\n"
            "print(_blas.blas_library()); print(float(abs(got - ref).max() / abs(ref).max()))",
            FASTCONV_BLAS=library)
        assert proc.returncode == 0, proc.stderr
        name, err = proc.stdout.split("\n")[:2]
        if library == "scipy" or not _blas._numpy_openblas():
            assert name.startswith("scipy's")
        else:
            assert name.startswith("numpy's")
        assert float(err) < TOL[np.dtype(dtype)]

    @needs_cython
    @pytest.mark.parametrize("library", ["numpy", "scipy"])
    def test_one_row_products_run_as_matrix_vector_products_in_every_layout(self, library):
        # M == 1 calls gemv (BLAS would pack all of B for one row); each
        # operand order, accumulate, and an output holding NaN beforehand.
        proc = _child(
            "import numpy as np; from fastconv import _blas\n"
            "rng = np.random.default_rng(0); worst = 0.0\n"
            "for dt in (np.float32, np.float64):\n"
            "    for a_f in (False, True):\n"
            "        for b_f in (False, True):\n"
            "            for acc in (False, True):\n"
            "                a = rng.standard_normal((1, 300)).astype(dt)\n"
            "                b = rng.standard_normal((300, 700)).astype(dt)\n"
            "                a, b = (np.asfortranarray(a) if a_f else a), (np.asfortranarray(b) if b_f else b)\n"
            "                out = np.ones((1, 700), dt) if acc else np.full((1, 700), np.nan, dt)\n"
            "                ref = a.astype(np.float64) @ b.astype(np.float64) + (1.0 if acc else 0.0)\n"
            "                got = _blas.gemm(a, b, out=out, accumulate=acc)\n"
            "                worst = max(worst, float(abs(got - ref).max() / abs(ref).max()))\n"
            "a = rng.standard_normal((3, 1, 90)); b = rng.standard_normal((3, 90, 40))\n"
            "worst = max(worst, float(abs(_blas.gemm(a, b) - a @ b).max()))\n"
            "print(worst)", FASTCONV_BLAS=library)
        assert proc.returncode == 0, proc.stderr
        assert float(proc.stdout) < TOL[np.dtype(np.float32)]

    @needs_cython
    def test_an_unknown_library_is_refused_naming_the_variable(self):
        proc = _child("from fastconv import _blas; import numpy as np; "
                      "_blas.gemm(np.ones((40, 40)), np.ones((40, 40)))", FASTCONV_BLAS="mkl")
        assert proc.returncode != 0
        assert "FASTCONV_BLAS must be 'numpy' or 'scipy', got 'mkl'" in proc.stderr


class TestEpilogue:
    @pytest.mark.parametrize("shape", [(2, 3, 20, 30, 40), (1, 1, 2, 3, 4)], ids=["blas", "small"])
    def test_every_path_applies_it_in_the_same_order(self, shape):
        B1, B2, M, K, N = shape
        rng = np.random.default_rng(0)
        a = rng.standard_normal((1, B2, M, K))
        b = rng.standard_normal((B1, B2, K, N))
        bias, res = rng.standard_normal((B2, M)), rng.standard_normal((B1, B2, M, N))
        plain = _blas.gemm(a, b)
        want = np.maximum((plain + res) + bias[..., None], 0)
        got = _blas.gemm(a, b, out=np.empty((B1, B2, M, N)), bias=bias, residual=res, relu=True)
        assert rel_err(got, want) < 1e-12

    def test_a_strided_output_takes_the_epilogue_too(self):
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((30, 40)), rng.standard_normal((40, 50))
        out = np.zeros((30, 100))[:, ::2]
        got = _blas.gemm(a, b, out=out, bias=np.ones(30), relu=True)
        assert got is out
        assert rel_err(out, np.maximum(a @ b + 1, 0)) < 1e-12
