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

    def step(self):
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
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
