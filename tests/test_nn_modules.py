"""fastconv.nn's modules: registration, state_dict with PyTorch's keys, modes,
dtype casts, containers, PyTorch's default initialisation, and whole layers
and small networks against torch.nn loaded with the same weights."""
import math

import numpy as np
import pytest

import fastconv.nn.functional as F
from fastconv import nn

from conftest import TOL, rel_err

torch = pytest.importorskip("torch")


def _copy_to_torch(ours, theirs):
    sd = {k: torch.tensor(v) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)


def _compare_forward_backward(ours, theirs, x, labels=None, tol=None):
    """Same input through both; compare output, input grad and every parameter grad."""
    tx = torch.tensor(x, requires_grad=True)
    ox = nn.Tensor(x, requires_grad=True)
    if labels is None:
        ty, oy = theirs(tx), ours(ox)
        g = np.random.default_rng(5).standard_normal(ty.shape).astype(x.dtype)
        ty.backward(torch.tensor(g))
        oy.backward(g)
    else:
        ty = torch.nn.functional.cross_entropy(theirs(tx), torch.tensor(labels))
        oy = F.cross_entropy(ours(ox), labels)
        ty.backward()
        oy.backward()
    tol = tol or TOL[np.dtype(x.dtype)]
    assert rel_err(oy.numpy(), ty.detach().numpy()) < tol
    assert rel_err(ox.grad, tx.grad.numpy()) < tol
    tgrads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.grad, tgrads[name].grad.numpy()) < tol, name


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 5))

    def forward(self, x):
        return self.head(F.max_pool2d(self.bn(self.conv(x)).relu(), 2))


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5))

    def forward(self, x):
        return self.head(torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2))


