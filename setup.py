"""Build the Cython/OpenMP engine of fastconv.

Every ``src/fastconv/_cython/<stem>.pyx`` is one extension module; when
``csrc/<stem>.c`` exists it is compiled into the same module, so the Python,
Cython and C layers of a stage share one name.

OpenMP is probed by compiling a tiny program (as scikit-learn's build helpers
do).  Where the compiler lacks it the build goes on serially and says so.
Environment switches:

``FASTCONV_NO_OPENMP=1``  build without OpenMP even where it is available.
``FASTCONV_PORTABLE=1``   do not tune for the build machine (no -march=native).
``FASTCONV_BUILD_ONLY=a,b`` build only these stems (for quick rebuilds while
                          developing one kernel).
``FASTCONV_SANITIZE=address,undefined`` build the kernels with these
                          sanitizers (``-fsanitize=...``, frame pointers kept);
                          scripts/sanitize.sh builds such a copy out of tree
                          and runs the native tests under it.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent.resolve()
PYX_DIR = Path("src") / "fastconv" / "_cython"
CSRC = Path("csrc")


def _compiles(flags, code="int main(void){return 0;}\n", libs=()):
    """True when the C compiler accepts ``flags`` on a tiny program."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc.split()[0]) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(code)
        cmd = cc.split() + list(flags) + [str(src), "-o", str(Path(tmp) / "probe")] + list(libs)
        return subprocess.run(cmd, capture_output=True).returncode == 0


OPENMP_PROBE = """
#include <omp.h>
int main(void){ int n = 0;
#pragma omp parallel reduction(+:n)
n += 1;
return n > 0 ? 0 : 1; }
"""


def openmp_flags():
    if os.environ.get("FASTCONV_NO_OPENMP"):
        print("fastconv: FASTCONV_NO_OPENMP is set; building the serial Cython engine.")
        return [], [], False
    if _compiles(["-fopenmp"], OPENMP_PROBE, ["-fopenmp"]):
        return ["-fopenmp"], ["-fopenmp"], True
    print(
        "fastconv: *** the C compiler does not support OpenMP; building the Cython engine "
        "without it. Kernels will run on one thread (the Numba engine is unaffected). "
        "Install an OpenMP-capable compiler (gcc, or clang with libomp) for parallel kernels. ***"
    )
    return [], [], False


def extensions():
    only = {s for s in os.environ.get("FASTCONV_BUILD_ONLY", "").split(",") if s}
    cflags, lflags, has_omp = openmp_flags()
    opt = ["-O3", "-fwrapv", "-fno-math-errno", "-ffp-contract=fast"]
    if not os.environ.get("FASTCONV_PORTABLE") and _compiles(["-march=native"]):
        opt.append("-march=native")
    sanitize = os.environ.get("FASTCONV_SANITIZE", "").strip()
    if sanitize:
        # -O1 -g: reports with whole stacks and source lines, at a usable speed.
        flag = f"-fsanitize={sanitize}"
        opt = [f for f in opt if not f.startswith("-O")] + ["-O1", "-g", flag, "-fno-omit-frame-pointer"]
        lflags = lflags + [flag]
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
              ("FASTCONV_HAS_OPENMP", "1" if has_omp else "0")]
    exts = []
    for pyx in sorted(PYX_DIR.glob("*.pyx")):
        stem = pyx.stem
        if only and stem not in only:
            continue
        sources = [str(pyx)]
        csource = CSRC / f"{stem}.c"
        if csource.exists():
            sources.append(str(csource))
        exts.append(Extension(
            f"fastconv._cython.{stem}", sources,
            include_dirs=[str(CSRC), np.get_include()],
            define_macros=macros,
            extra_compile_args=opt + cflags,
            extra_link_args=lflags,
        ))
    return cythonize(
        exts,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
        compile_time_env={"FASTCONV_HAS_OPENMP": int(has_omp)},
        quiet=True,
    )


setup(ext_modules=extensions())
