"""Transfer learning: freeze a network, give it a new head, load weights.

``freeze``/``unfreeze`` switch ``requires_grad`` of every parameter of a
module; ``freeze_batchnorm`` keeps batch-norm statistics fixed while the rest
trains; ``replace_head`` swaps the classifier of any fastconv.models network
(``fc``, ``classifier[-1]``, ``last_linear``) for a fresh one;
``param_groups`` builds per-group learning rates for fastconv.optim.

``load_weights`` reads a fastconv ``.npz`` checkpoint, a PyTorch ``.pt`` /
``.pth`` state dict (through torch) or a Keras ``.h5`` / ``.weights.h5`` file
(through h5py), and says exactly which keys are missing, unexpected or of the
wrong shape.
"""
import os
import pathlib
import re

import numpy as np

from . import nn
from ._atomic import write_atomic

__all__ = ["freeze", "unfreeze", "freeze_batchnorm", "get_head", "replace_head", "param_groups",
           "load_weights", "read_weights", "save_weights", "check_state_dict", "LoadResult"]

# Heads in the order they are looked for: torchvision's ResNet/GoogLeNet/Inception3
# (fc), AlexNet/VGG/MNIST nets (classifier, a Sequential whose last layer is the
# head, or a Linear), timm's Inception-v4/SENet (last_linear).
_HEAD_NAMES = ("fc", "classifier", "last_linear", "head")

# Auxiliary classifiers whose last layer is replaced along with the main head.
_AUX_HEADS = (("AuxLogits", "fc"), ("aux1", "fc2"), ("aux2", "fc2"))


def _check_module(module, what):
    if not isinstance(module, nn.Module):
        raise TypeError(f"{what}: module must be a fastconv.nn.Module, got {type(module).__name__}")


def freeze(module):
    """Stop gradients for every parameter of ``module`` (``requires_grad=False``).

    Optimizers skip frozen parameters, so the module's weights stay as they
    are while the rest of the network trains.  Batch-norm running statistics
    are buffers, not parameters: keep them fixed with
    :func:`freeze_batchnorm` (or by training in ``eval()`` mode).

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    nn.Module
        ``module`` itself, for chaining.

    Examples
    --------
    >>> from fastconv import nn
    >>> from fastconv.transfer import freeze
    >>> layer = freeze(nn.Linear(3, 2))
    >>> [p.requires_grad for p in layer.parameters()]
    [False, False]
    """
    _check_module(module, "freeze")
    for p in module.parameters():
        p.requires_grad = False
    return module


def unfreeze(module):
    """Let every parameter of ``module`` receive gradients again.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    nn.Module
        ``module`` itself.

    Examples
    --------
    >>> from fastconv import nn
    >>> from fastconv.transfer import freeze, unfreeze
    >>> layer = unfreeze(freeze(nn.Linear(3, 2)))
    >>> all(p.requires_grad for p in layer.parameters())
    True
    """
    _check_module(module, "unfreeze")
    for p in module.parameters():
        p.requires_grad = True
    return module


def _is_batchnorm(m):
    bn_types = tuple(t for t in (getattr(nn, "BatchNorm1d", None), getattr(nn, "BatchNorm2d", None)) if t)
    return isinstance(m, bn_types) or type(m).__name__.startswith("BatchNorm")


def freeze_batchnorm(module):
    """Put every batch-norm layer inside ``module`` in eval mode.

    In eval mode batch norm normalises with its running statistics and stops
    updating them, so a pretrained body keeps the statistics of the data it
    learnt on while a new head trains on a few images.  Call it after every
    ``model.train()``, which switches them back.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    int
        How many batch-norm layers were switched.

    Examples
    --------
    >>> from fastconv import nn
    >>> from fastconv.transfer import freeze_batchnorm
    >>> body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).train()
    >>> freeze_batchnorm(body), body[1].training
    (1, False)
    """
    _check_module(module, "freeze_batchnorm")
    n = 0
    for m in module.modules():
        if _is_batchnorm(m):
            m.eval()
            n += 1
    return n


def _head_slot(model):
    """(owner, attribute or index, label) of the classifier layer."""
    for name in _HEAD_NAMES:
        head = getattr(model, name, None)
        if head is None:
            continue
        if isinstance(head, nn.Sequential):
            if len(head) == 0:
                continue
            return head, len(head) - 1, f"{name}[{len(head) - 1}]"
        if isinstance(head, nn.Linear):
            return model, name, name
    raise ValueError(f"replace_head: {type(model).__name__} has no classifier to replace: expected an "
                     f"attribute {', '.join(_HEAD_NAMES)} holding a Linear or a Sequential ending in one")


