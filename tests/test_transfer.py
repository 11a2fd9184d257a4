"""fastconv.transfer: freezing, new heads, per-group learning rates, weight import."""
import os

import numpy as np
import pytest

from conftest import TOL, rel_err
from fastconv import models, nn, optim
from fastconv.models.resnet import BasicBlock, ResNet
from fastconv.nn import functional as F
from fastconv.transfer import (check_state_dict, freeze, freeze_batchnorm, get_head, load_weights, param_groups,
                               read_weights, replace_head, save_weights, unfreeze)


def tiny_resnet(num_classes=5, in_channels=3):
    nn.manual_seed(0)
    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, in_channels=in_channels, width=4)


def _x(shape, seed=0):
    return nn.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _snapshot(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def _step(model, opt, n=1, size=32, classes=5):
    x = _x((4, 3, size, size))
    y = nn.Tensor(np.arange(4) % classes)
    for _ in range(n):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


class TestFreeze:
    def test_freeze_and_unfreeze_switch_every_parameter(self):
        model = tiny_resnet()
        assert freeze(model) is model
        assert not any(p.requires_grad for p in model.parameters())
        unfreeze(model.layer4)
        assert all(p.requires_grad for p in model.layer4.parameters())
        assert not any(p.requires_grad for p in model.layer1.parameters())

    def test_requires_grad_per_parameter(self):
        model = tiny_resnet()
        model.conv1.weight.requires_grad_(False)
        model.requires_grad_(True)
        assert model.conv1.weight.requires_grad
        model.requires_grad_(False)
        assert not any(p.requires_grad for p in model.parameters())

    def test_frozen_parameters_get_no_gradient(self):
        model = freeze(tiny_resnet())
        head = replace_head(model, 3)
        F.cross_entropy(model(_x((2, 3, 32, 32))), nn.Tensor(np.array([0, 2]))).backward()
        assert head.weight.grad is not None
        assert model.conv1.weight.grad is None

    def test_rejects_non_modules(self):
        with pytest.raises(TypeError, match="fastconv.nn.Module"):
            freeze(np.zeros(3))


class TestReplaceHead:
    def test_fc(self):
        model = freeze(tiny_resnet())
        head = replace_head(model, 3)
        assert model.fc is head and head.weight.shape == (3, 32) and head.weight.requires_grad
        assert get_head(model)[0] == "fc"

    def test_classifier_last_layer(self):
        model = models.LeNet5()
        head = replace_head(model, 4)
        assert model.classifier[-1] is head and head.weight.shape[0] == 4
        assert get_head(model)[0] == f"classifier[{len(model.classifier) - 1}]"

    def test_last_linear_and_aux_heads(self):
        from fastconv.models.senet import SENet
        se = SENet([1, 1, 1, 1], num_classes=10)
        assert replace_head(se, 2).weight.shape == (2, 2048) and se.last_linear.weight.shape == (2, 2048)
        g = models.googlenet(aux_logits=True)
        replace_head(g, 6)
        assert g.fc.weight.shape == (6, 1024)
        assert g.aux1.fc2.weight.shape == (6, 1024) and g.aux2.fc2.weight.shape == (6, 1024)

    def test_model_without_head_is_a_clear_error(self):
        with pytest.raises(ValueError, match="no classifier"):
            replace_head(nn.Sequential(nn.Conv2d(1, 2, 3)), 3)

    @pytest.mark.parametrize("bad, exc", [(0, ValueError), ("3", TypeError)])
    def test_bad_num_classes(self, bad, exc):
        with pytest.raises(exc, match="num_classes"):
            replace_head(tiny_resnet(), bad)


class TestTrainingTheHead:
    def test_optimizer_skips_frozen_parameters_even_with_weight_decay_and_momentum(self):
        model = freeze(tiny_resnet())
        replace_head(model, 5)
        model.eval()
        before = _snapshot(model)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
        _step(model, opt, n=2)
        after = model.state_dict()
        changed = {k for k in before if not np.array_equal(before[k], after[k])}
        assert changed == {"fc.weight", "fc.bias"}

    def test_eval_keeps_batchnorm_statistics_while_the_head_trains(self):
        model = freeze(tiny_resnet())
        replace_head(model, 5)
        model.eval()
        before = _snapshot(model)
        _step(model, optim.SGD(model.parameters(), lr=0.1), n=2)
        for k in before:
            if "running_" in k or "num_batches" in k:
                assert np.array_equal(before[k], model.state_dict()[k]), k

    def test_freeze_batchnorm_in_train_mode(self):
        model = tiny_resnet()
        model.train()
        assert freeze_batchnorm(model) == 12  # stem, 2 per block, 3 downsample projections
        before = _snapshot(model)
        _step(model, optim.SGD(model.parameters(), lr=0.01), n=1)
        after = model.state_dict()
        assert all(np.array_equal(before[k], after[k]) for k in before if "running_" in k)
        assert not np.array_equal(before["conv1.weight"], after["conv1.weight"])

    def test_param_groups_give_the_head_its_own_rate(self):
        model = tiny_resnet()
        groups = param_groups(model, lr=0.0, head_lr=0.5)
        assert [g["lr"] for g in groups] == [0.0, 0.5]
        opt = optim.SGD(groups, lr=1.0)
        model.eval()
        before = _snapshot(model)
        _step(model, opt)
        after = model.state_dict()
        assert np.array_equal(before["conv1.weight"], after["conv1.weight"])  # lr 0 for the body
        assert not np.array_equal(before["fc.weight"], after["fc.weight"])
        opt.param_groups[0]["lr"] = 0.01  # fine-tuning stage: the body starts to move
        _step(model, opt)
        assert not np.array_equal(before["conv1.weight"], model.state_dict()["conv1.weight"])

    def test_param_groups_leave_out_frozen_parameters(self):
        model = freeze(tiny_resnet())
        replace_head(model, 2)
        groups = param_groups(model, lr=0.1)
        assert len(groups) == 1 and len(groups[0]["params"]) == 2


# ---------------------------------------------------------------------------
# Weight files
# ---------------------------------------------------------------------------

class TestNpz:
    def test_round_trip_with_metadata(self, tmp_path):
        src, dst = tiny_resnet(), ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5, width=4)
        path = save_weights(src, tmp_path / "ckpt", epoch=3, arch="tiny")
        assert load_weights(dst, path) == ([], [])
        for k, v in src.state_dict().items():
            assert np.array_equal(np.asarray(v), np.asarray(dst.state_dict()[k])), k

    def test_errors_list_missing_unexpected_and_misshaped_keys(self, tmp_path):
        state = _snapshot(tiny_resnet())
        del state["fc.bias"]
        state["head.weight"] = np.zeros((2, 2), np.float32)
        state["conv1.weight"] = np.zeros((4, 1, 7, 7), np.float32)
        path = tmp_path / "bad.npz"
        np.savez(path, **state)
        with pytest.raises(ValueError) as e:
            load_weights(tiny_resnet(), path)
        msg = str(e.value)
        assert "1 missing key(s): fc.bias" in msg
        assert "1 unexpected key(s): head.weight" in msg
        assert "conv1.weight (model (4, 3, 7, 7)" in msg and "(4, 1, 7, 7)" in msg

    def test_non_strict_reports_and_still_refuses_bad_shapes(self, tmp_path):
        state = _snapshot(tiny_resnet())
        del state["fc.bias"]
        np.savez(tmp_path / "partial.npz", **state)
        res = load_weights(tiny_resnet(), tmp_path / "partial.npz", strict=False)
        assert res.missing_keys == ["fc.bias"] and res.unexpected_keys == []
        state["fc.weight"] = np.zeros((9, 32), np.float32)
        np.savez(tmp_path / "shape.npz", **state)
        with pytest.raises(ValueError, match="mis-shaped.*fc.weight"):
            load_weights(tiny_resnet(), tmp_path / "shape.npz", strict=False)

    def test_unknown_suffix_and_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_weights(tiny_resnet(), tmp_path / "none.npz")
        (tmp_path / "w.bin2").write_bytes(b"x")
        with pytest.raises(ValueError, match="format"):
            load_weights(tiny_resnet(), tmp_path / "w.bin2")
        with pytest.raises(ValueError, match="format must be one of"):
            read_weights(tmp_path / "w.bin2", format="onnx")


