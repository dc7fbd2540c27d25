"""cnnkit.models: classic networks in PyTorch, their layer tables, and checkpoint loading.

Public API::

    create_model(name, *, num_classes=None, weights=None, **kw)  # build by registry name
    list_models(pattern="*")                        # names matching an fnmatch pattern
    summarize(model, input_size)                    # layer table: shapes, params, MACs
    load_weights(model, source, *, download=False)  # hash-checked checkpoint loading

Builders: lenet5, lenet5_modern, alexnet, alexnet2012, vgg11/13/16/19 (+ _bn), resnet18/34/50/
101/152 (``residual=False`` for plain nets), CIFAR-style resnet8/20/32/44/56/110 and plain8..56.
"""

from cnnkit.models.alexnet import AlexNet, AlexNet2012, alexnet, alexnet2012
from cnnkit.models.lenet import LeNet5, LeNet5Modern, lenet5, lenet5_modern
from cnnkit.models.registry import ModelInfo, create_model, list_models, model_info, register_model
from cnnkit.models.resnet import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnet_cifar,
)
from cnnkit.models.summary import LayerRow, ModelSummary, summarize, summarize_model
from cnnkit.models.vgg import (
    VGG,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from cnnkit.models.weights import WEIGHTS, WeightsRecord, checkpoint_dir, load_weights

__all__ = [
    "VGG",
    "WEIGHTS",
    "AlexNet",
    "AlexNet2012",
    "BasicBlock",
    "Bottleneck",
    "CifarResNet",
    "LeNet5",
    "LayerRow",
    "LeNet5Modern",
    "ModelInfo",
    "ModelSummary",
    "ResNet",
    "WeightsRecord",
    "alexnet",
    "alexnet2012",
    "checkpoint_dir",
    "create_model",
    "lenet5",
    "lenet5_modern",
    "list_models",
    "load_weights",
    "model_info",
    "register_model",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet_cifar",
    "summarize",
    "summarize_model",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]