def get_head(model):
    """The classifier layer of a network (``fc``, ``classifier[-1]``, ``last_linear``).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    name : str
        Where it sits, e.g. ``'fc'`` or ``'classifier[6]'``.
    layer : nn.Linear

    Raises
    ------
    ValueError
        The model has no recognised head.

    Examples
    --------
    >>> from fastconv.models import vgg11
    >>> from fastconv.transfer import get_head
    >>> get_head(vgg11(num_classes=3))[0]
    'classifier[6]'
    """
    _check_module(model, "get_head")
    owner, slot, label = _head_slot(model)
    return label, owner[slot] if isinstance(slot, int) else getattr(owner, slot)


def _new_linear(old, num_classes):
    in_features = old.weight.shape[1]
    has_bias = getattr(old, "bias", None) is not None
    return nn.Linear(in_features, num_classes, bias=has_bias)


def replace_head(model, num_classes, aux=True):
    """Replace the classifier of ``model`` by a fresh Linear layer with ``num_classes`` outputs.

    Handles ``model.fc`` (ResNet, GoogLeNet, Inception3),
    ``model.classifier[-1]`` (AlexNet, VGG, the MNIST nets) or a Linear
    ``model.classifier``, and ``model.last_linear`` (Inception-v4, SENet).
    The new layer is trainable even when the rest of the model is frozen.

    Parameters
    ----------
    model : nn.Module
    num_classes : int
        Outputs of the new head.
    aux : bool
        Also replace the last layer of the auxiliary classifiers
        (Inception3's ``AuxLogits.fc``, GoogLeNet's ``aux1.fc2``/``aux2.fc2``)
        when the model has them.

    Returns
    -------
    nn.Linear
        The new head (pass its parameters to the optimizer).

    Examples
    --------
    >>> from fastconv.models import resnet18
    >>> from fastconv.transfer import freeze, replace_head
    >>> model = freeze(resnet18())
    >>> head = replace_head(model, 5)
    >>> model.fc is head, head.weight.shape, head.weight.requires_grad
    (True, (5, 512), True)
    """
    _check_module(model, "replace_head")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"replace_head: num_classes must be a positive int, got {type(num_classes).__name__}")
    if num_classes < 1:
        raise ValueError(f"replace_head: num_classes must be a positive int, got {num_classes}")
    owner, slot, _ = _head_slot(model)
    old = owner[slot] if isinstance(slot, int) else getattr(owner, slot)
    head = _new_linear(old, int(num_classes))
    if isinstance(slot, int):
        owner[slot] = head
    else:
        setattr(owner, slot, head)
    if aux:
        for parent_name, leaf in _AUX_HEADS:
            parent = getattr(model, parent_name, None)
            if isinstance(parent, nn.Module) and isinstance(getattr(parent, leaf, None), nn.Linear):
                setattr(parent, leaf, _new_linear(getattr(parent, leaf), int(num_classes)))
    return head


