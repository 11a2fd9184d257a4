"""conv2d against PyTorch, for every backend and engine this install has."""
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _dispatch
from fastconv._validation import conv2d_args

from conftest import TOL, rel_err

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _cases(n=40, seed=7):
    """A randomized grid of conv2d geometries (fixed seed, readable ids)."""
    rng = np.random.default_rng(seed)
    out = []
    paddings = [0, 1, 2, (1, 0), (0, 2), "same", "valid"]
    for i in range(n):
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        depthwise = rng.random() < 0.15
        cg = 1 if depthwise else int(rng.integers(1, 4))
        kg = int(rng.integers(1, 4))
        C, K = groups * cg, groups * kg
        R = int(rng.integers(1, 12))
        S = R if rng.random() < 0.7 else int(rng.integers(1, 12))
        stride = int(rng.choice([1, 1, 2, 3])) if rng.random() < 0.8 else (1, 2)
        dilation = int(rng.choice([1, 1, 2]))
        padding = paddings[int(rng.integers(len(paddings)))]
        H = int(rng.integers(dilation * (R - 1) + 1, dilation * (R - 1) + 14))
        W = int(rng.integers(dilation * (S - 1) + 1, dilation * (S - 1) + 14))
        N = int(rng.integers(1, 4))
        out.append(pytest.param((N, C, H, W), (K, cg, R, S), stride, padding, dilation, groups,
                                id=f"g{i}-x{N}x{C}x{H}x{W}-w{K}x{cg}x{R}x{S}-s{stride}-p{padding}-d{dilation}-G{groups}"))
    # Wider filter banks than the draws give: blocks of 8 output channels,
    # full and partial (6, 9, 13 per group), and the layers of the benchmarks.
    fixed = [((2, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1, 1),
             ((3, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1),
             ((2, 3, 47, 45), (9, 3, 11, 11), 4, 0, 1, 1),
             ((1, 4, 19, 23), (26, 2, 3, 5), (2, 1), (1, 2), (2, 1), 2),
             ((2, 5, 12, 30), (13, 5, 7, 3), 3, "same", 1, 1)]
    for xs, ws, stride, padding, dilation, groups in fixed:
        out.append(pytest.param(xs, ws, stride, padding, dilation, groups,
                                id=f"f-x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{stride}"))
    return out


def _torch_conv(x, w, b, stride, padding, dilation, groups):
    """The oracle; TensorFlow-style 'same' for stride > 1 padded by hand."""
    s = (stride, stride) if isinstance(stride, int) else stride
    if padding == "same" and s != (1, 1):
        H, W = x.shape[2:]
        R, S = w.shape[2:]
        pads = []
        for size, k, st in ((H, R, s[0]), (W, S, s[1])):
            out = -(-size // st)
            total = max((out - 1) * st + dilation * (k - 1) + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
        padding = 0
    import warnings
    warnings.filterwarnings("ignore", message="Using padding='same'")
    t = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                 stride=stride, padding=padding, dilation=dilation, groups=groups)
    return t.numpy()


def _backend_engines():
    return [(b, e) for b in fastconv.backends() for e in _dispatch.engines(b)]


@pytest.mark.parametrize("backend,engine", _backend_engines())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xshape,wshape,stride,padding,dilation,groups", _cases())
class TestConv2dParity:
    def test_matches_torch(self, backend, engine, dtype, xshape, wshape, stride, padding, dilation, groups):
        rng = np.random.default_rng(abs(hash((xshape, wshape))) % 2**32)
        x = rng.standard_normal(xshape).astype(dtype)
        w = rng.standard_normal(wshape).astype(dtype)
        b = rng.standard_normal(wshape[0]).astype(dtype)
        try:
            _, _, _, p, _ = conv2d_args(x, w, b, stride, padding, dilation, groups)
        except ValueError:
            pytest.skip("geometry invalid for this draw")
        why = _dispatch.backend_module(backend).unsupported(p)
        if why is not None:
            with pytest.raises(ValueError, match=backend):
                fastconv.conv2d(x, w, b, stride, padding, dilation, groups, backend=backend, engine=engine)
            return
        out = fastconv.conv2d(x, w, b, stride, padding, dilation, groups, backend=backend, engine=engine)
        ref = _torch_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                          stride, padding, dilation, groups)
        assert out.dtype == dtype
        assert out.shape == ref.shape
        assert rel_err(out, ref) <= TOL[np.dtype(dtype)]


class TestConv2dSemantics:
    def test_chw_input_gives_chw_output(self, rng):
        x = rng.standard_normal((3, 9, 9)).astype(np.float32)
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        y = fastconv.conv2d(x, w, padding=1)
        assert y.shape == (4, 9, 9)
        np.testing.assert_allclose(y, fastconv.conv2d(x[None], w, padding=1)[0], rtol=1e-6)

    def test_float32_stays_float32_and_mixed_promotes(self, rng):
        x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
        w = rng.standard_normal((2, 2, 3, 3))
        assert fastconv.conv2d(x, w.astype(np.float32)).dtype == np.float32
        assert fastconv.conv2d(x, w).dtype == np.float64

    @pytest.mark.parametrize("stride", [1, 2, 3])
    @pytest.mark.parametrize("size", [7, 8, 9])
    def test_same_padding_output_is_ceil_of_size_over_stride(self, stride, size):
        x = np.ones((1, 1, size, size))
        y = fastconv.conv2d(x, np.ones((1, 1, 4, 4)), stride=stride, padding="same")
        assert y.shape[2:] == (-(-size // stride),) * 2

    def test_same_padding_puts_extra_pad_bottom_right(self):
        # 4x4 ones, 2x2 kernel, stride 1: the extra row/column of zeros is at the end
        y = fastconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), padding="same")[0, 0]
        assert y[0, 0] == 4 and y[-1, -1] == 1

    @pytest.mark.parametrize("make", [
        lambda a: np.asfortranarray(a),
        lambda a: a[..., ::-1].copy()[..., ::-1],
        lambda a: a.astype(a.dtype.newbyteorder(">")),
        lambda a: np.lib.stride_tricks.as_strided(a, a.shape, a.strides, writeable=False),
        lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    ], ids=["fortran", "negative-strides", "big-endian", "read-only", "strided"])
    def test_any_memory_layout_gives_the_same_result(self, make, rng):
        x = rng.standard_normal((2, 3, 8, 8))
        w = rng.standard_normal((4, 3, 3, 3))
        ref = fastconv.conv2d(x, w, padding=1)
        for backend in fastconv.backends():
            out = fastconv.conv2d(make(x), make(w), padding=1, backend=backend)
            np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)

    def test_nan_and_inf_propagate_like_torch(self):
        x = np.zeros((1, 1, 6, 6))
        x[0, 0, 2, 3] = np.nan
        x[0, 0, 5, 0] = np.inf
        w = np.ones((1, 1, 3, 3))
        ref = _torch_conv(x, w, None, 1, 1, 1, 1)
        out = fastconv.conv2d(x, w, padding=1, backend="naive")
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
        np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))

    @pytest.mark.parametrize("engine", _dispatch.engines("direct"))
    def test_direct_is_bitwise_the_same_at_any_thread_count(self, engine, rng):
        # each output is summed by one register block in one order
        x = rng.standard_normal((3, 6, 17, 15)).astype(np.float32)
        w = rng.standard_normal((11, 6, 5, 3)).astype(np.float32)
        with fastconv.num_threads(1):
            one = fastconv.conv2d(x, w, stride=(2, 1), padding=2, backend="direct", engine=engine)
        with fastconv.num_threads(2):
            two = fastconv.conv2d(x, w, stride=(2, 1), padding=2, backend="direct", engine=engine)
        np.testing.assert_array_equal(one, two)

    def test_two_threads_at_once_match_serial_calls(self, rng):
        x = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)
        w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
        for backend in fastconv.backends():
            for engine in _dispatch.engines(backend):
                if _dispatch.backend_module(backend).unsupported(conv2d_args(x, w, None, 1, 1, 1, 1)[3]):
                    continue
                ref = fastconv.conv2d(x, w, padding=1, backend=backend, engine=engine)
                results = [None] * 4

                def work(i):
                    results[i] = fastconv.conv2d(x, w, padding=1, backend=backend, engine=engine)

                threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for r in results:
                    np.testing.assert_array_equal(r, ref)


