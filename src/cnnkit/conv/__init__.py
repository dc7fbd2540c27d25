"""cnnkit.conv: the NumPy convolution reference engine (NCHW, float32/float64).

Functions follow ``torch.nn.functional``; layers keep explicit caches for a backward pass.

>>> import numpy as np
>>> from cnnkit.conv import conv2d, output_size
>>> output_size(6, 3, p=0, s=1)
4
>>> conv2d(np.ones((1, 3, 6, 6)), np.ones((2, 3, 3, 3)), padding="same").shape
(1, 2, 6, 6)
"""

from cnnkit.conv.explain import ConvExplanation, VolumeExplanation, explain_conv2d, explain_volume
from cnnkit.conv.functional import (
    ConvCache,
    conv2d,
    conv2d_backward,
    conv2d_forward,
    convolve2d,
    pad,
)
from cnnkit.conv.layers import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
)
from cnnkit.conv.optim import SGD, Adam, Optimizer
from cnnkit.conv.pool import (
    PoolCache,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)
from cnnkit.conv.shapes import output_size, same_padding

__all__ = [
    "SGD",
    "Adam",
    "AvgPool2D",
    "Conv2D",
    "ConvCache",
    "ConvExplanation",
    "Dense",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "Optimizer",
    "PoolCache",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "Tanh",
    "VolumeExplanation",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "convolve2d",
    "explain_conv2d",
    "explain_volume",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "output_size",
    "pad",
    "same_padding",
]
