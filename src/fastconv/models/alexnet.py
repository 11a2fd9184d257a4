"""AlexNet, layer for layer as torchvision's ``alexnet`` (the one-GPU variant
of Krizhevsky et al. 2012 from "One weird trick", without LRN).

Parameter names match torchvision's, so its state dicts load unchanged.
"""
from .. import nn
from ..nn import functional as F
from .resnet import _check_common

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """AlexNet: five convolutions, three fully connected layers.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer.
    in_channels : int
        Channels of the input images.
    dropout : float
        Drop probability before the first two fully connected layers.

    Notes
    -----
    ``avgpool`` is adaptive (6x6), so any input of at least 63x63 works;
    the reference input is 224x224.  61,100,840 parameters at 1000 classes.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models import AlexNet
    >>> model = AlexNet(num_classes=10).eval()
    >>> with nn.no_grad():
    ...     model(nn.Tensor(np.zeros((1, 3, 63, 63), np.float32))).shape
    (1, 10)
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5):
        super().__init__()
        _check_common(num_classes, in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(F.flatten(x, 1))


def alexnet(num_classes=1000, in_channels=3, **kwargs):
    """Build torchvision's AlexNet (randomly initialised).

    Parameters
    ----------
    num_classes : int
        Outputs of the classifier (1000 for ImageNet).
    in_channels : int
        Channels of the input images.
    **kwargs
        Passed to :class:`AlexNet` (``dropout``).

    Returns
    -------
    AlexNet

    Examples
    --------
    >>> from fastconv.models import alexnet
    >>> sum(p.data.size for p in alexnet().parameters())
    61100840
    """
    return AlexNet(num_classes=num_classes, in_channels=in_channels, **kwargs)
