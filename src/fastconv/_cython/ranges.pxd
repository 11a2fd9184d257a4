# Equal ranges of a flat array, one per thread (memory-bound, uniform work, so
# static equal ranges balance it), each of whole 64-byte lines (16 floats) so
# that no two threads write one cache line.


cdef inline Py_ssize_t range_len(Py_ssize_t total, int n_parts) noexcept nogil:
    cdef Py_ssize_t step = (total + n_parts - 1) // n_parts
    return (step + 15) // 16 * 16