class TestConv2dBadInput:
    x = np.zeros((1, 4, 8, 8), np.float32)
    w = np.zeros((2, 4, 3, 3), np.float32)

    @pytest.mark.parametrize("kwargs,exc,match", [
        (dict(x=np.zeros((8, 8))), ValueError, "x must be 4-D"),
        (dict(weight=np.zeros((2, 4, 3))), ValueError, "weight must be 4-D"),
        (dict(groups=3), ValueError, "groups=3 must divide"),
        (dict(groups=0), ValueError, "groups must be >= 1"),
        (dict(weight=np.zeros((2, 3, 3, 3), np.float32)), ValueError, "input channels per group"),
        (dict(stride=0), ValueError, "stride must be >= 1"),
        (dict(dilation=-1), ValueError, "dilation must be >= 1"),
        (dict(padding=-1), ValueError, "padding must be >= 0"),
        (dict(padding="full"), ValueError, "padding must be 'valid', 'same'"),
        (dict(stride=1.5), TypeError, "stride must be an int"),
        (dict(stride=float("inf")), TypeError, "stride must be an int"),
        (dict(stride=(1, 2, 3)), ValueError, "stride must be an int or a pair"),
        (dict(weight=np.zeros((2, 4, 9, 9), np.float32)), ValueError, "larger than the padded input"),
        (dict(x=np.zeros((1, 4, 8, 8), np.int32)), TypeError, "x must be float32 or float64"),
        (dict(x=np.zeros((1, 4, 8, 8), np.float16)), TypeError, "x must be float32 or float64"),
        (dict(bias=np.zeros(3, np.float32)), ValueError, "bias must have shape"),
        (dict(backend="cudnn"), ValueError, "backend must be 'auto' or one of"),
        (dict(engine="fortran"), ValueError, "engine must be"),
    ])
    def test_bad_argument_is_named(self, kwargs, exc, match):
        args = dict(x=self.x, weight=self.w)
        args.update(kwargs)
        with pytest.raises(exc, match=match):
            fastconv.conv2d(**args)

    @pytest.mark.parametrize("bad, exc", [(True, TypeError), (1.0, TypeError), ((1, True), TypeError),
                                          ([1, 1.0], TypeError)])
    def test_a_memoised_geometry_does_not_let_a_look_alike_through(self, bad, exc):
        # True and 1.0 hash like 1: the geometry memo must not hand them 1's answer.
        fastconv.conv2d(self.x, self.w, stride=1)
        fastconv.conv2d(self.x, self.w, stride=(1, 1))
        with pytest.raises(exc, match="stride must be an int"):
            fastconv.conv2d(self.x, self.w, stride=bad)


