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
BACKENDS = ("naive", "im2col", "fft", "winograd", "direct")


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
