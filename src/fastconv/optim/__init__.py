"""Optimisers for :mod:`fastconv.nn` parameters, as ``torch.optim``.

Examples
--------
>>> import numpy as np
>>> from fastconv import nn, optim
>>> model = nn.Linear(3, 1)
>>> opt = optim.Adam(model.parameters(), lr=1e-2)
>>> sched = optim.lr_scheduler.StepLR(opt, step_size=10)
>>> opt.param_groups[0]["lr"]
0.01
"""
from . import lr_scheduler
from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "lr_scheduler"]
