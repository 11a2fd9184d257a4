"""The convolution algorithms.  One module per backend, each exposing

``ENGINES``             the engines that run its hot loops;
``unsupported(p)``      None if it can serve the geometry ``p``, else why not;
``conv2d(x, w, p, engine, n_threads)``
                        the NCHW cross-correlation of contiguous native
                        arrays (bias is added by the caller).

``naive`` is the reference every other backend is tested against;
``direct`` is the register-blocked kernel for small filter banks (first layers,
LeNet-sized layers, strided large filters, depthwise and thin groups).
"""
BACKENDS = ("naive", "im2col", "fft", "winograd", "direct")