class TestTorchFiles:
    def test_torchvision_style_state_dict_loads_and_gives_torch_outputs(self, tmp_path):
        torch = pytest.importorskip("torch")
        from test_architectures import _randomise_bn_stats, _torch_resnet18
        torch.manual_seed(0)
        ref = _torch_resnet18(torch, 10).eval()
        with torch.no_grad():
            _randomise_bn_stats(torch, ref)
        path = tmp_path / "resnet18.pth"
        torch.save(ref.state_dict(), path)
        ours = models.resnet18(num_classes=10).eval()
        assert load_weights(ours, path) == ([], [])
        x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
        with torch.no_grad():
            expected = ref(torch.from_numpy(x)).numpy()
        with nn.no_grad():
            got = ours(nn.Tensor(x)).numpy()
        assert rel_err(got, expected) < TOL[np.dtype(np.float32)]

    def test_checkpoint_dict_and_wrong_head_message(self, tmp_path):
        torch = pytest.importorskip("torch")
        from test_architectures import _torch_resnet18
        ref = _torch_resnet18(torch, 10)
        path = tmp_path / "ckpt.pt"
        torch.save({"epoch": 3, "state_dict": ref.state_dict()}, path)
        assert len(read_weights(path)) == len(ref.state_dict())
        with pytest.raises(ValueError, match=r"fc.weight \(model \(7, 512\), .* \(10, 512\)\)"):
            load_weights(models.resnet18(num_classes=7), path)
        # the usual fix: load, then put a new head on
        model = models.resnet18(num_classes=10)
        load_weights(model, path)
        assert replace_head(model, 7).weight.shape == (7, 512)


