"""Faults in files and processes: damaged or unwritable tuning caches, damaged
checkpoints and data, and processes killed in the middle of a write."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import fastconv
from fastconv import _select, _tuning
from fastconv.cli import main
from fastconv.cli.train import load_checkpoint, save_checkpoint


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FASTCONV_SELF_MEASURE", "0")
    _select.reset()
    yield tmp_path / "cache"
    _select.set_tuning(False)
    _select.reset()


def _stray(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def _auto_call():
    x = np.ones((1, 2, 12, 12), np.float32)
    return fastconv.conv2d(x, np.ones((3, 2, 3, 3), np.float32), padding=1)


_GOOD = {"format": _tuning.FORMAT, "library": "fastconv", "version": fastconv.__version__}

DAMAGED = {
    "not UTF-8": b"\xff\xfe{\x00\x80garbage",
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "nested object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "entry of the wrong type": json.dumps({**_GOOD, "entries": {"k": 7}}).encode(),
    "entry times not a dict": json.dumps({**_GOOD, "entries": {"k": {"times": [1, 2]}}}).encode(),
    "entry time not a number": json.dumps({**_GOOD, "entries": {"k": {"times": {"naive/cython": "x"}}}}).encode(),
    "model row a string": json.dumps({**_GOOD, "entries": {}, "models": {"k": "abc"}}).encode(),
    "models a list": json.dumps({**_GOOD, "entries": {}, "models": [1]}).encode(),
    "probes of the wrong type": json.dumps({**_GOOD, "entries": {}, "probes": {"k": [0]}}).encode(),
    "empty file": b"",
    "NUL bytes": b"\x00" * 64,
}


class TestTuningCacheIsAdvisory:
    @pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
    def test_damaged_cache_is_ignored_with_one_warning_and_repaired(self, private_cache, content):
        private_cache.mkdir(parents=True)
        (private_cache / "tuning.json").write_bytes(content)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _auto_call()
            fastconv.explain((1, 2, 12, 12), (3, 2, 3, 3), padding=1)
            _auto_call()
        ours = [w for w in caught if "tuning cache" in str(w.message)]
        assert len(ours) == 1, [str(w.message) for w in caught]
        assert ours[0].category is RuntimeWarning
        with warnings.catch_warnings():
            warnings.simplefilter("error")          # the repairing write warns no more
            fastconv.tune((1, 2, 12, 12), (3, 2, 3, 3), padding=1)
        data = json.loads((private_cache / "tuning.json").read_text())
        assert data["library"] == "fastconv" and len(data["entries"]) == 1
        assert all(isinstance(v, dict) for v in data["entries"].values())

    def test_sound_records_beside_damaged_ones_are_kept(self, private_cache):
        fastconv.tune((1, 2, 12, 12), (3, 2, 3, 3), padding=1)
        path = private_cache / "tuning.json"
        data = json.loads(path.read_text())
        (key, record), = data["entries"].items()
        data["entries"]["junk"] = "junk"
        path.write_text(json.dumps(data))
        _select.reset()
        with pytest.warns(RuntimeWarning, match="1 damaged record"):
            e = fastconv.explain((1, 2, 12, 12), (3, 2, 3, 3), padding=1)
        assert e.reason.startswith("measured by tune()")

    def test_unwritable_cache_only_disables_storing(self, tmp_path, monkeypatch):
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        monkeypatch.setenv("FASTCONV_CACHE_DIR", str(blocker / "cache"))   # cannot be created
        monkeypatch.setenv("FASTCONV_SELF_MEASURE", "0")
        _select.reset()
        fastconv.set_tuning(True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                y = _auto_call()
                fastconv.conv2d(np.ones((1, 2, 14, 14)), np.ones((3, 2, 3, 3)))
                fastconv.tune((1, 1, 10, 10), (1, 1, 3, 3))
        finally:
            fastconv.set_tuning(False)
            _select.reset()
        np.testing.assert_allclose(y[0, 0, 5, 5], 18.0)
        ours = [str(w.message) for w in caught if "cannot store" in str(w.message)]
        assert len(ours) == 1, [str(w.message) for w in caught]

    def test_eight_concurrent_writer_processes_lose_no_entry(self, private_cache):
        code = textwrap.dedent("""
            import sys
            from fastconv import _tuning
            for i in range(25):
                assert _tuning.update("entries", f"{sys.argv[1]}-{i}", {"times": {"naive/cython": i}})
        """)
        env = {**os.environ, "FASTCONV_CACHE_DIR": str(private_cache)}
        procs = [subprocess.Popen([sys.executable, "-c", code, str(k)], env=env) for k in range(8)]
        assert all(p.wait(timeout=120) == 0 for p in procs)
        data = json.loads((private_cache / "tuning.json").read_text())
        assert len(data["entries"]) == 200
        assert _stray(private_cache) == []


def _checkpoint(tmp_path):
    from fastconv.models import LeNet5
    path = tmp_path / "ck.npz"
    save_checkpoint(path, LeNet5().state_dict(), {"model": "lenet5", "model_kwargs": {}})
    return path


class TestDamagedCheckpointsAndData:
    def _evaluate(self, path, capsys):
        rc = main(["evaluate", str(path)])
        err = capsys.readouterr().err
        return rc, err

    @pytest.mark.parametrize("damage", ["half", "first-100-bytes", "empty", "random-bytes", "flipped-byte",
                                        "meta-not-json", "meta-a-list", "a-directory"])
    def test_evaluate_on_a_damaged_checkpoint_says_one_line_and_exits_2(self, tmp_path, damage, capsys):
        path = _checkpoint(tmp_path)
        raw = path.read_bytes()
        if damage == "half":
            path.write_bytes(raw[:len(raw) // 2])
        elif damage == "first-100-bytes":
            path.write_bytes(raw[:100])
        elif damage == "empty":
            path.write_bytes(b"")
        elif damage == "random-bytes":
            path.write_bytes(np.random.default_rng(0).bytes(4000))
        elif damage == "flipped-byte":
            b = bytearray(raw)
            b[len(b) // 2] ^= 0xFF
            path.write_bytes(bytes(b))
        elif damage == "meta-not-json":
            np.savez(path, __meta__=np.array("{not json"))
        elif damage == "meta-a-list":
            np.savez(path, __meta__=np.array("[1, 2]"))
        else:
            path.unlink()
            path.mkdir()
        rc, err = self._evaluate(path, capsys)
        assert rc == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fastconv evaluate: ") and "Traceback" not in err

    @staticmethod
    def _data_dir(tmp_path, n, value=None):
        from fastconv.data.mnist import write_idx
        d = tmp_path / "data"
        d.mkdir()
        rng = np.random.default_rng(0)
        for prefix in ("train", "t10k"):
            images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if value is None else \
                np.full((n, 28, 28), value, np.uint8)
            write_idx(d / f"{prefix}-images-idx3-ubyte", images)
            write_idx(d / f"{prefix}-labels-idx1-ubyte", np.zeros(n, np.uint8))
        return d

    @pytest.mark.parametrize("n, value, says", [(0, None, "holds no images"), (8, 0, "constant 0"),
                                                (8, 255, "constant 255")])
    def test_train_on_empty_or_constant_data_says_one_line_and_exits_2(self, tmp_path, capsys, n, value, says):
        d = self._data_dir(tmp_path, n, value)
        rc = main(["train", "--data", str(d), "--epochs", "1", "--no-save", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and len(err.strip().splitlines()) == 1

    def test_train_on_a_truncated_data_file_says_one_line_and_exits_2(self, tmp_path, capsys):
        d = self._data_dir(tmp_path, 8)
        f = d / "train-images-idx3-ubyte"
        f.write_bytes(f.read_bytes()[:500])
        rc = main(["train", "--data", str(d), "--epochs", "1", "--no-save", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and "truncated" in err and len(err.strip().splitlines()) == 1


class TestKilledWriters:
    def test_sigkill_of_a_checkpoint_writer_leaves_the_previous_one_loadable(self, tmp_path):
        # A tight loop of 5 MB checkpoint writes, so most kills land mid-write.
        code = textwrap.dedent(f"""
            import numpy as np
            from fastconv.cli.train import save_checkpoint
            state = {{"w": np.zeros(1_250_000, np.float32)}}
            i = 0
            while True:
                i += 1
                state["w"][:] = i
                save_checkpoint({str(tmp_path / "ck.npz")!r}, state, {{"model": "x", "i": i}})
                print(i, flush=True)
        """)
        rng = random.Random(18)
        for _ in range(12):
            p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
            p.stdout.readline()                      # one complete write first
            time.sleep(rng.uniform(0.0, 0.3))
            p.send_signal(signal.SIGKILL)
            p.wait()
            state, meta = load_checkpoint(tmp_path / "ck.npz")
            assert (state["w"] == meta["i"]).all()
            assert len(_stray(tmp_path)) <= 1        # the last kill's, removed by the next write
        save_checkpoint(tmp_path / "ck.npz", {"w": np.ones(3)}, {"model": "x"})
        assert _stray(tmp_path) == []

    @pytest.mark.slow
    def test_sigkill_of_fastconv_train_at_random_moments(self, tmp_path):
        ck = tmp_path / "mnistcnn.npz"
        cmd = [sys.executable, "-m", "fastconv", "train", "--model", "mnistcnn", "--epochs", "1000",
               "--limit", "32", "--batch-size", "32", "--save", str(ck), "--quiet"]
        rng = random.Random(2026)
        epochs = []
        for _ in range(12):
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                 cwd=tmp_path)
            while not p.stdout.readline().startswith("epoch 1/"):
                pass
            time.sleep(rng.uniform(0.0, 1.0))
            p.send_signal(signal.SIGKILL)
            p.wait()
            state, meta = load_checkpoint(ck)
            epochs.append(meta["epoch"])
            assert len(_stray(tmp_path)) <= 1
        assert main(["evaluate", str(ck), "--limit", "10"]) == 0
        assert min(epochs) >= 1
