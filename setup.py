"""Build the Cython/OpenMP engine of fastconv.

Every ``src/fastconv/_cython/<stem>.pyx`` is one extension module; when
``csrc/<stem>.c`` exists it is compiled into the same module, so the Python,
Cython and C layers of a stage share one name.

Kernels per instruction set.  Each ``csrc/<stem>.c`` (all but ``isa``, the
CPU probe) is compiled once per instruction set that the compiler can target
(see ``ISA_FLAGS``): ``baseline`` (x86-64-v2 on x86-64, the compiler's
default elsewhere, e.g. arm64), ``avx2`` (x86-64-v3: AVX2 + FMA) and
``avx512`` (x86-64-v4: AVX-512 F/BW/CD/DQ/VL), each object with ``-DFC_ISA=``
the set, which suffixes its kernels' names (``direct_block_4x3_f32__avx2``)
and sizes their register blocks (csrc/fc_isa.h).  Each object exports one
table of its kernels; the Cython wrapper, compiled once for the baseline,
holds the tables of the sets built (``FC_BUILT_AVX2`` / ``FC_BUILT_AVX512``)
and ``fastconv._isa`` picks one at import from CPUID.  A set the compiler
cannot target (an old compiler, a non-x86 machine) is simply not built.  No
flag tunes the build for the machine that builds it: a wheel runs on every
x86-64-v2 CPU.

OpenMP is probed by compiling a tiny program (as scikit-learn's build helpers
do).  Where the compiler lacks it the build goes on serially and says so.
Environment switches:

``FASTCONV_NO_OPENMP=1``  build without OpenMP even where it is available.
``FASTCONV_ISAS=baseline,avx2`` build only these instruction sets (the
                          baseline is always built).
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
from setuptools.command.build_ext import build_ext

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


X86_64_PROBE = """
#if !defined(__x86_64__)
#error not x86-64
#endif
int main(void){return 0;}
"""

#: Compiler flags of each instruction set on x86-64, in rising order.  The
#: baseline elsewhere is the compiler's default target.
ISA_FLAGS = {
    "baseline": ["-march=x86-64-v2"],
    "avx2": ["-march=x86-64-v3"],
    "avx512": ["-march=x86-64-v4", "-mprefer-vector-width=512"],
}
ISA_LEVEL = {name: level for level, name in enumerate(ISA_FLAGS)}

#: Stems compiled once, for the baseline: the CPU probe must run on any CPU.
PLAIN_STEMS = {"isa"}


def isa_flags():
    """{set: flags} for the instruction sets this compiler can build, baseline first."""
    wanted = {s for s in os.environ.get("FASTCONV_ISAS", "").split(",") if s}
    if not _compiles([], X86_64_PROBE):
        return {"baseline": []}
    sets = {"baseline": ISA_FLAGS["baseline"] if _compiles(ISA_FLAGS["baseline"]) else []}
    for name, flags in ISA_FLAGS.items():
        if name != "baseline" and (not wanted or name in wanted) and _compiles(flags):
            sets[name] = flags
    return sets


def sanitize_flags():
    """(compile, link) flags of FASTCONV_SANITIZE, e.g. 'address,undefined'; empty when unset."""
    sanitize = os.environ.get("FASTCONV_SANITIZE", "").strip()
    if not sanitize:
        return [], []
    flag = f"-fsanitize={sanitize}"
    # -O1 -g: reports with whole stacks and source lines, at a usable speed.
    return ["-O1", "-g", flag, "-fno-omit-frame-pointer"], [flag]


def compile_flags():
    """The flags every object gets: optimisation and floating-point rules, no CPU tuning."""
    opt = ["-O3", "-fwrapv", "-fno-math-errno", "-ffp-contract=fast"]
    extra = sanitize_flags()[0]
    return [f for f in opt if not (extra and f.startswith("-O"))] + extra


#: Extension name -> (C sources built once per set, {set: flags}, common flags).
KERNELS_PER_ISA = {}


class BuildPerISA(build_ext):
    """Compiles ``csrc/<stem>.c`` once per instruction set into the stem's extension.

    Each object gets that set's flags and ``-DFC_ISA=<level>`` and is linked
    into the module (cythonize copies the Extension objects, so the plan
    lives in ``KERNELS_PER_ISA``).
    """

    def build_extension(self, ext):
        sources, sets, common = KERNELS_PER_ISA.get(ext.name, ([], {}, []))
        objects = []
        for name, flags in sets.items():
            objects += self.compiler.compile(
                sources, output_dir=os.path.join(self.build_temp, name),
                macros=ext.define_macros + [("FC_ISA", str(ISA_LEVEL[name]))],
                include_dirs=ext.include_dirs,
                extra_postargs=common + flags + ["-Werror=implicit-function-declaration"],
                depends=ext.depends)
        ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extension(ext)


def extensions():
    only = {s for s in os.environ.get("FASTCONV_BUILD_ONLY", "").split(",") if s}
    cflags, lflags, has_omp = openmp_flags()
    sets = isa_flags()
    print("fastconv: kernels for the instruction sets " + ", ".join(
        f"{name} ({' '.join(flags) or 'compiler default'})" for name, flags in sets.items()))
    lflags = lflags + sanitize_flags()[1]
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
              ("FASTCONV_HAS_OPENMP", "1" if has_omp else "0")]
    headers = [str(h) for h in sorted(CSRC.glob("*.h"))]
    exts = []
    for pyx in sorted(PYX_DIR.glob("*.pyx")):
        stem = pyx.stem
        if only and stem not in only:
            continue
        sources = [str(pyx)]
        csource = CSRC / f"{stem}.c"
        per_isa = csource.exists() and stem not in PLAIN_STEMS
        if csource.exists() and not per_isa:
            sources.append(str(csource))
        built = [(f"FC_BUILT_{name.upper()}", "1") for name in sets if name != "baseline"]
        ext = Extension(
            f"fastconv._cython.{stem}", sources,
            include_dirs=[str(CSRC), np.get_include()],
            define_macros=macros + (built if per_isa else []),
            extra_compile_args=compile_flags() + cflags
            + (sets["baseline"] if stem not in PLAIN_STEMS else []),
            extra_link_args=lflags,
            depends=headers + ([str(csource)] if per_isa else []),
        )
        if per_isa:
            KERNELS_PER_ISA[ext.name] = ([str(csource)], sets, compile_flags() + cflags)
        exts.append(ext)
    return cythonize(
        exts,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
        compile_time_env={"FASTCONV_HAS_OPENMP": int(has_omp)},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildPerISA})
