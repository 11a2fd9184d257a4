"""The FFT backend: parity with the naive backend, torch and scipy.signal."""
import numpy as np
import pytest

import fastconv
from fastconv._validation import conv2d_args
from fastconv.backends import fft as fft_backend

from conftest import TOL, engines_for, rel_err

ENGINES = engines_for("fft")
DTYPES = [np.float32, np.float64]


def _grid(n, seed=7):
    """Random geometries the backend claims: kernels up to 13, padding incl. 'same',
    dilation, groups, strides (only those whose phase kernels keep 49 taps)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        g = int(rng.choice([1, 1, 2, 3]))
        C, K = g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
        R, S = int(rng.integers(1, 14)), int(rng.integers(1, 14))
        dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if rng.random() < 0.4 else (1, 1)
        padding = ["same", 0, (int(rng.integers(0, 6)), int(rng.integers(0, 6)))][int(rng.integers(0, 3))]
        H = int(rng.integers(dil[0] * (R - 1) + 1, 48))
        W = int(rng.integers(dil[1] * (S - 1) + 1, 48))
        geom = dict(x=(int(rng.integers(1, 4)), C, H, W), w=(K, C // g, R, S), stride=stride,
                    padding=padding, dilation=dil, groups=g)
        p = conv2d_args(np.empty(geom["x"]), np.empty(geom["w"]), None, stride, padding, dil, g)[3]
        if fft_backend.unsupported(p) is None:
            out.append(geom)
    return out


GRID = _grid(24)


def _ids(geom):
    return "x{}-w{}-s{}-p{}-d{}-g{}".format(
        "x".join(map(str, geom["x"])), "x".join(map(str, geom["w"])), "".join(map(str, geom["stride"])),
        geom["padding"] if isinstance(geom["padding"], str) else "".join(map(str, np.ravel(geom["padding"]))),
        "".join(map(str, geom["dilation"])), geom["groups"])


def _args(geom):
    return dict(stride=geom["stride"], padding=geom["padding"], dilation=geom["dilation"],
                groups=geom["groups"])


class TestConv2dFFT:
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    @pytest.mark.parametrize("geom", GRID, ids=[_ids(g) for g in GRID])
    def test_matches_naive_backend(self, geom, dtype, engine, rng):
        x = rng.standard_normal(geom["x"]).astype(dtype)
        w = rng.standard_normal(geom["w"]).astype(dtype)
        ref = fastconv.conv2d(x.astype(np.float64), w.astype(np.float64), backend="naive", **_args(geom))
        out = fastconv.conv2d(x, w, backend="fft", engine=engine, **_args(geom))
        assert out.dtype == dtype
        assert out.shape == ref.shape
        assert rel_err(out, ref) < TOL[np.dtype(dtype)]

    @pytest.mark.parametrize("geom", GRID[:12], ids=[_ids(g) for g in GRID[:12]])
    def test_matches_torch(self, geom, rng):
        torch = pytest.importorskip("torch")
        import torch.nn.functional as F
        x = rng.standard_normal(geom["x"])
        w = rng.standard_normal(geom["w"])
        b = rng.standard_normal(geom["w"][0])
        args = _args(geom)
        pad = args["padding"]
        if pad == "same" and args["stride"] != (1, 1):
            pytest.skip("torch has no 'same' padding for strided convolutions")
        ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **args).numpy()
        out = fastconv.conv2d(x, w, b, backend="fft", **args)
        assert rel_err(out, ref) < TOL[np.dtype(np.float64)]

    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    def test_large_input_is_tiled_and_exact(self, dtype, engine, rng, monkeypatch):
        # Tiles only bound memory: a small chunk makes this input "large".
        monkeypatch.setattr(fft_backend, "_CHUNK_BYTES", 2 ** 18)
        fft_backend._plan.cache_clear()
        fft_backend._layout.cache_clear()
        x = rng.standard_normal((2, 3, 181, 203)).astype(dtype)
        w = rng.standard_normal((4, 3, 7, 5)).astype(dtype)
        p = conv2d_args(x, w, None, 1, (3, 1), 1, 1)[3]
        L1, L2, th, tw = fft_backend._plan(p.N, p.C, p.K, p.Cg, p.H, p.W, (3, 3, 1, 1), 7, 5, x.itemsize)
        assert th < p.OH and tw < p.OW, "the geometry no longer exercises overlap-save tiling"
        ref = fastconv.conv2d(x.astype(np.float64), w.astype(np.float64), padding=(3, 1), backend="naive")
        out = fastconv.conv2d(x, w, padding=(3, 1), backend="fft", engine=engine)
        fft_backend._plan.cache_clear()
        fft_backend._layout.cache_clear()
        assert out.dtype == dtype
        assert rel_err(out, ref) < TOL[np.dtype(dtype)]

    def test_whole_planes_unless_an_image_outgrows_a_chunk(self):
        assert fft_backend._plan(8, 16, 32, 16, 128, 128, (5, 5, 5, 5), 11, 11, 4) == (135, 135, 128, 128)
        L1, L2, th, tw = fft_backend._plan(2, 256, 256, 256, 1024, 1024, (5, 5, 5, 5), 11, 11, 4)
        assert th < 1024 and tw < 1024

    def test_tile_plan_covers_the_output(self):
        for args in [(1, 1, 1, 1, 2048, 2048, (15, 15, 15, 15), 31, 31, 4),
                     (8, 64, 64, 64, 64, 64, (5, 5, 5, 5), 11, 11, 4),
                     (1, 1, 1, 1, 512, 298, (7, 7, 1, 1), 15, 3, 8)]:
            L1, L2, th, tw = fft_backend._plan(*args)
            H, W, pad, R, S = args[4:9]
            Hp, Wp = H + pad[0] + pad[1], W + pad[2] + pad[3]
            assert th <= L1 - R + 1 or L1 >= H + max(pad[:2])
            assert tw <= L2 - S + 1 or L2 >= W + max(pad[2:])
            assert th <= Hp - R + 1 and tw <= Wp - S + 1
        # 'same' with 31 taps on 512: the whole axis fits 540, the padded 542 would need 576.
        assert fft_backend._plan(1, 1, 1, 1, 512, 512, (15, 15, 15, 15), 31, 31, 8)[:2] == (540, 540)

    @pytest.mark.parametrize("pad", [(15, 15), (30, 0), (0, 30), (3, 27), (40, 40)])
    def test_whole_axis_length_below_the_padded_extent_is_exact(self, pad, rng):
        # The untiled length only needs the input plus its larger padding; the
        # wrap-around of the other padding must land in zeros on both sides.
        x = rng.standard_normal((1, 1, 40, 33))
        w = rng.standard_normal((1, 1, 31, 5))
        padding = (pad[0], 2) if pad[0] == pad[1] else None
        if padding is None:
            xp = np.pad(x, ((0, 0), (0, 0), pad, (2, 2)))
            ref = fastconv.conv2d(xp, w, backend="naive")
        else:
            ref = fastconv.conv2d(x, w, padding=padding, backend="naive")
        out = fft_backend._correlate(x, w, (pad[0], pad[1], 2, 2), 1, "numba", 1)
        assert rel_err(out, ref) < 1e-12

    def test_unsupported_geometry_raises_naming_why(self):
        x = np.ones((1, 2, 16, 16), np.float32)
        w = np.ones((3, 2, 2, 2), np.float32)
        with pytest.raises(ValueError, match=r"backend 'fft' cannot serve.*stride \(2, 2\) leaves phase kernels of 1x1"):
            fastconv.conv2d(x, w, stride=2, backend="fft")

    @pytest.mark.parametrize("k, stride, served", [(11, 2, False), (13, 2, True), (11, 3, False),
                                                   (11, 4, False), (21, 4, False), (21, 3, True),
                                                   (31, 4, True), (3, 2, False)])
    def test_strided_geometry_is_served_when_phase_kernels_keep_49_taps(self, k, stride, served):
        x = np.ones((1, 1, 64, 64))
        w = np.ones((1, 1, k, k))
        p = conv2d_args(x, w, None, stride, 0, 1, 1)[3]
        assert (fft_backend.unsupported(p) is None) == served

    def test_dilation_counts_towards_the_phase_kernel(self):
        x = np.ones((1, 1, 64, 64))
        w = np.ones((1, 1, 5, 5))
        p = conv2d_args(x, w, None, 2, 0, 3, 1)[3]      # extent 13, phases 7x7
        assert fft_backend.unsupported(p) is None


SIGNAL_SHAPES = [((23, 31), (5, 4)), ((16, 9), (7, 11)), ((12, 12), (12, 12)), ((40, 33), (13, 13))]


class TestSignalFFT:
    @pytest.mark.parametrize("engine", ENGINES)
    @pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128], ids=["f32", "f64", "c128"])
    @pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
    @pytest.mark.parametrize("mode", ["full", "same", "valid"])
    @pytest.mark.parametrize("func", ["convolve2d", "correlate2d"])
    def test_matches_scipy(self, func, mode, boundary, dtype, engine, rng):
        import scipy.signal
        for sa, sb in SIGNAL_SHAPES:
            a = rng.standard_normal(sa).astype(dtype)
            b = rng.standard_normal(sb).astype(dtype)
            if np.dtype(dtype).kind == "c":
                a = a + 1j * rng.standard_normal(sa)
                b = b + 1j * rng.standard_normal(sb)
            if mode == "valid" and not (all(i >= j for i, j in zip(sa, sb))
                                        or all(j >= i for i, j in zip(sa, sb))):
                continue
            ref = getattr(scipy.signal, func)(a, b, mode, boundary, fillvalue=0.5)
            out = getattr(fastconv, func)(a, b, mode, boundary, fillvalue=0.5, backend="fft",
                                          engine=engine)
            assert out.dtype == ref.dtype
            assert out.shape == ref.shape
            tol = TOL[np.dtype(np.float32)] if dtype == np.float32 else TOL[np.dtype(np.float64)]
            assert rel_err(out.real, ref.real) < tol and rel_err(out.imag, ref.imag) < tol

    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    def test_large_image_same_mode_matches_fftconvolve(self, dtype, rng):
        import scipy.signal
        a = rng.standard_normal((300, 257)).astype(dtype)
        k = rng.standard_normal((15, 15)).astype(dtype)
        out = fastconv.convolve2d(a, k, "same", backend="fft")
        ref = scipy.signal.fftconvolve(a.astype(np.float64), k.astype(np.float64), "same")
        assert out.dtype == dtype
        assert rel_err(out, ref) < TOL[np.dtype(dtype)]


class TestKernelSpectra:
    def test_a_kernel_used_again_is_not_transformed_again(self, rng):
        fft_backend._spectra.clear()
        x = rng.standard_normal((64, 64))
        w = rng.standard_normal((9, 9))
        a = fastconv.correlate2d(x, w, "same", backend="fft")
        b = fastconv.correlate2d(x, w.copy(), "same", backend="fft")   # equal content
        assert np.array_equal(a, b)
        assert fft_backend._spectra.info() == {"hits": 1, "misses": 1, "size": 1}

    @pytest.mark.parametrize("shape", [(1, 1, 40, 40), (2, 3, 40, 40)], ids=["plane", "batch"])
    def test_in_place_change_is_noticed(self, shape, rng):
        x = rng.standard_normal(shape)
        w = rng.standard_normal((2, shape[1], 7, 7))[: 1 if shape[0] == 1 else 2]
        fastconv.conv2d(x, w, padding=3, backend="fft")
        w[0, 0, 3, 1] += 1.0
        ref = fastconv.conv2d(x, w, padding=3, backend="naive")
        assert rel_err(fastconv.conv2d(x, w, padding=3, backend="fft"), ref) < 1e-12

    def test_cached_spectra_are_read_only(self, rng):
        S = fft_backend._kernel_spectra(rng.standard_normal((2, 2, 5, 5)), 16, 16, 1)
        with pytest.raises(ValueError):
            S[0] = 0


class TestPocketfftFallback:
    @pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
    def test_public_scipy_path_gives_the_same_planes(self, dtype, rng, monkeypatch):
        # Without scipy's private binding the passes go through scipy.fft's
        # public functions; the results must not change.
        from fastconv import _pocketfft
        a = rng.standard_normal((30, 20)).astype(dtype)
        ref = np.fft.rfft2(a.astype(np.float64), s=(36, 32))
        ctype = np.result_type(dtype, np.complex64)
        for binding in (True, False):
            monkeypatch.setitem(_pocketfft._state, "binding", binding and _pocketfft._pp is not None)
            S = _pocketfft.rfft2_padded(a, 36, 32, np.empty((36, 17), ctype), 2)
            assert S.dtype == ctype
            assert np.abs(S - ref).max() / np.abs(ref).max() < TOL[np.dtype(dtype)]
            y = _pocketfft.irfft2_into(S.copy(), 32, np.empty((36, 32), dtype), 2)
            assert rel_err(y[:30, :20], a) < TOL[np.dtype(dtype)]
            assert np.abs(y[30:]).max() < 1e-3 and np.abs(y[:, 20:]).max() < 1e-3
