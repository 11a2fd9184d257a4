"""The im2col backend: parity with naive and torch, the packing's adjoint, tiling."""
import importlib

import numpy as np
import pytest

import fastconv
from fastconv._validation import conv2d_args

from conftest import TOL, engines_for, rel_err, unfused_epilogue

backend = importlib.import_module("fastconv.backends.im2col")
ENGINES = engines_for("im2col")
DTYPES = [np.float32, np.float64]


def _draw_case(rng):
    """One random geometry: (x shape, weight shape, kwargs of conv2d)."""
    groups = int(rng.choice([1, 1, 1, 2, 3, 0]))   # 0: depthwise
    cg = int(rng.integers(1, 4))
    if groups == 0:                      # depthwise
        groups = int(rng.integers(2, 5))
        cg, kg = 1, int(rng.integers(1, 3))
    else:
        kg = int(rng.integers(1, 5))
    R, S = (int(v) for v in rng.integers(1, 12, size=2))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    kind = rng.integers(0, 4)
    padding = [int(rng.integers(0, 4)),
               (int(rng.integers(0, 4)), int(rng.integers(0, 4))),
               "same", "valid"][kind]
    H = int(rng.integers(dilation[0] * (R - 1) + 1, dilation[0] * (R - 1) + 14))
    W = int(rng.integers(dilation[1] * (S - 1) + 1, dilation[1] * (S - 1) + 14))
    N = int(rng.integers(1, 4))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (N, cg * groups, H, W), (kg * groups, cg, R, S), kwargs


CASES = [_draw_case(np.random.default_rng(seed)) for seed in range(24)]
CASE_IDS = [f"x{x}-w{w}-s{k['stride']}-p{k['padding']}-d{k['dilation']}-g{k['groups']}"
            .replace(" ", "") for x, w, k in CASES]

# Named layers (small batches so the suite stays fast).
LAYERS = {
    "lenet-conv1": ((4, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),
    "lenet-conv2": ((4, 6, 14, 14), (16, 6, 5, 5), {}),
    "resnet-3x3": ((2, 16, 20, 20), (16, 16, 3, 3), dict(padding=1)),
    "resnet-1x1": ((2, 32, 14, 14), (16, 32, 1, 1), {}),
    "resnet-down": ((2, 8, 15, 15), (16, 8, 1, 1), dict(stride=2)),
    "alexnet-conv1": ((1, 3, 67, 67), (8, 3, 11, 11), dict(stride=4)),
    "mobilenet-dw": ((2, 12, 16, 16), (12, 1, 3, 3), dict(padding=1, groups=12)),
    "asym-same-s2": ((2, 4, 10, 9), (6, 2, 4, 3), dict(stride=2, padding="same", groups=2)),
}


def _data(rng, xs, ws, dtype):
    return rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)


def _geometry(x, w, **kwargs):
    kw = dict(stride=1, padding=0, dilation=1, groups=1)
    kw.update(kwargs)
    return conv2d_args(x, w, None, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])


class TestConv2d:
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("xs,ws,kwargs", CASES, ids=CASE_IDS)
    def test_matches_naive_on_random_geometries(self, rng, engine, dtype, xs, ws, kwargs):
        x, w = _data(rng, xs, ws, dtype)
        out = fastconv.conv2d(x, w, backend="im2col", engine=engine, **kwargs)
        ref = fastconv.conv2d(x.astype(np.float64), w.astype(np.float64), backend="naive", **kwargs)
        assert out.dtype == dtype
        assert out.shape == ref.shape
        assert rel_err(out, ref) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("layer", list(LAYERS))
    def test_matches_torch_on_named_layers(self, rng, engine, dtype, layer):
        torch = pytest.importorskip("torch")
        xs, ws, kwargs = LAYERS[layer]
        x, w = _data(rng, xs, ws, dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        out = fastconv.conv2d(x, w, b, backend="im2col", engine=engine, **kwargs)
        # torch has no asymmetric or strided 'same' padding: pad explicitly.
        p = _geometry(x, w, **kwargs)[3]
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), p.pad[:2], p.pad[2:]))
        ref = torch.nn.functional.conv2d(torch.from_numpy(xp), torch.from_numpy(w.astype(np.float64)),
                                         torch.from_numpy(b.astype(np.float64)), stride=p.stride,
                                         dilation=p.dilation, groups=p.groups).numpy()
        assert out.dtype == dtype
        assert rel_err(out, ref) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("engine", ENGINES)
    def test_three_d_input_gives_three_d_output(self, rng, engine):
        x, w = _data(rng, (3, 9, 9), (4, 3, 3, 3), np.float64)
        out = fastconv.conv2d(x, w, padding=1, backend="im2col", engine=engine)
        ref = fastconv.conv2d(x[None], w, padding=1, backend="naive")[0]
        assert out.shape == (4, 9, 9)
        assert rel_err(out, ref) < 1e-10

    def test_serves_every_geometry(self):
        _, _, _, p, _ = _geometry(np.zeros((1, 4, 9, 9)), np.zeros((4, 1, 3, 3)), stride=2,
                                  padding="same", dilation=2, groups=4)
        assert backend.unsupported(p) is None


