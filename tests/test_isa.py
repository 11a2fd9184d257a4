"""Kernels per instruction set: every set this CPU runs, switched in-process and capped by
FASTCONV_ISA in a subprocess, gives the reference's results; the choice is CPUID's."""
import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastconv
from fastconv import _engines, _isa, filters
from fastconv._validation import conv2d_args
from fastconv.backends import direct as direct_backend
from fastconv.backends import winograd as winograd_backend

from conftest import TOL, rel_err, unfused_epilogue

scipy_ndimage = pytest.importorskip("scipy.ndimage")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not _engines.has("cython", "direct"),
                                reason="the compiled engine is not built")


@pytest.fixture(params=_isa.available())
def isa(request):
    """Every compiled kernel family runs on this set for the test."""
    with _isa.use(request.param):
        yield request.param


DTYPES = [np.float32, np.float64]

#: (x shape, w shape, stride, padding, groups): each block shape of every set's table
#: (one channel, 4/6/8 channels, partial blocks), strided large filters, depthwise.
CONV_CASES = {
    "lenet-conv1": ((2, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1),
    "lenet-conv2": ((2, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),
    "mnist-conv2": ((2, 8, 14, 14), (13, 8, 3, 3), 1, 1, 1),
    "alexnet-conv1": ((1, 3, 47, 45), (9, 3, 11, 11), 4, 0, 1),
    "depthwise": ((2, 5, 17, 19), (5, 1, 3, 3), 1, 1, 5),
    "one-channel": ((1, 2, 30, 30), (2, 2, 3, 3), 1, 1, 1),
}
WINOGRAD_CASES = {k: v for k, v in CONV_CASES.items() if v[1][2:] == (3, 3) and v[2] == 1}


def _naive(x, w, stride, padding, groups):
    """The oracle: the naive backend in float64."""
    return fastconv.conv2d(x.astype(np.float64), w.astype(np.float64), stride=stride,
                           padding=padding, groups=groups, backend="naive", engine="cython")


def _case(rng, dtype, xs, ws):
    return rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)


class TestConv2dPerInstructionSet:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("backend", ["direct", "im2col"])
    @pytest.mark.parametrize("case", list(CONV_CASES))
    def test_matches_naive(self, isa, rng, backend, case, dtype):
        xs, ws, stride, padding, groups = CONV_CASES[case]
        x, w = _case(rng, dtype, xs, ws)
        got = fastconv.conv2d(x, w, stride=stride, padding=padding, groups=groups,
                              backend=backend, engine="cython")
        assert got.dtype == dtype
        assert rel_err(got, _naive(x, w, stride, padding, groups)) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("m", winograd_backend.TILES)
    @pytest.mark.parametrize("case", list(WINOGRAD_CASES))
    def test_winograd_tiles_match_naive(self, isa, rng, case, m, dtype):
        xs, ws, stride, padding, groups = WINOGRAD_CASES[case]
        x, w = _case(rng, dtype, xs, ws)
        x4, w4, _, p, _ = conv2d_args(x, w, None, stride, padding, 1, groups)
        got = winograd_backend.conv2d_tile(x4, w4, p, "cython", 2, m=m)
        assert rel_err(got, _naive(x, w, stride, padding, groups)) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("m", winograd_backend.TILES)
    def test_winograd_epilogue_matches_the_unfused_passes_bit_for_bit(self, isa, rng, m, dtype):
        x, w = _case(rng, dtype, (2, 8, 14, 14), (13, 8, 3, 3))
        x4, w4, _, p, _ = conv2d_args(x, w, None, 1, 1, 1, 1)
        bias = rng.standard_normal(13).astype(dtype)
        res = rng.standard_normal(p.out_shape).astype(dtype)
        ref = winograd_backend.conv2d_tile(x4, w4, p, "cython", 2, m=m)
        ref = np.maximum((ref + res) + bias[:, None, None], dtype(0))
        got = winograd_backend.conv2d_tile(x4, w4, p, "cython", 2, m=m, epilogue=(bias, res, True))
        np.testing.assert_array_equal(got, ref)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", ["lenet-conv2", "alexnet-conv1", "depthwise"])
    def test_direct_weight_gradient_matches_the_cython_engine_on_every_set(self, isa, rng, case,
                                                                           dtype):
        # The oracle: sum over images and pixels of gy * the input window, in float64.
        xs, ws, stride, padding, groups = CONV_CASES[case]
        x, w = _case(rng, dtype, xs, ws)
        x4, w4, _, p, _ = conv2d_args(x, w, None, stride, padding, 1, groups)
        gy = rng.standard_normal(p.out_shape).astype(dtype)
        got = direct_backend.weight_grad(x4, gy, p, "cython", 2)
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p.pad[0], p.pad[1]), (p.pad[2], p.pad[3])))
        win = np.lib.stride_tricks.sliding_window_view(xp, (p.R, p.S), axis=(2, 3))
        win = win[:, :, ::p.stride[0], ::p.stride[1]][:, :, :p.OH, :p.OW]
        win = win.reshape(p.N, groups, p.Cg, p.OH, p.OW, p.R, p.S)
        g = gy.astype(np.float64).reshape(p.N, groups, p.Kg, p.OH, p.OW)
        ref = np.einsum("ngkhw,ngchwrs->gkcrs", g, win).reshape(p.K, p.Cg, p.R, p.S)
        assert rel_err(got, ref) < TOL[np.dtype(dtype)]