class TestModuleRegistration:
    def test_state_dict_keys_match_torch(self):
        assert list(Block().state_dict()) == list(TorchBlock().state_dict())

    def test_parameters_and_buffers_found(self):
        m = Block()
        assert [n for n, _ in m.named_parameters()] == [
            "conv.weight", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"]
        assert [n for n, _ in m.named_buffers()] == [
            "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
        assert [type(c).__name__ for c in m.children()] == ["Conv2d", "BatchNorm2d", "Sequential"]
        assert len(list(m.modules())) == 6

    def test_shared_parameter_listed_once(self):
        lin = nn.Linear(2, 2)
        seq = nn.Sequential(lin, lin)
        assert len(list(seq.parameters())) == 2

    def test_reassigning_attribute_replaces_registration(self):
        m = Block()
        m.head = nn.Identity()
        assert "head.1.weight" not in m.state_dict()
        with pytest.raises(TypeError, match="parameter 'weight'"):
            m.conv.weight = np.zeros((4, 3, 3, 3))

    def test_missing_super_init_is_reported(self):
        class Bad(nn.Module):
            def __init__(self):
                self.fc = nn.Linear(2, 2)

        with pytest.raises(AttributeError, match="super"):
            Bad()

    def test_unknown_attribute_raises_attribute_error(self):
        with pytest.raises(AttributeError, match="nope"):
            nn.Linear(2, 2).nope


class TestStateDict:
    def test_roundtrip_and_copies(self):
        a, b = Block(), Block()
        sd = a.state_dict()
        sd["conv.weight"][...] = 0  # a copy: the module must not change
        assert np.abs(a.conv.weight.numpy()).sum() > 0
        b.load_state_dict(a.state_dict())
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
            np.testing.assert_array_equal(v, w, err_msg=k)

    def test_load_from_torch(self):
        t = TorchBlock()
        m = Block()
        m.load_state_dict(t.state_dict())
        np.testing.assert_array_equal(m.conv.weight.numpy(), t.conv.weight.detach().numpy())
        assert m.conv.weight.dtype == np.float32

    def test_load_torch_parameters_that_require_grad(self):
        t = TorchBlock()
        m = Block()
        m.load_state_dict(dict(t.named_parameters()), strict=False)
        np.testing.assert_array_equal(m.head[1].bias.numpy(), t.head[1].bias.detach().numpy())

    def test_strict_reports_missing_and_unexpected(self):
        sd = Block().state_dict()
        sd.pop("bn.running_var")
        sd["extra"] = np.zeros(1)
        with pytest.raises(ValueError, match="bn.running_var.*extra"):
            Block().load_state_dict(sd)
        res = Block().load_state_dict(sd, strict=False)
        assert res.missing_keys == ["bn.running_var"] and res.unexpected_keys == ["extra"]

    def test_shape_mismatch_changes_nothing(self):
        m = Block()
        before = m.state_dict()
        sd = Block().state_dict()
        sd["head.1.bias"] = np.zeros(7)
        with pytest.raises(ValueError, match="head.1.bias"):
            m.load_state_dict(sd)
        np.testing.assert_array_equal(m.conv.weight.numpy(), before["conv.weight"])


class TestModesAndCasts:
    def test_train_eval_recursive(self):
        m = Block().eval()
        assert not any(x.training for x in m.modules())
        assert all(x.training for x in m.train().modules())

    def test_double_and_float_cast_params_and_float_buffers(self):
        m = Block().double()
        assert all(p.dtype == np.float64 for p in m.parameters())
        assert m.bn.running_mean.dtype == np.float64
        assert m.bn.num_batches_tracked.dtype == np.int64
        assert all(p.dtype == np.float32 for p in m.float().parameters())

    def test_zero_grad_and_requires_grad(self):
        m = Block()
        F.cross_entropy(m(nn.Tensor(np.ones((2, 3, 8, 8), np.float32))), np.array([0, 1])).backward()
        assert all(p.grad is not None for p in m.parameters())
        m.zero_grad()
        assert all(p.grad is None for p in m.parameters())
        m.conv.requires_grad_(False)
        F.cross_entropy(m(nn.Tensor(np.ones((2, 3, 8, 8), np.float32))), np.array([0, 1])).backward()
        assert m.conv.weight.grad is None and m.bn.weight.grad is not None


class TestContainers:
    def test_sequential_indexing_slicing_assignment(self):
        seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        assert len(seq) == 3 and isinstance(seq[0], nn.Linear) and isinstance(seq[-2], nn.ReLU)
        head = seq[1:]
        assert isinstance(head, nn.Sequential) and len(head) == 2
        seq[-1] = nn.Linear(8, 3)
        assert list(seq.state_dict())[-1] == "2.bias"
        assert seq(nn.Tensor(np.ones((1, 4), np.float32))).shape == (1, 3)
        with pytest.raises(IndexError):
            seq[3]
        with pytest.raises(TypeError, match="Module"):
            seq[0] = "conv"

    @pytest.mark.parametrize("pool", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                      dict(kernel_size=3, stride=2, ceil_mode=True)])
    def test_relu_then_max_pool_trains_as_the_modules_in_order(self, pool):
        # Sequential runs ReLU -> MaxPool2d as MaxPool2d -> ReLU while recording:
        # the values and every gradient must be those of the written order, bit
        # for bit, with ties and all-negative windows (integers in [-2, 2]).
        rng = np.random.default_rng(5)
        x = rng.integers(-2, 3, size=(3, 4, 11, 11)).astype(np.float32)
        x[0, 0] = -1.0  # windows whose maximum is negative
        x[0, 1] = 0.0   # windows of zeros
        seq = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.ReLU(), nn.MaxPool2d(**pool))
        seq[0].weight.data[...] = np.eye(4, dtype=np.float32)[:, :, None, None]
        results = []
        for run in (seq, lambda t: seq[2](seq[1](seq[0](t)))):
            seq[0].weight.grad = None
            t = nn.Tensor(x, requires_grad=True)
            y = run(t)
            y.backward(np.arange(y.data.size, dtype=np.float32).reshape(y.shape) % 7 - 3)
            results.append((y.numpy(), t.grad.copy(), seq[0].weight.grad.copy()))
        for got, want in zip(*results):
            np.testing.assert_array_equal(got, want)

    def test_sequential_rejects_non_modules(self):
        with pytest.raises(TypeError, match="argument 1"):
            nn.Sequential(nn.ReLU(), lambda x: x)

    def test_module_list_registers_items(self):
        ml = nn.ModuleList([nn.Linear(2, 2)])
        ml.append(nn.Linear(2, 3))
        ml[0] = nn.Linear(2, 4)
        assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
        assert ml[0].out_features == 4 and len(ml) == 2


class TestInitialisation:
    @pytest.mark.parametrize("make,fan_in", [(lambda: nn.Conv2d(6, 16, 5), 150),
                                             (lambda: nn.Linear(400, 120), 400),
                                             (lambda: nn.Conv2d(4, 8, 3, groups=2), 18)])
    def test_pytorch_default_bounds(self, make, fan_in):
        nn.manual_seed(0)
        m = make()
        bound = 1 / math.sqrt(fan_in)
        w, b = m.weight.numpy(), m.bias.numpy()
        assert w.dtype == np.float32 and np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.9 * bound  # uniform over the whole interval
        assert np.abs(b).max() <= bound

    def test_manual_seed_reproduces_model(self):
        nn.manual_seed(7)
        a = Block().state_dict()
        nn.manual_seed(7)
        b = Block().state_dict()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])

    def test_batch_norm_defaults(self):
        bn = nn.BatchNorm2d(3)
        assert bn.weight.numpy().tolist() == [1, 1, 1] and bn.bias.numpy().tolist() == [0, 0, 0]
        assert bn.running_var.numpy().tolist() == [1, 1, 1]

    def test_float64_layer(self):
        assert nn.Linear(2, 2, dtype=np.float64).weight.dtype == np.float64
        with pytest.raises(TypeError, match="dtype"):
            nn.Linear(2, 2, dtype=np.int32)


