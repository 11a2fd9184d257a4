"""A minimal autograd and layer library on fastconv's kernels, PyTorch-like.

``Tensor`` records operations, ``backward`` computes gradients,
:mod:`fastconv.nn.functional` (``F``) holds the differentiable ops and the
layers (``Conv2d``, ``Linear``, ``BatchNorm2d`` ...) are :class:`Module`
subclasses with PyTorch's names, defaults and ``state_dict`` keys.  Everything
runs on numpy arrays, float32 by default.

Examples
--------
>>> import numpy as np
>>> from fastconv import nn, optim
>>> import fastconv.nn.functional as F
>>> nn.manual_seed(0)
>>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
...                       nn.Linear(4 * 3 * 3, 10))
>>> opt = optim.SGD(model.parameters(), lr=0.1)
>>> x = nn.Tensor(np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32))
>>> loss = F.cross_entropy(model(x), np.arange(8))
>>> opt.zero_grad(); loss.backward(); opt.step()
"""
from . import functional, init
from .init import manual_seed
from .modules import (AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d,
                      CrossEntropyLoss, Dropout, Flatten, Identity, Linear, LocalResponseNorm,
                      LogSoftmax, MaxPool2d, Module, ModuleList, MSELoss, Parameter, ReLU,
                      Sequential, Sigmoid, Softmax, Tanh)
from .tensor import Function, Tensor, backward, is_grad_enabled, no_grad
from .inference import InferenceModel, inference

__all__ = [
    "Tensor", "Function", "Parameter", "backward", "no_grad", "is_grad_enabled", "manual_seed",
    "functional", "init", "Module", "Sequential", "ModuleList", "Conv2d", "Linear", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "ReLU", "Sigmoid",
    "Tanh", "Flatten", "Identity", "LocalResponseNorm", "LogSoftmax", "Softmax",
    "CrossEntropyLoss", "MSELoss", "inference", "InferenceModel",
]