def param_groups(model, lr, head_lr=None, head=None):
    """Parameter groups with one learning rate for the body and one for the head.

    Frozen parameters are left out, so the groups can go straight to
    ``fastconv.optim.SGD`` or ``Adam``.

    Parameters
    ----------
    model : nn.Module
    lr : float
        Learning rate of the body (everything but the head).
    head_lr : float, optional
        Learning rate of the head; default ``lr``.
    head : nn.Module, optional
        The head; default :func:`get_head`'s.

    Returns
    -------
    list of dict
        ``[{'params': body, 'lr': lr}, {'params': head, 'lr': head_lr}]``,
        empty groups dropped.

    Examples
    --------
    >>> from fastconv.models import resnet18
    >>> from fastconv.transfer import param_groups
    >>> groups = param_groups(resnet18(num_classes=5), lr=1e-3, head_lr=1e-2)
    >>> [(g["lr"], len(g["params"])) for g in groups]
    [(0.001, 60), (0.01, 2)]
    """
    _check_module(model, "param_groups")
    for name, v in (("lr", lr), ("head_lr", head_lr)):
        if v is None and name == "head_lr":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not v >= 0:
            raise ValueError(f"param_groups: {name} must be a non-negative number, got {v!r}")
    head = get_head(model)[1] if head is None else head
    head_ids = {id(p) for p in head.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    top = [p for p in head.parameters() if p.requires_grad]
    groups = [{"params": body, "lr": float(lr)},
              {"params": top, "lr": float(lr if head_lr is None else head_lr)}]
    return [g for g in groups if g["params"]]


# =============================================================================
# Weight files
# =============================================================================

class LoadResult(tuple):
    """``(missing_keys, unexpected_keys)`` of a non-strict load, as PyTorch's."""

    def __new__(cls, missing, unexpected):
        return super().__new__(cls, (list(missing), list(unexpected)))

    @property
    def missing_keys(self):
        return self[0]

    @property
    def unexpected_keys(self):
        return self[1]

    def __repr__(self):
        return f"LoadResult(missing_keys={self[0]!r}, unexpected_keys={self[1]!r})"


def _model_state(model):
    return {k: np.asarray(v) for k, v in model.state_dict().items()}


def _short(keys, limit=12):
    keys = list(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_state_dict(model, state, strict=True, source="state dict"):
    """Compare a state dict with a model's and raise on any disagreement.

    Parameters
    ----------
    model : nn.Module
    state : mapping of str to array
    strict : bool
        Missing and unexpected keys are errors; otherwise only shapes are.
    source : str
        What to call ``state`` in the message (usually the file name).

    Returns
    -------
    LoadResult
        The missing and unexpected keys.

    Raises
    ------
    ValueError
        Listing every missing, unexpected (strict only) and mis-shaped key,
        each mis-shaped one with both shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.transfer import check_state_dict
    >>> check_state_dict(nn.Linear(3, 2), {"weight": np.zeros((2, 3)), "bias": np.zeros(2)})
    LoadResult(missing_keys=[], unexpected_keys=[])
    """
    own = _model_state(model)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshaped = [f"{k} (model {tuple(own[k].shape)}, {source} {tuple(np.shape(state[k]))})"
                 for k in own if k in state and tuple(np.shape(state[k])) != tuple(own[k].shape)]
    problems = []
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s): {_short(missing)}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_short(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped key(s): {_short(misshaped)}")
    if problems:
        raise ValueError(f"cannot load {source} into {type(model).__name__}: " + "; ".join(problems))
    return LoadResult(missing, unexpected)


def _format_of(path, fmt):
    formats = ("auto", "npz", "torch", "keras")
    if fmt not in formats:
        raise ValueError(f"format must be one of {', '.join(map(repr, formats))}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".pt", ".pth", ".bin")):
        return "torch"
    if name.endswith((".h5", ".hdf5", ".keras")):
        return "keras"
    raise ValueError(f"cannot tell the format of {str(path)!r} from its name: expected .npz, .pt/.pth or "
                     f".h5/.weights.h5, or pass format='npz', 'torch' or 'keras'")


def _read_npz(path):
    with np.load(path, allow_pickle=False) as z:
        # '__'-prefixed entries are checkpoint metadata (epoch, config), not tensors.
        return {k: z[k] for k in z.files if not k.startswith("__")}


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading {str(path)!r} needs PyTorch (pip install torch); or save the state "
                          f"dict as .npz: np.savez(path, **{{k: v.numpy() for k, v in sd.items()}})") from None
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    # Training checkpoints often wrap the state dict.
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__}, not a state dict: save "
                         f"model.state_dict() rather than the model")
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.detach().cpu().numpy()
        elif isinstance(v, np.ndarray):
            out[k] = v
    return out


# ---- Keras ------------------------------------------------------------------

def _natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _keras_layers(f):
    """[(layer name, [arrays])] of a Keras weight file, in creation order per kind."""
    import h5py

    root = f["model_weights"] if "model_weights" in f else f
    if "layer_names" in root.attrs:  # Keras 2 / tf.keras HDF5: the order is recorded
        layers = []
        for lname in root.attrs["layer_names"]:
            lname = lname.decode() if isinstance(lname, bytes) else str(lname)
            g = root[lname]
            wnames = [w.decode() if isinstance(w, bytes) else str(w) for w in g.attrs.get("weight_names", [])]
            if wnames:
                layers.append((lname, [np.asarray(g[w]) for w in wnames]))
        return layers
    if "layers" not in f:
        raise ValueError("not a Keras weight file: no 'layers' group (Keras 3) and no 'layer_names' "
                         "attribute (Keras 2)")
    layers = []

    def walk(group, prefix):
        # h5py lists names alphabetically (conv2d_10 before conv2d_2); Keras
        # numbers layers in creation order, so a natural sort restores it.
        for name in sorted(group.keys(), key=_natural_key):
            g = group[name]
            if not isinstance(g, h5py.Group):
                continue
            if "vars" in g and len(g["vars"]):
                v = g["vars"]
                arrays = [np.asarray(v[i]) for i in sorted(v.keys(), key=int)]
                layers.append((g["vars"].attrs.get("name", prefix + name), arrays))
            if "layers" in g:
                walk(g["layers"], prefix + name + "/")

    walk(f["layers"], "")
    return layers


