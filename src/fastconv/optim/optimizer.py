"""The optimiser base class: parameter groups, per-parameter state, zero_grad."""
import numpy as np

from ..nn.tensor import Tensor


class Optimizer:
    """Base class: holds ``param_groups`` (dicts with 'params' and the
    hyper-parameters) and ``state`` (per-parameter buffers).

    ``params`` is an iterable of Parameters or of dicts, each dict a group
    with its own 'params' and any hyper-parameter overriding ``defaults``.
    Subclasses implement ``step``; parameters that are frozen
    (``requires_grad`` False) or have no gradient are skipped.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Parameters or of dicts, got a "
                            "single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a dict ``{'params': [...], **hyper-parameters}``."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"param group must be a dict with a 'params' key, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}] must be a Parameter (Tensor), got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"param group has unknown options {sorted(unknown)}; "
                             f"known: {sorted(self.defaults)}")
        g = dict(self.defaults)
        g.update(group)
        g["params"] = params
        self._check_group(g)
        self.param_groups.append(g)

    def _check_group(self, g):
        if not g["lr"] >= 0:
            raise ValueError(f"lr must be >= 0, got {g['lr']}")

    def zero_grad(self, set_to_none=True):
        """Clear every parameter's gradient (to None, as PyTorch's default)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad = np.zeros_like(p.grad)

    def _active(self, group):
        """The group's parameters that have a gradient to apply."""
        for p in group["params"]:
            if p.requires_grad and p.grad is not None:
                yield p

    def step(self):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.defaults.items())})"
