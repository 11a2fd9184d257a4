"""Files that are either the old complete version or the new one, never a torn one.

A writer fills a hidden temporary file in the destination's directory
(``.<name>.<pid>.<random>.tmp``), flushes it to disk, and moves it over the
destination with ``os.replace`` (atomic on POSIX and Windows).  A process
killed before the move (SIGKILL runs no handler) leaves its temporary file
behind; the next write to the same destination removes the ones whose writer
is gone, so they do not accumulate.
"""
import os
import pathlib
import tempfile


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True          # someone else's live process, or unknowable: keep it
    return True


def clean_stale(path):
    """Remove temporary files of ``path`` left by writers that no longer run; their count."""
    path = pathlib.Path(path)
    prefix = f".{path.name}."
    removed = 0
    try:
        names = os.listdir(path.parent or ".")
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(path.parent, name))
            removed += 1
        except OSError:
            pass
    return removed


def write_atomic(path, fill, mode="wb"):
    """Write ``path`` atomically: ``fill(f)`` writes into a temporary file that replaces it.

    Parameters
    ----------
    path : str or os.PathLike
    fill : callable
        Called with the open temporary file.
    mode : {'wb', 'w'}

    Examples
    --------
    >>> import os, tempfile
    >>> from fastconv._atomic import write_atomic
    >>> p = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> write_atomic(p, lambda f: f.write("hi"), mode="w")
    >>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
    ('hi', ['a.txt'])
    """
    path = pathlib.Path(path)
    directory = path.parent if str(path.parent) else pathlib.Path(".")
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp's 0600 would make a checkpoint unreadable to the group a
        # plain open() would have let read it.
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, mode) as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Interrupted or failed: leave the previous file and no litter.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    # The rename itself reaches the disk only when the directory is synced.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