class TestLayersAgainstTorch:
    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_block_forward_backward_train_mode(self, dtype, rng):
        ours, theirs = Block(), TorchBlock()
        if dtype == np.float64:
            ours.double()
            theirs.double()
        _copy_to_torch(ours, theirs)
        x = rng.standard_normal((4, 3, 8, 8)).astype(dtype)
        _compare_forward_backward(ours, theirs, x, labels=np.array([0, 1, 4, 2]))
        assert rel_err(ours.bn.running_var.numpy(), theirs.bn.running_var.detach().numpy()) < 1e-5
        assert int(ours.bn.num_batches_tracked.item()) == 1

    def test_block_eval_mode_uses_running_stats(self, rng):
        ours, theirs = Block(), TorchBlock()
        x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
        ours(nn.Tensor(x))
        theirs(torch.tensor(x))
        _copy_to_torch(ours, theirs)
        ours.eval()
        theirs.eval()
        _compare_forward_backward(ours, theirs, x * 2)

    LAYERS = {
        "avgpool-ceil": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                         lambda: torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
        "maxpool": (lambda: nn.MaxPool2d(3, stride=2), lambda: torch.nn.MaxPool2d(3, stride=2)),
        "adaptive": (lambda: nn.AdaptiveAvgPool2d((3, 2)), lambda: torch.nn.AdaptiveAvgPool2d((3, 2))),
        "lrn": (lambda: nn.LocalResponseNorm(5, k=2.0), lambda: torch.nn.LocalResponseNorm(5, k=2.0)),
        "sigmoid": (nn.Sigmoid, torch.nn.Sigmoid),
        "tanh": (nn.Tanh, torch.nn.Tanh),
        "conv-groups-dilation": (lambda: nn.Conv2d(6, 4, 3, stride=2, padding=2, dilation=2, groups=2),
                                 lambda: torch.nn.Conv2d(6, 4, 3, stride=2, padding=2, dilation=2, groups=2)),
        "batchnorm-no-affine": (lambda: nn.BatchNorm2d(6, affine=False, momentum=None),
                                lambda: torch.nn.BatchNorm2d(6, affine=False, momentum=None)),
    }

    @pytest.mark.parametrize("name", list(LAYERS), ids=list(LAYERS))
    def test_layer_matches_torch(self, name, rng):
        make_ours, make_theirs = self.LAYERS[name]
        ours, theirs = make_ours(), make_theirs()
        _copy_to_torch(ours, theirs)
        x = rng.standard_normal((2, 6, 9, 9)).astype(np.float32)
        _compare_forward_backward(ours, theirs, x)
        for k, v in theirs.state_dict().items():
            assert rel_err(ours.state_dict()[k], v.numpy()) < 1e-5, k

    def test_batchnorm1d_on_features(self, rng):
        ours, theirs = nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)
        _compare_forward_backward(ours, theirs, rng.standard_normal((8, 5)).astype(np.float32))

    def test_dropout_module_respects_mode(self):
        d = nn.Dropout(0.5)
        x = nn.Tensor(np.ones(1000, np.float32))
        assert (d(x).numpy() == 0).any()
        assert (d.eval()(x).numpy() == 1).all()

    def test_batchnorm2d_rejects_2d_input(self):
        with pytest.raises(ValueError, match="4-D"):
            nn.BatchNorm2d(3)(nn.Tensor(np.ones((2, 3), np.float32)))

    def test_conv2d_rejects_bad_groups(self):
        with pytest.raises(ValueError, match="groups"):
            nn.Conv2d(3, 4, 3, groups=2)


class TestTrainingConverges:
    def test_small_cnn_fits_a_batch(self):
        nn.manual_seed(0)
        rng = np.random.default_rng(0)
        from fastconv import optim
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
        opt = optim.Adam(model.parameters(), lr=0.05)
        x = nn.Tensor(rng.standard_normal((12, 1, 8, 8)).astype(np.float32))
        y = np.arange(12) % 3
        first = None
        for _ in range(40):
            loss = F.cross_entropy(model(x), y)
            first = first if first is not None else loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.1 * first