def _kind_of_arrays(arrays):
    w = arrays[0]
    if w.ndim == 4:
        return "conv"
    if w.ndim == 2:
        return "linear"
    if w.ndim == 1 and len(arrays) == 4:
        return "bn"
    return "other"


def _kind_of_prefix(params):
    w = params.get("weight")
    if "running_mean" in params:
        return "bn"
    if w is not None and w.ndim == 4:
        return "conv"
    if w is not None and w.ndim == 2:
        return "linear"
    return "other"


def _keras_to_state(model, layers, source, flatten_hw=None):
    own = _model_state(model)
    prefixes = {}
    for k, v in own.items():
        prefix, _, leaf = k.rpartition(".")
        prefixes.setdefault(prefix, {})[leaf] = v
    by_kind = {}
    for prefix, params in prefixes.items():
        by_kind.setdefault(_kind_of_prefix(params), []).append(prefix)
    file_kind = {}
    for lname, arrays in layers:
        file_kind.setdefault(_kind_of_arrays(arrays), []).append((lname, arrays))
    problems = []
    for kind in ("conv", "linear", "bn"):
        a, b = by_kind.get(kind, []), file_kind.get(kind, [])
        if len(a) != len(b):
            problems.append(f"{len(a)} {kind} layer(s) in the model ({_short(a, 6)}) but {len(b)} in the "
                            f"file ({_short([n for n, _ in b], 6)})")
    if problems:
        raise ValueError(f"cannot match the Keras layers of {source} to {type(model).__name__}: "
                         + "; ".join(problems))
    state = {}
    order = list(prefixes)  # module order: tells which linear comes first after the convolutions
    last_conv_out = None
    assigned = {}
    for kind in ("conv", "linear", "bn"):
        for prefix, (lname, arrays) in zip(by_kind.get(kind, []), file_kind.get(kind, [])):
            assigned[prefix] = (lname, arrays)
    for prefix in order:
        if prefix not in assigned:
            continue
        lname, arrays = assigned[prefix]
        kind = _kind_of_prefix(prefixes[prefix])
        key = (prefix + ".") if prefix else ""
        if kind == "conv":
            state[key + "weight"] = np.ascontiguousarray(arrays[0].transpose(3, 2, 0, 1))  # HWIO -> OIHW
            if len(arrays) > 1:
                state[key + "bias"] = arrays[1]
            last_conv_out = arrays[0].shape[3]
        elif kind == "linear":
            w = arrays[0]
            n_in = w.shape[0]
            if last_conv_out and n_in % last_conv_out == 0 and n_in > last_conv_out:
                # Keras flattens NHWC maps in (h, w, c) order, fastconv NCHW in
                # (c, h, w): reorder the rows of the first dense after the convs.
                hw = n_in // last_conv_out
                h, wd = flatten_hw if flatten_hw else (int(round(hw ** 0.5)),) * 2
                if h * wd == hw:
                    w = w.reshape(h, wd, last_conv_out, -1).transpose(2, 0, 1, 3).reshape(n_in, -1)
            last_conv_out = None
            state[key + "weight"] = np.ascontiguousarray(w.T)  # (in, out) -> (out, in)
            if len(arrays) > 1:
                state[key + "bias"] = arrays[1]
        else:  # gamma, beta, moving mean, moving variance
            for leaf, a in zip(("weight", "bias", "running_mean", "running_var"), arrays):
                state[key + leaf] = a
    return state


def _read_keras(path, model, flatten_hw=None):
    try:
        import h5py
    except ImportError:
        raise ImportError(f"reading the Keras file {str(path)!r} needs h5py (pip install h5py)") from None
    if model is None:
        raise ValueError("reading a Keras file needs the model: Keras stores layers by its own names, "
                         "which are matched to the model's layers in order")
    with h5py.File(path, "r") as f:
        layers = _keras_layers(f)
    return _keras_to_state(model, layers, repr(str(path)), flatten_hw)