class TestDirectBlocks:
    #: Vector registers and fused multiply-add of each set's register file (x86-64).
    REGISTERS = {"baseline": (16, False), "avx2": (16, True), "avx512": (32, True)}

    def test_blocks_fit_the_register_file_of_their_set(self, isa):
        name, vec_bytes, blocks, single_below, (wkb, wtb) = direct_backend.geometry()
        assert name == isa
        regs, fma = self.REGISTERS[isa]
        assert vec_bytes == {"baseline": 16, "avx2": 32, "avx512": 64}[isa]
        for kb, nv in blocks:
            # accumulators, input vectors held for kb channels (a one-channel block streams
            # them), one broadcast weight, and a product without FMA
            assert kb * nv + (nv if kb > 1 else 1) + 1 + (not fma) <= regs, (kb, nv)
        assert blocks[2][0] == 1 and single_below >= 1
        assert wkb * wtb + wkb + wtb + (not fma) <= regs

    def test_layout_follows_the_active_set(self, isa):
        p = conv2d_args(np.zeros((1, 6, 14, 14)), np.zeros((16, 6, 5, 5)), None, 1, 0, 1, 1)[3]
        kb, qb, *_ = direct_backend.layout(p, 4)
        _, vec_bytes, blocks, _, _ = direct_backend.geometry()
        assert (kb, qb * 4 // vec_bytes) in blocks[:2]

    def test_a_layout_planned_for_another_set_is_refused(self, rng):
        sets = _isa.available()
        if len(sets) < 2:
            pytest.skip("this CPU runs one instruction set")
        x, w = _case(rng, np.float32, (1, 6, 14, 14), (16, 6, 5, 5))
        x4, w4, _, p, _ = conv2d_args(x, w, None, 1, 0, 1, 1)
        with _isa.use(sets[-1]):
            kb, qb, Hq, Wq, plane, taps = direct_backend.layout(p, 4)
        with _isa.use(sets[0]):
            wp = direct_backend.pack_weights(w4, p, kb)
            xq = np.zeros((p.N * p.C, plane), np.float32)
            y = np.empty(p.out_shape, np.float32)
            with pytest.raises(ValueError, match="another instruction set"):
                _engines.kernels("cython", "direct").conv2d_direct(
                    x4, wp, taps, xq, y, 1, 1, 0, 0, Hq, Wq, plane, qb, 1)


class TestFiltersPerInstructionSet:
    @pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
    @pytest.mark.parametrize("size", [3, 5, 7])
    def test_median_matches_scipy(self, isa, rng, size, dtype):
        img = (rng.random((3, 37, 41)) * 255).astype(dtype)
        got = filters.median_filter(img, size, engine="cython")
        np.testing.assert_array_equal(got, scipy_ndimage.median_filter(img, size=(1, size, size)))

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_separable_filters_match_scipy(self, isa, rng, dtype):
        img = rng.standard_normal((45, 53)).astype(dtype)
        tol = TOL[np.dtype(dtype)]
        pairs = [(filters.mean_filter(img, 5, engine="cython"), scipy_ndimage.uniform_filter(img, 5)),
                 (filters.gaussian_filter(img, 1.5, engine="cython"),
                  scipy_ndimage.gaussian_filter(img, 1.5)),
                 (filters.sobel(img, axis=-1, engine="cython"), scipy_ndimage.sobel(img, axis=-1))]
        for got, ref in pairs:
            assert rel_err(got, ref) < tol


class TestPoolingPerInstructionSet:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_max_and_average_match_numpy(self, isa, rng, dtype):
        pool = _engines.kernels("cython", "pool")
        x = rng.standard_normal((6, 13, 17)).astype(dtype)
        win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2]
        y = np.empty(win.shape[:3], dtype)
        idx = np.empty(win.shape[:3], np.int64)
        pool.max_pool2d_fwd(x, y, idx, 3, 3, 2, 2, 0, 0, 2)
        np.testing.assert_array_equal(y, win.max(axis=(3, 4)))
        np.testing.assert_array_equal(np.take_along_axis(x.reshape(6, -1), idx.reshape(6, -1), 1),
                                      y.reshape(6, -1))
        pool.avg_pool2d_fwd(x, y, 3, 3, 2, 2, 0, 0, True, 2)
        assert rel_err(y, win.astype(np.float64).mean(axis=(3, 4))) < TOL[np.dtype(dtype)]


