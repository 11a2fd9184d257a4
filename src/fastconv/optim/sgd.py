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

    def _state_keys(self, group):
        return ("momentum_buffer",) if group["momentum"] else ()

    def step(self):
        """Update every parameter that has a gradient."""
        for index, group in enumerate(self.param_groups):
            fg = self._flat(index, group)
            if fg is not None and fg.all_grads(group["params"]) and \
                    (not group["momentum"] or "momentum_buffer" in fg.state):
                self._step_flat(fg, group)
            else:
                self._step_each(group)

    def _step_each(self, group):
        lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov = group["weight_decay"], group["nesterov"]
        for p in self._active(group):
            d = p.grad.astype(p.dtype, copy=False)
            if wd:
                d = d + wd * p.data
            if mom:
                st = self.state.get(p)
                if st is None:
                    self.state[p] = {"momentum_buffer": np.array(d, dtype=p.dtype)}
                    buf = self.state[p]["momentum_buffer"]
                else:
                    buf = st["momentum_buffer"]
                    buf *= mom
                    buf += (1 - damp) * d
                d = d + mom * buf if nesterov else buf
            # In place: views of p.data (or of a shared buffer) see the update.
            p.data -= (lr * d).astype(p.dtype, copy=False)

    def _step_flat(self, fg, group):
        """The same update on the group's flat arrays, chunk by chunk, with the
        same operations in the same order (so the same rounding)."""
        lr, mom, damp = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov = group["weight_decay"], group["nesterov"]
        first = fg.adopt_state(group["params"], self.state) if mom else []
        buf_all = fg.state.get("momentum_buffer")
        t1, t2 = fg.scratch
        for c in fg.chunks():
            n = c.stop - c.start
            p, g = fg.p[c], fg.g[c]
            d = g
            if wd:
                d = np.multiply(p, wd, out=t1[:n])
                d += g
            if mom:
                buf = buf_all[c]
                buf *= mom
                if damp:
                    buf += np.multiply(d, 1 - damp, out=t2[:n])
                else:
                    buf += d
                for sl in first:   # a parameter's first step: buf = d
                    a, b = max(sl.start, c.start), min(sl.stop, c.stop)
                    if a < b:
                        buf[a - c.start:b - c.start] = d[a - c.start:b - c.start]
                if nesterov:
                    d = _add_scaled(d, buf, mom, t2[:n])
                else:
                    d = buf
            p -= np.multiply(d, lr, out=t2[:n])


def _add_scaled(d, buf, mom, out):
    """d + mom * buf into ``out`` (which may be neither input's memory but may hold d)."""
    np.multiply(buf, mom, out=out)
    out += d
    return out
