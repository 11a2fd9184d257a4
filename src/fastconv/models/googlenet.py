"""GoogLeNet (Inception v1, Szegedy et al. 2014), layer for layer as
torchvision's ``googlenet``: batch-normalised convolutions (eps 0.001),
ceil-mode max pools, and torchvision's 3x3 "5x5" branch (pytorch/vision#906)
so that its state dicts load.
"""
from collections import namedtuple

from .. import nn
from ..nn import functional as F
from .resnet import _check_common

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "googlenet", "BasicConv2d"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    **kwargs
        ``kernel_size``, ``stride``, ``padding`` of the convolution.

    Examples
    --------
    >>> from fastconv.models.googlenet import BasicConv2d
    >>> BasicConv2d(3, 8, kernel_size=(1, 7), padding=(0, 3)).conv.weight.shape
    (8, 3, 1, 7)
    """

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return self.bn(self.conv(x), relu=True)


class Inception(nn.Module):
    """The Inception module: 1x1, 1x1-3x3, 1x1-3x3 and pool-1x1 branches.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.googlenet import Inception
    >>> m = Inception(8, 2, 2, 4, 2, 4, 2)
    >>> m(nn.Tensor(np.zeros((1, 8, 5, 5), np.float32))).shape
    (1, 12, 5, 5)
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        # 3x3, not 5x5: torchvision's weights were trained so (pytorch/vision#906).
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        return F.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on a 14x14 map: 4x4 pool, 1x1 conv, two fc layers.

    Examples
    --------
    >>> from fastconv.models.googlenet import InceptionAux
    >>> InceptionAux(512, 10).fc1.weight.shape
    (1024, 2048)
    """

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4)))
        x = F.relu(self.fc1(F.flatten(x, 1)))
        return self.fc2(self.dropout(x))


class GoogLeNet(nn.Module):
    """GoogLeNet / Inception v1.

    Parameters
    ----------
    num_classes : int
        Outputs of ``fc`` (and of the auxiliary heads).
    aux_logits : bool
        Build the two auxiliary classifiers; in training mode the forward
        then returns ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``.
    in_channels : int
        Channels of the input images.
    dropout, dropout_aux : float
        Drop probabilities before ``fc`` and in the auxiliary heads.

    Notes
    -----
    6,624,904 parameters without the auxiliary heads, 13,004,888 with them.
    Adaptive pools let inputs from 32x32 up through (the aux heads too).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import googlenet
    >>> model = googlenet(num_classes=3).eval()
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape
    (1, 3)
    """

    def __init__(self, num_classes=1000, aux_logits=True, in_channels=3, dropout=0.2, dropout_aux=0.7):
        super().__init__()
        _check_common(num_classes, in_channels)
        self.aux_logits = bool(aux_logits)
        self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)

        if self.aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        with_aux = self.training and self.aux1 is not None
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(F.flatten(self.avgpool(x), 1)))
        if with_aux:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(num_classes=1000, in_channels=3, aux_logits=False, **kwargs):
    """Build torchvision's GoogLeNet (randomly initialised).

    Parameters
    ----------
    num_classes : int
        Outputs of the classifier.
    in_channels : int
        Channels of the input images.
    aux_logits : bool
        Add the two auxiliary heads (off by default, as for torchvision's
        pretrained model).
    **kwargs
        Passed to :class:`GoogLeNet`.

    Examples
    --------
    >>> from fastconv.models import googlenet
    >>> sum(p.data.size for p in googlenet().parameters())
    6624904
    """
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, in_channels=in_channels, **kwargs)
