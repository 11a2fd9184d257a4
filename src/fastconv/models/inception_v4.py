"""Inception-v4 (Szegedy et al. 2016), layer for layer as timm's
``inception_v4`` (after Cadene's port of the TensorFlow model): ``features``
is one Sequential of 22 stages, every convolution a conv (no bias) + batch
norm (eps 0.001) + ReLU named ``conv``/``bn``, the classifier
``last_linear``; timm's state dicts load unchanged.
"""
from .. import nn
from ..nn import functional as F
from .googlenet import BasicConv2d
from .resnet import _check_common

__all__ = ["InceptionV4", "inception_v4"]


def _cbr(in_channels, out_channels, kernel_size, stride=1, padding=0):
    return BasicConv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding)


class AvgPoolBranch(nn.Module):
    """3x3 average pool, stride 1, pad 1, padding excluded from the mean.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.inception_v4 import AvgPoolBranch
    >>> float(AvgPoolBranch()(nn.Tensor(np.ones((1, 1, 3, 3), np.float32))).numpy()[0, 0, 0, 0])
    1.0
    """

    def forward(self, x):
        # count_include_pad=False keeps border means unbiased (TF's 'SAME' avg pool).
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class Mixed3a(nn.Module):
    """Stem split: max pool and a stride-2 3x3 conv side by side.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import Mixed3a
    >>> Mixed3a().conv.conv.weight.shape
    (96, 64, 3, 3)
    """

    def __init__(self):
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = _cbr(64, 96, 3, stride=2)

    def forward(self, x):
        return F.cat([self.maxpool(x), self.conv(x)], dim=1)


class Mixed4a(nn.Module):
    """Stem: 1x1-3x3 beside 1x1-1x7-7x1-3x3.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import Mixed4a
    >>> Mixed4a().branch1[1].conv.weight.shape
    (64, 64, 1, 7)
    """

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(_cbr(160, 64, 1), _cbr(64, 96, 3))
        self.branch1 = nn.Sequential(
            _cbr(160, 64, 1),
            _cbr(64, 64, (1, 7), padding=(0, 3)),
            _cbr(64, 64, (7, 1), padding=(3, 0)),
            _cbr(64, 96, (3, 3)),
        )

    def forward(self, x):
        return F.cat([self.branch0(x), self.branch1(x)], dim=1)


