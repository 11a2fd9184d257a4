"""VGG (Simonyan & Zisserman 2014), configurations A, B, D, E with and without
batch norm, layer for layer as torchvision's ``vgg11`` ... ``vgg19_bn``.

``features`` is one flat Sequential (conv, [bn,] relu, ..., maxpool) so the
state-dict keys carry torchvision's indices (``features.0.weight``,
``classifier.6.bias``).
"""
from .. import nn
from ..nn import functional as F
from .resnet import _check_common

__all__ = ["VGG", "make_layers", "CFGS", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
           "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

# Channels of each 3x3 convolution, "M" a 2x2 max pool (the paper's table 1).
CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_layers(cfg, batch_norm=False, in_channels=3):
    """The convolutional part of a VGG, as one flat Sequential.

    Parameters
    ----------
    cfg : list of int or 'M'
        Output channels of each 3x3 convolution (padding 1); ``'M'`` is a
        2x2 max pool with stride 2.
    batch_norm : bool
        Put a BatchNorm2d between each convolution and its ReLU.
    in_channels : int
        Channels of the input images.

    Returns
    -------
    nn.Sequential

    Examples
    --------
    >>> from fastconv.models.vgg import make_layers
    >>> len(make_layers([8, "M", 16], batch_norm=True, in_channels=1))
    7
    """
    if not isinstance(cfg, (list, tuple)) or not cfg:
        raise TypeError(f"cfg must be a non-empty list of channel counts and 'M', got {cfg!r}")
    layers = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"cfg entries must be positive channel counts or 'M', got {v!r}")
        layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG network: ``features``, a 7x7 adaptive average pool, ``classifier``.

    Parameters
    ----------
    features : nn.Sequential
        The convolutional stack, usually from :func:`make_layers`; its last
        layer must output 512 channels.
    num_classes : int
        Outputs of the last layer.
    dropout : float
        Drop probability in the classifier.

    Notes
    -----
    The pool is adaptive, so inputs from 32x32 up work (a 1x1 map is
    replicated to 7x7, as in torchvision).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import vgg11
    >>> model = vgg11(num_classes=4).eval()
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape
    (1, 4)
    """

    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(F.flatten(x, 1))


def _vgg(cfg, batch_norm, num_classes, in_channels, kwargs):
    _check_common(num_classes, in_channels)
    return VGG(make_layers(CFGS[cfg], batch_norm, in_channels), num_classes=num_classes, **kwargs)


def vgg11(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 (configuration A), 132,863,336 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg11
    >>> vgg11(num_classes=10).classifier[-1].weight.shape
    (10, 4096)
    """
    return _vgg("A", False, num_classes, in_channels, kwargs)


def vgg11_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 with batch norm, 132,868,840 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg11_bn
    >>> type(vgg11_bn().features[1]).__name__
    'BatchNorm2d'
    """
    return _vgg("A", True, num_classes, in_channels, kwargs)


def vgg13(num_classes=1000, in_channels=3, **kwargs):
    """VGG-13 (configuration B), 133,047,848 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg13
    >>> vgg13(in_channels=1).features[0].weight.shape
    (64, 1, 3, 3)
    """
    return _vgg("B", False, num_classes, in_channels, kwargs)


def vgg13_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-13 with batch norm, 133,053,736 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg13_bn
    >>> len(vgg13_bn().features)
    40
    """
    return _vgg("B", True, num_classes, in_channels, kwargs)


def vgg16(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 (configuration D), 138,357,544 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg16
    >>> sum(p.data.size for p in vgg16().parameters())
    138357544
    """
    return _vgg("D", False, num_classes, in_channels, kwargs)


def vgg16_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 with batch norm, 138,365,992 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg16_bn
    >>> sum(p.data.size for p in vgg16_bn().parameters())
    138365992
    """
    return _vgg("D", True, num_classes, in_channels, kwargs)


def vgg19(num_classes=1000, in_channels=3, **kwargs):
    """VGG-19 (configuration E), 143,667,240 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg19
    >>> len(vgg19().features)
    37
    """
    return _vgg("E", False, num_classes, in_channels, kwargs)


def vgg19_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-19 with batch norm, 143,678,248 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import vgg19_bn
    >>> len(vgg19_bn().features)
    53
    """
    return _vgg("E", True, num_classes, in_channels, kwargs)