# ---- Keras ------------------------------------------------------------------

def _write_keras3(path, layers):
    """A .weights.h5 in Keras 3's layout: layers/<auto name>/vars/<i>, names in attrs."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        g = f.create_group("layers")
        for auto, name, arrays in layers:
            v = g.create_group(auto).create_group("vars")
            v.attrs["name"] = name
            for i, a in enumerate(arrays):
                v.create_dataset(str(i), data=a)


class SmallNet(nn.Module):
    """conv 3x3 (same) -> bn -> relu -> maxpool 2 -> conv 3x3 -> relu -> flatten -> dense."""

    def __init__(self, num_classes=5):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, eps=1e-3), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(6 * 4 * 5, 8), nn.ReLU(), nn.Linear(8, num_classes))

    def forward(self, x):
        return self.classifier(F.flatten(self.features(x), 1))


def _keras_small_net_arrays(rng):
    r = lambda *s: rng.standard_normal(s).astype(np.float32) * 0.3  # noqa: E731
    return {
        "c1": [r(3, 3, 3, 4), r(4)], "bn": [r(4) + 1, r(4), r(4), np.abs(r(4)) + 0.5],
        "c2": [r(3, 3, 4, 6), r(6)], "d1": [r(120, 8), r(8)], "d2": [r(8, 5), r(5)],
    }


class TestKerasFiles:
    def test_keras3_layout_converts_kernels_and_flatten_order(self, tmp_path):
        a = _keras_small_net_arrays(np.random.default_rng(0))
        path = tmp_path / "small.weights.h5"
        # h5py lists these alphabetically (conv2d_10 < conv2d_2 would break a plain sort)
        _write_keras3(path, [("conv2d", "c1", a["c1"]), ("batch_normalization", "bn", a["bn"]),
                             ("conv2d_1", "c2", a["c2"]), ("dense", "d1", a["d1"]), ("dense_1", "d2", a["d2"])])
        model = SmallNet()
        assert load_weights(model, path) == ([], [])
        sd = model.state_dict()
        assert np.array_equal(sd["features.0.weight"], a["c1"][0].transpose(3, 2, 0, 1))
        assert np.array_equal(sd["features.1.running_var"], a["bn"][3])
        assert np.array_equal(sd["classifier.2.weight"], a["d2"][0].T)
        # first dense: rows reordered from Keras's (h, w, c) flattening to (c, h, w)
        w = a["d1"][0].reshape(4, 5, 6, 8).transpose(2, 0, 1, 3).reshape(120, 8).T
        # 4x5 maps are not square: without flatten_hw the rows stay as they are
        assert not np.array_equal(sd["classifier.0.weight"], w)
        load_weights(model, path, flatten_hw=(4, 5))
        assert np.array_equal(model.state_dict()["classifier.0.weight"], w)

    def test_keras2_layout_with_layer_names(self, tmp_path):
        h5py = pytest.importorskip("h5py")
        a = _keras_small_net_arrays(np.random.default_rng(1))
        path = tmp_path / "k2.h5"
        names = {"c1": ("kernel", "bias"), "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
                 "c2": ("kernel", "bias"), "d1": ("kernel", "bias"), "d2": ("kernel", "bias")}
        with h5py.File(path, "w") as f:
            g = f.create_group("model_weights")
            g.attrs["layer_names"] = [n.encode() for n in ["input", "c1", "bn", "c2", "flatten", "d1", "d2"]]
            for lname in ["input", "flatten"]:
                g.create_group(lname).attrs["weight_names"] = []
            for lname, wn in names.items():
                lg = g.create_group(lname)
                lg.attrs["weight_names"] = [f"{lname}/{w}:0".encode() for w in wn]
                for w, arr in zip(wn, a[lname]):
                    lg.create_dataset(f"{lname}/{w}:0", data=arr)
        model = SmallNet()
        load_weights(model, path, flatten_hw=(4, 5))
        assert np.array_equal(model.state_dict()["features.4.weight"], a["c2"][0].transpose(3, 2, 0, 1))

    def test_layer_count_mismatch_names_both_sides(self, tmp_path):
        a = _keras_small_net_arrays(np.random.default_rng(0))
        path = tmp_path / "short.weights.h5"
        _write_keras3(path, [("conv2d", "c1", a["c1"]), ("dense", "d1", a["d1"])])
        with pytest.raises(ValueError, match=r"2 conv layer\(s\) in the model .* but 1 in the file \(c1\)"):
            load_weights(SmallNet(), path)

    def test_keras_file_needs_the_model(self, tmp_path):
        path = tmp_path / "x.weights.h5"
        _write_keras3(path, [("dense", "d", [np.zeros((2, 3), np.float32)])])
        with pytest.raises(ValueError, match="needs the model"):
            read_weights(path)

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_real_keras_small_model_gives_keras_outputs(self, tmp_path):
        os.environ.setdefault("KERAS_BACKEND", "torch")
        keras = pytest.importorskip("keras")
        L = keras.layers
        km = keras.Sequential([keras.Input((5, 5, 3)), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(),
                               L.ReLU(), L.MaxPooling2D(2), L.Flatten(), L.Dense(3)])
        rng = np.random.default_rng(2)
        km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 + (1.0 if i == 5 else 0.0)
                        for i, w in enumerate(km.get_weights())])
        path = tmp_path / "k.weights.h5"
        km.save_weights(str(path))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3, padding=1)
                self.bn = nn.BatchNorm2d(4, eps=1e-3)  # Keras's default epsilon
                self.fc = nn.Linear(16, 3)

            def forward(self, x):
                return self.fc(F.flatten(F.max_pool2d(F.relu(self.bn(self.conv(x))), 2), 1))

        model = Net().eval()
        load_weights(model, path)
        x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
        expected = np.asarray(km(x, training=False).detach().cpu().numpy())
        with nn.no_grad():
            got = model(nn.Tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
        assert rel_err(got, expected) < TOL[np.dtype(np.float32)]

    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_keras_applications_vgg16_loads_into_vgg16_features(self, tmp_path):
        # include_top=False keeps it fast; the dense/flatten conversion is pinned above.
        os.environ.setdefault("KERAS_BACKEND", "torch")
        keras = pytest.importorskip("keras")
        from fastconv.models.vgg import CFGS, make_layers
        km = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
        path = tmp_path / "vgg16.weights.h5"
        km.save_weights(str(path))
        kernels = km.get_weights()
        features = make_layers(CFGS["D"])
        assert load_weights(features, path) == ([], [])
        sd = features.state_dict()
        assert np.array_equal(sd["0.weight"], kernels[0].transpose(3, 2, 0, 1))
        # conv2d_10 sorts before conv2d_2 in the file: the 11th conv must still land at index 24
        assert np.array_equal(sd["24.weight"], kernels[20].transpose(3, 2, 0, 1))
        assert np.array_equal(sd["28.bias"], kernels[25])


def test_check_state_dict_accepts_a_matching_dict():
    lin = nn.Linear(3, 2)
    assert check_state_dict(lin, {"weight": np.zeros((2, 3)), "bias": np.zeros(2)}) == ([], [])


# =============================================================================
# The example: fastconv transfer
# =============================================================================

# Every stage at two shot counts and two seeds, on a few dozen embedded digits; one thread.
TINY_EXAMPLE = ["--pretrain-per-class", "10", "--pretrain-images", "50", "--shots", "2,1", "--seeds", "2",
                "--head-epochs", "2", "--head-copies", "1", "--cap", "3", "--patience", "2", "--batch", "10",
                "--width", "4", "--test-per-class", "5", "--threads", "1"]


def _transfer_args(*extra):
    import argparse
    from fastconv.cli.transfer import add_arguments
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args([*TINY_EXAMPLE, *extra])


class TestTransferCurve:
    def test_tiny_run_prints_the_table_and_writes_json_and_png(self, tmp_path, capsys):
        import json
        import fastconv
        from fastconv.cli import main
        threads = fastconv.get_num_threads()
        js, png = tmp_path / "curve.json", tmp_path / "curve.png"
        assert main(["transfer", *TINY_EXAMPLE, "--json", str(js), "--plot", str(png)]) == 0
        out = capsys.readouterr().out
        for line in ("| shots | frozen + head | fine-tuned | scratch (fitted) |", "cap 3 epochs",
                     "seed 1,   2 shots: frozen", "first 1.0 at epoch", "mean ± std over 2 seed(s)"):
            assert line in out
        assert fastconv.get_num_threads() == threads  # --threads is scoped to the run
        doc = json.loads(js.read_text())
        assert doc["data"] == "MNIST (embedded 5,000 digits)"
        assert list(doc["shots"]) == ["1", "2"]
        for row in doc["shots"].values():
            assert set(row) == {"frozen", "finetune", "scratch"}
            for entry in row.values():
                runs = np.array(entry["runs"])
                assert len(runs) == 2 and ((0 <= runs) & (runs <= 1)).all()
                assert entry["mean"] == pytest.approx(runs.mean())
                assert entry["std"] == pytest.approx(runs.std(ddof=1))
            scratch = row["scratch"]
            assert all(1 <= e <= 3 for e in scratch["epochs"])  # the cap holds
            assert set(scratch["stopped"]) <= {"plateau", "cap"} and len(scratch["train_acc"]) == 2
        assert doc["protocol"]["cap"] == 3 and doc["protocol"]["seeds"] == 2
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.pyplot as plt
        assert plt.imread(str(png)).shape[:2] == (450, 650)

    def test_summary_std_is_over_seeds(self):
        from fastconv.cli.transfer import summarise
        runs = [{5: {"frozen": {"acc": a, "epochs": 3}}} for a in (0.2, 0.4, 0.9)]
        entry = summarise(runs, [5])["5"]["frozen"]
        assert entry["runs"] == [0.2, 0.4, 0.9] and entry["epochs"] == [3, 3, 3]
        assert entry["mean"] == pytest.approx(0.5) and entry["std"] == pytest.approx(np.std([0.2, 0.4, 0.9], ddof=1))
        assert summarise(runs[:1], [5])["5"]["frozen"]["std"] == 0.0

    def test_plot_has_one_line_per_stage_on_a_log_axis(self, tmp_path, monkeypatch):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from fastconv.cli.transfer import write_plot
        captured = {}
        monkeypatch.setattr(plt, "close", lambda fig: captured.setdefault("fig", fig))
        e = {"mean": 0.5, "std": 0.1, "runs": [0.4, 0.6]}
        write_plot(tmp_path / "c.png", {n: {"frozen": e, "finetune": e, "scratch": e} for n in ("1", "5", "50")}, "t")
        ax = captured["fig"].axes[0]
        assert ax.get_xscale() == "log"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["frozen + head", "fine-tuned",
                                                                        "scratch (fitted)"]
        plt.close(captured["fig"])


class TestScratchFit:
    """fit: the schedule of the from-scratch baseline (and of fine-tuning)."""

    def _net(self):
        nn.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))

    def test_trains_past_fitting_until_the_loss_stops_falling(self):
        from fastconv.cli.transfer import fit
        rng = np.random.default_rng(0)
        x = rng.standard_normal((12, 1, 4, 4)).astype(np.float32)
        y = np.arange(12) % 3
        model = self._net()
        r = fit(model, optim.Adam(model.parameters(), lr=0.05), x, y, 1000, 12, rng, patience=5)
        assert r["stopped"] == "plateau" and r["train_acc"] == 1.0
        assert r["fit_epoch"] is not None and r["fit_epoch"] < r["epochs"] < 1000
        assert r["loss"] < 0.05

    def test_stops_at_the_cap_and_reports_it(self):
        from fastconv.cli.transfer import fit
        rng = np.random.default_rng(0)
        x = rng.standard_normal((12, 1, 4, 4)).astype(np.float32)
        model = self._net()
        r = fit(model, optim.SGD(model.parameters(), lr=1e-3), x, np.arange(12) % 3, 4, 12, rng, patience=50)
        assert r == {**r, "stopped": "cap", "epochs": 4}

    def test_unfittable_images_stop_at_the_plateau_below_one(self):
        from fastconv.cli.transfer import fit
        rng = np.random.default_rng(0)
        x = np.zeros((6, 1, 4, 4), np.float32)  # identical images, different labels
        model = self._net()
        r = fit(model, optim.Adam(model.parameters(), lr=0.05), x, np.arange(6) % 3, 500, 6, rng, patience=5)
        assert r["stopped"] == "plateau" and r["train_acc"] < 1.0 and r["fit_epoch"] is None

    def test_each_run_reports_the_epochs_of_scratch_and_fine_tuning(self):
        from fastconv.cli.transfer import few_shot, prepare, pretrain
        args = _transfer_args()
        data = prepare(args)
        state, _ = pretrain(args, data, 0, log=lambda msg: None)
        out = few_shot(args, data, state, 0, 2)
        assert list(out) == ["frozen", "finetune", "scratch"]
        for stage in ("finetune", "scratch"):
            assert 1 <= out[stage]["epochs"] <= 3 and out[stage]["stopped"] in ("plateau", "cap")
        assert all(0.0 <= r["acc"] <= 1.0 for r in out.values())


class TestTransferData:
    def test_missing_fashion_says_how_to_install(self, tmp_path, monkeypatch, capsys):
        from fastconv.cli import main
        from fastconv.data import mnist as mnist_mod
        monkeypatch.setattr(mnist_mod, "FASHION_DIR", tmp_path / "absent")
        assert main(["transfer", *TINY_EXAMPLE, "--data", "fashion"]) == 2
        captured = capsys.readouterr()
        assert "apt-get install dataset-fashion-mnist" in captured.err
        assert "pre-trained" not in captured.out  # failed before any training

    def test_auto_falls_back_to_the_embedded_digits(self, tmp_path, monkeypatch):
        from fastconv.cli.transfer import prepare
        from fastconv.data import mnist as mnist_mod
        monkeypatch.setattr(mnist_mod, "FASHION_DIR", tmp_path / "absent")
        data = prepare(_transfer_args("--data", "auto"))
        assert data["name"].startswith("MNIST") and data["shots"] == [1, 2]
        assert data["target_test"][0].shape == (25, 1, 28, 28)
        assert sorted(set(data["target_test"][1])) == [0, 1, 2, 3, 4]

    def test_fashion_pretrains_on_all_of_classes_0_to_4(self):
        from fastconv.cli.transfer import prepare, _take
        from fastconv.data.mnist import FASHION_DIR
        if not FASHION_DIR.is_dir():
            pytest.skip(f"Fashion-MNIST is not installed in {FASHION_DIR} (Debian: dataset-fashion-mnist)")
        data = prepare(_transfer_args("--data", "fashion", "--test-per-class", "0"))
        assert data["name"] == "Fashion-MNIST"
        x_old, y_old = _take(*data["train"], range(5), 0, np.random.default_rng(0))
        assert x_old.shape == (30000, 1, 28, 28) and np.bincount(y_old).tolist() == [6000] * 5
        assert data["target_test"][0].shape[0] == 5000

    @pytest.mark.parametrize("args, match", [
        (["--shots", "0"], "--shots must be a comma-separated list of positive ints"),
        (["--shots", "5,x"], "--shots must be a comma-separated list of positive ints"),
        (["--shots", "401"], "--shots: 401 images per class asked"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--shift", "-1"], "--shift must be >= 0"),
        (["--scratch-lr", "0"], "--scratch-lr must be > 0"),
        (["--threads", "0"], "--threads must be >= 1"),
    ])
    def test_bad_arguments_are_usage_errors(self, args, match, capsys):
        from fastconv.cli import main
        assert main(["transfer", *TINY_EXAMPLE, *args]) == 2
        assert match in capsys.readouterr().err

    def test_stage_pooled_resnet_feeds_all_four_stages_to_the_head(self):
        from fastconv.cli.transfer import build
        model = build(5, 4, 0)
        x = _x((2, 1, 28, 28))
        assert model.forward_features(x).shape == (2, 60)  # 4 + 8 + 16 + 32 channels
        loss = F.cross_entropy(model(x), nn.Tensor(np.array([0, 1])))
        loss.backward()
        assert model.conv1.weight.grad is not None and model.layer1[0].conv1.weight.grad is not None
        assert build(5, 4, 0, "last").fc.weight.shape == (5, 32)
        with pytest.raises(ValueError, match="features must be one of"):
            build(5, 4, 0, "middle")


# =============================================================================
# The documented example: ImageNet weights -> a small folder of images
# =============================================================================

def _image_folder(root, per_class=4, size=40):
    """Three classes told apart by their dominant colour; PNG and JPEG files, as users keep them."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for label, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 90, (size, size, 3)).astype(np.uint8)
            img[..., label] = rng.integers(160, 255, (size, size))
            Image.fromarray(img).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    (root / "red" / "notes.txt").write_text("not an image: skipped")


