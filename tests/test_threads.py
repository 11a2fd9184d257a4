"""The thread-count contract (environment, affinity, cgroup quota) and
results that do not depend on concurrency."""
import os
import subprocess
import sys
import threading
import textwrap

import numpy as np
import pytest

import fastconv
from fastconv import _dispatch, _threads
from fastconv._validation import conv2d_args


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("FASTCONV_NUM_THREADS", "OMP_NUM_THREADS")}
    full.update(env)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full,
                       capture_output=True, text=True, timeout=300)
    return r


class TestDefaultNumThreads:
    @pytest.mark.parametrize("env,expected", [
        ({"OMP_NUM_THREADS": "1"}, 1),
        ({"OMP_NUM_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "3,1"}, 3),
        ({"FASTCONV_NUM_THREADS": "5", "OMP_NUM_THREADS": "1"}, 5),
        ({"FASTCONV_NUM_THREADS": " 2 "}, 2),
    ], ids=["omp-1", "omp-3", "omp-nested-list", "fastconv-wins", "spaces"])
    def test_follows_fastconv_then_omp_num_threads(self, env, expected):
        r = _run("import fastconv; print(fastconv.get_num_threads())", **env)
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == expected

    def test_without_variables_it_is_the_cpus_this_process_may_use(self):
        r = _run("import fastconv; print(fastconv.get_num_threads())")
        cpus = len(os.sched_getaffinity(0))
        quota = _threads.cgroup_cpu_limit()
        assert int(r.stdout) == (min(cpus, quota) if quota else cpus)

    def test_affinity_mask_bounds_the_default(self):
        if len(os.sched_getaffinity(0)) < 2:
            pytest.skip("needs two CPUs")
        r = _run("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
                 "import fastconv; print(fastconv.get_num_threads())")
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == 1

    def test_a_bad_fastconv_num_threads_is_named(self):
        r = _run("import fastconv; fastconv.get_num_threads()", FASTCONV_NUM_THREADS="many")
        assert r.returncode != 0
        assert "FASTCONV_NUM_THREADS must be a positive integer" in r.stderr

    def test_a_bad_omp_num_threads_is_ignored_with_a_warning(self):
        r = _run("import warnings; warnings.simplefilter('always'); import fastconv; "
                 "print(fastconv.get_num_threads())", OMP_NUM_THREADS="0")
        assert r.returncode == 0, r.stderr
        assert "OMP_NUM_THREADS must be a positive integer" in r.stderr
        assert int(r.stdout) >= 1

    def test_set_num_threads_wins_over_the_environment(self):
        r = _run("import fastconv; fastconv.set_num_threads(2); print(fastconv.get_num_threads())",
                 OMP_NUM_THREADS="1")
        assert int(r.stdout) == 2

    def test_omp_num_threads_reaches_blas(self):
        r = _run("""
            import numpy as np, fastconv
            from fastconv._blas import gemm
            gemm(np.ones((300, 300)), np.ones((300, 300)))
            print(max(d['num_threads'] for d in fastconv._threads.blas_info()))
            """, OMP_NUM_THREADS="1")
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == 1


def _cgroup_tree(tmp_path, files, cgroup_line):
    for rel, text in files.items():
        p = tmp_path / "fs" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    proc = tmp_path / "cgroup"
    proc.write_text(cgroup_line)
    return str(tmp_path / "fs"), str(proc)


class TestCgroupCpuLimit:
    def test_v2_quota_rounds_up(self, tmp_path):
        root, proc = _cgroup_tree(tmp_path, {"app/cpu.max": "150000 100000\n"}, "0::/app\n")
        assert _threads.cgroup_cpu_limit(root, proc) == 2

    def test_v2_unlimited_is_none(self, tmp_path):
        root, proc = _cgroup_tree(tmp_path, {"app/cpu.max": "max 100000\n"}, "0::/app\n")
        assert _threads.cgroup_cpu_limit(root, proc) is None

    def test_v2_the_tightest_ancestor_wins(self, tmp_path):
        root, proc = _cgroup_tree(tmp_path, {"a/cpu.max": "100000 100000\n",
                                             "a/b/cpu.max": "max 100000\n"}, "0::/a/b\n")
        assert _threads.cgroup_cpu_limit(root, proc) == 1

    def test_v1_quota_and_period(self, tmp_path):
        root, proc = _cgroup_tree(tmp_path, {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "200000\n",
                                             "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"},
                                  "4:cpu,cpuacct:/docker/x\n")
        assert _threads.cgroup_cpu_limit(root, proc) == 2

    def test_v1_no_quota_is_none(self, tmp_path):
        root, proc = _cgroup_tree(tmp_path, {"cpu/cpu.cfs_quota_us": "-1\n",
                                             "cpu/cpu.cfs_period_us": "100000\n"}, "4:cpu:/\n")
        assert _threads.cgroup_cpu_limit(root, proc) is None

    def test_no_cgroup_file_is_none(self, tmp_path):
        assert _threads.cgroup_cpu_limit(str(tmp_path), str(tmp_path / "absent")) is None


def _cases():
    x = np.random.default_rng(0).standard_normal((4, 8, 32, 32)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((8, 8, 3, 3)).astype(np.float32)
    p = conv2d_args(x, w, None, 1, 1, 1, 1)[3]
    for backend in fastconv.backends():
        for engine in _dispatch.engines(backend):
            if not _dispatch.backend_module(backend).unsupported(p):
                yield backend, engine, x, w


class TestConcurrentCallsEqualSerialOnes:
    def test_eight_threads_with_blas_reconfigured_underneath(self):
        """Bitwise equal to the serial call while another thread keeps pushing
        the thread count to BLAS (what set_num_threads does), on every backend and engine."""
        stop = threading.Event()

        def pusher():
            while not stop.is_set():
                _threads.apply_blas_threads(force=True)

        side = threading.Thread(target=pusher)
        side.start()
        try:
            for backend, engine, x, w in _cases():
                ref = fastconv.conv2d(x, w, padding=1, backend=backend, engine=engine)
                results = [None] * 8

                def work(i):
                    results[i] = [fastconv.conv2d(x, w, padding=1, backend=backend, engine=engine)
                                  for _ in range(3)]

                ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                for r in results:
                    for y in r:
                        np.testing.assert_array_equal(y, ref, err_msg=f"{backend}/{engine}")
        finally:
            stop.set()
            side.join()

    def test_no_openblas_loop_warning_and_blas_restored(self):
        r = _run("""
            import threading, numpy as np, fastconv
            from fastconv import _threads
            x = np.random.default_rng(0).standard_normal((4, 8, 32, 32)).astype(np.float32)
            w = np.random.default_rng(1).standard_normal((8, 8, 3, 3)).astype(np.float32)
            ref = fastconv.conv2d(x, w, padding=1, backend="im2col")
            bad = []
            def work():
                for _ in range(20):
                    y = fastconv.conv2d(x, w, padding=1, backend="im2col")
                    if not np.array_equal(y, ref): bad.append(1)
                    np.dot(np.ones((400, 400)), np.ones((400, 400)))   # the user's own BLAS work
            ts = [threading.Thread(target=work) for _ in range(6)]
            [t.start() for t in ts]; [t.join() for t in ts]
            print(len(bad), max(d['num_threads'] for d in _threads.blas_info()))
            """, OMP_NUM_THREADS="2")
        assert r.returncode == 0, r.stderr
        assert "Detect OpenMP Loop" not in r.stderr
        bad, blas = map(int, r.stdout.split())
        assert bad == 0
        assert blas == 2


class TestNumbaPool:
    def test_numba_pool_is_sized_by_fastconv_default(self):
        pytest.importorskip("numba")
        r = _run("""
            import numpy as np, fastconv
            x = np.ones((1, 1, 16, 16), np.float32); w = np.ones((1, 1, 3, 3), np.float32)
            fastconv.conv2d(x, w, backend="naive", engine="numba")
            import numba; print(numba.config.NUMBA_NUM_THREADS)
            """, OMP_NUM_THREADS="1")
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == 1

    def test_a_compile_after_the_pool_started_keeps_the_count(self):
        # Numba re-reads NUMBA_NUM_THREADS at every compile and raised
        # "Cannot set NUMBA_NUM_THREADS to a different value once the threads
        # have been launched" on the first new signature (here a read-only
        # input) once fastconv had dropped the variable (found by fuzzing).
        pytest.importorskip("numba")
        r = _run("""
            import numpy as np, fastconv
            a = np.ones((13, 16), np.float32); b = np.ones((6, 4), np.float32)
            fastconv.convolve2d(a, b, "valid", backend="naive", engine="numba")
            a.flags.writeable = False
            fastconv.convolve2d(a, b, "valid", backend="naive", engine="numba")
            import numba; print(numba.config.NUMBA_NUM_THREADS, numba.get_num_threads())
            """, FASTCONV_NUM_THREADS="1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["1", "1"]

    def test_a_child_sizes_its_own_pool(self):
        # The variable fastconv leaves set is marked as its own, so a child
        # with another thread count does not inherit the parent's pool size.
        pytest.importorskip("numba")
        r = _run("""
            import os, subprocess, sys, fastconv
            from fastconv._threads import size_numba_pool
            size_numba_pool()
            env = dict(os.environ, FASTCONV_NUM_THREADS="2")
            code = "import fastconv; from fastconv._threads import size_numba_pool; size_numba_pool(); " \\
                   "import numba; print(numba.config.NUMBA_NUM_THREADS)"
            print(os.environ["NUMBA_NUM_THREADS"], subprocess.run([sys.executable, "-c", code], env=env,
                  capture_output=True, text=True).stdout.strip())
            """, FASTCONV_NUM_THREADS="1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["1", "2"]
