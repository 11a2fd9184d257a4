"""Mini-batches of images for training: shuffling by seed, normalisation, shifts."""
import numbers

import numpy as np

# Mean and standard deviation of MNIST's 60,000 training images scaled to [0, 1]
# (the constants torchvision's examples use).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def normalize(images, mean=MNIST_MEAN, std=MNIST_STD, dtype=np.float32):
    """Raw 0-255 images to network input: ``(images / 255 - mean) / std``, NCHW.

    Parameters
    ----------
    images : array_like, shape (N, H, W) or (N, 1, H, W)
        Raw pixels, any real dtype (usually uint8).
    mean, std : float
        Statistics of the [0, 1]-scaled training images; ``std > 0``.
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape (N, 1, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.data import normalize
    >>> normalize(np.array([[[0, 255]]], dtype=np.uint8), mean=0.5, std=0.5)
    array([[[[-1.,  1.]]]], dtype=float32)
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {images.shape}")
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"std must be a positive number, got {std!r}")
    dtype = np.dtype(dtype)
    # One fused scale and shift: x * (1 / (255 std)) - mean / std.
    scale = dtype.type(1.0 / (255.0 * std))
    shift = dtype.type(mean / std)
    return images.astype(dtype) * scale - shift


def mean_std(images):
    """Mean and standard deviation of ``images`` scaled to [0, 1], for :func:`normalize`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.data import mean_std
    >>> mean_std(np.array([0, 255], dtype=np.uint8))
    (0.5, 0.5)
    """
    x = np.asarray(images, dtype=np.float64) / 255.0
    return float(x.mean()), float(x.std())


def random_shift(images, max_shift, rng):
    """Shift each image by a random whole number of pixels in ``[-max_shift, max_shift]``.

    Pixels shifted in are 0 (MNIST's background); done on the raw images,
    before normalisation, so the background stays background.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
    max_shift : int >= 0
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, same shape and dtype

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.data import random_shift
    >>> x = np.zeros((1, 5, 5), dtype=np.uint8); x[0, 2, 2] = 1
    >>> int(random_shift(x, 2, np.random.default_rng(0)).sum())
    1
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
    if max_shift == 0:
        return images.copy()
    n, h, w = images.shape
    s = max_shift
    padded = np.pad(images, ((0, 0), (s, s), (s, s)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
    dy = rng.integers(0, 2 * s + 1, size=n)
    dx = rng.integers(0, 2 * s + 1, size=n)
    return windows[np.arange(n), dy, dx].copy()


class BatchIterator:
    """Mini-batches ``(x, y)`` of a labelled image set, one pass per iteration.

    Each ``iter()`` is one epoch.  The order (and the shifts) of epoch ``e``
    come from ``numpy.random.default_rng([seed, e])``, so a run is
    reproducible from the seed alone and epoch ``e`` can be re-created
    without replaying the earlier ones (``set_epoch``).

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Raw pixels (uint8 0-255).
    labels : ndarray, shape (N,)
        Integer class labels.
    batch_size : int
        Images per batch; the last batch may be smaller unless ``drop_last``.
    shuffle : bool
        Visit the images in a new seeded random order every epoch.
    seed : int
        Seed of the order and the shifts.
    mean, std : float
        Normalisation, see :func:`normalize`.
    max_shift : int
        Augment by shifting each image up to this many pixels in x and y
        (0: no augmentation).
    drop_last : bool
        Drop a final incomplete batch.
    dtype : float32 or float64
        dtype of ``x``.

    Yields
    ------
    x : ndarray, shape (B, 1, H, W), ``dtype``
    y : ndarray of int64, shape (B,)

    Examples
    --------
    >>> from fastconv.data import BatchIterator, load_mnist
    >>> images, labels = load_mnist(split="train")
    >>> batches = BatchIterator(images, labels, batch_size=64, seed=0, max_shift=2)
    >>> len(batches)
    63
    >>> x, y = next(iter(batches))
    >>> x.shape, x.dtype, y.shape
    ((64, 1, 28, 28), dtype('float32'), (64,))
    """

    def __init__(self, images, labels, batch_size=64, shuffle=True, seed=0, mean=MNIST_MEAN,
                 std=MNIST_STD, max_shift=0, drop_last=False, dtype=np.float32):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 3:
            raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"labels must be 1-D with one label per image ({len(images)}), "
                             f"got shape {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        for name, value, minimum in (("batch_size", batch_size, 1), ("max_shift", max_shift, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}")
        if not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if not np.isfinite(std) or std <= 0:
            raise ValueError(f"std must be a positive number, got {std!r}")
        self.images = images
        self.labels = labels.astype(np.int64)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.mean = float(mean)
        self.std = float(std)
        self.max_shift = int(max_shift)
        self.drop_last = bool(drop_last)
        self.dtype = np.dtype(dtype)
        self.epoch = 0

    def __len__(self):
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        """Make the next iteration epoch ``epoch`` (its order and shifts)."""
        self.epoch = int(epoch)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        n = len(self.images)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            raw = self.images[idx]
            if self.max_shift:
                raw = random_shift(raw, self.max_shift, rng)
            yield normalize(raw, self.mean, self.std, self.dtype), self.labels[idx]
