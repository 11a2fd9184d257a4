"""pytest-benchmark cases for fastconv.filters and their peers (scipy.ndimage, OpenCV).

    python -m pytest benchmarks/test_bench_filters.py --benchmark-enable --benchmark-group-by=param:case
"""
import numpy as np
import pytest
import scipy.ndimage as ndi

import fastconv
from fastconv import filters

N = 512
_rng = np.random.default_rng(0)
F32 = _rng.random((N, N), dtype=np.float32) * 255
U8 = _rng.integers(0, 256, (N, N), dtype=np.uint8)

CASES = {
    "mean5": (lambda: ndi.uniform_filter(F32, 5), lambda e: filters.mean_filter(F32, 5, engine=e)),
    "gauss2": (lambda: ndi.gaussian_filter(F32, 2), lambda e: filters.gaussian_filter(F32, 2, engine=e)),
    "gauss5": (lambda: ndi.gaussian_filter(F32, 5), lambda e: filters.gaussian_filter(F32, 5, engine=e)),
    "sobel": (lambda: np.hypot(ndi.sobel(F32, 0), ndi.sobel(F32, 1)), lambda e: filters.sobel(F32, engine=e)),
    "median3": (lambda: ndi.median_filter(U8, 3, mode="nearest"),
                lambda e: filters.median_filter(U8, 3, mode="nearest", engine=e)),
    "median5": (lambda: ndi.median_filter(U8, 5, mode="nearest"),
                lambda e: filters.median_filter(U8, 5, mode="nearest", engine=e)),
}


@pytest.fixture(autouse=True)
def two_threads():
    with fastconv.num_threads(2):
        yield


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", ["scipy", "cython", "numba"])
def test_filter(benchmark, case, impl):
    ref, ours = CASES[case]
    fn = ref if impl == "scipy" else (lambda: ours(impl))
    fn()   # compile (Numba) and warm up outside the timing
    benchmark(fn)


@pytest.mark.parametrize("case", ["median3", "median5"])
def test_opencv_median(benchmark, case):
    cv2 = pytest.importorskip("cv2")
    k = int(case[-1])
    benchmark(cv2.medianBlur, U8, k)
