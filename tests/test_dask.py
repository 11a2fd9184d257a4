"""fastconv.dask against the in-memory functions, block by block.

Oracle: the in-memory fastconv function on the whole array (itself tested
against scipy and torch).  Integers must agree bit for bit, float64 within
1e-6 and float32 within 1e-5 of the output's scale, for every mode and
boundary, chunks smaller than the kernel, kernels larger than the array,
uneven chunks and even kernels.  The grid runs on dask's synchronous
scheduler; the threaded scheduler and a LocalCluster get a few cases each.
"""
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import fastconv  # noqa: E402
import fastconv.dask as fd  # noqa: E402
from fastconv import filters, nn  # noqa: E402
from fastconv.models import LeNet5  # noqa: E402

from conftest import rel_err  # noqa: E402

DASK_TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-6}

# (name, chunks) of a 23 x 19 image: regular, uneven, one row, smaller than
# every kernel, and a single chunk.
CHUNKINGS = {
    "regular": (8, 8),
    "uneven": ((5, 11, 7), (9, 3, 7)),
    "thin": (2, 3),
    "whole": (23, 19),
}


@pytest.fixture(autouse=True)
def sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def check_same(lazy, ref):
    """``lazy`` computes to ``ref`` and every block has the shape its chunks declare."""
    assert lazy.shape == ref.shape and lazy.dtype == ref.dtype
    assert type(lazy._meta) is np.ndarray and lazy._meta.dtype == ref.dtype
    blocks = dask.compute(*lazy.to_delayed().ravel())
    grid = np.array(np.meshgrid(*[np.arange(len(c)) for c in lazy.chunks], indexing="ij"))
    for b, idx in zip(blocks, grid.reshape(lazy.ndim, -1).T):
        assert b.shape == tuple(c[i] for c, i in zip(lazy.chunks, idx))
    out = lazy.compute()
    if ref.dtype.kind in "iub":
        np.testing.assert_array_equal(out, ref)
    else:
        tol = DASK_TOL[np.dtype(ref.real.dtype)]
        assert rel_err(out.real, ref.real) <= tol
        if ref.dtype.kind == "c":
            assert rel_err(out.imag, ref.imag) <= tol


def image(rng, dtype, shape=(23, 19)):
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 200, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# --- scipy.signal's functions -------------------------------------------------

