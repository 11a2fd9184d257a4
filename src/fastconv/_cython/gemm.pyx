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
"""
from cython.parallel cimport parallel, prange
from scipy.linalg.cython_blas cimport dgemm, sgemm

ctypedef fused real:
    float
    double


cdef inline void _block(char *tb, char *ta, int m, int n, int k, real *bp, int ldb, real *ap, int lda,
                        real beta, real *cp, int ldc) noexcept nogil:
    cdef real one = 1
    if real is float:
        sgemm(tb, ta, &m, &n, &k, &one, bp, &ldb, ap, &lda, &beta, cp, &ldc)
    else:
        dgemm(tb, ta, &m, &n, &k, &one, bp, &ldb, ap, &lda, &beta, cp, &ldc)


def gemm(const real[:, :, :, :] a,  # IN  (A1, A2, M, K), each matrix C- or F-ordered
         const real[:, :, :, :] b,  # IN  (Bb1, Bb2, K, N), each matrix C- or F-ordered
         real[:, :, :, :] c,        # OUT (B1, B2, M, N), rows contiguous
         bint accumulate, int n_threads):
    """c[i, j] = a[i, j] @ b[i, j] (+= when accumulate), parallel over (i, j, column block).

    An operand's leading axis of length 1 is broadcast over c's; any other
    length must equal c's.
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
    cdef char *ta = b"T" if a_t else b"N"
    cdef char *tb = b"T" if b_t else b"N"
    cdef real beta = 1 if accumulate else 0
    cdef int G = B1 * B2
    # split each matrix's columns only as far as it takes to feed every thread
    cdef int splits = max(1, (n_threads + G - 1) // G)
    cdef int nb = max(16, ((N + splits - 1) // splits + 15) // 16 * 16)
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
            _block(tb, ta, width, M, K, <real *> &b[i * bi, j * bj, 0, j0], ldb,
                   <real *> &a[i * ai, j * aj, 0, 0], lda, beta, &c[i, j, 0, j0], ldc)
