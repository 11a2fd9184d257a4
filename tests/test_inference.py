"""fastconv.nn.inference: the compiled network gives the eager network's outputs, fused and planned."""
import tracemalloc

import numpy as np
import pytest

from conftest import unfused_epilogue
from fastconv import models, nn
from fastconv.nn import functional as F
from fastconv.nn.inference import Epilogue, apply_epilogue


def _randomise_bn(model, seed=1):
    """Running statistics and affine parameters away from 0/1, so folding them is tested."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            n = m.num_features
            m.running_mean.data[...] = rng.normal(size=n) * 0.1
            m.running_var.data[...] = rng.uniform(0.5, 2.0, size=n)
            m.weight.data[...] = rng.uniform(0.5, 1.5, size=n)
            m.bias.data[...] = rng.normal(size=n) * 0.1
    return model


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _eager(model, x):
    with nn.no_grad():
        return model.eval()(nn.Tensor(x)).numpy()


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


#: One model of every family in fastconv.models, at the smallest input its strides allow.
MODELS = {
    "lenet5": (lambda: models.LeNet5(), (2, 1, 28, 28)),
    "mnistcnn": (lambda: models.MnistCNN(batch_norm=True), (2, 1, 28, 28)),
    "alexnet": (lambda: models.alexnet(num_classes=5), (1, 3, 63, 63)),
    "vgg11_bn": (lambda: models.vgg11_bn(num_classes=5), (1, 3, 32, 32)),
    "resnet18": (lambda: models.resnet18(num_classes=5), (2, 3, 64, 64)),
    "resnet50": (lambda: models.resnet50(num_classes=5), (1, 3, 64, 64)),
    "googlenet": (lambda: models.googlenet(num_classes=5), (1, 3, 64, 64)),
    "inception_v3": (lambda: models.inception_v3(num_classes=5), (1, 3, 75, 75)),
    "inception_v4": (lambda: models.inception_v4(num_classes=5), (1, 3, 75, 75)),
    "se_resnet50": (lambda: models.se_resnet50(num_classes=5), (1, 3, 64, 64)),
}


class TestInference:
    @pytest.mark.parametrize("name", list(MODELS))
    def test_every_model_family_matches_its_eager_run(self, name):
        nn.manual_seed(0)
        factory, shape = MODELS[name]
        model = _randomise_bn(factory()).eval()
        x = _x(shape)
        fast = nn.inference(model)
        assert _rel(fast(x).numpy(), _eager(model, x)) < 1e-5
        # the planned buffers are reused: a second input gives its own answer
        x2 = _x(shape, seed=1)
        assert _rel(fast(x2).numpy(), _eager(model, x2)) < 1e-5

    def test_winograd_layers_transform_their_filters_once_at_compile_time(self):
        from fastconv.backends import winograd as wg
        nn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, backend="winograd"), nn.ReLU(),
                              nn.Conv2d(16, 8, 3, padding=1, backend="winograd")).eval()
        x = _x((2, 8, 12, 12))
        fast = nn.inference(model)
        fast(x)
        wg.clear_cache()
        got = fast(x).numpy()
        assert wg.cache_info() == {"hits": 0, "misses": 0, "size": 0}
        assert _rel(got, _eager(model, x)) < 1e-5

    def test_batch_norm_is_folded_and_the_residual_add_and_relu_are_epilogues(self):
        nn.manual_seed(0)
        model = _randomise_bn(models.resnet18(num_classes=5)).eval()
        plan = nn.inference(model).plan(_x((1, 3, 64, 64)))
        ops = [s.describe() for s in plan.steps]
        assert ops.count("conv+bn+add+relu") == 8      # the second conv of every block
        assert ops.count("conv+bn+relu") == 9          # the stem and every first conv
        assert not any(s.kind in ("batchnorm", "relu", "add", "other", "module") for s in plan.steps)

    def test_explain_lists_each_layer_with_its_backend_and_epilogue(self):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
        text = nn.inference(model).explain((1, 3, 6, 6))
        first = text.splitlines()[1]
        assert "conv+bn+relu" in first and "+bias relu" in first and "/" in first
        assert "activation buffers" in text.splitlines()[-1]

    def test_user_module_that_reads_values_runs_unfused_and_right(self):
        class Halve(nn.Module):           # numpy behind the graph's back
            def forward(self, x):
                return nn.Tensor(x.numpy() * 0.5)

        class Branchy(nn.Module):         # data-dependent control flow
            def forward(self, x):
                return x * 2.0 if float(x.numpy().mean()) > 0 else x * -1.0

        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), Halve(), nn.ReLU(), Branchy(),
                              nn.Conv2d(4, 4, 3), nn.ReLU())
        fast = nn.inference(model)
        x = _x((2, 2, 8, 8))
        for sign in (1, -1):   # the branch taken differs from the traced one
            xs = np.abs(x) * sign
            assert _rel(fast(xs).numpy(), _eager(model, xs)) < 1e-5
        kinds = [s.kind for s in fast.plan(x).steps]
        assert kinds.count("module") == 2
        assert "unfused" in fast.explain(x)

    def test_user_module_built_from_library_ops_is_fused(self):
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
                self.bn = nn.BatchNorm2d(4)

            def forward(self, x):
                return F.relu(self.bn(self.conv(x)) + x)

        model = _randomise_bn(nn.Sequential(nn.Conv2d(3, 4, 1), Block(), Block())).eval()
        fast = nn.inference(model)
        x = _x((2, 3, 9, 9))
        assert _rel(fast(x).numpy(), _eager(model, x)) < 1e-5
        assert [s.describe() for s in fast.plan(x).steps][1:] == ["conv+bn+add+relu"] * 2

    def test_model_whose_forward_reads_values_runs_eagerly(self):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 2, 3)

            def forward(self, x):
                return self.conv(x) * float(np.abs(x.numpy()).max())

        model = Net()
        x = _x((1, 1, 6, 6))
        assert _rel(nn.inference(model)(x).numpy(), _eager(model, x)) < 1e-6

    def test_non_finite_input_takes_the_eager_path(self):
        model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
        x = _x((1, 1, 8, 8))
        x[0, 0, 3, 3] = np.nan
        got, want = nn.inference(model)(x).numpy(), _eager(model, x)
        assert np.array_equal(np.isnan(got), np.isnan(want))

    def test_input_is_left_unchanged_and_the_output_is_not_a_reused_buffer(self):
        model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
        fast = nn.inference(model)
        x = _x((1, 1, 8, 8))
        x0 = x.copy()
        a = fast(x).numpy()
        a0 = a.copy()
        fast(_x((1, 1, 8, 8), seed=3))
        assert np.array_equal(x, x0) and np.array_equal(a, a0)

    def test_float64_model_matches_at_float64_precision(self):
        model = _randomise_bn(nn.Sequential(nn.Conv2d(2, 3, 3, dtype=np.float64),
                                            nn.BatchNorm2d(3, dtype=np.float64), nn.ReLU())).eval()
        x = _x((2, 2, 7, 7), dtype=np.float64)
        assert _rel(nn.inference(model)(x).numpy(), _eager(model, x)) < 1e-10

    def test_training_mode_model_is_compiled_as_in_eval_and_keeps_its_mode(self):
        model = _randomise_bn(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Dropout(0.5)))
        model.train()
        y = nn.inference(model)(_x((2, 2, 7, 7))).numpy()
        assert model.training and model[1].training
        assert _rel(y, _eager(model, _x((2, 2, 7, 7)))) < 1e-5

    def test_steady_state_calls_allocate_no_activation(self):
        model = _randomise_bn(nn.Sequential(
            nn.Conv2d(8, 32, 3, padding=1, backend="im2col"), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, backend="im2col"), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(32, 64, 1, backend="im2col"), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))).eval()
        x = _x((4, 8, 32, 32))
        fast = nn.inference(model)
        fast(x)
        fast(x)
        one_activation = 4 * 32 * 32 * 32 * 4
        tracemalloc.start()
        try:
            fast(x)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # eager allocates ~6 activations; the plan allocates none of them
        assert peak < one_activation / 4

    def test_tune_measures_each_convolution_at_compile_time(self, tmp_path, monkeypatch):
        from fastconv import _select
        monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path / "cache"))
        _select.reset()
        try:
            model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 1))
            x = _x((2, 4, 12, 12))
            fast = nn.inference(model, tune=True)
            assert _rel(fast(x).numpy(), _eager(model, x)) < 1e-5
            assert len(_select._data()["entries"]) == 2
        finally:
            _select.reset()

    def test_rejects_what_is_not_a_module(self):
        with pytest.raises(TypeError, match="model must be a fastconv.nn.Module"):
            nn.inference(lambda x: x)

    def test_rejects_an_integer_input(self):
        with pytest.raises(TypeError, match="floating"):
            nn.inference(nn.ReLU())(np.zeros((1, 1, 2, 2), np.int32))


class TestEpilogue:
    def test_bias_residual_and_relu_in_that_order(self):
        rng = np.random.default_rng(0)
        y = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
        r = rng.standard_normal(y.shape).astype(np.float32)
        b = rng.standard_normal(3).astype(np.float32)
        want = np.maximum(y + r + b[:, None, None], 0)
        apply_epilogue(y, Epilogue(bias=b, residual=True, relu=True), r)
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)

    def test_describes_itself(self):
        assert str(Epilogue(bias=np.zeros(1), relu=True)) == "+bias relu"
        assert str(Epilogue()) == "-"

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    @pytest.mark.parametrize("backend,engine,geometry", [
        (b, e, g) for b in ("naive", "im2col", "fft", "winograd", "direct") for e in ("cython", "numba")
        for g in ("3x3", "strided 5x5", "grouped")
        if not (b == "winograd" and g == "strided 5x5") and not (b == "fft" and g == "strided 5x5")])
    def test_every_backend_applies_it_as_the_unfused_passes_do(self, backend, engine, geometry, dtype):
        from fastconv import _registry
        from fastconv._validation import conv2d_args
        rng = np.random.default_rng(1)
        xs, ws, stride, pad, groups = {"3x3": ((2, 6, 11, 13), (10, 6, 3, 3), 1, 1, 1),
                                       "strided 5x5": ((2, 3, 19, 17), (8, 3, 5, 5), 2, 2, 1),
                                       "grouped": ((2, 8, 9, 9), (12, 4, 3, 3), 1, 1, 2)}[geometry]
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        x, w, _, p, _ = conv2d_args(x, w, None, stride, pad, 1, groups)
        mod = _registry.backend_module(backend)
        if mod.unsupported(p) is not None:
            pytest.skip(mod.unsupported(p))
        bias = rng.standard_normal(p.K).astype(dtype)
        res = rng.standard_normal(p.out_shape).astype(dtype)
        for parts in [(bias, res, True), (None, res, False), (bias, None, False), (None, None, True)]:
            b, r, relu = parts
            want = unfused_epilogue(mod.conv2d(x, w, p, engine, 2), b, r, relu)
            got = mod.conv2d(x, w, p, engine, 2, out=np.full(p.out_shape, np.nan, dtype),
                             epilogue=parts)
            np.testing.assert_array_equal(got, want)
