"""fastconv.models.mnist: LeNet5 and MnistCNN against equivalent PyTorch models."""
import numpy as np
import pytest

from fastconv import nn
from fastconv.models import LeNet5, MnistCNN
from fastconv.nn import functional as F

from conftest import rel_err


def n_params(model):
    return sum(p.data.size for p in model.parameters())


def torch_lenet5(torch, batch_norm=False):
    """torch twin of LeNet5, same Sequential indices so the state-dict keys agree."""
    tnn = torch.nn

    def conv(*a, **k):
        c = tnn.Conv2d(*a, bias=not batch_norm, **k)
        return [c, tnn.BatchNorm2d(a[1]), tnn.ReLU()] if batch_norm else [c, tnn.ReLU()]

    def fc(i, o):
        return ([tnn.Linear(i, o, bias=False), tnn.BatchNorm1d(o), tnn.ReLU()] if batch_norm
                else [tnn.Linear(i, o), tnn.ReLU()])

    model = tnn.Module()
    model.features = tnn.Sequential(*conv(1, 6, 5, padding=2), tnn.MaxPool2d(2), *conv(6, 16, 5), tnn.MaxPool2d(2))
    model.classifier = tnn.Sequential(*fc(400, 120), *fc(120, 84), tnn.Linear(84, 10))
    model.forward = lambda x: model.classifier(torch.flatten(model.features(x), 1))
    return model


def torch_mnistcnn(torch, batch_norm=False):
    tnn = torch.nn

    def conv(i, o):
        c = tnn.Conv2d(i, o, 3, bias=not batch_norm)
        return [c, tnn.BatchNorm2d(o), tnn.ReLU()] if batch_norm else [c, tnn.ReLU()]

    hidden = ([tnn.Linear(9216, 128, bias=False), tnn.BatchNorm1d(128), tnn.ReLU()] if batch_norm
              else [tnn.Linear(9216, 128), tnn.ReLU()])
    model = tnn.Module()
    model.features = tnn.Sequential(*conv(1, 32), *conv(32, 64), tnn.MaxPool2d(2), tnn.Dropout(0.25))
    model.classifier = tnn.Sequential(*hidden, tnn.Dropout(0.5), tnn.Linear(128, 10))
    model.forward = lambda x: model.classifier(torch.flatten(model.features(x), 1))
    return model


TWINS = {"lenet5": (LeNet5, torch_lenet5), "mnistcnn": (MnistCNN, torch_mnistcnn)}


class TestArchitecture:
    @pytest.mark.parametrize("cls, count", [(LeNet5, 61_706), (MnistCNN, 1_199_882)], ids=["lenet5", "mnistcnn"])
    def test_parameter_count(self, cls, count):
        assert n_params(cls()) == count

    @pytest.mark.parametrize("cls", [LeNet5, MnistCNN], ids=["lenet5", "mnistcnn"])
    @pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
    @pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
    def test_output_shape(self, cls, batch_norm, training):
        model = cls(batch_norm=batch_norm).train(training)
        x = nn.Tensor(np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32))
        y = model(x)
        assert y.shape == (3, 10) and y.dtype == np.float32

    def test_num_classes_and_in_channels(self):
        x = nn.Tensor(np.zeros((2, 3, 28, 28), np.float32))
        assert LeNet5(num_classes=26, in_channels=3).eval()(x).shape == (2, 26)
        assert MnistCNN(num_classes=5, in_channels=3).eval()(x).shape == (2, 5)

    def test_lenet5_state_dict_keys(self):
        assert list(LeNet5().state_dict()) == [
            "features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
            "classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias",
            "classifier.4.weight", "classifier.4.bias"]

    def test_mnistcnn_state_dict_keys(self):
        assert list(MnistCNN().state_dict()) == [
            "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
            "classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"]

    def test_batch_norm_keys_as_documented(self):
        keys = set(LeNet5(batch_norm=True).state_dict())
        assert {"features.0.weight", "features.1.running_mean", "features.4.weight", "features.5.bias",
                "classifier.1.running_var", "classifier.6.bias"} <= keys
        assert "features.0.bias" not in keys  # batch norm cancels a conv bias
        keys = set(MnistCNN(batch_norm=True).state_dict())
        assert {"features.3.weight", "features.4.running_mean", "classifier.1.weight", "classifier.4.bias"} <= keys

    @pytest.mark.parametrize("kw, exc, match", [
        ({"num_classes": 0}, ValueError, "num_classes must be >= 1"),
        ({"num_classes": 2.0}, TypeError, "num_classes must be an int"),
        ({"in_channels": 0}, ValueError, "in_channels must be >= 1"),
        ({"batch_norm": "yes"}, TypeError, "batch_norm must be True or False"),
    ])
    @pytest.mark.parametrize("cls", [LeNet5, MnistCNN], ids=["lenet5", "mnistcnn"])
    def test_bad_arguments(self, cls, kw, exc, match):
        with pytest.raises(exc, match=match):
            cls(**kw)

    def test_seeded_init_is_reproducible(self):
        nn.manual_seed(5)
        a = LeNet5().state_dict()
        nn.manual_seed(5)
        b = LeNet5().state_dict()
        assert all(np.array_equal(a[k], b[k]) for k in a)


class TestAgainstTorch:
    @pytest.mark.parametrize("name", sorted(TWINS))
    @pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
    def test_same_parameter_count_and_keys(self, name, batch_norm):
        torch = pytest.importorskip("torch")
        ours, theirs = TWINS[name][0](batch_norm=batch_norm), TWINS[name][1](torch, batch_norm)
        assert n_params(ours) == sum(p.numel() for p in theirs.parameters())
        assert list(ours.state_dict()) == list(theirs.state_dict())

    @pytest.mark.parametrize("name", sorted(TWINS))
    @pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
    def test_torch_weights_give_torch_outputs(self, name, batch_norm):
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        theirs = TWINS[name][1](torch, batch_norm).eval()
        ours = TWINS[name][0](batch_norm=batch_norm).eval()
        if batch_norm:  # non-trivial running statistics, so eval-mode batch norm is exercised
            with torch.no_grad():
                theirs.train()
                theirs(torch.randn(16, 1, 28, 28))
                theirs.eval()
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
        x = np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(np.float32)
        with nn.no_grad():
            got = ours(nn.Tensor(x)).numpy()
        with torch.no_grad():
            want = theirs(torch.from_numpy(x)).numpy()
        assert rel_err(got, want) < 1e-4

    def test_lenet5_gradients_match_torch(self):
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        theirs = torch_lenet5(torch)
        ours = LeNet5()
        ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
        rng = np.random.default_rng(2)
        x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, size=8)
        F.cross_entropy(ours(nn.Tensor(x)), y).backward()
        torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        want = dict(theirs.named_parameters())
        for k, p in ours.named_parameters():
            assert rel_err(p.grad, want[k].grad.numpy()) < 1e-4, k
