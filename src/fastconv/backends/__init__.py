"""The convolution algorithms.  One module per backend, each exposing

``ENGINES``             the engines that run its hot loops;
``unsupported(p)``      None if it can serve the geometry ``p``, else why not;
``conv2d(x, w, p, engine, n_threads, out=None, epilogue=None)``
                        the NCHW cross-correlation of contiguous native
                        arrays into ``out`` if given (bias is added by the
                        caller), then a fused layer's ``epilogue``
                        ``(bias, residual, relu)``: ``relu((y + residual) +
                        bias[k])``.  im2col, Winograd and direct apply it as
                        they store their outputs; naive and FFT by
                        :func:`apply_epilogue` afterwards.

``naive`` is the reference every other backend is tested against;
``direct`` is the register-blocked kernel for small filter banks (first layers,
LeNet-sized layers, strided large filters, depthwise and thin groups).
"""
import numpy as np

BACKENDS = ("naive", "im2col", "fft", "winograd", "direct")


def check_epilogue(epilogue, out_shape, dtype):
    """``epilogue`` as ``(bias, residual, relu)`` after checking it fits an
    output of ``out_shape`` and ``dtype``; None stays None.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.backends import check_epilogue
    >>> check_epilogue((np.zeros(3), None, True), (1, 3, 2, 2), np.float64)[2]
    True
    >>> check_epilogue((np.zeros(2), None, True), (1, 3, 2, 2), np.float64)
    Traceback (most recent call last):
    ...
    ValueError: epilogue: bias must be a contiguous float64 array of shape (3,), got shape (2,) float64
    """
    if not epilogue:
        return None
    bias, res, relu = epilogue
    if bias is not None and (bias.shape != out_shape[1:2] or bias.dtype != dtype
                             or not bias.flags.c_contiguous):
        raise ValueError(f"epilogue: bias must be a contiguous {np.dtype(dtype)} array of shape "
                         f"({out_shape[1]},), got shape {bias.shape} {bias.dtype}")
    if res is not None and (res.shape != tuple(out_shape) or res.dtype != dtype
                            or not res.flags.c_contiguous):
        raise ValueError(f"epilogue: residual must be a C-contiguous {np.dtype(dtype)} array of "
                         f"shape {tuple(out_shape)}, got shape {res.shape} {res.dtype}")
    return bias, res, bool(relu)


def apply_epilogue(y, epilogue):
    """Apply ``epilogue`` ``(bias, residual, relu)`` to the NCHW ``y`` in place, by numpy passes; ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.backends import apply_epilogue
    >>> y = np.array([[[[-3.0]], [[1.0]]]])
    >>> apply_epilogue(y, (np.array([1.0, 1.0]), None, True)).ravel()
    array([0., 2.])
    """
    if epilogue:
        from .._blas import apply_epilogue as rows
        bias, res, relu = epilogue
        N, K = y.shape[:2]
        rows(y.reshape(N, K, -1), bias, None if res is None else res.reshape(N, K, -1), relu)
    return y