@pytest.mark.parametrize("func", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize("kshape", [(3, 3), (4, 2), (9, 6)], ids=["3x3", "even-4x2", "9x6"])
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
class TestConvolve2d:
    def test_float64_equals_in_memory(self, rng, func, mode, boundary, kshape, chunking):
        img, ker = image(rng, np.float64), rng.standard_normal(kshape)
        lazy = getattr(fd, func)(da.from_array(img, chunks=CHUNKINGS[chunking]), ker, mode, boundary,
                                 fillvalue=0.5)
        check_same(lazy, getattr(fastconv, func)(img, ker, mode, boundary, fillvalue=0.5))


@pytest.mark.parametrize("func", ["convolve2d", "correlate2d"])
class TestSignalEdgeCases:
    @pytest.mark.parametrize("mode", ["full", "same"])
    @pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
    def test_kernel_larger_than_the_whole_array(self, rng, func, mode, boundary):
        img, ker = image(rng, np.float64, (9, 7)), rng.standard_normal((25, 16))
        lazy = getattr(fd, func)(da.from_array(img, chunks=4), ker, mode, boundary)
        check_same(lazy, getattr(fastconv, func)(img, ker, mode, boundary))

    def test_valid_with_the_kernel_larger_swaps_as_scipy(self, rng, func):
        img, ker = image(rng, np.float64, (6, 5)), rng.standard_normal((12, 9))
        lazy = getattr(fd, func)(da.from_array(img, chunks=3), ker, "valid")
        check_same(lazy, getattr(fastconv, func)(img, ker, "valid"))

    @pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
    def test_integers_wrap_bit_for_bit(self, rng, func, boundary):
        img = rng.integers(-2 ** 31, 2 ** 31 - 1, (23, 19)).astype(np.int32)
        ker = rng.integers(-1000, 1000, (5, 4)).astype(np.int32)
        lazy = getattr(fd, func)(da.from_array(img, chunks=(7, 6)), ker, "same", boundary, fillvalue=-3)
        check_same(lazy, getattr(fastconv, func)(img, ker, "same", boundary, fillvalue=-3))

    def test_float32_and_complex(self, rng, func):
        img = image(rng, np.float32)
        ker = (rng.standard_normal((4, 5)) + 1j * rng.standard_normal((4, 5))).astype(np.complex64)
        lazy = getattr(fd, func)(da.from_array(img, chunks=(6, 7)), ker, "full", "symm")
        check_same(lazy, getattr(fastconv, func)(img, ker, "full", "symm"))

    def test_fill_value_in_the_common_dtype(self, rng, func):
        img = rng.integers(0, 9, (10, 11)).astype(np.uint8)
        lazy = getattr(fd, func)(da.from_array(img, chunks=4), np.ones((3, 3)), "same", fillvalue=0.25)
        check_same(lazy, getattr(fastconv, func)(img, np.ones((3, 3)), "same", fillvalue=0.25))

    def test_bad_arguments_raise_as_in_memory(self, func):
        x = da.zeros((8, 8), chunks=4)
        with pytest.raises(ValueError, match="mode"):
            getattr(fd, func)(x, np.ones((2, 2)), "bogus")
        with pytest.raises(ValueError, match="boundary"):
            getattr(fd, func)(x, np.ones((2, 2)), "same", "nope")
        with pytest.raises(ValueError, match="2-D"):
            getattr(fd, func)(da.zeros((2, 8, 8)), np.ones((2, 2)))
        with pytest.raises(ValueError, match="non-empty"):
            getattr(fd, func)(da.zeros((0, 8)), np.ones((2, 2)))


# --- PyTorch's conv2d ------------------------------------------------------------

CONV_CASES = {
    "3x3-pad1": dict(k=(3, 3), padding=1),
    "3x3-same": dict(k=(3, 3), padding="same"),
    "even-4x2-same": dict(k=(4, 2), padding="same"),
    "5x5-stride2-pad2": dict(k=(5, 5), stride=2, padding=2),
    "3x3-stride3-same": dict(k=(3, 3), stride=3, padding="same"),
    "3x3-dil2-same": dict(k=(3, 3), dilation=2, padding="same"),
    "4x4-stride2-dil2": dict(k=(4, 4), stride=(2, 1), dilation=(1, 2)),
    "1x1-stride2": dict(k=(1, 1), stride=2),
    "grouped-3x3": dict(k=(3, 3), padding=1, groups=2),
}


class TestConv2d:
    @pytest.mark.parametrize("case", list(CONV_CASES))
    @pytest.mark.parametrize("chunks", [(2, 4, 7, 6), (3, 2, 3, 2), (5, 4, 23, 19)],
                             ids=["halo", "thin", "batch-only"])
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_equals_in_memory(self, rng, case, chunks, dtype):
        c = dict(CONV_CASES[case])
        k = c.pop("k")
        groups = c.get("groups", 1)
        x = rng.standard_normal((5, 4, 23, 19)).astype(dtype)
        w = rng.standard_normal((6, 4 // groups) + k).astype(dtype)
        b = rng.standard_normal(6).astype(dtype)
        lazy = fd.conv2d(da.from_array(x, chunks=chunks), w, b, **c)
        check_same(lazy, fastconv.conv2d(x, w, b, **c))

    def test_same_padding_keeps_the_chunks(self, rng):
        x = da.from_array(rng.standard_normal((4, 2, 20, 20)).astype(np.float32), chunks=(2, 2, 8, 8))
        y = fd.conv2d(x, np.ones((3, 2, 5, 5), np.float32), padding="same")
        assert y.chunks == ((2, 2), (3,), (8, 8, 4), (8, 8, 4))

    def test_chw_input_gives_chw_output(self, rng):
        x = rng.standard_normal((2, 12, 12))
        w = rng.standard_normal((3, 2, 3, 3))
        check_same(fd.conv2d(da.from_array(x, chunks=(2, 5, 5)), w), fastconv.conv2d(x, w))

    def test_bad_arguments_raise_as_in_memory(self):
        x = da.zeros((1, 2, 8, 8), chunks=4)
        with pytest.raises(ValueError, match="groups"):
            fd.conv2d(x, np.ones((3, 1, 3, 3)), groups=3)
        with pytest.raises(TypeError, match="float32 or float64"):
            fd.conv2d(x.astype(np.int32), np.ones((3, 2, 3, 3), np.int32))
        with pytest.raises(ValueError, match="larger than the padded input"):
            fd.conv2d(x, np.ones((3, 2, 9, 9)))


# --- the filters ---------------------------------------------------------------------

MODES = ["reflect", "constant", "nearest", "mirror", "wrap"]
FILTER_CASES = {
    "mean_filter": [(5,), ((4, 7),)],
    "gaussian_filter": [(1.5,), ((0.8, 3.0),)],
    "sobel": [(0,), (None,)],
    "median_filter": [(3,), ((4, 5),)],
}


def _filter_cases(name):
    return pytest.mark.parametrize("args", FILTER_CASES[name], ids=repr)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunking", ["regular", "uneven", "thin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
class _FilterGrid:
    name = None

    def test_equals_in_memory(self, rng, mode, chunking, dtype, args):
        img = image(rng, dtype)
        lazy = getattr(fd, self.name)(da.from_array(img, chunks=CHUNKINGS[chunking]), *args,
                                      mode=mode, cval=7.0)
        check_same(lazy, getattr(filters, self.name)(img, *args, mode=mode, cval=7.0))


@_filter_cases("mean_filter")
class TestMeanFilter(_FilterGrid):
    name = "mean_filter"


@_filter_cases("gaussian_filter")
class TestGaussianFilter(_FilterGrid):
    name = "gaussian_filter"


@_filter_cases("sobel")
class TestSobel(_FilterGrid):
    name = "sobel"


@_filter_cases("median_filter")
class TestMedianFilter(_FilterGrid):
    name = "median_filter"


class TestFilterEdgeCases:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("name,args", [("mean_filter", (31,)), ("median_filter", (27,)),
                                           ("gaussian_filter", (6.0,))])
    def test_window_larger_than_the_whole_array(self, rng, mode, name, args):
        img = image(rng, np.float64, (11, 9))
        lazy = getattr(fd, name)(da.from_array(img, chunks=(4, 5)), *args, mode=mode, cval=-1.0)
        check_same(lazy, getattr(filters, name)(img, *args, mode=mode, cval=-1.0))

    @pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap"])
    @pytest.mark.parametrize("chunks", [(7, 6), (28, 6), (7, 24), (14, 8)], ids=str)
    def test_packed_halo_equals_dasks_overlap(self, rng, mode, chunks, monkeypatch):
        # The two-tasks-a-block halo (halos of 4 here, no wider than a chunk)
        # against the general strips + overlap path.
        img = image(rng, np.float32, (28, 24))
        x = da.from_array(img, chunks=chunks)
        packed = fd.gaussian_filter(x, 1.0, mode=mode)
        conv = fd.convolve2d(x, img[:5, :4], "same", "wrap" if mode == "wrap" else "symm")
        assert len(packed.__dask_graph__()) <= 4 * x.npartitions + 1
        monkeypatch.setattr(fd, "_packed_halo_fits", lambda x, axes: False)
        np.testing.assert_array_equal(packed.compute(), fd.gaussian_filter(x, 1.0, mode=mode).compute())
        np.testing.assert_array_equal(conv.compute(), fd.convolve2d(
            x, img[:5, :4], "same", "wrap" if mode == "wrap" else "symm").compute())

    def test_wrap_reads_the_far_chunk(self, rng):
        # dask-image#242: each chunk wrapped onto itself.
        img = np.zeros((12, 12))
        img[0, :] = 1.0
        out = fd.mean_filter(da.from_array(img, chunks=4), 3, mode="wrap").compute()
        assert np.allclose(out[-1, :], 1 / 3)
        np.testing.assert_allclose(out, filters.mean_filter(img, 3, mode="wrap"))

    @pytest.mark.parametrize("cval", [300.0, -2.5])
    def test_uint8_with_a_cval_outside_uint8(self, rng, cval):
        img = image(rng, np.uint8)
        for name, args in (("mean_filter", (3,)), ("gaussian_filter", (1.0,)), ("median_filter", (3,))):
            lazy = getattr(fd, name)(da.from_array(img, chunks=(6, 7)), *args, mode="constant", cval=cval)
            check_same(lazy, getattr(filters, name)(img, *args, mode="constant", cval=cval))

    def test_stacks_are_filtered_image_by_image(self, rng):
        img = image(rng, np.float32, (4, 23, 19))
        lazy = fd.gaussian_filter(da.from_array(img, chunks=(3, 8, 8)), 2.0, mode="mirror")
        check_same(lazy, filters.gaussian_filter(img, 2.0, mode="mirror"))

    def test_bad_arguments_raise_as_in_memory(self):
        x = da.zeros((8, 8), chunks=4)
        with pytest.raises(ValueError, match="mode"):
            fd.mean_filter(x, 3, mode="bogus")
        with pytest.raises(TypeError, match="dtype"):
            fd.mean_filter(x.astype(np.int16), 3)
        with pytest.raises(ValueError, match="sigma"):
            fd.gaussian_filter(x, -1.0)
        with pytest.raises(ValueError, match="2-D"):
            fd.median_filter(da.zeros((8,), chunks=4), 3)


# --- laziness, chunks, schedulers -------------------------------------------------------

def _poisoned(shape, chunks):
    """A dask array whose blocks raise when computed."""
    def boom(block):
        raise AssertionError("computed while building the graph")
    return da.zeros(shape, chunks=chunks).map_blocks(boom, dtype=np.float64,
                                                     meta=np.empty((0,) * len(shape)))


class TestLaziness:
    def test_building_the_graph_computes_nothing(self):
        x = _poisoned((20, 20), 6)
        for y in (fd.convolve2d(x, np.ones((3, 3)), "same", "wrap"),
                  fd.correlate2d(x, np.ones((4, 4)), "full", "symm"),
                  fd.mean_filter(x, 5, mode="wrap"), fd.gaussian_filter(x, 2.0),
                  fd.sobel(x, mode="constant"), fd.median_filter(x, 3, mode="mirror")):
            assert y.dtype == np.float64 and y._meta.shape == (0, 0)
        y = fd.conv2d(_poisoned((2, 3, 20, 20), (1, 3, 6, 6)), np.ones((4, 3, 3, 3)), padding="same")
        assert y.shape == (2, 4, 20, 20)

    def test_numpy_input_gets_backend_chunks(self, rng):
        img = rng.standard_normal((300, 200)).astype(np.float32)
        y = fd.gaussian_filter(img, 1.0)
        assert isinstance(y, da.Array) and y.chunks == ((300,), (200,))
        chunks = fd.auto_chunks((20000, 20000), np.float32, (15, 15))
        from scipy.fft import next_fast_len
        assert next_fast_len(chunks[0][0] + 14) == chunks[0][0] + 14
        assert chunks[0][0] * chunks[1][0] * 4 <= 20 * 2 ** 20


class TestThreadedScheduler:
    def test_threads_give_the_same_result(self, rng):
        img = image(rng, np.float32, (200, 180))
        ref = filters.median_filter(img, 5, mode="wrap")
        with fastconv.num_threads(1), dask.config.set(scheduler="threads", num_workers=4):
            out = fd.median_filter(da.from_array(img, chunks=50), 5, mode="wrap").compute()
        np.testing.assert_array_equal(out, ref)


# --- predict ----------------------------------------------------------------------------

class TestPredict:
    def test_equals_the_model_in_memory(self, rng):
        model = LeNet5()
        x = rng.standard_normal((90, 1, 28, 28)).astype(np.float32)
        out = fd.predict(model, da.from_array(x, chunks=(25, 1, 28, 28)), batch_size=10)
        with nn.no_grad():
            ref = model.eval()(nn.Tensor(x)).data
        assert out.chunks == ((25, 25, 25, 15), (10,))
        check_same(out, ref)

    def test_the_model_enters_the_graph_once(self):
        model = LeNet5()
        out = fd.predict(model, da.zeros((100, 1, 28, 28), np.float32, chunks=(20, 1, 28, 28)))
        graph = dict(out.__dask_graph__())
        holders = [k for k, v in graph.items() if isinstance(getattr(v, "value", None), nn.Module)]
        assert len(holders) == 1
        tasks = [v for k, v in graph.items() if isinstance(k, tuple) and k[0].startswith("_predict")]
        assert len(tasks) == 5 and all(holders[0] in t.dependencies for t in tasks)

    def test_the_callers_model_is_left_in_training_mode(self):
        model = LeNet5()
        fd.predict(model, da.zeros((4, 1, 28, 28), np.float32, chunks=2))
        assert model.training

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="batch_size"):
            fd.predict(LeNet5(), da.zeros((4, 1, 28, 28)), batch_size=0)
        with pytest.raises(TypeError, match="Module"):
            fd.predict(lambda x: x, da.zeros((4, 1, 28, 28)))


# --- a distributed cluster ----------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    # One nanny worker process: it sets OMP_NUM_THREADS=1, as in production.  distributed
    # sets it in this process's environment too (and leaves it): restored afterwards, so that
    # later tests' subprocesses do not inherit it.
    saved = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                       dashboard_address=None, memory_limit="1GB")
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        os.environ.clear()
        os.environ.update(saved)


class TestLocalCluster:
    def test_workers_honour_the_nannys_thread_count(self, cluster_client):
        counts = cluster_client.run(lambda: __import__("fastconv").get_num_threads())
        assert list(counts.values()) == [1]

    def test_filters_and_predict_on_the_cluster(self, cluster_client, rng):
        img = image(rng, np.float32, (120, 100))
        y = fd.gaussian_filter(da.from_array(img, chunks=40), 3.0, mode="wrap")
        out = cluster_client.compute(y).result()
        assert rel_err(out, filters.gaussian_filter(img, 3.0, mode="wrap")) <= 1e-5
        model = LeNet5()
        x = rng.standard_normal((60, 1, 28, 28)).astype(np.float32)
        pred = cluster_client.compute(fd.predict(model, da.from_array(x, chunks=(20, 1, 28, 28)),
                                                 batch_size=8)).result()
        with nn.no_grad():
            assert rel_err(pred, model.eval()(nn.Tensor(x)).data) <= 1e-5
