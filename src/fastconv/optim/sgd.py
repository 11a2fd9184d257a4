"""Stochastic gradient descent with momentum, as ``torch.optim.SGD``."""
import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD with optional momentum (heavy ball or Nesterov) and L2 weight decay.

    Per step, with g the gradient (plus ``weight_decay * p``)::

        buf = g                                  (first step)
        buf = momentum * buf + (1 - dampening) * g
        p  -= lr * (g + momentum * buf if nesterov else buf)

    Parameters
    ----------
    params : iterable of Parameter or of dict
    lr : float
    momentum, dampening, weight_decay : float
    nesterov : bool
        Needs momentum > 0 and dampening 0.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn, optim
    >>> w = nn.Parameter(np.array([1.0]))
    >>> opt = optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.numpy()
    array([0.8])
    """

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self):
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in self._active(group):
                d = p.grad.astype(p.dtype, copy=False)
                if wd:
                    d = d + wd * p.data
                if mom:
                    buf = self.state.get(p)
                    if buf is None:
                        buf = self.state[p] = np.array(d, dtype=p.dtype)
                    else:
                        buf *= mom
                        buf += (1 - damp) * d
                    d = d + mom * buf if nesterov else buf
                # In place: views of p.data (or of a shared buffer) see the update.
                p.data -= (lr * d).astype(p.dtype, copy=False)
