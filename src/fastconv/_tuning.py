"""The persistent tuning cache (FFTW's wisdom for fastconv).

One versioned JSON file, ``tuning.json`` under ``$FASTCONV_CACHE_DIR`` (else
``$XDG_CACHE_HOME/fastconv``, else ``~/.cache/fastconv``).  It holds measured
winners per shape and the fitted cost-model coefficients, each keyed by
everything that changes the answer: fastconv's version, the CPU, the thread
count, the shape and the dtype.  The cache is advisory: a corrupt or foreign
file (or record) is ignored with one warning and replaced on the next write,
an unwritable directory only disables storing; writers merge under an
advisory lock and replace the file atomically, so concurrent processes
neither corrupt it nor lose entries.
"""
import json
import math
import os
import platform
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from ._atomic import write_atomic

FORMAT = 1


def cache_dir():
    """The directory of the tuning cache (``FASTCONV_CACHE_DIR`` moves it)."""
    if os.environ.get("FASTCONV_CACHE_DIR"):
        return Path(os.environ["FASTCONV_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastconv"


def cache_path():
    return cache_dir() / "tuning.json"


@lru_cache(maxsize=None)
def cpu_name():
    """The CPU model, part of every key: a winner on one CPU says nothing of another.

    Virtual machines often report a bare family name ("AMD EPYC") for
    generations whose kernels rank differently (AVX-512 on two 256-bit
    halves or on full-width units), so the family, model and stepping
    numbers are part of the name where ``/proc/cpuinfo`` gives them.
    """
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break               # the first processor's block is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    numbers = [f"{k} {fields[k]}" for k in ("cpu family", "model", "stepping") if fields.get(k)]
    return f"{name} ({', '.join(numbers)})" if numbers else name


def _empty():
    from . import __version__
    return {"format": FORMAT, "library": "fastconv", "version": __version__, "entries": {}, "models": {}}


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _timings(v):
    return isinstance(v, dict) and all(isinstance(k, str) and _number(t) and t >= 0 for k, t in v.items())


# What a record of each section must look like; one of another shape (hand
# edited, or written by another version) is dropped rather than trusted.
_RECORD_OK = {
    "entries": lambda v: isinstance(v, dict) and _timings(v.get("times")),
    "models": lambda v: isinstance(v, list) and all(_number(c) for c in v),
    "probes": lambda v: _timings(v) and all(t > 0 for t in v.values()),
}

_warned = set()


def _warn_once(message):
    # Once per process and message: every auto call reads the cache's
    # contents, and a damaged file must not flood the caller's log.
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _parse(text):
    """The cache's contents from the file's bytes; ValueError says what is wrong."""
    try:
        data = json.loads(text.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply to be a tuning cache") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if (not isinstance(data, dict) or data.get("library") != "fastconv" or data.get("format") != FORMAT
            or not isinstance(data.get("entries"), dict)
            or not all(isinstance(data.get(s, {}), dict) for s in _RECORD_OK)):
        raise ValueError("not a fastconv tuning cache of format %d" % FORMAT)
    dropped = 0
    for section, ok in _RECORD_OK.items():
        records = data.setdefault(section, {})
        for key in [k for k, v in records.items() if not ok(v)]:
            del records[key]
            dropped += 1
    return data, dropped


def load(quiet=False):
    """The cache's contents; an empty cache when the file is missing, corrupt or foreign.

    A damaged file (or damaged records in it) is ignored with one warning per
    process; the next write replaces it with a sound one.  ``quiet`` skips the
    warning (for a writer, which repairs the file at once).
    """
    path = cache_path()
    try:
        data, dropped = _parse(path.read_bytes())
    except FileNotFoundError:
        return _empty()
    except (OSError, ValueError) as exc:
        if not quiet:
            _warn_once(f"fastconv: ignoring the tuning cache {path}: {exc}; "
                       "it is rewritten on the next store")
        return _empty()
    if dropped and not quiet:
        _warn_once(f"fastconv: ignoring {dropped} damaged record(s) of the tuning cache {path}; "
                   "they are dropped on the next store")
    return data


@contextmanager
def _locked():
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "tuning.lock", "w") as lock:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX; atomic replace still holds
            pass
        yield


def _write(data):
    write_atomic(cache_path(), lambda f: json.dump(data, f, indent=1, sort_keys=True), mode="w")


def update(section, key, value):
    """Set ``data[section][key] = value`` in the file, merging with other writers.

    Returns False, with one warning, when the cache cannot be written (a
    read-only or missing directory): the cache is advisory, so storing is
    skipped rather than failing the call that measured.
    """
    try:
        with _locked():
            data = load(quiet=True)
            data.setdefault(section, {})[key] = value
            _write(data)
    except OSError as exc:
        _warn_once(f"fastconv: cannot store to the tuning cache in {cache_dir()}: {exc}; "
                   "measurements are kept for this process only")
        return False
    return True


def clear():
    """Delete the tuning cache; returns the path it had."""
    path = cache_path()
    with _locked():
        if path.exists():
            path.unlink()
    return path
