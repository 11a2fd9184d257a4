# The optional parts of a fused epilogue as the C kernels take them: a pointer
# to the data, or NULL for a part not given (None) or empty, so that a kernel
# tests one pointer per part.  The caller has checked the shapes
# (fastconv.backends.check_epilogue).
from cython cimport floating


cdef inline const floating *vector_or_null(const floating[::1] v) noexcept:
    return &v[0] if v is not None and v.shape[0] else NULL


cdef inline const floating *array4_or_null(const floating[:, :, :, ::1] a) noexcept:
    if a is None or a.shape[0] * a.shape[1] * a.shape[2] * a.shape[3] == 0:
        return NULL
    return &a[0, 0, 0, 0]
