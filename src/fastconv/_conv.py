"""``conv2d``: NCHW cross-correlation with PyTorch's semantics."""
from . import _dispatch
from ._validation import conv2d_args


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           backend="auto", engine="auto"):
    """2-D convolution (cross-correlation) of a batch of images, as PyTorch's.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        Input images, float32 or float64.
    weight : array_like, shape (K, C // groups, R, S)
        Filters.
    bias : array_like, shape (K,), optional
        Added to every output plane.
    stride, dilation : int or (int, int)
        Step of the output grid and spacing of the kernel taps, each >= 1.
    padding : int, (int, int), 'valid' or 'same'
        Zeros added on each side.  'same' keeps ceil(H / stride) rows (for
        stride > 1 this is TensorFlow's SAME: the odd extra row/column of
        padding goes at the bottom/right).
    groups : int
        Split the channels into this many independent convolutions.
    backend : {'auto', 'naive', 'im2col', 'fft', 'winograd'}
        The algorithm.  A named backend that cannot serve the call raises
        ``ValueError`` instead of falling back.
    engine : {'auto', 'cython', 'numba'}
        What runs the hot loops.

    Returns
    -------
    ndarray, shape (N, K, OH, OW) (or (K, OH, OW) for a 3-D input)
        ``OH = (H + pad_top + pad_bottom - dilation*(R-1) - 1) // stride + 1``,
        likewise OW.  The dtype is the common type of the inputs: float32
        stays float32.

    See Also
    --------
    convolve2d, correlate2d : scipy.signal's single-image functions.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2), dtype=np.float32)
    >>> fastconv.conv2d(x, w, stride=2)
    array([[[[10., 18.],
             [42., 50.]]]], dtype=float32)
    """
    x, w, b, p, squeeze = conv2d_args(x, weight, bias, stride, padding, dilation, groups)
    y = _dispatch.run(x, w, p, backend, engine)
    if b is not None:
        y += b[:, None, None]
    return y[0] if squeeze else y
