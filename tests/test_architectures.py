"""The classic architectures in fastconv.models against their reference definitions.

The reference layer lists below are transcribed from torchvision's
``models/{alexnet,vgg,resnet,googlenet,inception}.py`` and timm's
``models/{inception_v4,senet}.py`` (torchvision and timm are too heavy to
install for CI): every state-dict key, in registration order, with its shape.
The published parameter counts pin the transcription; the model must then
match the lists exactly, so the reference projects' weights load.
"""
import numpy as np
import pytest

from conftest import TOL, rel_err
from fastconv import models, nn
from fastconv.nn import functional as F

# torchvision / timm documentation (parameters, not buffers)
PUBLISHED = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "googlenet": 6_624_904, "googlenet_aux": 13_004_888,
    "inception_v3": 23_834_568, "inception_v3_aux": 27_161_264,
    "inception_v4": 42_679_816, "se_resnet50": 28_088_024,
}


# ---------------------------------------------------------------------------
# Reference layer lists: [(key, shape)] in registration order
# ---------------------------------------------------------------------------

def _pair(k):
    return (k, k) if isinstance(k, int) else tuple(k)


def conv(prefix, cin, cout, k, bias=True):
    out = [(f"{prefix}.weight", (cout, cin) + _pair(k))]
    return out + [(f"{prefix}.bias", (cout,))] if bias else out


def bn(prefix, c):
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


def linear(prefix, i, o):
    return [(f"{prefix}.weight", (o, i)), (f"{prefix}.bias", (o,))]


def cbr(prefix, cin, cout, k):
    """torchvision's BasicConv2d / timm's ConvNormAct: conv (no bias) + bn."""
    return conv(f"{prefix}.conv", cin, cout, k, bias=False) + bn(f"{prefix}.bn", cout)


def ref_alexnet(nc=1000, cin=3):
    return (conv("features.0", cin, 64, 11) + conv("features.3", 64, 192, 5) + conv("features.6", 192, 384, 3)
            + conv("features.8", 384, 256, 3) + conv("features.10", 256, 256, 3)
            + linear("classifier.1", 9216, 4096) + linear("classifier.4", 4096, 4096)
            + linear("classifier.6", 4096, nc))


