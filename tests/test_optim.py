"""fastconv.optim: SGD and Adam trajectories against torch.optim (float64, a few
steps on a fixed quadratic-plus-tanh loss), parameter groups, frozen
parameters, and the learning-rate schedulers against torch's."""
import numpy as np
import pytest

from fastconv import nn, optim
from fastconv.optim import lr_scheduler

torch = pytest.importorskip("torch")


def _loss_ours(ps):
    a, b = ps
    return ((a * a).sum() + (a.tanh() * b).sum() * 3 + (b * b * b).sum())


def _loss_torch(ps):
    a, b = ps
    return (a * a).sum() + (torch.tanh(a) * b).sum() * 3 + (b * b * b).sum()


def _run(make_ours, make_theirs, steps=5, groups=False):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((3, 2)), rng.standard_normal((3, 2))]
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    if groups:
        ours = [{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.01}]
        theirs = [{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.01}]
    o, t = make_ours(ours), make_theirs(theirs)
    for _ in range(steps):
        o.zero_grad()
        t.zero_grad()
        op = [p for g in o.param_groups for p in g["params"]]
        tp = [p for g in t.param_groups for p in g["params"]]
        _loss_ours(op).backward()
        _loss_torch(tp).backward()
        o.step()
        t.step()
    for p, q in zip(op, tp):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "dampening-wd": dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
}

ADAM_CASES = {
    "default": dict(lr=0.01),
    "betas-wd": dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
}


class TestSGD:
    @pytest.mark.parametrize("case", list(SGD_CASES))
    def test_trajectory_matches_torch(self, case):
        kw = SGD_CASES[case]
        _run(lambda p: optim.SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw))

    def test_param_groups_have_their_own_lr(self):
        _run(lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
             lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), groups=True)

    def test_lr_is_writable(self):
        w = nn.Parameter(np.array([1.0]))
        opt = optim.SGD([w], lr=0.1)
        opt.param_groups[0]["lr"] = 0.5
        w.grad = np.array([1.0])
        opt.step()
        np.testing.assert_allclose(w.numpy(), [0.5])

    def test_frozen_and_gradless_parameters_are_skipped(self):
        a, b = nn.Parameter(np.array([1.0])), nn.Parameter(np.array([1.0]))
        opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
        a.grad = np.array([1.0])
        a.requires_grad = False
        opt.step()
        assert a.numpy()[0] == 1.0 and b.numpy()[0] == 1.0 and not opt.state

    def test_update_keeps_float32(self):
        w = nn.Parameter(np.ones(2, np.float32))
        opt = optim.SGD([w], lr=0.1, momentum=0.5, weight_decay=0.1)
        w.grad = np.ones(2, np.float32)
        opt.step()
        assert w.dtype == np.float32

    def test_rejects_bad_arguments(self):
        p = [nn.Parameter(np.zeros(1))]
        with pytest.raises(ValueError, match="lr"):
            optim.SGD(p, lr=-1)
        with pytest.raises(ValueError, match="nesterov"):
            optim.SGD(p, lr=0.1, nesterov=True)
        with pytest.raises(ValueError, match="empty"):
            optim.SGD([], lr=0.1)
        with pytest.raises(TypeError, match="params"):
            optim.SGD([np.zeros(1)], lr=0.1)
        with pytest.raises(ValueError, match="unknown"):
            optim.SGD([{"params": p, "lrr": 0.1}], lr=0.1)


class TestAdam:
    @pytest.mark.parametrize("case", list(ADAM_CASES))
    def test_trajectory_matches_torch(self, case):
        kw = ADAM_CASES[case]
        _run(lambda p: optim.Adam(p, **kw), lambda p: torch.optim.Adam(p, **kw), steps=8)

    def test_param_groups(self):
        _run(lambda p: optim.Adam(p, lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05), groups=True)

    def test_rejects_bad_betas(self):
        with pytest.raises(ValueError, match="betas"):
            optim.Adam([nn.Parameter(np.zeros(1))], betas=(1.0, 0.9))


def _net_pair(seed=0):
    """A small float32 CNN in fastconv and in torch with the same weights."""
    from fastconv import nn as fnn
    fnn.manual_seed(seed)
    # No conv bias before the batch norm: its true gradient is 0, and Adam would
    # amplify the rounding noise of two implementations into opposite steps.
    ours = fnn.Sequential(fnn.Conv2d(2, 4, 3, bias=False), fnn.BatchNorm2d(4), fnn.ReLU(), fnn.Flatten(),
                          fnn.Linear(4 * 4 * 4, 3))
    tn = torch.nn
    theirs = tn.Sequential(tn.Conv2d(2, 4, 3, bias=False), tn.BatchNorm2d(4), tn.ReLU(), tn.Flatten(),
                           tn.Linear(64, 3))
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def _train_both(make_ours, make_theirs, steps=4, between=None):
    from fastconv.nn import functional as F
    ours, theirs = _net_pair()
    o, t = make_ours(list(ours.parameters())), make_theirs(list(theirs.parameters()))
    rng = np.random.default_rng(1)
    for i in range(steps):
        x = rng.standard_normal((5, 2, 6, 6)).astype(np.float32)
        y = rng.integers(0, 3, 5)
        o.zero_grad()
        t.zero_grad()
        F.cross_entropy(ours(nn.Tensor(x)), y).backward()
        torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y)).backward()
        if between is not None:
            between(i, ours, theirs)
        o.step()
        t.step()
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    return ours, o


