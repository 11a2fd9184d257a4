"""Reference CNNs built on :mod:`fastconv.nn`, one module per family.

Add a family with one import line below and its public names to ``__all__``.
"""
from .mnist import MODELS as MNIST_MODELS, LeNet5, MnistCNN
from .alexnet import AlexNet, alexnet
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn
from .resnet import ResNet, BasicBlock, Bottleneck, resnet18, resnet34, resnet50, resnet101
from .googlenet import GoogLeNet, googlenet
from .inception import Inception3, inception_v3
from .inception_v4 import InceptionV4, inception_v4
from .senet import SEModule, SENet, se_resnet50

__all__ = [
    "MNIST_MODELS", "LeNet5", "MnistCNN",
    "AlexNet", "alexnet",
    "VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50", "resnet101",
    "GoogLeNet", "googlenet",
    "Inception3", "inception_v3",
    "InceptionV4", "inception_v4",
    "SEModule", "SENet", "se_resnet50",
]
