"""The persistent tuning cache (FFTW's wisdom for fastconv).

One versioned JSON file, ``tuning.json`` under ``$FASTCONV_CACHE_DIR`` (else
``$XDG_CACHE_HOME/fastconv``, else ``~/.cache/fastconv``).  It holds measured
winners per shape and the fitted cost-model coefficients, each keyed by
everything that changes the answer: fastconv's version, the CPU, the thread
count, the shape and the dtype.  A corrupt or foreign file is ignored with a
warning; writers merge under an advisory lock and replace the file
atomically, so concurrent processes neither corrupt it nor lose entries.
"""
import json
import os
import platform
import tempfile
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

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


def load():
    """The cache's contents; an empty cache when the file is missing, corrupt or foreign."""
    path = cache_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return _empty()
    except OSError as exc:
        warnings.warn(f"fastconv: cannot read the tuning cache {path}: {exc}; ignoring it", RuntimeWarning)
        return _empty()
    try:
        data = json.loads(text)
        if (not isinstance(data, dict) or data.get("library") != "fastconv" or data.get("format") != FORMAT
                or not isinstance(data.get("entries"), dict) or not isinstance(data.get("models", {}), dict)):
            raise ValueError("not a fastconv tuning cache of format %d" % FORMAT)
    except ValueError as exc:
        warnings.warn(f"fastconv: ignoring the tuning cache {path}: {exc}", RuntimeWarning)
        return _empty()
    data.setdefault("models", {})
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
    path = cache_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tuning-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def update(section, key, value):
    """Set ``data[section][key] = value`` in the file, merging with other writers."""
    with _locked():
        data = load()
        data.setdefault(section, {})[key] = value
        _write(data)


def clear():
    """Delete the tuning cache; returns the path it had."""
    path = cache_path()
    with _locked():
        if path.exists():
            path.unlink()
    return path