def read_weights(path, model=None, format="auto", flatten_hw=None):
    """Read a weight file into a state dict of numpy arrays (fastconv/PyTorch key names).

    Parameters
    ----------
    path : str or os.PathLike
        ``.npz`` (fastconv checkpoint; keys starting with ``'__'`` are
        metadata and skipped), ``.pt``/``.pth`` (a PyTorch state dict, or a
        checkpoint dict holding one under ``'state_dict'``/``'model'``), or
        ``.h5``/``.weights.h5`` (Keras 3 or Keras 2 HDF5).
    model : nn.Module, optional
        Needed for Keras files, whose layers are matched to the model's
        convolution, dense and batch-norm layers in order, kind by kind.
    format : {'auto', 'npz', 'torch', 'keras'}
        ``'auto'`` goes by the file name.
    flatten_hw : (int, int), optional
        Keras only: the spatial size of the map flattened before the first
        dense layer, when it is not square (it is inferred when square).

    Returns
    -------
    dict of str to ndarray

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastconv.transfer import read_weights
    >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> np.savez(path, **{"fc.weight": np.ones((2, 3)), "__epoch__": np.array(3)})
    >>> sorted(read_weights(path))
    ['fc.weight']
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {str(path)!r}")
    fmt = _format_of(path, format)
    if fmt == "npz":
        return _read_npz(path)
    if fmt == "torch":
        return _read_torch(path)
    return _read_keras(path, model, flatten_hw)


def load_weights(model, path, strict=True, format="auto", flatten_hw=None):
    """Load a weight file into ``model``, in place.

    Parameters
    ----------
    model : nn.Module
    path : str or os.PathLike
        A fastconv ``.npz`` checkpoint, a PyTorch ``.pt``/``.pth`` state
        dict or a Keras ``.h5``/``.weights.h5`` file (see
        :func:`read_weights`).  Keras kernels are converted: convolutions
        HWIO -> OIHW, dense (in, out) -> (out, in), and the first dense
        after the convolutions has its rows reordered from Keras's (h, w, c)
        flattening to fastconv's (c, h, w).
    strict : bool
        Missing and unexpected keys are errors.  Shapes must always match.
        ``num_batches_tracked`` entries (PyTorch's batch-norm counters) are
        ignored when the model has none.
    format : {'auto', 'npz', 'torch', 'keras'}
    flatten_hw : (int, int), optional
        Keras only, see :func:`read_weights`.

    Returns
    -------
    LoadResult
        ``(missing_keys, unexpected_keys)``, both empty after a strict load.

    Raises
    ------
    ValueError
        Naming every missing, unexpected and mis-shaped key (the latter with
        the model's and the file's shapes).
    FileNotFoundError, ImportError
        No such file; torch or h5py absent for a file that needs them.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from fastconv import nn
    >>> from fastconv.transfer import load_weights, save_weights
    >>> src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> path = save_weights(src, os.path.join(tempfile.mkdtemp(), "lin.npz"))
    >>> load_weights(dst, path)
    LoadResult(missing_keys=[], unexpected_keys=[])
    >>> bool(np.array_equal(dst.weight.data, src.weight.data))
    True
    """
    _check_module(model, "load_weights")
    state = read_weights(path, model=model, format=format, flatten_hw=flatten_hw)
    own = model.state_dict()
    # PyTorch's batch-norm step counters: dropped when the model has none,
    # kept from the model when the file has none (Keras, older checkpoints).
    state = {k: v for k, v in state.items() if not (k.endswith("num_batches_tracked") and k not in own)}
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = np.asarray(own[k])
    result = check_state_dict(model, state, strict=strict, source=repr(str(path)))
    own_dtypes = {k: np.asarray(v).dtype for k, v in own.items()}
    state = {k: np.asarray(v, dtype=own_dtypes[k]) for k, v in state.items() if k in own_dtypes}
    model.load_state_dict(state, strict=strict)
    return result


def save_weights(model, path, **metadata):
    """Save ``model.state_dict()`` as a ``.npz`` that :func:`load_weights` reads.

    Parameters
    ----------
    model : nn.Module
    path : str or os.PathLike
        The file; ``.npz`` is appended when missing (as numpy does).
    **metadata
        Stored as ``__<name>__`` arrays, skipped when loading.

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import tempfile, os
    >>> from fastconv import nn
    >>> from fastconv.transfer import save_weights
    >>> save_weights(nn.Linear(3, 2), os.path.join(tempfile.mkdtemp(), "m"), epoch=3).endswith("m.npz")
    True
    """
    _check_module(model, "save_weights")
    path = str(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = {k: np.asarray(v) for k, v in model.state_dict().items()}
    arrays.update({f"__{k}__": np.asarray(v) for k, v in metadata.items()})
    write_atomic(path, lambda f: np.savez(f, **arrays))   # a kill mid-write keeps the old file
    return path
