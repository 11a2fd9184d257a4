"""The optimiser base class: parameter groups, per-parameter state, zero_grad.

Each parameter group's parameters, gradients and state arrays live in flat
buffers (:class:`FlatGroup`) from the first ``step`` on: every parameter's
``data`` becomes a view of the group's buffer, autograd writes its gradient
into a kept view of the group's gradient buffer (no fresh gradient array per
step), and ``step`` updates the whole group in one pass of a few numpy calls
per cache-sized chunk instead of a Python loop over the parameters.  Anything
that breaks the layout (a parameter given a new array, a gradient set by
hand, parameters without a gradient this step) is noticed at the next step,
which then runs parameter by parameter, as before, on the same state.
"""
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
        """Clear every parameter's gradient (to None, as PyTorch's default; or to zeros in place)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def _active(self, group):
        """The group's parameters that have a gradient to apply."""
        for p in group["params"]:
            if p.requires_grad and p.grad is not None:
                yield p

    def step(self):
        raise NotImplementedError

    def _flat(self, index, group):
        """The group's :class:`FlatGroup` when its parameters can share one (else None),
        built at the first step and rebuilt when a parameter's array was replaced."""
        if not hasattr(self, "_flats"):
            self._flats = {}
        params = group["params"]
        fg = self._flats.get(index)
        if fg is not None and fg.holds(params):
            return fg
        dtypes = {p.data.dtype for p in params}
        if not params or len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            self._flats.pop(index, None)
            return None
        fg = self._flats[index] = FlatGroup(params, self.state, self._state_keys(group))
        return fg

    def _state_keys(self, group):
        """Names of the per-parameter state arrays a subclass keeps in flat buffers."""
        return ()

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.defaults.items())})"


class FlatGroup:
    """One parameter group in flat arrays: ``p`` (the parameters' data), ``g``
    (their gradient buffers) and ``state[key]`` (each state array), plus the
    ``slices`` of each parameter and two chunk-sized scratch arrays.

    Building it copies each parameter into ``p`` and rebinds ``data`` to its
    view; gradients and existing state arrays are copied likewise.
    """

    #: Elements per chunk of the update: a few arrays of it stay in L2.
    CHUNK = 1 << 16

    def __init__(self, params, state, keys):
        dtype = params[0].data.dtype
        sizes = [p.data.size for p in params]
        ends = np.cumsum([0] + sizes)
        self.slices = [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]
        n = int(ends[-1])
        self.p, self.g = np.empty(n, dtype), np.zeros(n, dtype)
        self.state = {k: np.zeros(n, dtype) for k in keys}
        self.scratch = (np.empty(min(n, self.CHUNK), dtype), np.empty(min(n, self.CHUNK), dtype))
        self.views = []
        self.state_views = {k: [] for k in keys}
        for p, sl in zip(params, self.slices):
            view = self.p[sl].reshape(p.data.shape)
            view[...] = p.data
            p.data = view
            gview = self.g[sl].reshape(view.shape)
            if p.grad is not None and p.grad.shape == view.shape:
                gview[...] = p.grad
                p.grad = gview
            p._grad_buffer = gview
            self.views.append(view)
            for k in keys:
                self.state_views[k].append(self.state[k][sl].reshape(view.shape))
        self.adopt_state(params, state, create=False)

    def holds(self, params):
        """Whether ``params`` are still the arrays this group laid out."""
        return len(params) == len(self.views) and all(p.data is v for p, v in zip(params, self.views))

    def all_grads(self, params):
        """Whether every parameter is trainable and has this step's gradient in its buffer."""
        return all(p.requires_grad and p.grad is not None and p.grad is p._grad_buffer for p in params)

    def adopt_state(self, params, state, create=True):
        """Point every parameter's state arrays at the flat buffers (copying any kept
        elsewhere); return the slices of the parameters that had no state yet, for
        which ``create`` makes a dict of (zeroed) views."""
        fresh = []
        for i, p in enumerate(params):
            st = state.get(p)
            if st is None:
                if create:
                    for v in self.state_views.values():
                        v[i][...] = 0
                    state[p] = {k: v[i] for k, v in self.state_views.items()}
                    fresh.append(self.slices[i])
                continue
            for k, views in self.state_views.items():
                if st.get(k) is not views[i]:
                    views[i][...] = st[k]
                    st[k] = views[i]
        return fresh

    def chunks(self):
        """Slices of the flat arrays, CHUNK elements each."""
        n = self.p.size
        return (slice(a, min(a + self.CHUNK, n)) for a in range(0, n, self.CHUNK))