class TestFlatGroups:
    """The one-pass update over a group's flat buffers."""

    @pytest.mark.parametrize("case", list(SGD_CASES))
    def test_float32_network_follows_torch_sgd(self, case):
        kw = SGD_CASES[case]
        _train_both(lambda p: optim.SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw))

    @pytest.mark.parametrize("case", list(ADAM_CASES))
    def test_float32_network_follows_torch_adam(self, case):
        kw = ADAM_CASES[case]
        _train_both(lambda p: optim.Adam(p, **kw), lambda p: torch.optim.Adam(p, **kw))

    def test_parameters_become_views_of_one_buffer_and_gradients_land_in_kept_arrays(self):
        ours, opt = _train_both(lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                                lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), steps=2)
        params = list(ours.parameters())
        flat = opt._flats[0].p
        assert all(p.data.base is flat for p in params)
        grads = [p.grad for p in params]
        assert all(g is p._grad_buffer for g, p in zip(grads, params))

    def test_no_gradient_array_is_allocated_in_steady_state(self):
        import tracemalloc
        w = nn.Parameter(np.zeros(1 << 18, np.float32))
        opt = optim.SGD([w], lr=0.1, momentum=0.9)
        x = nn.Tensor(np.ones(1 << 18, np.float32))
        for _ in range(2):
            opt.zero_grad()
            (w * x).sum().backward()
            opt.step()
        opt.zero_grad()
        loss = (w * x).sum()
        tracemalloc.start()
        try:
            loss.backward()   # the product's gradient (1 MiB) is made; the leaf copies it
            during_backward = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            opt.step()
            during_step = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert during_backward < 2.5 * w.data.nbytes     # no third array for the leaf
        assert during_step < w.data.nbytes / 4           # chunked update, no whole-size temporaries

    def test_replaced_parameter_arrays_and_missing_gradients_stay_right(self):
        def meddle(i, ours, theirs):
            if i == 0:   # a load_state_dict gives every parameter a new array
                ours.load_state_dict(ours.state_dict())
            if i == 1:   # a parameter without a gradient: the group runs param by param
                next(ours.parameters()).grad = None
                next(theirs.parameters()).grad = None
        _train_both(lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), between=meddle)

    def test_zero_grad_without_none_zeroes_in_place(self):
        w = nn.Parameter(np.ones(3, np.float32))
        opt = optim.SGD([w], lr=0.1)
        (w * w).sum().backward()
        g = w.grad
        opt.zero_grad(set_to_none=False)
        assert w.grad is g and not g.any()


SCHEDULERS = {
    "step": (lambda o: lr_scheduler.StepLR(o, 3, gamma=0.5),
             lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.5)),
    "cosine": (lambda o: lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, eta_min=0.01)),
    "multistep": (lambda o: lr_scheduler.MultiStepLR(o, [2, 5], 0.3),
                  lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.3)),
    "exponential": (lambda o: lr_scheduler.ExponentialLR(o, 0.9),
                    lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
}


class TestLRSchedulers:
    @pytest.mark.parametrize("name", list(SCHEDULERS))
    def test_lrs_match_torch_per_group(self, name):
        make_ours, make_theirs = SCHEDULERS[name]
        o = optim.SGD([{"params": [nn.Parameter(np.zeros(1))]},
                       {"params": [nn.Parameter(np.zeros(1))], "lr": 0.3}], lr=0.1, momentum=0.9)
        t = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                             {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.3}],
                            lr=0.1, momentum=0.9)
        so, st = make_ours(o), make_theirs(t)
        for _ in range(10):
            np.testing.assert_allclose(so.get_last_lr(), st.get_last_lr(), rtol=1e-12)
            assert [g["lr"] for g in o.param_groups] == so.get_last_lr()
            o.step()
            t.step()
            so.step()
            st.step()

    def test_rejects_bad_step_size(self):
        o = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.1)
        with pytest.raises(ValueError, match="step_size"):
            lr_scheduler.StepLR(o, 0)
        with pytest.raises(TypeError, match="optimizer"):
            lr_scheduler.CosineAnnealingLR(object(), 5)