class TestConv2dExtremeGeometry:
    """Geometry far from the usual layers: computed right, or refused by name."""

    def test_direct_refuses_a_kernel_that_wastes_most_of_its_columns(self, rng):
        # A 1x2000 kernel on a 2x2030 image keeps 31 of the 2030 columns the
        # direct kernel's flat index computes (1x100000: minutes where naive takes 1 s).
        x = rng.standard_normal((1, 1, 2, 2030)).astype(np.float32)
        w = rng.standard_normal((1, 1, 1, 2000)).astype(np.float32)
        p = conv2d_args(x, w, None, 1, 0, 1, 1)[3]
        assert "columns" in _dispatch.backend_module("direct").unsupported(p)
        with pytest.raises(ValueError, match="backend 'direct' cannot serve this call: the flat index"):
            fastconv.conv2d(x, w, backend="direct")
        assert _dispatch.resolve(p)[0].__name__ != "fastconv.backends.direct"
        ref = _torch_conv(x, w, None, 1, 0, 1, 1)
        assert rel_err(fastconv.conv2d(x, w), ref) < TOL[np.dtype(np.float32)]

    @pytest.mark.parametrize("backend,engine", _backend_engines())
    def test_outputs_that_read_only_padding_are_exact_zeros(self, rng, backend, engine):
        # padding 1,500 around a 5x5 image: FFT put ~39,000 stray non-zeros in
        # the output (rounding noise of the huge transform), Winograd 75 (tiles
        # straddling the image); torch has zeros wherever a window misses the image.
        x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
        w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
        y = fastconv.conv2d(x, w, padding=1500, backend=backend, engine=engine)
        ref = _torch_conv(x, w, None, 1, 1500, 1, 1)
        np.testing.assert_array_equal(y != 0, ref != 0)
        assert rel_err(y, ref) < TOL[np.dtype(np.float32)]

    @pytest.mark.parametrize("stride,padding,dilation", [
        (1, (40, 3), 1), (3, (40, 50), 1), (2, (17, 9), 3), ((5, 2), (30, 1), (2, 1)), (7, 60, 5)])
    @pytest.mark.parametrize("backend,engine", _backend_engines())
    def test_wide_padding_with_stride_and_dilation_matches_torch(self, rng, backend, engine,
                                                                  stride, padding, dilation):
        x = rng.standard_normal((2, 2, 7, 6))
        w = rng.standard_normal((2, 2, 3, 2))
        p = conv2d_args(x, w, None, stride, padding, dilation, 1)[3]
        if _dispatch.backend_module(backend).unsupported(p) is not None:
            pytest.skip("backend does not serve this geometry")
        y = fastconv.conv2d(x, w, stride=stride, padding=padding, dilation=dilation,
                            backend=backend, engine=engine)
        ref = _torch_conv(x, w, None, stride, padding, dilation, 1)
        np.testing.assert_array_equal(y != 0, ref != 0)
        assert rel_err(y, ref) < TOL[np.dtype(np.float64)]

    def test_an_output_that_cannot_be_allocated_is_refused_before_allocating(self):
        # padding=10**6 asked numpy for 14.6 TiB, and its error named neither.
        x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32)
        with pytest.raises(MemoryError, match=r"output \(1, 1, 2000002, 2000002\) of padding "
                                              r"\(1000000, .*16000032000016 bytes"):
            fastconv.conv2d(x, w, padding=10 ** 6)

    def test_an_allocation_a_process_limit_refuses_names_the_arguments(self):
        # Under a ulimit (or a cgroup) the system's free memory overstates what
        # the process may take; numpy's "Unable to allocate 3.30 GiB" named no
        # argument (found by the fuzz campaign, whose worker runs under one).
        import os
        from conftest import run_isolated
        if "asan" in os.environ.get("LD_PRELOAD", ""):
            pytest.skip("AddressSanitizer's shadow memory needs terabytes of address space: no ulimit")
        out = run_isolated("""
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
            import numpy as np, fastconv
            x = np.ones((3, 4, 9, 1), np.float32); w = np.ones((4, 2, 2, 3), np.float32)
            try:
                fastconv.conv2d(x, w, np.ones(4, np.float32), stride=10 ** 6, dilation=(2, 1), groups=2,
                                padding=4294967297, backend="im2col")
            except MemoryError as exc:
                print(exc)
        """)
        assert out.startswith("conv2d: the output (3, 4, 8590, 8590) of padding"), out
        assert "stride" in out and "could not be allocated" in out

    def test_a_huge_stride_is_computed_as_torch_does(self, rng):
        x = rng.standard_normal((1, 2, 9, 9))
        w = rng.standard_normal((3, 2, 2, 2))
        for stride in (2 ** 55, (3, 2 ** 59)):
            ref = _torch_conv(x, w, None, stride, 1, 1, 1)
            np.testing.assert_allclose(fastconv.conv2d(x, w, stride=stride, padding=1), ref, rtol=1e-12)

    @pytest.mark.parametrize("kwargs,match", [
        (dict(stride=2 ** 60), "stride must be < 2\\*\\*60"),
        (dict(padding=(0, 2 ** 61)), "padding must be < 2\\*\\*60"),
        (dict(dilation=2 ** 62), "dilation must be < 2\\*\\*60"),
        (dict(dilation=2 ** 59, padding=2 ** 59), "dilation .* spreads a 3-tap kernel"),
    ])
    def test_geometry_past_64_bit_indices_is_refused_by_name(self, kwargs, match):
        x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
        with pytest.raises(ValueError, match=match):
            fastconv.conv2d(x, w, **kwargs)
