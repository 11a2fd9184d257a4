# cython: boundscheck=False, wraparound=False, cdivision=True
"""Matrix products split over fastconv's own OpenMP team, one single-threaded BLAS call per block.

fastconv's kernels alternate OpenMP regions with products.  Left to itself,
OpenBLAS runs a second pool of threads on the same cores, and its workers
and libgomp's spinning idle workers fight: measured here (2 cores), a small
im2col layer waited a 4 ms scheduler tick per product.  Run inside the one
OpenMP team, the product's column blocks go to the threads that are already
awake, and there is one pool on the cores.

Row-major C = A @ B is column-major C^T = B^T A^T, so BLAS is called with
the operands swapped; an F-ordered operand is a transposed C-ordered one.

An epilogue (bias per row, a residual of C's shape, ReLU: csrc/gemm.c)
runs on each block right after its BLAS call, by the thread that wrote it,
while the block is still in its caches.  The blocks keep their width:
narrowing them to stay in L2 (64 KiB to 1 MiB of C) cost more in BLAS,
which repacks the weights on every call, than it saved (ResNet-50's 1x1
layers, batch 8, 2 threads).
"""
from cython.parallel cimport parallel, prange
from libc.stdint cimport int64_t, uintptr_t
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv

from fastconv._isa import attach

cdef extern from "gemm.h" nogil:
    ctypedef struct fc_gemm_kernels:
        const char *isa
        void (*gemm_epilogue_f32)(float *c, Py_ssize_t ldc, const float *r, Py_ssize_t ldr,
                                  const float *bias, Py_ssize_t rows, Py_ssize_t cols,
                                  int relu) noexcept nogil
        void (*gemm_epilogue_f64)(double *c, Py_ssize_t ldc, const double *r, Py_ssize_t ldr,
                                  const double *bias, Py_ssize_t rows, Py_ssize_t cols,
                                  int relu) noexcept nogil
    const fc_gemm_kernels *fc_gemm
    const char *fc_gemm_use(int level)

ctypedef fused real:
    float
    double

# Another BLAS's ILP64 Fortran gemm (set by use_blas), or NULL for scipy's.
ctypedef void (*sgemm64_t)(const char *, const char *, const int64_t *, const int64_t *,
                           const int64_t *, const float *, const float *, const int64_t *,
                           const float *, const int64_t *, const float *, float *,
                           const int64_t *) noexcept nogil
ctypedef void (*dgemm64_t)(const char *, const char *, const int64_t *, const int64_t *,
                           const int64_t *, const double *, const double *, const int64_t *,
                           const double *, const int64_t *, const double *, double *,
                           const int64_t *) noexcept nogil
ctypedef void (*sgemv64_t)(const char *, const int64_t *, const int64_t *, const float *,
                           const float *, const int64_t *, const float *, const int64_t *,
                           const float *, float *, const int64_t *) noexcept nogil
ctypedef void (*dgemv64_t)(const char *, const int64_t *, const int64_t *, const double *,
                           const double *, const int64_t *, const double *, const int64_t *,
                           const double *, double *, const int64_t *) noexcept nogil
cdef sgemm64_t _sgemm64 = NULL
cdef dgemm64_t _dgemm64 = NULL
cdef sgemv64_t _sgemv64 = NULL
cdef dgemv64_t _dgemv64 = NULL


def use_blas(uintptr_t sgemm64, uintptr_t dgemm64, uintptr_t sgemv64=0, uintptr_t dgemv64=0):
    """Route the products to the ILP64 Fortran ``sgemm``/``dgemm`` (and
    ``sgemv``/``dgemv``) at these addresses (another loaded BLAS), or back to
    scipy's BLAS with zeros."""
    global _sgemm64, _dgemm64, _sgemv64, _dgemv64
    if len({sgemm64 == 0, dgemm64 == 0, sgemv64 == 0, dgemv64 == 0}) != 1:
        raise ValueError("use_blas: give all four addresses or none")
    _sgemm64 = <sgemm64_t> sgemm64
    _dgemm64 = <dgemm64_t> dgemm64
    _sgemv64 = <sgemv64_t> sgemv64
    _dgemv64 = <dgemv64_t> dgemv64


