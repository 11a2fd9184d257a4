"""ResNet (He et al. 2015), layer for layer as torchvision's ``resnet18`` ...
``resnet101``: BasicBlock for 18/34, Bottleneck (stride on the 3x3, "v1.5")
for 50/101, parameter names as torchvision's.
"""
from .. import nn
from ..nn import functional as F

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet101"]


def _check_common(num_classes, in_channels):
    # Shared by every factory in fastconv.models: the two arguments they all take.
    for name, v in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name} must be a positive int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{name} must be a positive int, got {v}")


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding 1 and no bias (batch norm follows).

    Examples
    --------
    >>> from fastconv.models.resnet import conv3x3
    >>> conv3x3(4, 8).weight.shape
    (8, 4, 3, 3)
    """
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution without bias.

    Examples
    --------
    >>> from fastconv.models.resnet import conv1x1
    >>> conv1x1(4, 8, stride=2).weight.shape
    (8, 4, 1, 1)
    """
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and an identity (or 1x1 projection) shortcut.

    Parameters
    ----------
    inplanes, planes : int
        Input and output channels (``expansion`` is 1).
    stride : int
        Stride of the first convolution.
    downsample : nn.Module, optional
        Projects the shortcut when the shape changes.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.resnet import BasicBlock
    >>> BasicBlock(8, 8)(nn.Tensor(np.zeros((1, 8, 5, 5), np.float32))).shape
    (1, 8, 5, 5)
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.conv1(x), relu=True)   # relu(bn1(.)) fused, forward and backward
        del x  # the shortcut holds what it needs; free the input under no_grad
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, plus shortcut.

    Parameters
    ----------
    inplanes : int
        Input channels.
    planes : int
        Width of the 3x3 convolution; the block outputs ``4 * planes``.
    stride : int
        Stride of the 3x3 convolution (torchvision's "ResNet v1.5").
    downsample : nn.Module, optional
        Projects the shortcut when the shape changes.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.resnet import Bottleneck, conv1x1
    >>> block = Bottleneck(8, 4, stride=2, downsample=nn.Sequential(conv1x1(8, 16, 2), nn.BatchNorm2d(16)))
    >>> block(nn.Tensor(np.zeros((1, 8, 6, 6), np.float32))).shape
    (1, 16, 3, 3)
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.conv1(x), relu=True)
        del x
        out = self.bn2(self.conv2(out), relu=True)
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet: 7x7 stem, max pool, four stages of blocks, average pool, fc.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
        The block class.
    layers : sequence of 4 ints
        Blocks per stage.
    num_classes : int
        Outputs of ``fc``.
    in_channels : int
        Channels of the input images.
    width : int
        Channels of the stem and of the first stage (64 in the paper); the
        stages double it.  Smaller widths make quick experiment networks.

    Notes
    -----
    The final pool is adaptive, so any input of at least 32x32 works (the
    reference input is 224x224; 28x28 MNIST digits work too).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> from fastconv.models.resnet import ResNet, BasicBlock
    >>> tiny = ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5, in_channels=1, width=8).eval()
    >>> with nn.no_grad():
    ...     tiny(nn.Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape
    (2, 5)
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, width=64):
        super().__init__()
        _check_common(num_classes, in_channels)
        if block not in (BasicBlock, Bottleneck) and not (isinstance(block, type) and hasattr(block, "expansion")):
            raise TypeError(f"block must be BasicBlock, Bottleneck or a class with an 'expansion', got {block!r}")
        if len(layers) != 4 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {layers!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x):
        """The pooled, flattened features that ``fc`` sees, shape (N, C).

        Examples
        --------
        >>> import numpy as np
        >>> from fastconv import nn
        >>> from fastconv.models import resnet18
        >>> with nn.no_grad():
        ...     resnet18().eval().forward_features(nn.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape
        (1, 512)
        """
        x = self.maxpool(self.bn1(self.conv1(x), relu=True))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.forward_features(x))


def resnet18(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-18: BasicBlock x [2, 2, 2, 2], 11,689,512 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import resnet18
    >>> sum(p.data.size for p in resnet18().parameters())
    11689512
    """
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet34(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-34: BasicBlock x [3, 4, 6, 3], 21,797,672 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import resnet34
    >>> len(resnet34().layer3)
    6
    """
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet50(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-50: Bottleneck x [3, 4, 6, 3], 25,557,032 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import resnet50
    >>> resnet50(num_classes=10).fc.weight.shape
    (10, 2048)
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet101(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-101: Bottleneck x [3, 4, 23, 3], 44,549,160 parameters at 1000 classes.

    Examples
    --------
    >>> from fastconv.models import resnet101
    >>> len(resnet101().layer3)
    23
    """
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)
