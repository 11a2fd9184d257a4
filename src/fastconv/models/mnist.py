"""The two MNIST CNNs: LeNet-5 and the Keras example's CNN.

Both are a ``features`` :class:`~fastconv.nn.Sequential` of convolutions and a
``classifier`` Sequential of fully connected layers, as torchvision's AlexNet
and VGG, so state-dict keys read ``features.<i>.weight`` and
``classifier.<i>.weight`` with ``i`` the layer's index in its Sequential.
"""
import numbers

from .. import nn
from ..nn import functional as F

__all__ = ["LeNet5", "MnistCNN", "MODELS"]


def _check(num_classes, in_channels, batch_norm):
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not isinstance(batch_norm, bool):
        raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")


def _conv_block(conv, out_channels, batch_norm):
    """conv [, BatchNorm2d], ReLU: the bias is dropped before batch norm, which would cancel it."""
    return [conv, nn.BatchNorm2d(out_channels), nn.ReLU()] if batch_norm else [conv, nn.ReLU()]


def _fc_block(in_features, out_features, batch_norm):
    if batch_norm:
        return [nn.Linear(in_features, out_features, bias=False), nn.BatchNorm1d(out_features), nn.ReLU()]
    return [nn.Linear(in_features, out_features), nn.ReLU()]


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) in its modern form: ReLU and max-pooling.

    ``conv 1->6 5x5 pad 2, relu, maxpool 2, conv 6->16 5x5, relu, maxpool 2,
    flatten, 400->120, relu, 120->84, relu, 84->10``, on 28x28 inputs.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer.
    in_channels : int
        Channels of the input images.
    batch_norm : bool
        Put batch normalisation after every convolution and hidden fully
        connected layer (whose biases are then dropped).

    Notes
    -----
    61,706 parameters without batch norm.  State-dict keys without batch
    norm: ``features.0`` (conv1), ``features.3`` (conv2), ``classifier.0``
    (400->120), ``classifier.2`` (120->84), ``classifier.4`` (84->10), each
    ``.weight`` and ``.bias``.  With batch norm: convs ``features.0`` and
    ``features.4``, their batch norms ``features.1`` and ``features.5``;
    linears ``classifier.0``, ``classifier.3``, ``classifier.6``, batch norms
    ``classifier.1`` and ``classifier.4``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import LeNet5
    >>> model = LeNet5().eval()
    >>> sum(p.data.size for p in model.parameters())
    61706
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
    (2, 10)
    """

    def __init__(self, num_classes=10, in_channels=1, batch_norm=False):
        super().__init__()
        _check(num_classes, in_channels, batch_norm)
        self.features = nn.Sequential(
            *_conv_block(nn.Conv2d(in_channels, 6, 5, padding=2, bias=not batch_norm), 6, batch_norm),
            nn.MaxPool2d(2),
            *_conv_block(nn.Conv2d(6, 16, 5, bias=not batch_norm), 16, batch_norm),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            *_fc_block(16 * 5 * 5, 120, batch_norm),
            *_fc_block(120, 84, batch_norm),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(F.flatten(self.features(x), 1))


class MnistCNN(nn.Module):
    """The CNN of Keras's ``mnist_convnet`` example (99.2% on MNIST).

    ``conv 1->32 3x3, relu, conv 32->64 3x3, relu, maxpool 2, dropout 0.25,
    flatten, 9216->128, relu, dropout 0.5, 128->10``, on 28x28 inputs.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer.
    in_channels : int
        Channels of the input images.
    batch_norm : bool
        Put batch normalisation after both convolutions and the hidden fully
        connected layer (whose biases are then dropped).

    Notes
    -----
    1,199,882 parameters without batch norm, as Keras reports.  State-dict
    keys without batch norm: ``features.0`` (conv1), ``features.2``
    (conv2), ``classifier.0`` (9216->128), ``classifier.3`` (128->10).
    With batch norm: convs ``features.0`` and ``features.3`` with batch norms
    ``features.1`` and ``features.4``; linears ``classifier.0`` and
    ``classifier.4`` with batch norm ``classifier.1``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import MnistCNN
    >>> model = MnistCNN().eval()
    >>> sum(p.data.size for p in model.parameters())
    1199882
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
    (2, 10)
    """

    def __init__(self, num_classes=10, in_channels=1, batch_norm=False):
        super().__init__()
        _check(num_classes, in_channels, batch_norm)
        self.features = nn.Sequential(
            *_conv_block(nn.Conv2d(in_channels, 32, 3, bias=not batch_norm), 32, batch_norm),
            *_conv_block(nn.Conv2d(32, 64, 3, bias=not batch_norm), 64, batch_norm),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            *_fc_block(64 * 12 * 12, 128, batch_norm),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(F.flatten(self.features(x), 1))


# The names ``fastconv train --model`` accepts.
MODELS = {"lenet5": LeNet5, "mnistcnn": MnistCNN}