class Mixed5a(nn.Module):
    """Stem: stride-2 3x3 conv beside a max pool.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import Mixed5a
    >>> Mixed5a().conv.conv.weight.shape
    (192, 192, 3, 3)
    """

    def __init__(self):
        super().__init__()
        self.conv = _cbr(192, 192, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return F.cat([self.conv(x), self.maxpool(x)], dim=1)


class InceptionA(nn.Module):
    """35x35 block, 384 channels in and out.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import InceptionA
    >>> InceptionA().branch3[1].conv.weight.shape
    (96, 384, 1, 1)
    """

    def __init__(self):
        super().__init__()
        self.branch0 = _cbr(384, 96, 1)
        self.branch1 = nn.Sequential(_cbr(384, 64, 1), _cbr(64, 96, 3, padding=1))
        self.branch2 = nn.Sequential(_cbr(384, 64, 1), _cbr(64, 96, 3, padding=1), _cbr(96, 96, 3, padding=1))
        self.branch3 = nn.Sequential(AvgPoolBranch(), _cbr(384, 96, 1))

    def forward(self, x):
        return F.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class ReductionA(nn.Module):
    """35x35 -> 17x17, 384 -> 1024 channels.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import ReductionA
    >>> ReductionA().branch1[2].conv.weight.shape
    (256, 224, 3, 3)
    """

    def __init__(self):
        super().__init__()
        self.branch0 = _cbr(384, 384, 3, stride=2)
        self.branch1 = nn.Sequential(_cbr(384, 192, 1), _cbr(192, 224, 3, padding=1), _cbr(224, 256, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return F.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)


class InceptionB(nn.Module):
    """17x17 block, 1024 channels, factorised 7x7 convolutions.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import InceptionB
    >>> InceptionB().branch2[4].conv.weight.shape
    (256, 224, 1, 7)
    """

    def __init__(self):
        super().__init__()
        self.branch0 = _cbr(1024, 384, 1)
        self.branch1 = nn.Sequential(
            _cbr(1024, 192, 1),
            _cbr(192, 224, (1, 7), padding=(0, 3)),
            _cbr(224, 256, (7, 1), padding=(3, 0)),
        )
        self.branch2 = nn.Sequential(
            _cbr(1024, 192, 1),
            _cbr(192, 192, (7, 1), padding=(3, 0)),
            _cbr(192, 224, (1, 7), padding=(0, 3)),
            _cbr(224, 224, (7, 1), padding=(3, 0)),
            _cbr(224, 256, (1, 7), padding=(0, 3)),
        )
        self.branch3 = nn.Sequential(AvgPoolBranch(), _cbr(1024, 128, 1))

    def forward(self, x):
        return F.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class ReductionB(nn.Module):
    """17x17 -> 8x8, 1024 -> 1536 channels.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import ReductionB
    >>> ReductionB().branch1[3].conv.weight.shape
    (320, 320, 3, 3)
    """

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(_cbr(1024, 192, 1), _cbr(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(
            _cbr(1024, 256, 1),
            _cbr(256, 256, (1, 7), padding=(0, 3)),
            _cbr(256, 320, (7, 1), padding=(3, 0)),
            _cbr(320, 320, 3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return F.cat([self.branch0(x), self.branch1(x), self.branch2(x)], dim=1)


class InceptionC(nn.Module):
    """8x8 block, 1536 channels, expanded 1x3 / 3x1 filter banks.

    Examples
    --------
    >>> from fastconv.models.inception_v4 import InceptionC
    >>> InceptionC().branch2_2.conv.weight.shape
    (512, 448, 1, 3)
    """

    def __init__(self):
        super().__init__()
        self.branch0 = _cbr(1536, 256, 1)
        self.branch1_0 = _cbr(1536, 384, 1)
        self.branch1_1a = _cbr(384, 256, (1, 3), padding=(0, 1))
        self.branch1_1b = _cbr(384, 256, (3, 1), padding=(1, 0))
        self.branch2_0 = _cbr(1536, 384, 1)
        self.branch2_1 = _cbr(384, 448, (3, 1), padding=(1, 0))
        self.branch2_2 = _cbr(448, 512, (1, 3), padding=(0, 1))
        self.branch2_3a = _cbr(512, 256, (1, 3), padding=(0, 1))
        self.branch2_3b = _cbr(512, 256, (3, 1), padding=(1, 0))
        self.branch3 = nn.Sequential(AvgPoolBranch(), _cbr(1536, 256, 1))

    def forward(self, x):
        x0 = self.branch0(x)
        x1 = self.branch1_0(x)
        x1 = F.cat([self.branch1_1a(x1), self.branch1_1b(x1)], dim=1)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        x2 = F.cat([self.branch2_3a(x2), self.branch2_3b(x2)], dim=1)
        return F.cat([x0, x1, x2, self.branch3(x)], dim=1)


class InceptionV4(nn.Module):
    """Inception-v4 for 299x299 inputs (timm's layout and names).

    Parameters
    ----------
    num_classes : int
        Outputs of ``last_linear``.
    in_channels : int
        Channels of the input images.
    dropout : float
        Drop probability before ``last_linear`` (timm's ``drop_rate``, 0).

    Notes
    -----
    42,679,816 parameters at 1000 classes.  Inputs from 75x75 up work (the
    final pool is a global average).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import inception_v4
    >>> model = inception_v4(num_classes=2).eval()
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((1, 3, 75, 75), np.float32))).shape
    (1, 2)
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.0):
        super().__init__()
        _check_common(num_classes, in_channels)
        stages = [
            _cbr(in_channels, 32, 3, stride=2),
            _cbr(32, 32, 3),
            _cbr(32, 64, 3, padding=1),
            Mixed3a(),
            Mixed4a(),
            Mixed5a(),
        ]
        stages += [InceptionA() for _ in range(4)]
        stages += [ReductionA()]
        stages += [InceptionB() for _ in range(7)]
        stages += [ReductionB()]
        stages += [InceptionC() for _ in range(3)]
        self.features = nn.Sequential(*stages)
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.head_drop = nn.Dropout(p=dropout)
        self.last_linear = nn.Linear(1536, num_classes)

    def forward(self, x):
        x = F.flatten(self.global_pool(self.features(x)), 1)
        return self.last_linear(self.head_drop(x))


def inception_v4(num_classes=1000, in_channels=3, **kwargs):
    """Build timm's Inception-v4 (randomly initialised).

    Parameters
    ----------
    num_classes : int
        Outputs of the classifier.
    in_channels : int
        Channels of the input images.
    **kwargs
        Passed to :class:`InceptionV4` (``dropout``).

    Examples
    --------
    >>> from fastconv.models import inception_v4
    >>> sum(p.data.size for p in inception_v4().parameters())
    42679816
    """
    return InceptionV4(num_classes=num_classes, in_channels=in_channels, **kwargs)
