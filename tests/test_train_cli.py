"""``fastconv train`` and ``fastconv evaluate`` on a few hundred embedded digits."""
import os

import numpy as np
import pytest

from fastconv.cli import main
from fastconv.cli import train as train_cli
from fastconv.data import load_mnist, write_idx
from fastconv.data import mnist as mnist_mod
from fastconv.models import LeNet5

# One quick epoch on 256 training and 256 test digits; one thread, because on a
# shared, busy machine two spinning threads are slower than one.
TINY = ["--limit", "256", "--epochs", "1", "--batch-size", "64", "--quiet", "--threads", "1"]


def train(tmp_path, *extra, name="ck.npz"):
    path = tmp_path / name
    status = main(["train", *TINY, "--save", str(path), *extra])
    return status, path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run shared by the tests that only read its checkpoint."""
    path = tmp_path_factory.mktemp("train") / "lenet5.npz"
    assert main(["train", *TINY, "--save", str(path), "--seed", "1"]) == 0
    return path


class TestTrain:
    def test_writes_loadable_checkpoint_with_metadata(self, trained):
        state, meta = train_cli.load_checkpoint(trained)
        assert meta["model"] == "lenet5" and meta["epoch"] == 1 and meta["seed"] == 1
        assert meta["data"] == "default" and meta["limit"] == 256
        assert meta["args"]["augment"] == 2 and meta["args"]["optimizer"] == "sgd"  # the defaults
        assert 0.0 <= meta["test_accuracy"] <= 1.0 and len(meta["history"]) == 1
        model = LeNet5()
        model.load_state_dict(state)
        # Loadable without fastconv's helper too: plain np.load minus the metadata entry.
        with np.load(trained) as z:
            model.load_state_dict({k: z[k] for k in z.files if k != train_cli.META_KEY})

    def test_prints_epoch_summary_and_conv_backends(self, tmp_path, capsys):
        status, _ = train(tmp_path)
        out = capsys.readouterr().out
        assert status == 0
        assert "features.0 (64, 1, 28, 28) -> 6@5x5 pad 2:" in out
        assert "features.3 (64, 6, 14, 14) -> 16@5x5:" in out
        assert "epoch 1/1: loss" in out and "test" in out and "img/s" in out

    def test_same_seed_same_weights(self, tmp_path, trained):
        status, path = train(tmp_path, "--seed", "1", "--augment", "2")
        assert status == 0
        a, _ = train_cli.load_checkpoint(trained)
        b, _ = train_cli.load_checkpoint(path)
        assert all(np.array_equal(a[k], b[k]) for k in a)

    def test_different_seed_different_weights(self, tmp_path, trained):
        _, path = train(tmp_path, "--seed", "2")
        a, _ = train_cli.load_checkpoint(trained)
        b, _ = train_cli.load_checkpoint(path)
        assert not np.array_equal(a["features.0.weight"], b["features.0.weight"])

    def test_mnistcnn_with_batch_norm_and_sgd(self, tmp_path):
        status, path = train(tmp_path, "--model", "mnistcnn", "--batch-norm", "--optimizer", "sgd",
                             "--limit", "64", "--schedule", "step")
        assert status == 0
        state, meta = train_cli.load_checkpoint(path)
        assert meta["model"] == "mnistcnn" and meta["model_kwargs"]["batch_norm"] is True
        assert "features.1.running_mean" in state

    def test_data_directory_of_idx_files(self, tmp_path):
        for split, stems in mnist_mod.FILES.items():
            images, labels = load_mnist(split=split)
            write_idx(tmp_path / (stems[0] + ".gz"), images[:128])
            write_idx(tmp_path / (stems[1] + ".gz"), labels[:128].astype(np.uint8))
        status, path = train(tmp_path, "--data", str(tmp_path))
        assert status == 0
        meta = train_cli.load_checkpoint(path)[1]
        assert meta["data"] == str(tmp_path.resolve())
        assert meta["args"]["augment"] == 0  # shifts are the embedded set's default only

    def test_missing_fashion_says_how_to_install(self, tmp_path, monkeypatch, capsys):
        monkeypatch.setattr(mnist_mod, "FASHION_DIR", tmp_path / "absent")
        status, path = train(tmp_path, "--data", "fashion")
        assert status != 0 and not path.exists()
        assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err

    @pytest.mark.parametrize("args, match", [
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--augment", "-1"], "--augment must be >= 0"),
        (["--backend", "nope"], "backend must be 'auto' or one of"),
    ])
    def test_bad_arguments_exit_2_with_message(self, tmp_path, capsys, args, match):
        status, _ = train(tmp_path, *args)
        assert status == 2
        assert match in capsys.readouterr().err

    def test_ctrl_c_keeps_last_finished_epoch(self, tmp_path, monkeypatch, capsys):
        calls = []
        real = train_cli.accuracy

        def interrupt_in_epoch_2(*a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(train_cli, "accuracy", interrupt_in_epoch_2)
        path = tmp_path / "ck.npz"
        status = main(["train", "--limit", "128", "--epochs", "3", "--quiet", "--threads", "1",
                       "--save", str(path)])
        assert status == 130
        assert "interrupted during epoch 2" in capsys.readouterr().err
        assert train_cli.load_checkpoint(path)[1]["epoch"] == 1
        assert os.listdir(tmp_path) == ["ck.npz"]


class TestCheckpointFile:
    def test_write_is_atomic(self, tmp_path, monkeypatch):
        path = tmp_path / "ck.npz"
        train_cli.save_checkpoint(path, {"w": np.ones(3)}, {"epoch": 1})

        def die_mid_write(f, **arrays):
            f.write(b"PK partial")
            raise KeyboardInterrupt

        monkeypatch.setattr(train_cli.np, "savez", die_mid_write)
        with pytest.raises(KeyboardInterrupt):
            train_cli.save_checkpoint(path, {"w": np.zeros(3)}, {"epoch": 2})
        state, meta = train_cli.load_checkpoint(path)
        assert meta["epoch"] == 1 and state["w"].tolist() == [1, 1, 1]
        assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind

    def test_reserved_key_rejected(self, tmp_path):
        with pytest.raises(ValueError, match="reserved key"):
            train_cli.save_checkpoint(tmp_path / "x.npz", {train_cli.META_KEY: np.ones(1)}, {})

    def test_not_a_checkpoint(self, tmp_path):
        plain = tmp_path / "plain.npz"
        np.savez(plain, w=np.ones(2))
        with pytest.raises(ValueError, match="without the '__meta__' entry"):
            train_cli.load_checkpoint(plain)
        junk = tmp_path / "junk.npz"
        junk.write_bytes(b"not a zip")
        with pytest.raises(ValueError, match="not a fastconv checkpoint"):
            train_cli.load_checkpoint(junk)


class TestEvaluate:
    def test_reproduces_training_accuracy(self, trained, capsys):
        assert main(["evaluate", str(trained)]) == 0
        out = capsys.readouterr().out
        meta = train_cli.load_checkpoint(trained)[1]
        assert f"{100 * meta['test_accuracy']:.2f}%" in out
        assert "reproduced the" in out

    def test_function_returns_the_same_accuracy(self, trained):
        from fastconv.cli.evaluate import evaluate
        acc, meta = evaluate(trained)
        assert acc == meta["test_accuracy"]
        assert evaluate(trained, batch_size=37)[0] == pytest.approx(acc, abs=2 / 256)

    def test_thread_count_is_restored(self, trained):
        import fastconv
        before = fastconv.get_num_threads()
        assert main(["evaluate", str(trained), "--threads", "1"]) == 0
        assert fastconv.get_num_threads() == before

    def test_missing_file_exits_2(self, tmp_path, capsys):
        assert main(["evaluate", str(tmp_path / "none.npz")]) == 2
        assert "does not exist" in capsys.readouterr().err