def _load_script(relpath):
    """A script of the repository (examples/, benchmarks/) as a module."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / relpath
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_example(name):
    return _load_script(f"examples/{name}.py")


class TestFolderExample:
    def test_vgg16_torchvision_weights_head_then_top_block_on_a_folder(self, tmp_path, capsys):
        torch = pytest.importorskip("torch")
        pytest.importorskip("PIL")
        torch.manual_seed(0)
        # torchvision's VGG16 layer for layer (names, shapes, order), built without torchvision.
        tv = _load_script("benchmarks/_torch_nets.py").torch_vgg16(torch)
        sd = tv.state_dict()
        assert sum(v.numel() for v in sd.values()) == 138_357_544  # torchvision's VGG16
        weights = tmp_path / "vgg16.pth"
        torch.save(sd, weights)
        first = sd["features.0.weight"].numpy().copy()
        top = sd["features.28.weight"].numpy().copy()
        fc2 = sd["classifier.3.weight"][:4, :4].numpy().copy()
        del tv, sd
        _image_folder(tmp_path / "images")
        ex = _load_example("transfer_folder")
        args = ex.parse_args(["--weights", str(weights), "--images", str(tmp_path / "images"), "--size", "32",
                              "--head-epochs", "30", "--head-lr", "0.01", "--finetune-epochs", "1",
                              "--batch", "8"])
        model, scores = ex.train(args)
        out = capsys.readouterr().out
        for line in ("12 images of 3 classes (blue, green, red): 9 train, 3 held out", "vgg16: loaded",
                     "new head classifier[6]: 4096 features -> 3 classes", "head: 30 epochs",
                     "fine-tuned top block: 1 epochs"):
            assert line in out
        assert model.classifier[6].weight.shape == (3, 4096)
        sd = model.state_dict()
        assert np.array_equal(sd["features.0.weight"], first)  # the body stayed frozen
        assert not np.array_equal(sd["features.28.weight"], top)  # the top block was fine-tuned
        assert not np.array_equal(sd["classifier.3.weight"][:4, :4], fc2)
        assert set(scores) == {"head", "finetune"} and all(0.0 <= v <= 1.0 for v in scores.values())

    def test_folder_errors_name_the_directory(self, tmp_path):
        ex = _load_example("transfer_folder")
        with pytest.raises(FileNotFoundError, match="--images: no directory"):
            ex.load_folder(tmp_path / "absent", 32)
        (tmp_path / "one").mkdir()
        with pytest.raises(ValueError, match="at least two sub-directories"):
            ex.load_folder(tmp_path, 32)

    def test_preprocessing_follows_the_weights(self):
        ex = _load_example("transfer_folder")
        img = np.full((1, 2, 2, 3), 255, np.uint8)
        assert np.allclose(ex.preprocess(img, "inception_v3", "w.pth"), 1.0)
        torch_x = ex.preprocess(img, "vgg16", "w.pth")
        assert np.allclose(torch_x[0, :, 0, 0], (1 - ex.IMAGENET_MEAN) / ex.IMAGENET_STD)
        keras_x = ex.preprocess(img, "vgg16", "w.weights.h5")
        assert np.allclose(keras_x[0, :, 0, 0], 255 - ex.CAFFE_MEAN_BGR)
