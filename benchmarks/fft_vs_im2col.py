"""FFT against im2col (and direct) on NCHW layers with kernels of 11 to 31.

The fast-algorithms issue asks the FFT backend to beat im2col for kernels
of 11 and more on 64x64 and larger images.  This sweeps batch/channel
configurations, image sizes 64/128/227, kernels 11/13/15/21/31 and strides
1 to 4 ('same'-style padding k // 2, float32) and times fft/cython,
im2col/cython and direct/cython on every shape the FFT backend serves,
taking turns (``fastconv._select.measure``).  Shapes FFT refuses (a stride
that leaves phase kernels under ``fft.MIN_PHASE_TAPS`` taps) are counted
and listed apart::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fft_vs_im2col.py
    python benchmarks/fft_vs_im2col.py --match "k31" --threads 1
"""
import argparse
import sys

import numpy as np

# (N, C, K) and image sizes: (8, 16, 32) stops at 128, where im2col with
# kernels of 21 and more already takes seconds per call.
CONFIGS = {(8, 3, 96): (64, 128, 227), (8, 16, 32): (64, 128), (2, 8, 16): (64, 128, 227),
           (1, 3, 16): (64, 128, 227)}
KERNELS = (11, 13, 15, 21, 31)
STRIDES = (1, 2, 3, 4)
CANDIDATES = (("fft", "cython"), ("im2col", "cython"), ("direct", "cython"))


def shapes():
    """``(x_shape, w_shape, stride, padding)`` of the sweep (images at least twice the kernel).

    Examples
    --------
    >>> import fft_vs_im2col
    >>> len(fft_vs_im2col.shapes())
    220
    """
    return [((N, C, H, H), (K, C, k, k), s, k // 2)
            for (N, C, K), sizes in CONFIGS.items() for H in sizes for k in KERNELS for s in STRIDES if H >= 2 * k]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="thread count (default: all cores)")
    parser.add_argument("--budget", type=float, default=0.1, help="seconds of timed calls per candidate")
    parser.add_argument("--match", default=None, help="only shapes whose description contains this")
    args = parser.parse_args(argv)

    import fastconv
    from fastconv import _select
    from fastconv._bench import thread_settings
    from fastconv.backends import fft

    served, losses, refused = 0, [], []
    with thread_settings(args.threads or fastconv.get_num_threads()) as counts:
        print(f"threads {counts}")
        for xs, ws, s, pad in shapes():
            desc = f"{str(xs):18s} k{ws[2]:<2d} s{s}"
            if args.match and args.match not in desc:
                continue
            p = _select._params(xs, ws, s, pad, 1, 1, np.dtype("float32"))
            if fft.unsupported(p) is not None:
                refused.append(desc)
                continue
            # fft and im2col race each other alone (``measure`` drops a racer 3x
            # slower than the fastest, and direct often is 3x faster than both).
            t = _select.measure(p, CANDIDATES[:2], budget=args.budget, max_rounds=15)
            t.update(_select.measure(p, CANDIDATES[2:], budget=args.budget / 2, max_rounds=5))
            tf, ti, td = (1e3 * t[c] for c in CANDIDATES)
            served += 1
            if tf > ti:
                losses.append((desc, tf / ti))
            print(f"{desc}  fft {tf:8.2f}  im2col {ti:8.2f}  direct {td:8.2f} ms  fft/im2col {tf / ti:5.2f}"
                  f"{'  SLOWER' if tf > ti else ''}", flush=True)
    print(f"FFT faster than im2col on {served - len(losses)} of {served} served shapes; "
          f"refused {len(refused)} (phase kernels under {fft.MIN_PHASE_TAPS} taps)")
    for desc, r in losses:
        print(f"  slower: {desc} {r:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
