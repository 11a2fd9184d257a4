"""Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient)."""
import math

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam with bias correction.

    Per step t, with g the gradient (plus ``weight_decay * p``)::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p -= lr / (1 - beta1**t) * m / (sqrt(v / (1 - beta2**t)) + eps)

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn, optim
    >>> w = nn.Parameter(np.array([1.0]))
    >>> opt = optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.numpy().round(6)
    array([0.9])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _state_keys(self, group):
        return ("exp_avg", "exp_avg_sq")

    def step(self):
        """Update every parameter that has a gradient."""
        for index, group in enumerate(self.param_groups):
            fg = self._flat(index, group)
            params = group["params"]
            steps = {self.state[p]["step"] if p in self.state else 0 for p in params}
            if fg is not None and fg.all_grads(params) and len(steps) == 1:
                self._step_flat(fg, group, steps.pop() + 1)
            else:
                self._step_each(group)

    def _step_each(self, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        for p in self._active(group):
            g = p.grad.astype(p.dtype, copy=False)
            if wd:
                g = g + wd * p.data
            st = self.state.get(p)
            if st is None:
                st = self.state[p] = {"step": 0, "exp_avg": np.zeros_like(p.data),
                                      "exp_avg_sq": np.zeros_like(p.data)}
            st["step"] += 1
            t = st["step"]
            m, v = st["exp_avg"], st["exp_avg_sq"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps
            p.data -= ((lr / (1 - b1 ** t)) * m / denom).astype(p.dtype, copy=False)

    def _step_flat(self, fg, group, t):
        """The same update on the group's flat arrays, chunk by chunk, operation for operation."""
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        fg.adopt_state(group["params"], self.state)   # fresh state arrays start at zero
        for p in group["params"]:
            self.state[p]["step"] = t
        t1, t2 = fg.scratch
        bias2, step = math.sqrt(1 - b2 ** t), lr / (1 - b1 ** t)
        for c in fg.chunks():
            n = c.stop - c.start
            p, g, m, v = fg.p[c], fg.g[c], fg.state["exp_avg"][c], fg.state["exp_avg_sq"][c]
            if wd:
                g = np.multiply(p, wd, out=t2[:n])
                g += fg.g[c]
            m *= b1
            m += np.multiply(g, 1 - b1, out=t1[:n])
            v *= b2
            u = np.multiply(g, 1 - b2, out=t1[:n])
            u *= g
            v += u
            denom = np.sqrt(v, out=t1[:n])
            denom /= bias2
            denom += eps
            upd = np.multiply(m, step, out=t2[:n])
            upd /= denom
            p -= upd
