"""Data for the CNN examples: MNIST-format IDX files and mini-batches.

``load_mnist()`` with no path returns the 5,000 real MNIST digits embedded in
fastconv (4,000 train / 1,000 test); ``load_mnist(directory)`` reads any set in
MNIST's IDX format (MNIST, Fashion-MNIST, KMNIST, EMNIST).
"""
from .loader import MNIST_MEAN, MNIST_STD, BatchIterator, mean_std, normalize, random_shift
from .mnist import FASHION_DIR, load_data, load_mnist, parse_idx, read_idx, write_idx

__all__ = [
    "load_mnist", "load_data", "read_idx", "write_idx", "parse_idx", "FASHION_DIR",
    "BatchIterator", "normalize", "mean_std", "random_shift", "MNIST_MEAN", "MNIST_STD",
]