VGG_CFGS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
CFG_TABLE = {  # torchvision's cfgs
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def ref_vgg_features(cfg, batch_norm, cin=3):
    out, i, c = [], 0, cin
    for v in cfg:
        if v == "M":
            i += 1
            continue
        out += conv(f"features.{i}", c, v, 3)
        if batch_norm:
            out += bn(f"features.{i + 1}", v)
        i += 3 if batch_norm else 2
        c = v
    return out


def ref_vgg_classifier(nc=1000):
    return linear("classifier.0", 25088, 4096) + linear("classifier.3", 4096, 4096) + linear("classifier.6", 4096, nc)


def ref_resnet(bottleneck, layers, nc=1000, cin=3):
    exp = 4 if bottleneck else 1
    out = conv("conv1", cin, 64, 7, bias=False) + bn("bn1", 64)
    inplanes = 64
    for s, n in enumerate(layers):
        planes, stride = 64 * 2 ** s, 1 if s == 0 else 2
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            if bottleneck:
                out += conv(f"{p}.conv1", inplanes, planes, 1, False) + bn(f"{p}.bn1", planes)
                out += conv(f"{p}.conv2", planes, planes, 3, False) + bn(f"{p}.bn2", planes)
                out += conv(f"{p}.conv3", planes, planes * 4, 1, False) + bn(f"{p}.bn3", planes * 4)
            else:
                out += conv(f"{p}.conv1", inplanes, planes, 3, False) + bn(f"{p}.bn1", planes)
                out += conv(f"{p}.conv2", planes, planes, 3, False) + bn(f"{p}.bn2", planes)
            if b == 0 and (stride != 1 or inplanes != planes * exp):
                out += conv(f"{p}.downsample.0", inplanes, planes * exp, 1, False) + bn(f"{p}.downsample.1", planes * exp)
            inplanes = planes * exp
    return out + linear("fc", 512 * exp, nc)


def ref_googlenet(aux, nc=1000):
    def inc(p, cin, c1, c3r, c3, c5r, c5, pp):
        return (cbr(f"{p}.branch1", cin, c1, 1) + cbr(f"{p}.branch2.0", cin, c3r, 1) + cbr(f"{p}.branch2.1", c3r, c3, 3)
                + cbr(f"{p}.branch3.0", cin, c5r, 1) + cbr(f"{p}.branch3.1", c5r, c5, 3) + cbr(f"{p}.branch4.1", cin, pp, 1))

    out = cbr("conv1", 3, 64, 7) + cbr("conv2", 64, 64, 1) + cbr("conv3", 64, 192, 3)
    out += inc("inception3a", 192, 64, 96, 128, 16, 32, 32) + inc("inception3b", 256, 128, 128, 192, 32, 96, 64)
    out += inc("inception4a", 480, 192, 96, 208, 16, 48, 64) + inc("inception4b", 512, 160, 112, 224, 24, 64, 64)
    out += inc("inception4c", 512, 128, 128, 256, 24, 64, 64) + inc("inception4d", 512, 112, 144, 288, 32, 64, 64)
    out += inc("inception4e", 528, 256, 160, 320, 32, 128, 128)
    out += inc("inception5a", 832, 256, 160, 320, 32, 128, 128) + inc("inception5b", 832, 384, 192, 384, 48, 128, 128)
    if aux:
        for name, cin in (("aux1", 512), ("aux2", 528)):
            out += cbr(f"{name}.conv", cin, 128, 1) + linear(f"{name}.fc1", 2048, 1024) + linear(f"{name}.fc2", 1024, nc)
    return out + linear("fc", 1024, nc)


def ref_inception3(aux, nc=1000):
    def a(p, cin, pf):
        return (cbr(f"{p}.branch1x1", cin, 64, 1) + cbr(f"{p}.branch5x5_1", cin, 48, 1) + cbr(f"{p}.branch5x5_2", 48, 64, 5)
                + cbr(f"{p}.branch3x3dbl_1", cin, 64, 1) + cbr(f"{p}.branch3x3dbl_2", 64, 96, 3)
                + cbr(f"{p}.branch3x3dbl_3", 96, 96, 3) + cbr(f"{p}.branch_pool", cin, pf, 1))

    def c(p, c7):
        return (cbr(f"{p}.branch1x1", 768, 192, 1) + cbr(f"{p}.branch7x7_1", 768, c7, 1)
                + cbr(f"{p}.branch7x7_2", c7, c7, (1, 7)) + cbr(f"{p}.branch7x7_3", c7, 192, (7, 1))
                + cbr(f"{p}.branch7x7dbl_1", 768, c7, 1) + cbr(f"{p}.branch7x7dbl_2", c7, c7, (7, 1))
                + cbr(f"{p}.branch7x7dbl_3", c7, c7, (1, 7)) + cbr(f"{p}.branch7x7dbl_4", c7, c7, (7, 1))
                + cbr(f"{p}.branch7x7dbl_5", c7, 192, (1, 7)) + cbr(f"{p}.branch_pool", 768, 192, 1))

    def e(p, cin):
        return (cbr(f"{p}.branch1x1", cin, 320, 1) + cbr(f"{p}.branch3x3_1", cin, 384, 1)
                + cbr(f"{p}.branch3x3_2a", 384, 384, (1, 3)) + cbr(f"{p}.branch3x3_2b", 384, 384, (3, 1))
                + cbr(f"{p}.branch3x3dbl_1", cin, 448, 1) + cbr(f"{p}.branch3x3dbl_2", 448, 384, 3)
                + cbr(f"{p}.branch3x3dbl_3a", 384, 384, (1, 3)) + cbr(f"{p}.branch3x3dbl_3b", 384, 384, (3, 1))
                + cbr(f"{p}.branch_pool", cin, 192, 1))

    out = (cbr("Conv2d_1a_3x3", 3, 32, 3) + cbr("Conv2d_2a_3x3", 32, 32, 3) + cbr("Conv2d_2b_3x3", 32, 64, 3)
           + cbr("Conv2d_3b_1x1", 64, 80, 1) + cbr("Conv2d_4a_3x3", 80, 192, 3))
    out += a("Mixed_5b", 192, 32) + a("Mixed_5c", 256, 64) + a("Mixed_5d", 288, 64)
    out += (cbr("Mixed_6a.branch3x3", 288, 384, 3) + cbr("Mixed_6a.branch3x3dbl_1", 288, 64, 1)
            + cbr("Mixed_6a.branch3x3dbl_2", 64, 96, 3) + cbr("Mixed_6a.branch3x3dbl_3", 96, 96, 3))
    out += c("Mixed_6b", 128) + c("Mixed_6c", 160) + c("Mixed_6d", 160) + c("Mixed_6e", 192)
    if aux:
        out += cbr("AuxLogits.conv0", 768, 128, 1) + cbr("AuxLogits.conv1", 128, 768, 5) + linear("AuxLogits.fc", 768, nc)
    out += (cbr("Mixed_7a.branch3x3_1", 768, 192, 1) + cbr("Mixed_7a.branch3x3_2", 192, 320, 3)
            + cbr("Mixed_7a.branch7x7x3_1", 768, 192, 1) + cbr("Mixed_7a.branch7x7x3_2", 192, 192, (1, 7))
            + cbr("Mixed_7a.branch7x7x3_3", 192, 192, (7, 1)) + cbr("Mixed_7a.branch7x7x3_4", 192, 192, 3))
    out += e("Mixed_7b", 1280) + e("Mixed_7c", 2048)
    return out + linear("fc", 2048, nc)


def ref_inception_v4(nc=1000):
    def seq(p, specs):
        return sum((cbr(f"{p}.{i}", *s) for i, s in enumerate(specs)), [])

    f = "features"
    out = cbr(f"{f}.0", 3, 32, 3) + cbr(f"{f}.1", 32, 32, 3) + cbr(f"{f}.2", 32, 64, 3)
    out += cbr(f"{f}.3.conv", 64, 96, 3)
    out += seq(f"{f}.4.branch0", [(160, 64, 1), (64, 96, 3)])
    out += seq(f"{f}.4.branch1", [(160, 64, 1), (64, 64, (1, 7)), (64, 64, (7, 1)), (64, 96, 3)])
    out += cbr(f"{f}.5.conv", 192, 192, 3)
    for i in range(6, 10):
        p = f"{f}.{i}"
        out += (cbr(f"{p}.branch0", 384, 96, 1) + seq(f"{p}.branch1", [(384, 64, 1), (64, 96, 3)])
                + seq(f"{p}.branch2", [(384, 64, 1), (64, 96, 3), (96, 96, 3)]) + cbr(f"{p}.branch3.1", 384, 96, 1))
    out += cbr(f"{f}.10.branch0", 384, 384, 3) + seq(f"{f}.10.branch1", [(384, 192, 1), (192, 224, 3), (224, 256, 3)])
    for i in range(11, 18):
        p = f"{f}.{i}"
        out += (cbr(f"{p}.branch0", 1024, 384, 1)
                + seq(f"{p}.branch1", [(1024, 192, 1), (192, 224, (1, 7)), (224, 256, (7, 1))])
                + seq(f"{p}.branch2", [(1024, 192, 1), (192, 192, (7, 1)), (192, 224, (1, 7)), (224, 224, (7, 1)),
                                        (224, 256, (1, 7))])
                + cbr(f"{p}.branch3.1", 1024, 128, 1))
    out += seq(f"{f}.18.branch0", [(1024, 192, 1), (192, 192, 3)])
    out += seq(f"{f}.18.branch1", [(1024, 256, 1), (256, 256, (1, 7)), (256, 320, (7, 1)), (320, 320, 3)])
    for i in range(19, 22):
        p = f"{f}.{i}"
        out += (cbr(f"{p}.branch0", 1536, 256, 1) + cbr(f"{p}.branch1_0", 1536, 384, 1)
                + cbr(f"{p}.branch1_1a", 384, 256, (1, 3)) + cbr(f"{p}.branch1_1b", 384, 256, (3, 1))
                + cbr(f"{p}.branch2_0", 1536, 384, 1) + cbr(f"{p}.branch2_1", 384, 448, (3, 1))
                + cbr(f"{p}.branch2_2", 448, 512, (1, 3)) + cbr(f"{p}.branch2_3a", 512, 256, (1, 3))
                + cbr(f"{p}.branch2_3b", 512, 256, (3, 1)) + cbr(f"{p}.branch3.1", 1536, 256, 1))
    return out + linear("last_linear", 1536, nc)


def ref_se_resnet50(nc=1000):
    out = conv("layer0.conv1", 3, 64, 7, bias=False) + bn("layer0.bn1", 64)
    inplanes = 64
    for s, n in enumerate([3, 4, 6, 3]):
        planes = 64 * 2 ** s
        for b in range(n):
            p = f"layer{s + 1}.{b}"
            out += conv(f"{p}.conv1", inplanes, planes, 1, False) + bn(f"{p}.bn1", planes)
            out += conv(f"{p}.conv2", planes, planes, 3, False) + bn(f"{p}.bn2", planes)
            out += conv(f"{p}.conv3", planes, planes * 4, 1, False) + bn(f"{p}.bn3", planes * 4)
            out += conv(f"{p}.se_module.fc1", planes * 4, planes * 4 // 16, 1)
            out += conv(f"{p}.se_module.fc2", planes * 4 // 16, planes * 4, 1)
            if b == 0:
                out += conv(f"{p}.downsample.0", inplanes, planes * 4, 1, False) + bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    return out + linear("last_linear", 2048, nc)


def n_params(ref):
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(int(np.prod(s)) for k, s in ref if not k.endswith(buffers))


def state_shapes(model):
    return [(k, tuple(np.shape(v))) for k, v in model.state_dict().items()]


# name -> (factory call, reference list, published-count key)
ARCHS = {
    "alexnet": (lambda: models.alexnet(), lambda: ref_alexnet(), "alexnet"),
    "vgg16": (lambda: models.vgg16(), lambda: ref_vgg_features(CFG_TABLE["D"], False) + ref_vgg_classifier(), "vgg16"),
    "resnet18": (lambda: models.resnet18(), lambda: ref_resnet(False, [2, 2, 2, 2]), "resnet18"),
    "resnet34": (lambda: models.resnet34(), lambda: ref_resnet(False, [3, 4, 6, 3]), "resnet34"),
    "resnet50": (lambda: models.resnet50(), lambda: ref_resnet(True, [3, 4, 6, 3]), "resnet50"),
    "resnet101": (lambda: models.resnet101(), lambda: ref_resnet(True, [3, 4, 23, 3]), "resnet101"),
    "googlenet": (lambda: models.googlenet(), lambda: ref_googlenet(False), "googlenet"),
    "googlenet_aux": (lambda: models.googlenet(aux_logits=True), lambda: ref_googlenet(True), "googlenet_aux"),
    "inception_v3": (lambda: models.inception_v3(), lambda: ref_inception3(False), "inception_v3"),
    "inception_v3_aux": (lambda: models.inception_v3(aux_logits=True), lambda: ref_inception3(True), "inception_v3_aux"),
    "inception_v4": (lambda: models.inception_v4(), lambda: ref_inception_v4(), "inception_v4"),
    "se_resnet50": (lambda: models.se_resnet50(), lambda: ref_se_resnet50(), "se_resnet50"),
}


class TestReferenceLayout:
    @pytest.mark.parametrize("name", list(ARCHS))
    def test_reference_list_has_the_published_parameter_count(self, name):
        _, ref, key = ARCHS[name]
        assert n_params(ref()) == PUBLISHED[key]

    @pytest.mark.parametrize("name", list(ARCHS))
    def test_state_dict_keys_order_and_shapes_match_the_reference(self, name):
        make, ref, key = ARCHS[name]
        model = make()
        assert state_shapes(model) == ref()
        assert sum(p.data.size for p in model.parameters()) == PUBLISHED[key]

    @pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
    @pytest.mark.parametrize("depth", sorted(VGG_CFGS))
    def test_vgg_features_match_and_totals_are_published(self, depth, batch_norm):
        # Building all eight 133-144M-parameter VGGs is slow; the classifier
        # is shared, so check each feature stack and add the classifier's count.
        from fastconv.models.vgg import CFGS, make_layers
        feats = make_layers(CFGS[VGG_CFGS[depth]], batch_norm=batch_norm)
        ref = ref_vgg_features(CFG_TABLE[VGG_CFGS[depth]], batch_norm)
        assert [("features." + k, s) for k, s in state_shapes(feats)] == ref
        name = depth + ("_bn" if batch_norm else "")
        assert n_params(ref + ref_vgg_classifier()) == PUBLISHED[name]

    @pytest.mark.parametrize("factory", ["alexnet", "resnet18", "googlenet", "inception_v3", "inception_v4",
                                         "se_resnet50"])
    def test_num_classes_and_in_channels_shape_the_ends(self, factory):
        model = getattr(models, factory)(num_classes=7, in_channels=1)
        shapes = state_shapes(model)
        assert shapes[0][1][:2][1] == 1  # first conv reads one channel
        assert shapes[-1][1] == (7,) and shapes[-2][1][0] == 7

    @pytest.mark.parametrize("bad, exc", [(0, ValueError), (2.5, TypeError), (True, TypeError)])
    def test_bad_num_classes_is_rejected(self, bad, exc):
        with pytest.raises(exc, match="num_classes"):
            models.resnet18(num_classes=bad)

    def test_batch_norm_eps_follows_the_reference(self):
        assert models.googlenet().conv1.bn.eps == pytest.approx(1e-3)
        assert models.inception_v3().Mixed_5b.branch1x1.bn.eps == pytest.approx(1e-3)
        assert models.inception_v4().features[0].bn.eps == pytest.approx(1e-3)
        assert models.resnet18().bn1.eps == pytest.approx(1e-5)

    def test_ceil_mode_pools_follow_the_reference(self):
        g = models.googlenet()
        assert all(m.ceil_mode for m in (g.maxpool1, g.maxpool2, g.maxpool3, g.maxpool4))
        assert models.se_resnet50().pool0.ceil_mode
        assert not models.resnet18().maxpool.ceil_mode


# ---------------------------------------------------------------------------
# Forward shapes (reduced inputs where the adaptive pools allow) and training
# ---------------------------------------------------------------------------

def _x(shape, seed=0):
    return nn.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


SMALL_INPUTS = {  # smallest sizes the strides allow: the standard 224/299 sizes give the same layer graph
    "alexnet": 63, "resnet18": 64, "resnet50": 64, "googlenet": 64, "inception_v3": 75,
    "inception_v4": 75, "se_resnet50": 64,
}


class TestForward:
    @pytest.mark.parametrize("name", list(SMALL_INPUTS))
    def test_eval_output_shape(self, name):
        nn.manual_seed(0)
        model = getattr(models, name)(num_classes=5).eval()
        with nn.no_grad():
            y = model(_x((1, 3, SMALL_INPUTS[name], SMALL_INPUTS[name])))
        assert y.shape == (1, 5)
        assert np.isfinite(y.numpy()).all()

    def test_vgg_block_stack_halves_the_size_per_pool(self):
        from fastconv.models.vgg import make_layers
        feats = make_layers([8, "M", 16, "M"], in_channels=3).eval()
        with nn.no_grad():
            assert feats(_x((1, 3, 32, 32))).shape == (1, 16, 8, 8)

    def test_googlenet_returns_aux_outputs_in_training(self):
        nn.manual_seed(0)
        model = models.googlenet(num_classes=4, aux_logits=True).train()
        out = model(_x((2, 3, 64, 64)))
        assert type(out).__name__ == "GoogLeNetOutputs"
        assert [o.shape for o in out] == [(2, 4)] * 3
        with nn.no_grad():
            assert model.eval()(_x((2, 3, 64, 64))).shape == (2, 4)

    def test_se_module_gates_each_channel_between_zero_and_one(self):
        from fastconv.models.senet import SEModule
        se = SEModule(32, reduction=8)
        x = _x((2, 32, 5, 7))
        with nn.no_grad():
            ratio = se(x).numpy() / x.numpy()
        assert ratio.shape == (2, 32, 5, 7)
        assert np.allclose(ratio, ratio[:, :, :1, :1], atol=1e-5)  # one gate per channel
        assert ((ratio > 0) & (ratio < 1)).all()

    @pytest.mark.parametrize("name", ["resnet18", "se_block_net"])
    def test_one_training_step_lowers_the_loss_on_its_batch(self, name):
        from fastconv import optim
        from fastconv.models.senet import SEModule
        nn.manual_seed(0)
        if name == "resnet18":
            model = models.resnet18(num_classes=3)
        else:  # the SE block dropped into a plain conv net, as "usable anywhere" promises
            model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), SEModule(16, 4),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3))
        model.train()
        x, y = _x((4, 3, 32, 32)), nn.Tensor(np.array([0, 1, 2, 0]))
        opt = optim.SGD(model.parameters(), lr=1e-3)
        before = {k: np.array(v) for k, v in model.state_dict().items()}
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        after = model.state_dict()
        assert all(not np.array_equal(before[k], after[k]) for k in before if k.endswith("weight"))
        with nn.no_grad():
            # BN in training mode uses batch statistics, so compare in the same mode.
            assert float(F.cross_entropy(model(x), y).numpy()) < float(loss.numpy())


