"""Which instruction set the compiled kernels run: asked of the CPU once, capped by FASTCONV_ISA.

Every C kernel family (``csrc/<stem>.c``) is compiled once per instruction
set the build's compiler could target (setup.py):

``baseline``  x86-64-v2 (SSE4.2) on x86-64; plain C elsewhere (arm64, ...)
``avx2``      x86-64-v3: AVX2 + FMA, sixteen 256-bit registers
``avx512``    x86-64-v4: AVX-512 F/BW/CD/DQ/VL, thirty-two 512-bit registers

and each compile fills one table of the family's kernels and tile sizes.  At
import this module asks the CPU (CPUID through ``__builtin_cpu_supports``,
which also checks that the OS saves the AVX/AVX-512 registers) for the best
set it runs, and each Cython kernel module, as it is imported, points its
table at the best set built at or below that one (:func:`attach`).

``FASTCONV_ISA=baseline|avx2|avx512`` caps the choice (for benchmarks and for
comparing sets): an unknown value raises ``ValueError``; a set this CPU
lacks gives a warning and the best set the CPU has.  :func:`use` switches
every family in-process (tests run each set the CPU has in one run).  The
Numba engine is not affected: LLVM compiles it for the CPU at hand.
"""
import os
import platform
import warnings
from contextlib import contextmanager
from functools import lru_cache

#: The instruction sets, in rising order (their index is the level the C tables use).
SETS = ("baseline", "avx2", "avx512")
ENV = "FASTCONV_ISA"

#: family -> its Cython module's ``use_isa(level) -> set name``; the set each family runs.
_families = {}
_chosen = {}


@lru_cache(maxsize=None)
def _probe():
    try:
        from ._cython import isa
    except ImportError:
        return None
    return isa


@lru_cache(maxsize=None)
def cpu_level():
    """Index in :data:`SETS` of the best set this CPU runs; -1 for an x86-64 CPU below x86-64-v2.

    Without the compiled engine (Numba only) the answer is 0: nothing
    compiled runs anyway.
    """
    probe = _probe()
    return 0 if probe is None else probe.cpu_level()


def cpu_best():
    """The best instruction set this CPU runs (``'baseline'`` on a CPU below it).

    Examples
    --------
    >>> from fastconv import _isa
    >>> _isa.cpu_best() in _isa.SETS
    True
    """
    return SETS[max(cpu_level(), 0)]


def available():
    """The instruction sets this CPU runs, lowest first.

    Examples
    --------
    >>> from fastconv import _isa
    >>> _isa.available()[0]
    'baseline'
    """
    return SETS[:max(cpu_level(), 0) + 1]


def resolve(value):
    """The set to run given the value of FASTCONV_ISA (None or '' = the CPU's best).

    Examples
    --------
    >>> from fastconv import _isa
    >>> _isa.resolve("baseline")
    'baseline'
    >>> _isa.resolve("sse")
    Traceback (most recent call last):
    ...
    ValueError: FASTCONV_ISA='sse' is not an instruction set fastconv knows; expected one of baseline, avx2, avx512 (or unset)
    """
    if not value:
        return cpu_best()
    name = value.strip().lower()
    if name not in SETS:
        raise ValueError(f"{ENV}={value!r} is not an instruction set fastconv knows; "
                         f"expected one of {', '.join(SETS)} (or unset)")
    if SETS.index(name) > max(cpu_level(), 0):
        warnings.warn(f"{ENV}={value!r}: this CPU lacks {name}; its best instruction set "
                      f"is {cpu_best()}, which fastconv uses instead", RuntimeWarning, stacklevel=2)
        return cpu_best()
    return name


_state = {"active": None}


def active():
    """The instruction set the compiled kernels run now: the CPU's best, capped by FASTCONV_ISA.

    A family not built for this set runs the best set below it that was
    built (:func:`families`).

    Examples
    --------
    >>> from fastconv import _isa
    >>> _isa.active() in _isa.available()
    True
    """
    if _state["active"] is None:
        _state["active"] = resolve(os.environ.get(ENV))
    return _state["active"]


def attach(family, use_isa):
    """Register a Cython kernel module's table switch and point it at the active set.

    Called once by each ``fastconv._cython.<stem>`` as it is imported.
    ``use_isa(level)`` points the family's table at the best set built at
    or below ``level`` and returns that set's name.
    """
    if cpu_level() < 0:
        raise ImportError(f"fastconv's compiled kernels need an x86-64-v2 CPU (SSE4.2, SSSE3, "
                          f"POPCNT), which this one ({cpu().get('model_name')}) is not; "
                          f"use engine='numba'")
    _families[family] = use_isa
    _chosen[family] = use_isa(SETS.index(active()))


def families():
    """{family: the set its kernels run now} for every kernel family imported so far."""
    return dict(_chosen)


def built(family):
    """The sets ``family`` was compiled for, lowest first (it must have been imported)."""
    use_isa = _families[family]
    names = [use_isa(level) for level in range(len(SETS))]
    use_isa(SETS.index(active()))
    return tuple(dict.fromkeys(names))


@contextmanager
def use(name):
    """Run every compiled kernel family on instruction set ``name`` inside the block.

    For tests and benchmarks that compare sets in one process; ``name`` must
    be a set this CPU runs (FASTCONV_ISA does not limit it).  Not for use
    while another thread runs kernels.

    Examples
    --------
    >>> from fastconv import _isa
    >>> with _isa.use("baseline"):
    ...     _isa.active()
    'baseline'
    """
    if name not in SETS:
        raise ValueError(f"name={name!r}: expected one of {', '.join(SETS)}")
    if name not in available():
        raise ValueError(f"name={name!r}: this CPU runs only {', '.join(available())}")
    before = active()
    _switch(name)
    try:
        yield name
    finally:
        _switch(before)


def _switch(name):
    _state["active"] = name
    level = SETS.index(name)
    for family, use_isa in _families.items():
        _chosen[family] = use_isa(level)


@lru_cache(maxsize=None)
def cpu():
    """What this CPU is: {'vendor', 'model_name', 'family', 'model', 'machine'}.

    From CPUID on x86-64 (the compiled probe), else from /proc/cpuinfo where
    it exists; fields it cannot tell are None.

    Examples
    --------
    >>> from fastconv import _isa
    >>> sorted(_isa.cpu())
    ['family', 'machine', 'model', 'model_name', 'vendor']
    """
    info = {"vendor": None, "model_name": None, "family": None, "model": None,
            "machine": platform.machine()}
    probe = _probe()
    ident = probe.cpu_ident() if probe is not None else None
    if ident is not None:
        info["vendor"], info["model_name"], info["family"], info["model"] = ident
    if not info["model_name"]:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                        info["model_name"] = value.strip()
                        break
        except OSError:
            pass
    return info


def report():
    """What ``fastconv info`` prints about the instruction sets: the CPU, its best set,
    FASTCONV_ISA, the active set, and for every compiled kernel family the set it runs
    and the sets it was built for.

    Examples
    --------
    >>> from fastconv import _isa
    >>> r = _isa.report()
    >>> r["active"] == _isa.active(), r["best"] == _isa.cpu_best()
    (True, True)
    """
    import importlib
    import pkgutil
    try:
        from . import _cython
        for mod in pkgutil.iter_modules(_cython.__path__):
            try:
                importlib.import_module(f"{_cython.__name__}.{mod.name}")
            except ImportError:
                pass
    except ImportError:
        pass
    return {"cpu": cpu(), "best": cpu_best(), "env": os.environ.get(ENV), "active": active(),
            "families": {f: {"runs": _chosen[f], "built": built(f)} for f in sorted(_families)}}