class TestPointwisePerInstructionSet:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_relu_and_channel_affine_match_numpy_bit_for_bit(self, isa, rng, dtype):
        pw = _engines.kernels("cython", "pointwise")
        x = rng.standard_normal((3, 5, 37)).astype(dtype)
        x[0, 0, :3] = [np.nan, -0.0, 0.0]
        scale, shift = rng.standard_normal(5).astype(dtype), rng.standard_normal(5).astype(dtype)
        y = np.empty_like(x)
        pw.relu(x.reshape(-1), y.reshape(-1), 2)
        np.testing.assert_array_equal(y, np.maximum(x, dtype(0)))
        pw.channel_affine(x, scale, shift, y, True, 2)
        ref = np.maximum(x * scale[:, None] + shift[:, None], dtype(0))
        np.testing.assert_array_equal(y, ref)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("parts", ["bias+residual+relu", "residual", "bias", "relu"])
    def test_gemm_epilogue_matches_the_unfused_passes_bit_for_bit(self, isa, rng, dtype, parts):
        from fastconv._cython import gemm as mod
        a = rng.standard_normal((1, 2, 37, 19)).astype(dtype)
        b = rng.standard_normal((3, 2, 19, 53)).astype(dtype)
        bias = rng.standard_normal((2, 37)).astype(dtype) if "bias" in parts else None
        res = rng.standard_normal((3, 2, 37, 53)).astype(dtype) if "residual" in parts else None
        relu = "relu" in parts
        plain = np.empty((3, 2, 37, 53), dtype)
        mod.gemm(a, b, plain, False, 2)
        plain[0, 0, 0, :2] = [np.nan, -0.0]
        ref = unfused_epilogue(plain, bias, res, relu)
        # The epilogue alone (an empty product accumulated) on the same values.
        fused = plain.copy()
        mod.gemm(a[..., :0], b[:, :, :0], fused, True, 2, bias, res, relu)
        np.testing.assert_array_equal(fused, ref)


_CHILD = textwrap.dedent("""
    import json, numpy as np, fastconv
    from fastconv import _isa, filters
    rng = np.random.default_rng(0)
    out = {"active": _isa.active(), "errors": {}}
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 6, 14, 14)).astype(dtype)
        w = rng.standard_normal((16, 6, 3, 3)).astype(dtype)
        ref = fastconv.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1,
                              backend="naive", engine="cython")
        for b in ("direct", "winograd", "im2col"):
            y = fastconv.conv2d(x, w, padding=1, backend=b, engine="cython")
            out["errors"][f"{b}/{np.dtype(dtype).name}"] = float(np.abs(y - ref).max() / np.abs(ref).max())
        img = rng.standard_normal((33, 35)).astype(dtype)
        import scipy.ndimage as ndi
        out["errors"][f"median/{np.dtype(dtype).name}"] = float(np.abs(
            filters.median_filter(img, 5, engine="cython") - ndi.median_filter(img, 5)).max())
        g = filters.gaussian_filter(img, 1.2, engine="cython")
        out["errors"][f"gaussian/{np.dtype(dtype).name}"] = float(
            np.abs(g - ndi.gaussian_filter(img, 1.2)).max() / np.abs(g).max())
    out["families"] = _isa.families()
    print(json.dumps(out))
""")