# ---------------------------------------------------------------------------
# Output parity with torch on the same weights
# ---------------------------------------------------------------------------

def _torch_resnet18(torch, num_classes):
    """torchvision's resnet18, transcribed (BasicBlock, v1 layout): the benchmarks' torch peer."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "_torch_nets.py"
    spec = importlib.util.spec_from_file_location("_torch_nets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.torch_resnet(torch, "resnet18", num_classes)


def _randomise_bn_stats(torch, net, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


class TestTorchParity:
    @pytest.mark.parametrize("mode", ["eval", "train"])
    def test_resnet18_matches_torch_on_the_same_weights(self, mode):
        torch = pytest.importorskip("torch")
        torch.manual_seed(0)
        ref = _torch_resnet18(torch, 10)
        with torch.no_grad():
            _randomise_bn_stats(torch, ref)
        ours = models.resnet18(num_classes=10)
        ours.load_state_dict({k: v.detach().numpy().copy() for k, v in ref.state_dict().items()})
        getattr(ref, mode)(), getattr(ours, mode)()
        x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)
        with torch.no_grad():
            expected = ref(torch.from_numpy(x)).numpy()
        with nn.no_grad():
            got = ours(nn.Tensor(x)).numpy()
        assert got.dtype == np.float32
        assert rel_err(got, expected) < TOL[np.dtype(np.float32)]
        if mode == "train":  # batch statistics update the running buffers the same way
            assert rel_err(ours.bn1.running_var.data if hasattr(ours.bn1.running_var, "data")
                           else ours.bn1.running_var, ref.bn1.running_var.numpy()) < 1e-5

    def test_vgg_block_stack_matches_torch(self):
        torch = pytest.importorskip("torch")
        from fastconv.models.vgg import CFGS, make_layers
        cfg = CFGS["D"][:7]  # two VGG16 blocks: 64, 64, M, 128, 128, M, 256
        torch.manual_seed(0)
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
                c = v
        ref = torch.nn.Sequential(*layers).eval()
        ours = make_layers(cfg).eval()
        ours.load_state_dict({k: v.detach().numpy().copy() for k, v in ref.state_dict().items()})
        x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
        with torch.no_grad():
            expected = ref(torch.from_numpy(x)).numpy()
        with nn.no_grad():
            got = ours(nn.Tensor(x)).numpy()
        assert got.shape == (2, 256, 8, 8)
        assert rel_err(got, expected) < TOL[np.dtype(np.float32)]

    def test_inception_v4_blocks_match_torch_avg_pool_without_padding_counts(self):
        torch = pytest.importorskip("torch")
        from fastconv.models.inception_v4 import AvgPoolBranch
        x = np.random.default_rng(5).standard_normal((1, 3, 6, 6)).astype(np.float32)
        expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 1, 1, count_include_pad=False).numpy()
        with nn.no_grad():
            got = AvgPoolBranch()(nn.Tensor(x)).numpy()
        assert rel_err(got, expected) < TOL[np.dtype(np.float32)]
