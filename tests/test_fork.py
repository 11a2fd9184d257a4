"""A 'fork' child of a process that has used fastconv computes what the parent does.

Each case runs in a fresh interpreter under a timeout: the defect was a child
that hung in libgomp (Cython engine) or was terminated by Numba, which would
otherwise hang or kill the test run itself.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from fastconv import _dispatch, _engines

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")

# Every public kernel family on one engine, in the parent and then in a child.
_CALLS = """
import numpy as np, fastconv
from fastconv import filters, nn
from fastconv.nn import functional as F

ENGINE = {engine!r}
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 4, 20, 20)).astype(np.float32)
w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
img = rng.standard_normal((31, 29))
u8 = rng.integers(0, 255, (24, 24), dtype=np.uint8)

def calls():
    out = {{}}
    for b in fastconv.backends():
        if ENGINE in fastconv._dispatch.engines(b):
            out["conv2d/" + b] = fastconv.conv2d(x, w, padding=1, backend=b, engine=ENGINE)
    out["convolve2d"] = fastconv.convolve2d(img, img[:5, :7], mode="same", boundary="symm")
    out["correlate2d"] = fastconv.correlate2d(img, img[:4, :3])
    out["mean_filter"] = filters.mean_filter(img, 5, engine=ENGINE)
    out["gaussian_filter"] = filters.gaussian_filter(img, 1.5, engine=ENGINE)
    out["sobel"] = filters.sobel(img, engine=ENGINE)
    out["median_filter"] = filters.median_filter(u8, 5, engine=ENGINE)
    t = nn.Tensor(x, requires_grad=True)
    wt = nn.Tensor(w, requires_grad=True)
    y = F.max_pool2d(F.conv2d(t, wt, padding=1, engine=ENGINE), 2)
    z = F.avg_pool2d(y, 2)
    loss = F.linear(F.flatten(z), nn.Tensor(np.ones((3, 6 * 25), np.float32))).sum()
    loss.backward()
    out["train_step/x.grad"] = t.grad
    out["train_step/w.grad"] = wt.grad
    return out
"""


def _run(code, timeout=240):
    env = {k: v for k, v in os.environ.items() if k not in ("FASTCONV_NUM_THREADS", "OMP_NUM_THREADS")}
    env["FASTCONV_NUM_THREADS"] = "2"      # a real team in the parent, on every machine
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _engines_here():
    return [e for e in _engines.ENGINES if e in _dispatch.engines("naive")]


def _child_script(engine, fork):
    return _CALLS.format(engine=engine) + textwrap.dedent("""
    import multiprocessing as mp, os, sys
    parent = calls()
    def child(q):
        from fastconv._threads import forked
        q.put((forked(), fastconv.get_num_threads(), calls()))
    """) + fork


_VIA_MULTIPROCESSING = """
ctx = mp.get_context("fork")
q = ctx.Queue()
p = ctx.Process(target=child, args=(q,))
p.start()
flag, n, got = q.get(timeout=120)
p.join(30)
assert p.exitcode == 0, p.exitcode
assert flag and n == 1, (flag, n)
for k in parent:
    a, b = parent[k], got[k]
    scale = max(float(np.abs(a).max()), 1e-30)
    err = float(np.abs(np.asarray(a, np.float64) - b).max()) / scale
    tol = 1e-4 if np.asarray(a).dtype == np.float32 else 1e-10
    assert a.shape == b.shape and err <= tol, (k, a.shape, b.shape, err)
print("checked", len(parent))
"""


class TestForkChild:
    @pytest.mark.parametrize("engine", _engines_here())
    def test_multiprocessing_fork_child_equals_parent(self, engine):
        r = _run(_child_script(engine, _VIA_MULTIPROCESSING))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "checked" in r.stdout
        assert "Terminating" not in r.stderr

    def test_grandchild_and_pool_workers_compute_too(self):
        # A DataLoader-like pool of fork workers, one of which forks again.
        code = _CALLS.format(engine="cython") + textwrap.dedent("""
        import multiprocessing as mp, os
        ref = calls()["conv2d/im2col"]
        def work(i):
            y = fastconv.conv2d(x, w, padding=1)
            if i == 0:
                pid = os.fork()
                if pid == 0:
                    ok = np.allclose(fastconv.conv2d(x, w, padding=1), ref, rtol=1e-4, atol=1e-4)
                    os._exit(0 if ok else 3)
                _, status = os.waitpid(pid, 0)
                assert os.waitstatus_to_exitcode(status) == 0, status
            return float(np.abs(y - ref).max())
        with mp.get_context("fork").Pool(3) as pool:
            errs = pool.map(work, range(6), chunksize=1)
        assert max(errs) < 1e-3, errs
        print("ok")
        """)
        r = _run(code)
        assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr

    def test_fork_while_another_thread_runs_kernels(self):
        # The fork can land while a thread holds fastconv's thread-state lock or
        # BLAS at one thread; the child must not inherit that lock held.
        code = _CALLS.format(engine="cython") + textwrap.dedent("""
        import os, threading
        ref = fastconv.conv2d(x, w, padding=1, backend="im2col")
        stop = threading.Event()
        def spin():
            while not stop.is_set():
                fastconv.conv2d(x, w, padding=1, backend="im2col")
                fastconv.set_num_threads(2)
        t = threading.Thread(target=spin); t.start()
        bad = 0
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                fastconv.set_num_threads(2)
                y = fastconv.conv2d(x, w, padding=1, backend="im2col")
                os._exit(0 if np.allclose(y, ref, rtol=1e-4, atol=1e-4) else 3)
            _, status = os.waitpid(pid, 0)
            bad += os.waitstatus_to_exitcode(status) != 0
        stop.set(); t.join()
        print("bad", bad)
        """)
        r = _run(code)
        assert r.returncode == 0 and "bad 0" in r.stdout, r.stdout + r.stderr

    def test_a_child_of_a_process_that_never_ran_kernels_keeps_its_threads(self):
        code = """
        import os, fastconv
        from fastconv._threads import forked
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not forked() and fastconv.get_num_threads() == 2 else 3)
        _, status = os.waitpid(pid, 0)
        print("exit", os.waitstatus_to_exitcode(status))
        """
        r = _run(code)
        assert "exit 0" in r.stdout, r.stdout + r.stderr