def _run_child(env_isa, code=_CHILD):
    env = {k: v for k, v in os.environ.items() if k != "FASTCONV_ISA"}
    if env_isa is not None:
        env["FASTCONV_ISA"] = env_isa
    env["PYTHONPATH"] = os.pathsep.join([str(Path(fastconv.__file__).parents[1])]
                                        + [p for p in [env.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)


class TestFastconvIsaVariable:
    @pytest.mark.parametrize("cap", list(_isa.available()))
    def test_each_cap_runs_that_set_and_matches_the_references(self, cap):
        import json
        proc = _run_child(cap)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["active"] == cap
        assert set(out["families"].values()) == {cap}
        for key, err in out["errors"].items():
            assert err < TOL[np.dtype(key.split("/")[1])], (key, err)

    def test_unset_runs_the_best_set_cpuid_reports(self):
        proc = _run_child(None, "from fastconv import _isa; print(_isa.active(), _isa.cpu_best())")
        assert proc.returncode == 0, proc.stderr
        active, best = proc.stdout.split()
        assert active == best == _isa.available()[-1]

    def test_an_unknown_value_stops_the_import_naming_the_variable_and_the_sets(self):
        proc = _run_child("sse9", "import fastconv")
        assert proc.returncode != 0
        assert "ValueError" in proc.stderr and "FASTCONV_ISA='sse9'" in proc.stderr
        assert "baseline, avx2, avx512" in proc.stderr

    def test_a_set_the_cpu_lacks_warns_and_runs_the_best_it_has(self, monkeypatch):
        monkeypatch.setattr(_isa, "cpu_level", lambda: 1)
        with pytest.warns(RuntimeWarning, match="FASTCONV_ISA='avx512'.*lacks avx512.*avx2"):
            assert _isa.resolve("avx512") == "avx2"
        monkeypatch.setattr(_isa, "cpu_level", lambda: 0)
        with pytest.warns(RuntimeWarning, match="FASTCONV_ISA"):
            assert _isa.resolve("avx2") == "baseline"

    def test_a_capped_subprocess_never_runs_above_the_cpu(self):
        # Capping at the top set on this CPU is accepted without a warning.
        proc = _run_child(_isa.cpu_best(), "import warnings; warnings.simplefilter('error'); "
                                           "from fastconv import _isa; print(_isa.active())")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == _isa.cpu_best()


class TestUse:
    def test_switches_every_family_and_restores_it(self):
        import fastconv._cython.im2col  # noqa: F401  (a family to switch)
        before = _isa.active()
        with _isa.use("baseline"):
            assert _isa.active() == "baseline"
            assert set(_isa.families().values()) == {"baseline"}
        assert _isa.active() == before
        assert set(_isa.families().values()) == {before}

    def test_rejects_unknown_sets_and_sets_the_cpu_lacks(self, monkeypatch):
        with pytest.raises(ValueError, match="expected one of baseline, avx2, avx512"):
            with _isa.use("neon"):
                pass
        monkeypatch.setattr(_isa, "available", lambda: ("baseline",))
        with pytest.raises(ValueError, match="runs only baseline"):
            with _isa.use("avx2"):
                pass

    def test_every_family_was_built_for_the_sets_of_this_build(self):
        import fastconv._cython.pool  # noqa: F401
        assert _isa.built("direct") == _isa.built("pool")
        assert _isa.built("direct")[0] == "baseline"


class TestBuildFlags:
    def _setup_strings(self):
        tree = ast.parse((ROOT / "setup.py").read_text())
        return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]

    def test_the_default_build_does_not_tune_for_the_build_machine(self):
        assert not any("-march=native" in s or "-mtune=native" in s for s in self._setup_strings())

    def test_each_set_targets_its_x86_64_level(self):
        strings = self._setup_strings()
        for level in ("-march=x86-64-v2", "-march=x86-64-v3", "-march=x86-64-v4"):
            assert level in strings


class TestInfoCommand:
    def test_info_names_the_cpu_its_best_set_the_cap_and_each_familys_set(self):
        proc = _run_child("baseline", "from fastconv.cli import main; main(['info'])")
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        cpu = _isa.cpu()
        assert f"CPU: {cpu['model_name']}" in out
        if cpu["vendor"]:
            assert f"family {cpu['family']} model {cpu['model']}" in out
        assert f"this CPU's best: {_isa.cpu_best()}" in out and "FASTCONV_ISA = baseline" in out
        families = [line.split() for line in out.splitlines() if line.startswith("  ") and "built:" in line]
        assert {f[0] for f in families} >= {"direct", "im2col", "winograd_f4x3", "pool", "median",
                                            "separable", "pointwise"}
        assert {f[1] for f in families} == {"baseline"}
