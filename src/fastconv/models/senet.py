"""Squeeze-and-Excitation (Hu et al. 2017): the SE block as a module usable
after any convolution, and SE-ResNet-50 laid out as timm's
``legacy_seresnet50`` (Cadene's port of the Caffe model: ``layer0``,
``pool0``, stride on the first 1x1 of each bottleneck, ``se_module`` with
``fc1``/``fc2`` 1x1 convolutions, ``last_linear``), so its weights load.
"""
from .. import nn
from ..nn import functional as F
from .resnet import _check_common

__all__ = ["SEModule", "SEResNetBottleneck", "SENet", "se_resnet50"]


class SEModule(nn.Module):
    """Squeeze-and-excitation: rescale each channel by a gate computed from
    the global average of all channels.

    Parameters
    ----------
    channels : int
        Channels of the input (and output).
    reduction : int
        The bottleneck of the gate has ``channels // reduction`` units.

    Notes
    -----
    ``y = x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``; the two fully connected
    layers are 1x1 convolutions with bias, as in the reference code, so the
    block drops in after any convolution of any spatial size.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.senet import SEModule
    >>> se = SEModule(32, reduction=16)
    >>> se.fc1.weight.shape
    (2, 32, 1, 1)
    >>> se(nn.Tensor(np.ones((2, 32, 5, 7), np.float32))).shape
    (2, 32, 5, 7)
    """

    def __init__(self, channels, reduction=16):
        super().__init__()
        for name, v in (("channels", channels), ("reduction", reduction)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if channels // reduction < 1:
            raise ValueError(f"reduction ({reduction}) must not exceed channels ({channels})")
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, (1, 1))
        s = self.sigmoid(self.fc2(self.relu(self.fc1(s))))
        return x * s


class SEResNetBottleneck(nn.Module):
    """ResNet bottleneck (stride on the first 1x1, Caffe style) with an SE
    block before the residual addition.

    Examples
    --------
    >>> from fastconv.models.senet import SEResNetBottleneck
    >>> SEResNetBottleneck(256, 64, reduction=16).se_module.fc1.weight.shape
    (16, 256, 1, 1)
    """

    expansion = 4

    def __init__(self, inplanes, planes, groups=1, reduction=16, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = SEModule(planes * 4, reduction=reduction)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.conv1(x), relu=True)
        del x
        out = self.bn2(self.conv2(out), relu=True)
        out = self.bn3(self.conv3(out))
        return self.relu(self.se_module(out) + shortcut)


class _Layer0(nn.Module):
    # timm builds layer0 as Sequential(OrderedDict(conv1, bn1, relu1)); the
    # names are what matters for state dicts.
    def __init__(self, in_channels, inplanes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.relu1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu1(self.bn1(self.conv1(x)))


class SENet(nn.Module):
    """SE-ResNet (timm's legacy ``SENet`` with the 7x7 stem).

    Parameters
    ----------
    layers : sequence of 4 ints
        Bottlenecks per stage ([3, 4, 6, 3] for SE-ResNet-50).
    num_classes : int
        Outputs of ``last_linear``.
    in_channels : int
        Channels of the input images.
    reduction : int
        SE reduction ratio.
    groups : int
        Groups of each 3x3 convolution.
    dropout : float
        Drop probability before ``last_linear`` (timm's ``drop_rate``, 0.2).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.senet import SENet
    >>> model = SENet([1, 1, 1, 1], num_classes=3).eval()
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape
    (1, 3)
    """

    def __init__(self, layers, num_classes=1000, in_channels=3, reduction=16, groups=1, dropout=0.2):
        super().__init__()
        _check_common(num_classes, in_channels)
        if len(layers) != 4 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {layers!r}")
        self.inplanes = 64
        self.layer0 = _Layer0(in_channels, 64)
        # ceil_mode instead of padding=1: what the Caffe weights were trained with.
        self.pool0 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.layer1 = self._make_layer(64, layers[0], groups, reduction)
        self.layer2 = self._make_layer(128, layers[1], groups, reduction, stride=2)
        self.layer3 = self._make_layer(256, layers[2], groups, reduction, stride=2)
        self.layer4 = self._make_layer(512, layers[3], groups, reduction, stride=2)
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.last_linear = nn.Linear(512 * 4, num_classes)

    def _make_layer(self, planes, blocks, groups, reduction, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
        layers = [SEResNetBottleneck(self.inplanes, planes, groups, reduction, stride, downsample)]
        self.inplanes = planes * 4
        layers += [SEResNetBottleneck(self.inplanes, planes, groups, reduction) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.pool0(self.layer0(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.flatten(self.global_pool(x), 1)
        return self.last_linear(self.dropout(x))


def se_resnet50(num_classes=1000, in_channels=3, **kwargs):
    """SE-ResNet-50 as timm's ``legacy_seresnet50``: 28,088,024 parameters at
    1000 classes.

    Parameters
    ----------
    num_classes : int
        Outputs of the classifier.
    in_channels : int
        Channels of the input images.
    **kwargs
        Passed to :class:`SENet` (``reduction``, ``dropout``).

    Examples
    --------
    >>> from fastconv.models import se_resnet50
    >>> sum(p.data.size for p in se_resnet50().parameters())
    28088024
    """
    return SENet([3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)
