#!/usr/bin/env bash
# Build fastconv's C kernels with AddressSanitizer and UndefinedBehaviorSanitizer
# in a copy of this tree (the in-place build is left alone) and run a sample of
# the native-engine tests under them; prints the number of sanitizer reports.
#
#   scripts/sanitize.sh                      # the default sample
#   scripts/sanitize.sh tests/test_signal.py -k cython
#
# FASTCONV_SANITIZE (default address,undefined) picks the sanitizers and
# FASTCONV_SANITIZE_DIR (default /tmp/fastconv-sanitize) the copy.  Python
# itself is not instrumented, so libasan must be loaded first (LD_PRELOAD);
# leak detection is off (the interpreter's own allocations are "leaks").
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${FASTCONV_SANITIZE_DIR:-/tmp/fastconv-sanitize}
export FASTCONV_SANITIZE=${FASTCONV_SANITIZE:-address,undefined}

rm -rf "$dir" && mkdir -p "$dir"
# The tracked files as they are in the work tree (uncommitted edits included).
(cd "$here" && git ls-files -z | xargs -0 tar -cf -) | (cd "$dir" && tar -xf -)
cd "$dir"
echo "building with -fsanitize=$FASTCONV_SANITIZE in $dir (log: $dir/build.log)"
python setup.py build_ext --inplace -j 2 >build.log 2>&1

cc=${CC:-cc}
preload=$($cc -print-file-name=libasan.so)
[[ $FASTCONV_SANITIZE == *undefined* ]] && preload="$preload $($cc -print-file-name=libubsan.so)"
mkdir -p reports
export LD_PRELOAD=$preload
export ASAN_OPTIONS=detect_leaks=0:log_path=$dir/reports/asan:handle_segv=1
export UBSAN_OPTIONS=print_stacktrace=1:log_path=$dir/reports/ubsan
export PYTHONPATH=$dir/src
export FASTCONV_CACHE_DIR=$dir/cache

if [[ $# -eq 0 ]]; then
    set -- tests/test_conv2d.py tests/test_signal.py tests/test_filters.py tests/test_winograd.py \
        tests/test_im2col.py tests/test_fft.py tests/test_pointwise.py tests/test_fuzz.py \
        tests/test_inference.py tests/test_isa.py tests/test_blas.py -k "not numba"
fi
status=0
python -m pytest -q -p no:cacheprovider "$@" || status=$?
unset LD_PRELOAD

reports=$(cat reports/* 2>/dev/null | grep -cE "ERROR: AddressSanitizer|runtime error:" || true)
echo "sanitizer reports: $reports (files in $dir/reports); pytest exit status $status"
[[ $reports -eq 0 && $status -eq 0 ]]