cdef inline void _block(char *tb, char *ta, int m, int n, int k, real *bp, int ldb, real *ap, int lda,
                        real beta, real *cp, int ldc) noexcept nogil:
    cdef real one = 1
    cdef int64_t m8 = m, n8 = n, k8 = k, lda8 = lda, ldb8 = ldb, ldc8 = ldc
    if real is float:
        if _sgemm64 != NULL:
            _sgemm64(tb, ta, &m8, &n8, &k8, &one, bp, &ldb8, ap, &lda8, &beta, cp, &ldc8)
        else:
            sgemm(tb, ta, &m, &n, &k, &one, bp, &ldb, ap, &lda, &beta, cp, &ldc)
    else:
        if _dgemm64 != NULL:
            _dgemm64(tb, ta, &m8, &n8, &k8, &one, bp, &ldb8, ap, &lda8, &beta, cp, &ldc8)
        else:
            dgemm(tb, ta, &m, &n, &k, &one, bp, &ldb, ap, &lda, &beta, cp, &ldc)


cdef inline void _row(char *tb, int n, int k, real *bp, int ldb, real *ap, int incx,
                      real beta, real *cp) noexcept nogil:
    # One row of C (M == 1) is a matrix-vector product.  As a GEMM, BLAS
    # would pack all of B to use it once: for VGG16's first classifier
    # layer at batch 1 (a 411 MB weight) that took 33 ms against 14 ms here.
    # C^T (n) = B^T a^T, where BLAS sees b as a column-major rows x cols
    # matrix: n x k as it is when b is C-ordered ("N"), k x n to transpose
    # when b is F-ordered ("T").
    cdef real one = 1
    cdef bint as_is = tb[0] == b"N"
    cdef int rows = n if as_is else k, cols = k if as_is else n, inc = 1
    cdef int64_t rows8 = rows, cols8 = cols, ldb8 = ldb, inc8 = incx, inc1 = 1
    if beta == 0:
        # beta 0 could leave NaN from the uninitialised output (0 * NaN).
        memset(cp, 0, n * sizeof(real))
        beta = 1
    if real is float:
        if _sgemv64 != NULL:
            _sgemv64(tb, &rows8, &cols8, &one, bp, &ldb8, ap, &inc8, &beta, cp, &inc1)
        else:
            sgemv(tb, &rows, &cols, &one, bp, &ldb, ap, &incx, &beta, cp, &inc)
    else:
        if _dgemv64 != NULL:
            _dgemv64(tb, &rows8, &cols8, &one, bp, &ldb8, ap, &inc8, &beta, cp, &inc1)
        else:
            dgemv(tb, &rows, &cols, &one, bp, &ldb, ap, &incx, &beta, cp, &inc)


