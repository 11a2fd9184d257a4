"""Inception v3 (Szegedy et al. 2015), layer for layer as torchvision's
``inception_v3`` / ``Inception3``: module and parameter names, batch-norm
eps 0.001 and the auxiliary head as there, so its state dicts load.
"""
from collections import namedtuple

from .. import nn
from ..nn import functional as F
from .googlenet import BasicConv2d
from .resnet import _check_common

__all__ = ["Inception3", "InceptionOutputs", "inception_v3"]

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])


def _avg3(x):
    # torchvision's branch pool: 3x3, stride 1, pad 1, zeros counted.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 1x1-5x5, 1x1-3x3-3x3, avgpool-1x1.

    Examples
    --------
    >>> from fastconv.models.inception import InceptionA
    >>> InceptionA(192, pool_features=32).branch5x5_2.conv.weight.shape
    (64, 48, 5, 5)
    """

    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x))
        return F.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction: 3x3/2, 1x1-3x3-3x3/2, maxpool/2.

    Examples
    --------
    >>> from fastconv.models.inception import InceptionB
    >>> InceptionB(288).branch3x3.conv.weight.shape
    (384, 288, 3, 3)
    """

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return F.cat([b3, bd, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 1x7 / 7x1 convolutions.

    Examples
    --------
    >>> from fastconv.models.inception import InceptionC
    >>> InceptionC(768, channels_7x7=128).branch7x7_2.conv.weight.shape
    (128, 128, 1, 7)
    """

    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(_avg3(x))
        return F.cat([b1, b7, bd, bp], dim=1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction.

    Examples
    --------
    >>> from fastconv.models.inception import InceptionD
    >>> InceptionD(768).branch3x3_2.conv.weight.shape
    (320, 192, 3, 3)
    """

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        return F.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """8x8 block with expanded 1x3 / 3x1 filter banks.

    Examples
    --------
    >>> from fastconv.models.inception import InceptionE
    >>> InceptionE(1280).branch3x3dbl_1.conv.weight.shape
    (448, 1280, 1, 1)
    """

    def __init__(self, in_channels):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = F.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = F.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)
        bp = self.branch_pool(_avg3(x))
        return F.cat([b1, b3, bd, bp], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17 map: avgpool 5/3, 1x1, 5x5, fc.

    Examples
    --------
    >>> from fastconv.models.inception import InceptionAux
    >>> InceptionAux(768, 10).fc.weight.shape
    (10, 768)
    """

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
        self.conv1 = BasicConv2d(128, 768, kernel_size=5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(F.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class Inception3(nn.Module):
    """Inception v3 for 299x299 inputs.

    Parameters
    ----------
    num_classes : int
        Outputs of ``fc`` (and of ``AuxLogits``).
    aux_logits : bool
        Build the auxiliary head; in training mode the forward then returns
        ``InceptionOutputs(logits, aux_logits)``.
    in_channels : int
        Channels of the input images.
    dropout : float
        Drop probability before ``fc``.

    Notes
    -----
    27,161,264 parameters with the auxiliary head, 23,834,568 without.
    Inputs from 75x75 up work; the auxiliary head needs at least 299x299's
    17x17 map at ``Mixed_6e`` (any input >= 299 is safe).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import inception_v3
    >>> model = inception_v3(num_classes=2).eval()
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((1, 3, 75, 75), np.float32))).shape
    (1, 2)
    """

    def __init__(self, num_classes=1000, aux_logits=True, in_channels=3, dropout=0.5):
        super().__init__()
        _check_common(num_classes, in_channels)
        self.aux_logits = bool(aux_logits)
        self.Conv2d_1a_3x3 = BasicConv2d(in_channels, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if self.aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(self.maxpool1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(self.maxpool2(x))))
        x = self.Mixed_6a(x)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))
        with_aux = self.training and self.AuxLogits is not None
        aux = self.AuxLogits(x) if with_aux else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        x = self.fc(F.flatten(self.dropout(self.avgpool(x)), 1))
        if with_aux:
            return InceptionOutputs(x, aux)
        return x


def inception_v3(num_classes=1000, in_channels=3, aux_logits=False, **kwargs):
    """Build torchvision's Inception v3 (randomly initialised).

    Parameters
    ----------
    num_classes : int
        Outputs of the classifier.
    in_channels : int
        Channels of the input images.
    aux_logits : bool
        Add the auxiliary head (``AuxLogits``).
    **kwargs
        Passed to :class:`Inception3` (``dropout``).

    Examples
    --------
    >>> from fastconv.models import inception_v3
    >>> sum(p.data.size for p in inception_v3(aux_logits=True).parameters())
    27161264
    """
    return Inception3(num_classes=num_classes, aux_logits=aux_logits, in_channels=in_channels, **kwargs)