class TestPointwise:
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("groups", [1, 4])
    def test_1x1_is_a_gemm_without_packing(self, rng, monkeypatch, engine, groups):
        x, w = _data(rng, (3, 8, 7, 5), (12, 8 // groups, 1, 1), np.float64)

        def no_pack(*args, **kwargs):
            raise AssertionError("the 1x1 path must not pack")

        monkeypatch.setattr(backend, "kernels", lambda *a: type("K", (), {"im2col": no_pack}))
        out = fastconv.conv2d(x, w, groups=groups, backend="im2col", engine=engine)
        monkeypatch.undo()
        ref = fastconv.conv2d(x, w, groups=groups, backend="naive")
        assert rel_err(out, ref) < 1e-10

    def test_strided_or_padded_1x1_is_not_pointwise(self):
        x, w = np.zeros((1, 2, 6, 6)), np.zeros((3, 2, 1, 1))
        assert backend.is_pointwise(_geometry(x, w)[3])
        assert not backend.is_pointwise(_geometry(x, w, stride=2)[3])
        assert not backend.is_pointwise(_geometry(x, w, padding=1)[3])


class TestEpilogue:
    """The epilogue (bias, residual, ReLU) applied as the products are written
    equals the unfused passes on every layout of the product."""

    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("layout", ["pointwise", "image", "batch", "grouped"])
    @pytest.mark.parametrize("parts", [(True, True, True), (True, False, True), (False, True, False),
                                       (False, False, True)])
    def test_matches_the_unfused_passes(self, rng, dtype, layout, parts):
        xs, ws, kw = {"pointwise": ((3, 8, 9, 7), (12, 8, 1, 1), {}),
                      "image": ((2, 4, 30, 30), (5, 4, 3, 3), {"padding": 1}),
                      "batch": ((6, 8, 5, 5), (32, 8, 3, 3), {"padding": 1}),
                      "grouped": ((2, 8, 9, 9), (12, 2, 3, 3), {"padding": 1, "groups": 4})}[layout]
        x, w = _data(rng, xs, ws, dtype)
        x, w, _, p, _ = _geometry(x, w, **kw)
        if layout in ("image", "batch"):
            assert backend._plan(p, x.itemsize, 2)[2] == layout
        with_bias, with_res, relu = parts
        bias = rng.standard_normal(p.K).astype(dtype) if with_bias else None
        res = rng.standard_normal(p.out_shape).astype(dtype) if with_res else None
        ref = unfused_epilogue(backend.conv2d(x, w, p, "cython", 2), bias, res, relu)
        out = backend.conv2d(x, w, p, "cython", 2, out=np.full(p.out_shape, np.nan, dtype),
                             epilogue=(bias, res, relu))
        assert rel_err(out, ref) < TOL[np.dtype(dtype)]


class TestTiling:
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("ratio", [0, 10 ** 9], ids=["image-layout", "batch-layout"])
    def test_batch_split_into_tiles_gives_the_same_result(self, rng, monkeypatch, engine, dtype,
                                                          ratio):
        x, w = _data(rng, (11, 4, 12, 12), (6, 2, 3, 3), dtype)
        kwargs = dict(padding=1, groups=2)
        whole = fastconv.conv2d(x, w, backend="im2col", engine=engine, **kwargs)
        monkeypatch.setattr(backend, "BATCH_LAYOUT_RATIO", ratio)
        # Room for 3 images per tile: 4 tiles, the last one partial.
        per_image = 4 * 9 * 144 * np.dtype(dtype).itemsize
        monkeypatch.setattr(backend, "WORKSPACE_BYTES", 3 * per_image)
        p = _geometry(x, w, **kwargs)[3]
        assert backend._plan(p, np.dtype(dtype).itemsize, 2)[:2] == (3, 2)
        tiled = fastconv.conv2d(x, w, backend="im2col", engine=engine, **kwargs)
        ref = fastconv.conv2d(x, w, backend="naive", **kwargs)
        assert rel_err(tiled, whole) < TOL[np.dtype(dtype)]
        assert rel_err(tiled, ref) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("engine", ENGINES)
    def test_groups_split_when_one_image_exceeds_the_workspace(self, rng, monkeypatch, engine):
        x, w = _data(rng, (2, 6, 10, 10), (6, 2, 3, 3), np.float64)
        monkeypatch.setattr(backend, "WORKSPACE_BYTES", 1)
        p = _geometry(x, w, padding=1, groups=3)[3]
        assert backend._plan(p, 8, 2)[:2] == (1, 1)
        out = fastconv.conv2d(x, w, padding=1, groups=3, backend="im2col", engine=engine)
        ref = fastconv.conv2d(x, w, padding=1, groups=3, backend="naive")
        assert rel_err(out, ref) < 1e-10

    def test_small_layers_pack_several_images_per_tile(self):
        p = _geometry(np.zeros((64, 6, 14, 14)), np.zeros((16, 6, 5, 5)))[3]
        nb, gb, _ = backend._plan(p, 4, 2)
        assert nb > 8 and gb == 1

    def test_workspace_stays_bounded_for_large_batches(self):
        p = _geometry(np.zeros((4096, 64, 56, 56)), np.zeros((64, 64, 3, 3)), padding=1)[3]
        nb, gb, _ = backend._plan(p, 4, 1024)
        assert nb * gb * 64 * 9 * 56 * 56 * 4 <= backend.WORKSPACE_BYTES


class TestIm2colCol2im:
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("xs,ws,kwargs", CASES[:12], ids=CASE_IDS[:12])
    def test_col2im_is_the_adjoint_of_im2col(self, rng, engine, dtype, xs, ws, kwargs):
        x, w = _data(rng, xs, ws, dtype)
        x, w, _, p, _ = _geometry(x, w, **kwargs)
        cols = backend.im2col(x, p, engine, 2)
        c = rng.standard_normal(cols.shape).astype(dtype)
        back = backend.col2im(c, p, engine, 2)
        lhs = np.vdot(back.astype(np.float64), x.astype(np.float64))
        rhs = np.vdot(c.astype(np.float64), cols.astype(np.float64))
        scale = np.abs(c).astype(np.float64).ravel() @ np.abs(cols).astype(np.float64).ravel()
        assert abs(lhs - rhs) <= TOL[np.dtype(dtype)] * max(scale, 1e-30)

    @pytest.mark.parametrize("engine", ENGINES)
    def test_im2col_matches_a_padded_gather(self, rng, engine):
        x = rng.standard_normal((2, 3, 7, 8))
        x, w, _, p, _ = _geometry(x, np.zeros((1, 3, 3, 2)), stride=(2, 1), padding=(1, 2),
                                  dilation=(1, 2))
        cols = backend.im2col(x, p, engine, 2)
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
        ref = np.empty((3, 3, 2, 2, p.OH, p.OW))
        for r in range(3):
            for s in range(2):
                ref[:, r, s] = xp[:, :, r:r + 2 * p.OH:2, 2 * s:2 * s + p.OW].transpose(1, 0, 2, 3)
        assert np.array_equal(cols, ref.reshape(18, -1))

    @pytest.mark.parametrize("engine", ENGINES)
    def test_col2im_accumulates_overlapping_windows_into_out(self, engine):
        x = np.zeros((1, 1, 4, 4))
        x, w, _, p, _ = _geometry(x, np.zeros((1, 1, 3, 3)))
        out = np.ones((1, 1, 4, 4))
        backend.col2im(np.ones((9, 4)), p, engine, 2, out=out)
        counts = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
        assert np.array_equal(out[0, 0], 1 + counts)

    @pytest.mark.parametrize("engine", ENGINES)
    def test_conv_equals_gemm_on_im2col(self, rng, engine):
        x, w = _data(rng, (3, 4, 9, 9), (6, 2, 3, 3), np.float64)
        x, w, _, p, _ = _geometry(x, w, padding=1, groups=2)
        cols = backend.im2col(x, p, engine, 2).reshape(2, 18, 3, 81)
        y = np.einsum("gkr,grnl->ngkl", w.reshape(2, 3, 18), cols).reshape(3, 6, 9, 9)
        assert rel_err(y, fastconv.conv2d(x, w, padding=1, groups=2, backend="naive")) < 1e-10

    def test_bad_arguments_are_named(self):
        x, w, _, p, _ = _geometry(np.zeros((1, 2, 5, 5)), np.zeros((1, 2, 3, 3)))
        with pytest.raises(ValueError, match="x must have shape"):
            backend.im2col(np.zeros((1, 3, 5, 5)), p, "numba", 1)
        with pytest.raises(TypeError, match="x must be"):
            backend.im2col(np.zeros((1, 2, 5, 5), dtype=np.int64), p, "numba", 1)
        with pytest.raises(ValueError, match="cols must have shape"):
            backend.col2im(np.zeros((18, 10)), p, "numba", 1)
        with pytest.raises(ValueError, match="out must have shape"):
            backend.col2im(np.zeros((18, 9)), p, "numba", 1, out=np.zeros((2, 2, 5, 5)))
        with pytest.raises(ValueError, match="cols must be C-contiguous"):
            backend.col2im(np.zeros((9, 18)).T, p, "numba", 1)