def gemm(const real[:, :, :, :] a,  # IN  (A1, A2, M, K), each matrix C- or F-ordered
         const real[:, :, :, :] b,  # IN  (Bb1, Bb2, K, N), each matrix C- or F-ordered
         real[:, :, :, :] c,        # OUT (B1, B2, M, N), rows contiguous
         bint accumulate, int n_threads,
         const real[:, ::1] bias=None,           # IN  (B2, M) per row of each matrix, or None
         const real[:, :, :, :] residual=None,   # IN  c's shape, rows contiguous, or None
         bint relu=False):
    """c[i, j] = a[i, j] @ b[i, j] (+= when accumulate), parallel over (i, j, column block),
    then ``c[i, j] = relu((c[i, j] + residual[i, j]) + bias[j][:, None])`` per block,
    each part only when given.

    An operand's leading axis of length 1 is broadcast over c's; any other
    length must equal c's.  ``residual`` must not overlap ``c``.
    """
    cdef int B1 = c.shape[0], B2 = c.shape[1], M = a.shape[2], K = a.shape[3], N = b.shape[3]
    sa = (a.shape[0], a.shape[1], a.shape[2], a.shape[3])
    sb = (b.shape[0], b.shape[1], b.shape[2], b.shape[3])
    sc = (c.shape[0], c.shape[1], c.shape[2], c.shape[3])
    if sb[2] != K or sc[2] != M or sc[3] != N \
            or any(sa[d] not in (1, sc[d]) or sb[d] not in (1, sc[d]) for d in range(2)):
        raise ValueError(f"gemm: shapes {sa} @ {sb} -> {sc} do not match (a batch axis of 1 broadcasts)")
    # Index step 0 on a broadcast axis.
    cdef int ai = a.shape[0] > 1, aj = a.shape[1] > 1, bi = b.shape[0] > 1, bj = b.shape[1] > 1
    cdef bint a_t = a.strides[3] != sizeof(real)
    cdef bint b_t = b.strides[3] != sizeof(real)
    cdef int lda = (a.strides[3] if a_t else a.strides[2]) // sizeof(real)
    cdef int ldb = (b.strides[3] if b_t else b.strides[2]) // sizeof(real)
    cdef int ldc = c.strides[2] // sizeof(real)
    cdef int incx = a.strides[3] // sizeof(real)     # a's one row, when M == 1
    cdef char *ta = b"T" if a_t else b"N"
    cdef char *tb = b"T" if b_t else b"N"
    cdef real beta = 1 if accumulate else 0
    cdef int G = B1 * B2
    # split each matrix's columns only as far as it takes to feed every thread
    cdef int splits = max(1, (n_threads + G - 1) // G)
    cdef int nb = max(16, ((N + splits - 1) // splits + 15) // 16 * 16)
    cdef bint epilogue = bias is not None or residual is not None or relu
    cdef bint has_bias = bias is not None, has_res = residual is not None
    cdef int r_ld = 0
    cdef const real *bp = NULL
    cdef const real *rp = NULL
    if has_bias and (bias.shape[0] != B2 or bias.shape[1] != M):
        raise ValueError(f"gemm: bias must have shape ({B2}, {M}), got ({bias.shape[0]}, {bias.shape[1]})")
    if has_res:
        if (residual.shape[0], residual.shape[1], residual.shape[2], residual.shape[3]) != sc or residual.strides[3] != sizeof(real):
            raise ValueError(f"gemm: residual must have c's shape {sc} with contiguous rows")
        r_ld = residual.strides[2] // sizeof(real)
    cdef int nblocks = (N + nb - 1) // nb
    cdef int task, g, i, j, j0, width
    if M == 0 or N == 0 or G == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        for task in prange(G * nblocks, schedule="static"):
            g = task // nblocks
            i = g // B2
            j = g % B2
            j0 = (task % nblocks) * nb
            width = min(nb, N - j0)
            if M == 1:
                _row(tb, width, K, <real *> &b[i * bi, j * bj, 0, j0], ldb,
                     <real *> &a[i * ai, j * aj, 0, 0], incx, beta, &c[i, j, 0, j0])
            else:
                _block(tb, ta, width, M, K, <real *> &b[i * bi, j * bj, 0, j0], ldb,
                       <real *> &a[i * ai, j * aj, 0, 0], lda, beta, &c[i, j, 0, j0], ldc)
            if epilogue:
                bp = &bias[j, 0] if has_bias else NULL
                rp = &residual[i, j, 0, j0] if has_res else NULL
                if real is float:
                    fc_gemm.gemm_epilogue_f32(&c[i, j, 0, j0], ldc, rp, r_ld, bp, M, width, relu)
                else:
                    fc_gemm.gemm_epilogue_f64(&c[i, j, 0, j0], ldc, rp, r_ld, bp, M, width, relu)


def use_isa(int level):
    """Point this family's kernels at the best set built at or below ``level``; its name."""
    return fc_gemm_use(level).decode()


attach("gemm", use_isa)
